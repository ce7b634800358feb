package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Runtime log streams.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	StreamSystem = "system"
)

// LogChunk is a run of consecutive lines of one app's output stream, stored
// as one runtime_logs row (see migration 002 for why rows hold chunks, not
// single lines).
type LogChunk struct {
	AppID    int64
	WorkerID int64
	// Stream is stdout, stderr or system.
	Stream string
	// TS is the first line's time, TSEnd the last one's.
	TS, TSEnd time.Time
	// Lines is how many lines Text holds (at least 1).
	Lines int
	// Text is the lines joined with '\n'; no line contains '\n' itself and
	// none contains NUL (Postgres text cannot hold it).
	Text string
}

var runtimeLogColumns = []string{"app_id", "worker_id", "ts", "ts_end", "stream", "line", "line_count"}

// InsertRuntimeLogs writes chunks with one COPY. Callers batch across
// messages and workers: this is the hub's log writer's only statement.
func (s *Store) InsertRuntimeLogs(ctx context.Context, chunks []LogChunk) error {
	if len(chunks) == 0 {
		return nil
	}
	i := 0
	row := make([]any, len(runtimeLogColumns))
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"runtime_logs"}, runtimeLogColumns,
		pgx.CopyFromFunc(func() ([]any, error) {
			if i >= len(chunks) {
				return nil, nil
			}
			c := &chunks[i]
			i++
			var end any
			if c.Lines > 1 && c.TSEnd.After(c.TS) {
				end = c.TSEnd
			}
			row[0], row[1], row[2], row[3], row[4], row[5], row[6] = c.AppID, c.WorkerID, c.TS, end, c.Stream, c.Text, int32(max(c.Lines, 1))
			return row, nil
		}))
	if err != nil {
		return mapErr(fmt.Sprintf("insert %d runtime log chunks", len(chunks)), err)
	}
	return nil
}

// pruneBatch bounds the rows one DELETE of PruneRuntimeLogs removes, so a
// large backlog is pruned in short transactions.
const pruneBatch = 10_000

// PruneRuntimeLogs deletes the runtime logs whose last line is older than
// before, in batches of at most pruneBatch rows, and returns how many rows
// went. Run it as a cluster-wide singleton (WithTryAdvisoryLock).
func (s *Store) PruneRuntimeLogs(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `
			DELETE FROM runtime_logs WHERE id IN (
				SELECT id FROM runtime_logs WHERE ts < $1 AND coalesce(ts_end, ts) < $1 LIMIT $2)`,
			before, pruneBatch)
		if err != nil {
			return total, mapErr("prune runtime logs", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}
