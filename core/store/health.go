package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/sdk/event"
)

// OfflineWorker is a worker TakeSilentWorkersOffline took offline.
type OfflineWorker struct {
	ID   int64
	Name string
	// StoppedApps is how many of its apps were stopped.
	StoppedApps int
}

// TakeSilentWorkersOffline takes offline, in one transaction, every online
// worker whose last heartbeat (or, without one, last change) is older than
// silentFor, and stops its apps as far as the platform is concerned: each
// app that runs there (running, exited, crashloop or violated, with no job
// in flight) becomes stopped on no worker, its reservations are released,
// and app.stopped goes to the outbox with the reason. Apps with a job in
// flight are left to that job (stuck-job recovery fails it if the worker
// never answers). Locks follow the store's order: apps, then workers by id,
// whose silence is re-checked under the lock, so a worker that has just
// reconnected is left alone, and two cores never take one worker offline
// twice. Each is notified on ChannelWorkerOffline.
func (s *Store) TakeSilentWorkersOffline(ctx context.Context, silentFor time.Duration) ([]OfflineWorker, error) {
	// silent is the condition, with silentFor as parameter $N.
	silent := func(n int) string {
		return fmt.Sprintf(`status = 'online' AND coalesce(last_heartbeat, updated_at) < now() - $%d::interval`, n)
	}
	var out []OfflineWorker
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var candidates []int64
		rows, err := tx.Query(ctx, `SELECT id FROM workers WHERE `+silent(1)+` ORDER BY id`, silentFor)
		if err != nil {
			return mapErr("silent workers", err)
		}
		if candidates, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return mapErr("silent workers", err)
		}
		if len(candidates) == 0 {
			return nil
		}
		// Apps first (lock order), then the workers, re-checked.
		type placed struct{ app, worker int64 }
		rows, err = tx.Query(ctx, `
			SELECT a.id, a.worker_id FROM apps a
			WHERE a.worker_id = ANY($1) AND a.status IN ('running', 'exited', 'crashloop', 'violated')
			  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.app_id = a.id AND j.status IN ('assigned', 'processing'))
			ORDER BY a.id FOR NO KEY UPDATE OF a`, pgx.QueryExecModeExec, candidates)
		if err != nil {
			return mapErr("silent workers: apps", err)
		}
		apps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (placed, error) {
			var p placed
			return p, r.Scan(&p.app, &p.worker)
		})
		if err != nil {
			return mapErr("silent workers: apps", err)
		}
		rows, err = tx.Query(ctx, `SELECT id, name FROM workers WHERE id = ANY($1) AND `+silent(2)+`
			ORDER BY id FOR NO KEY UPDATE`, pgx.QueryExecModeExec, candidates, silentFor)
		if err != nil {
			return mapErr("silent workers: lock", err)
		}
		confirmed, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OfflineWorker, error) {
			var w OfflineWorker
			return w, r.Scan(&w.ID, &w.Name)
		})
		if err != nil || len(confirmed) == 0 {
			return mapErr("silent workers: lock", err)
		}
		index := map[int64]int{}
		ids := make([]int64, len(confirmed))
		for i, w := range confirmed {
			index[w.ID], ids[i] = i, w.ID
		}
		var stop []int64
		for _, p := range apps {
			if i, ok := index[p.worker]; ok {
				stop = append(stop, p.app)
				confirmed[i].StoppedApps++
			}
		}
		if err := ReleaseApps(ctx, tx, stop); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE workers SET status = 'offline', updated_at = now() WHERE id = ANY($1)`, ids); err != nil {
			return mapErr("silent workers: offline", err)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, id::text) FROM unnest($2::bigint[]) id`,
			ChannelWorkerOffline, ids); err != nil {
			return mapErr("silent workers: notify", err)
		}
		if len(stop) > 0 {
			rows, err = tx.Query(ctx, `
				UPDATE apps a SET status = 'stopped', worker_id = NULL, updated_at = now()
				FROM workers w WHERE a.id = ANY($1) AND w.id = a.worker_id
				RETURNING a.id, a.user_id, a.name, a.subdomain, w.name`, pgx.QueryExecModeExec, stop)
			if err != nil {
				return mapErr("silent workers: stop apps", err)
			}
			events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (event.Event, error) {
				var e event.Event
				var d event.AppData
				var worker string
				err := r.Scan(&e.AppID, &e.UserID, &d.AppName, &d.Subdomain, &worker)
				d.Reason = fmt.Sprintf("worker %s stopped responding", worker)
				e.Type, e.Data = event.AppStopped, appEventData(d)
				return e, err
			})
			if err != nil {
				return mapErr("silent workers: stop apps", err)
			}
			if err := EmitEvents(ctx, tx, events); err != nil {
				return err
			}
		}
		out = confirmed
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// StuckJobs returns up to limit jobs that have been assigned or processing
// for longer than olderThan (counted from their assignment), oldest first.
// Recovery fails each through CompleteJob, which settles its reservation.
func (s *Store) StuckJobs(ctx context.Context, olderThan time.Duration, limit int) ([]*Job, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE status IN ('assigned', 'processing') AND worker_id IS NOT NULL
		  AND coalesce(assigned_at, created_at) < now() - $1::interval
		ORDER BY coalesce(assigned_at, created_at), id LIMIT $2`, olderThan, limit)
	if err != nil {
		return nil, mapErr("stuck jobs", err)
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		j, err := s.scanJob(rows)
		if err != nil {
			return nil, mapErr("stuck jobs", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("stuck jobs", err)
	}
	return out, nil
}
