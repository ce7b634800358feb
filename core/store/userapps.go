package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// CreateAppWithEnv creates the app (see CreateApp) and its env vars in one
// transaction.
func (s *Store) CreateAppWithEnv(ctx context.Context, na NewApp, env map[string]string) (*App, error) {
	var a *App
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if a, err = createApp(ctx, tx, na); err != nil {
			return err
		}
		return s.setEnvVars(ctx, tx, a.ID, env)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// WorkerOffersRuntime reports whether any registered worker offers the
// runtime (exec or podman), online or not: a job for it can be placed
// once that worker is up.
func (s *Store) WorkerOffersRuntime(ctx context.Context, runtime string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM workers WHERE $1 = ANY (runtimes))`, runtime).Scan(&ok)
	if err != nil {
		return false, mapErr("worker offers runtime", err)
	}
	return ok, nil
}

// RequestAppPurge soft-deletes the app like MarkAppDeleted (whose delete
// job it returns) and, in the same statement, marks it for purging:
// PurgeApps removes it for good once nothing runs it.
func (s *Store) RequestAppPurge(ctx context.Context, appID int64) (*Job, error) {
	return s.markAppDeleted(ctx, appID, true)
}

// PurgeApps removes for good the apps marked by RequestAppPurge that no
// worker holds capacity for and no job is active for, with their runtime
// logs (everything else cascades), in one statement. ids limits it to
// those apps; nil purges every such app. It returns the ids purged.
func (s *Store) PurgeApps(ctx context.Context, ids []int64) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `
		WITH gone AS (
			DELETE FROM apps a
			WHERE a.purge_requested AND a.deleted_at IS NOT NULL
			  AND ($1::bigint[] IS NULL OR a.id = ANY ($1))
			  AND NOT EXISTS (SELECT 1 FROM app_reservations r WHERE r.app_id = a.id)
			  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.app_id = a.id
			                  AND j.status IN ('pending', 'assigned', 'processing'))
			RETURNING a.id),
		logs AS (DELETE FROM runtime_logs WHERE app_id IN (SELECT id FROM gone))
		SELECT id FROM gone`, ids)
	if err != nil {
		return nil, mapErr("purge apps", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, mapErr("purge apps", err)
	}
	return out, nil
}

// FindUserDeployment returns the deployment, with its build logs, when it
// belongs to one of the user's live apps; else ErrNotFound.
func (s *Store) FindUserDeployment(ctx context.Context, id, userID int64) (*Deployment, error) {
	d, err := scanDeployment(s.pool.QueryRow(ctx, `
		SELECT d.id, d.app_id, d.worker_id, d.status, d.trigger, d.commit_sha, d.commit_message, d.branch,
			d.build_logs, d.error, d.started_at, d.finished_at, d.created_at
		FROM deployments d JOIN apps a ON a.id = d.app_id
		WHERE d.id = $1 AND a.user_id = $2 AND a.deleted_at IS NULL`, id, userID))
	if err != nil {
		return nil, mapErr("find user deployment", err)
	}
	return d, nil
}

// FindUserJob returns the job when it belongs to one of the user's apps
// (deleted ones included: a delete job outlives the app's listing); else
// ErrNotFound.
func (s *Store) FindUserJob(ctx context.Context, id, userID int64) (*Job, error) {
	j, err := s.scanJob(s.pool.QueryRow(ctx, `SELECT `+prefixed("j.", jobColumns)+`
		FROM jobs j JOIN apps a ON a.id = j.app_id WHERE j.id = $1 AND a.user_id = $2`, id, userID))
	if err != nil {
		return nil, mapErr("find user job", err)
	}
	return j, nil
}

// prefixed qualifies each column of a comma-separated list with p.
func prefixed(p, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// LogLine is one runtime log line as stored.
type LogLine struct {
	// ID is the stored chunk's id: lines of one chunk share it, and later
	// chunks have larger ids.
	ID     int64
	AppID  int64
	TS     time.Time
	Stream string
	Line   string
}

// RecentRuntimeLogs returns the last n lines of the apps' runtime logs,
// oldest first, with one query. A line's time is its chunk's first line's
// (the last line of a chunk gets the chunk's end).
func (s *Store) RecentRuntimeLogs(ctx context.Context, appIDs []int64, n int) ([]LogLine, error) {
	if len(appIDs) == 0 || n <= 0 {
		return nil, nil
	}
	// n chunks per app hold at least n lines each.
	rows, err := s.pool.Query(ctx, `
		SELECT l.id, l.app_id, l.ts, coalesce(l.ts_end, l.ts), l.stream, l.line
		FROM unnest($1::bigint[]) AS a(id),
		LATERAL (SELECT * FROM runtime_logs r WHERE r.app_id = a.id ORDER BY r.ts DESC, r.id DESC LIMIT $2) l`,
		appIDs, n)
	if err != nil {
		return nil, mapErr("recent runtime logs", err)
	}
	lines, err := collectLogLines(rows)
	if err != nil {
		return nil, fmt.Errorf("store: recent runtime logs: %w", err)
	}
	slices.SortStableFunc(lines, func(a, b LogLine) int {
		if c := a.TS.Compare(b.TS); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// RecentRuntimeLogChunks returns the lines of the apps' newest chunks
// whose first line is at since or later, at most limit chunks (the newest),
// oldest first, through the (app_id, ts) index: how a core that does not
// hold an app's worker follows its logs. A caller reading overlapping
// windows also sees chunks committed late, and tells chunks apart by ID.
func (s *Store) RecentRuntimeLogChunks(ctx context.Context, appIDs []int64, since time.Time, limit int) ([]LogLine, error) {
	if len(appIDs) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT * FROM (
			SELECT id, app_id, ts, coalesce(ts_end, ts), stream, line FROM runtime_logs
			WHERE app_id = ANY ($1) AND ts >= $2 ORDER BY ts DESC, id DESC LIMIT $3) l
		ORDER BY 3, 1`, appIDs, since, max(limit, 1))
	if err != nil {
		return nil, mapErr("recent runtime log chunks", err)
	}
	lines, err := collectLogLines(rows)
	if err != nil {
		return nil, fmt.Errorf("store: recent runtime log chunks: %w", err)
	}
	return lines, nil
}

// collectLogLines splits each chunk row into its lines.
func collectLogLines(rows pgx.Rows) ([]LogLine, error) {
	defer rows.Close()
	var out []LogLine
	for rows.Next() {
		var (
			id, app int64
			ts, end time.Time
			stream  string
			text    string
		)
		if err := rows.Scan(&id, &app, &ts, &end, &stream, &text); err != nil {
			return nil, err
		}
		parts := strings.Split(text, "\n")
		for i, p := range parts {
			t := ts
			if i == len(parts)-1 {
				t = end
			}
			out = append(out, LogLine{ID: id, AppID: app, TS: t, Stream: stream, Line: p})
		}
	}
	return out, rows.Err()
}

// CreateAppJob creates a job for an existing live app (pending for
// placement, or assigned when nj.WorkerID pins it) and, when appStatus is
// not empty, sets the app's status, in one transaction.
func (s *Store) CreateAppJob(ctx context.Context, nj NewJob, appStatus string) (*Job, error) {
	var j *Job
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE apps SET status = coalesce(nullif($2, ''), status), updated_at = now()
			WHERE id = $1 AND deleted_at IS NULL`, nj.AppID, appStatus)
		if err != nil {
			return mapErr("create app job: app", err)
		}
		if tag.RowsAffected() == 0 {
			return mapErr("create app job: app", pgx.ErrNoRows)
		}
		j, err = s.createJob(ctx, tx, nj)
		return err
	})
	if err != nil {
		return nil, err
	}
	return j, nil
}
