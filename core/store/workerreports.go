package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/sdk/event"
)

// What the hub writes for the reports a connected worker sends.

// MarkWorkerOnline brings an offline worker online (stamping its heartbeat,
// as SetWorkerStatus does) when it connects, and reports whether it was
// offline. A draining worker stays draining, an online one is untouched.
// Being conditional in SQL, it is right even when the caller's view of the
// worker's status is stale (the hub's credential cache).
func (s *Store) MarkWorkerOnline(ctx context.Context, workerID int64) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE workers SET status = 'online', last_heartbeat = now(), updated_at = now()
		WHERE id = $1 AND status = 'offline'`, workerID)
	if err != nil {
		return false, mapErr("mark worker online", err)
	}
	return tag.RowsAffected() > 0, nil
}

// WorkerAppIDs returns the ids of the apps a worker may speak for (see
// AppOwnedByWorker): the apps placed on it and those holding a reservation
// there (a deploy in flight). The hub caches the set per connection.
func (s *Store) WorkerAppIDs(ctx context.Context, workerID int64) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id FROM apps WHERE worker_id = $1
		UNION
		SELECT app_id FROM app_reservations WHERE worker_id = $1`, workerID)
	if err != nil {
		return nil, mapErr("worker app ids", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, mapErr("worker app ids", err)
	}
	return ids, nil
}

// AppReport is what ReportAppStatus or ReportViolation did.
type AppReport struct {
	// App is the app after the report (before it, when nothing changed).
	App *App
	// Changed reports whether the app row changed.
	Changed bool
	// Ignored says why a report changed nothing, when it did not.
	Ignored string
	// Events are the outbox events written with the change.
	Events []event.Event
}

// lockReportedApp locks the app a worker reports on and checks the worker
// may speak for it: placed there (placed=true), or holding a reservation
// there (a job in flight; placed=false). Anything else is ErrNotFound.
func lockReportedApp(ctx context.Context, tx pgx.Tx, op string, workerID, appID int64) (app *App, placed bool, err error) {
	app, err = scanApp(tx.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE id = $1 FOR NO KEY UPDATE`, appID))
	if err != nil {
		return nil, false, mapErr(op, err)
	}
	if app.WorkerID != nil && *app.WorkerID == workerID {
		return app, true, nil
	}
	var reserved bool
	err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM app_reservations WHERE app_id = $1 AND worker_id = $2)`,
		appID, workerID).Scan(&reserved)
	if err != nil {
		return nil, false, mapErr(op, err)
	}
	if !reserved {
		return nil, false, fmt.Errorf("store: %s: app %d is not on worker %d: %w", op, appID, workerID, ErrNotFound)
	}
	return app, false, nil
}

// ReportAppStatus applies a worker's report that an app it runs changed
// state (wsproto.AppStatus), in one transaction:
//
//   - stopped: the app stops (status stopped, no worker), its capacity is
//     released as for a successful stop job, and app.stopped goes to the
//     outbox;
//   - crashloop: status crashloop with the restart count; app.crashloop on
//     entering it (not on every repeated report);
//   - exited: status exited with the restart count (the worker keeps its
//     slot, so capacity stays reserved until a stop or delete);
//   - running: a crashlooping or exited app is running again.
//
// While a job for the app is in flight (assigned or processing), its result
// decides the app's state and reports are ignored, as they are for a deleted
// app, for an app only reserved on the worker (a deploy in flight) and for
// transitions that do not apply (a stopped app reported running). An app
// that is not the worker's is ErrNotFound; an unknown status ErrInvalid.
func (s *Store) ReportAppStatus(ctx context.Context, workerID, appID int64, status string, restartCount int64, message string) (*AppReport, error) {
	switch status {
	case AppRunning, AppStopped, AppExited, AppCrashloop:
	default:
		return nil, fmt.Errorf("store: report app status: %q is not running, stopped, exited or crashloop: %w", status, ErrInvalid)
	}
	restartCount = max(0, min(restartCount, 1<<31-1))
	var rep AppReport
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		app, placed, err := lockReportedApp(ctx, tx, "report app status", workerID, appID)
		if err != nil {
			return err
		}
		rep.App = app
		if ign := reportIgnored(app, placed); ign != "" {
			rep.Ignored = ign
			return nil
		}
		var busy bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM jobs WHERE app_id = $1 AND status IN ('assigned', 'processing'))`,
			appID).Scan(&busy); err != nil {
			return mapErr("report app status: jobs", err)
		}
		if busy {
			rep.Ignored = "a job for the app is in flight"
			return nil
		}
		from := app.Status
		var evType string
		switch {
		case status == AppStopped && isOneOf(from, AppRunning, AppExited, AppCrashloop, AppViolated):
			if err := ReleaseApp(ctx, tx, appID); err != nil {
				return err
			}
			app, err = scanApp(tx.QueryRow(ctx, `UPDATE apps SET status = 'stopped', worker_id = NULL, updated_at = now()
				WHERE id = $1 RETURNING `+appColumns, appID))
			evType = event.AppStopped
		case status == AppCrashloop && isOneOf(from, AppRunning, AppExited, AppCrashloop):
			if from == AppCrashloop && app.RestartCount == restartCount {
				rep.Ignored = "no change"
				return nil
			}
			app, err = scanApp(tx.QueryRow(ctx, `UPDATE apps SET status = 'crashloop', restart_count = $2, updated_at = now()
				WHERE id = $1 RETURNING `+appColumns, appID, restartCount))
			if from != AppCrashloop {
				evType = event.AppCrashloop
			}
		case (status == AppExited && isOneOf(from, AppRunning, AppCrashloop)) ||
			(status == AppRunning && isOneOf(from, AppCrashloop, AppExited)):
			app, err = scanApp(tx.QueryRow(ctx, `UPDATE apps SET status = $2, restart_count = $3, updated_at = now()
				WHERE id = $1 RETURNING `+appColumns, appID, status, restartCount))
		default:
			rep.Ignored = fmt.Sprintf("%s does not apply to an app that is %s", status, from)
			return nil
		}
		if err != nil {
			return mapErr("report app status", err)
		}
		rep.App, rep.Changed = app, true
		if status == AppRunning && from == AppCrashloop {
			// Back up after a crash loop (no event: the app simply runs).
			if err := resolveEventAlerts(ctx, tx, app.UserID, app.ID, AlertCrashloop); err != nil {
				return err
			}
		}
		if evType != "" {
			rep.Events = []event.Event{{Type: evType, UserID: app.UserID, AppID: app.ID, Data: appEventData(event.AppData{
				AppName: app.Name, Subdomain: app.Subdomain, Reason: message, RestartCount: int(restartCount)})}}
		}
		return EmitEvents(ctx, tx, rep.Events)
	})
	if err != nil {
		return nil, err
	}
	return &rep, nil
}

// ReportViolation records that an app broke one of its limits, as the
// worker that runs it reports: status violated with the reason, and
// app.violation in the outbox, in one transaction. A repeated identical
// report changes nothing and emits nothing; a deleted app is ignored. An
// app that is not the worker's is ErrNotFound.
func (s *Store) ReportViolation(ctx context.Context, workerID, appID int64, reason string) (*AppReport, error) {
	var rep AppReport
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		app, _, err := lockReportedApp(ctx, tx, "report violation", workerID, appID)
		if err != nil {
			return err
		}
		rep.App = app
		switch {
		case app.DeletedAt != nil:
			rep.Ignored = "the app is deleted"
			return nil
		case app.Status == AppViolated && app.ViolationReason == reason:
			rep.Ignored = "no change"
			return nil
		}
		app, err = scanApp(tx.QueryRow(ctx, `UPDATE apps SET status = 'violated', violation_reason = $2, updated_at = now()
			WHERE id = $1 RETURNING `+appColumns, appID, reason))
		if err != nil {
			return mapErr("report violation", err)
		}
		rep.App, rep.Changed = app, true
		rep.Events = []event.Event{{Type: event.AppViolation, UserID: app.UserID, AppID: app.ID, Data: appEventData(event.AppData{
			AppName: app.Name, Subdomain: app.Subdomain, Reason: reason})}}
		return EmitEvents(ctx, tx, rep.Events)
	})
	if err != nil {
		return nil, err
	}
	return &rep, nil
}

// reportIgnored says why a status report about app changes nothing, or "".
func reportIgnored(app *App, placed bool) string {
	switch {
	case app.DeletedAt != nil:
		return "the app is deleted"
	case !placed:
		return "the app is only reserved on the worker (a deploy is in flight)"
	}
	return ""
}

func isOneOf(s string, set ...string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

// WorkerStats aggregates the fleet (GET /v1/stats).
type WorkerStats struct {
	Total    int64 `json:"total_workers"`
	Online   int64 `json:"online_workers"`
	Offline  int64 `json:"offline_workers"`
	Draining int64 `json:"draining_workers"`
	// CapacityCPU (millicores) and CapacityMemory (bytes) sum every
	// worker's capacity; UsedCPU and UsedMemory what apps reserve on them.
	CapacityCPU    int64 `json:"capacity_cpu"`
	CapacityMemory int64 `json:"capacity_memory"`
	UsedCPU        int64 `json:"used_cpu"`
	UsedMemory     int64 `json:"used_memory"`
}

// FleetStats returns the worker counts by status and the capacity totals,
// in one statement.
func (s *Store) FleetStats(ctx context.Context) (*WorkerStats, error) {
	var st WorkerStats
	err := s.pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE status = 'online'), count(*) FILTER (WHERE status = 'offline'),
			count(*) FILTER (WHERE status = 'draining'),
			coalesce(sum(capacity_cpu), 0)::bigint, coalesce(sum(capacity_memory), 0)::bigint,
			coalesce(sum(used_cpu), 0)::bigint, coalesce(sum(used_memory), 0)::bigint
		FROM workers`).Scan(&st.Total, &st.Online, &st.Offline, &st.Draining,
		&st.CapacityCPU, &st.CapacityMemory, &st.UsedCPU, &st.UsedMemory)
	if err != nil {
		return nil, mapErr("fleet stats", err)
	}
	return &st, nil
}
