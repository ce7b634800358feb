package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
)

func TestInsertAndPruneRuntimeLogs(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	chunks := []store.LogChunk{
		{AppID: f.app.ID, WorkerID: f.worker.ID, Stream: store.StreamStdout, TS: now.Add(-3 * time.Hour), TSEnd: now.Add(-2 * time.Hour), Lines: 2, Text: "a\nb"},
		{AppID: f.app.ID, WorkerID: f.worker.ID, Stream: store.StreamStderr, TS: now.Add(-90 * time.Minute), TSEnd: now.Add(-90 * time.Minute), Lines: 1, Text: "c"},
		{AppID: f.app.ID, WorkerID: f.worker.ID, Stream: store.StreamSystem, TS: now, TSEnd: now, Lines: 1, Text: "d"},
	}
	if err := f.s.InsertRuntimeLogs(f.ctx, chunks); err != nil {
		t.Fatal(err)
	}
	if err := f.s.InsertRuntimeLogs(f.ctx, nil); err != nil {
		t.Fatal(err)
	}
	var lines int
	var end *time.Time
	if err := f.s.Pool().QueryRow(f.ctx, `SELECT sum(line_count), max(ts_end) FROM runtime_logs`).Scan(&lines, &end); err != nil {
		t.Fatal(err)
	}
	if lines != 4 || end == nil || !end.Equal(now.Add(-2*time.Hour)) {
		t.Fatalf("stored lines %d, ts_end %v (a single-line chunk stores no ts_end)", lines, end)
	}
	// Rows are pruned by their last line: the 2-hour chunk goes, the
	// 90-minute one stays.
	n, err := f.s.PruneRuntimeLogs(f.ctx, now.Add(-100*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if got := f.count(t, `SELECT count(*) FROM runtime_logs`); got != 2 {
		t.Fatalf("%d rows left", got)
	}
	bad := []store.LogChunk{{AppID: f.app.ID, Stream: "stdin", TS: now, Lines: 1, Text: "x"}}
	if err := f.s.InsertRuntimeLogs(f.ctx, bad); err == nil {
		t.Fatal("an unknown stream was stored")
	}
}

// BenchmarkRuntimeLogCopy measures the COPY throughput of runtime logs as
// one row per line against rows of chunks, with 100-byte lines, on this
// machine; it is how migration 002 chose chunks. MiB/s is line text.
//
//	go test -run '^$' -bench RuntimeLogCopy -benchtime 64x ./core/store/
func BenchmarkRuntimeLogCopy(b *testing.B) {
	for _, per := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("lines_per_row=%d", per), func(b *testing.B) {
			s := storetest.New(b)
			ctx := context.Background()
			line := strings.Repeat("x", 99)
			text := strings.TrimSuffix(strings.Repeat(line+"\n", per), "\n")
			const batchBytes = 1 << 20 // of line text per COPY
			rows := max(batchBytes/(100*per), 1)
			batch := make([]store.LogChunk, rows)
			now := time.Now()
			for i := range batch {
				batch[i] = store.LogChunk{AppID: int64(i%50 + 1), WorkerID: 1, Stream: store.StreamStdout, TS: now, TSEnd: now, Lines: per, Text: text}
			}
			b.SetBytes(int64(rows * per * 100))
			b.ResetTimer()
			for b.Loop() {
				if err := s.InsertRuntimeLogs(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
