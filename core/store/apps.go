package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// App statuses.
const (
	AppCreated   = "created"
	AppDeploying = "deploying"
	AppRunning   = "running"
	AppStopped   = "stopped"
	AppExited    = "exited"
	AppCrashloop = "crashloop"
	AppFailed    = "failed"
	AppViolated  = "violated"
	AppDeleted   = "deleted"
)

// App is a user's application.
type App struct {
	ID              int64      `json:"id"`
	UUID            string     `json:"uuid"`
	UserID          int64      `json:"user_id"`
	Name            string     `json:"name"`
	Subdomain       string     `json:"subdomain"`
	Status          string     `json:"status"`
	Runtime         string     `json:"runtime"`
	GitRepo         string     `json:"git_repo"`
	GitBranch       string     `json:"git_branch"`
	BuildCommand    string     `json:"build_command"`
	RunCommand      string     `json:"run_command"`
	Dockerfile      string     `json:"dockerfile"`
	Port            int64      `json:"port"`
	WorkerID        *int64     `json:"worker_id,omitempty"`
	ContainerID     string     `json:"container_id"`
	RestartCount    int64      `json:"restart_count"`
	ViolationReason string     `json:"violation_reason,omitempty"`
	CommitSHA       string     `json:"commit_sha"`
	AutoDeploy      bool       `json:"auto_deploy"`
	WebhookID       string     `json:"-"`
	DeletedAt       *time.Time `json:"deleted_at,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

const appColumns = `id, uuid::text, user_id, name, subdomain, status, runtime, git_repo, git_branch,
	build_command, run_command, dockerfile, port, worker_id, container_id, restart_count,
	violation_reason, commit_sha, auto_deploy, webhook_id, deleted_at, created_at, updated_at`

// scanApp reads one row selected with appColumns.
func scanApp(row pgx.Row) (*App, error) {
	var a App
	err := row.Scan(&a.ID, &a.UUID, &a.UserID, &a.Name, &a.Subdomain, &a.Status, &a.Runtime, &a.GitRepo,
		&a.GitBranch, &a.BuildCommand, &a.RunCommand, &a.Dockerfile, &a.Port, &a.WorkerID, &a.ContainerID,
		&a.RestartCount, &a.ViolationReason, &a.CommitSHA, &a.AutoDeploy, &a.WebhookID, &a.DeletedAt,
		&a.CreatedAt, &a.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

func collectApps(rows pgx.Rows, err error) ([]*App, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*App, error) { return scanApp(r) })
}

// NewApp holds what CreateApp needs. Name rules beyond the database's
// (reserved words, generated names) belong to the API layer.
type NewApp struct {
	// UUID is the app's UUID; empty: a fresh one.
	UUID         string
	UserID       int64
	Name         string
	Subdomain    string // defaults to Name
	Runtime      string // exec (default) or podman
	GitRepo      string
	GitBranch    string
	BuildCommand string
	RunCommand   string
	Dockerfile   string
	// MaxApps is the user's plan limit on live apps (0: unlimited): with
	// that many already, CreateApp fails with ErrQuota. Concurrent
	// creations for one user are serialised on the user's row, so the
	// limit holds under races.
	MaxApps int64
}

func createApp(ctx context.Context, q Querier, na NewApp) (*App, error) {
	sub := na.Subdomain
	if sub == "" {
		sub = na.Name
	}
	runtime := na.Runtime
	if runtime == "" {
		runtime = "exec"
	}
	id := na.UUID
	if id == "" {
		id = uuid.NewString()
	}
	kinds, thresholds, sustains := defaultRuleColumns()
	if na.MaxApps > 0 {
		// Lock the user first, in its own statement: the count below then
		// sees every app a concurrent creation committed meanwhile.
		var locked int64
		if err := q.QueryRow(ctx, `SELECT id FROM users WHERE id = $1 FOR UPDATE`, na.UserID).Scan(&locked); err != nil {
			return nil, mapErr("create app: lock the user", err)
		}
	}
	// The app and its default alert rules, in one statement; none when the
	// plan's limit is reached.
	a, err := scanApp(q.QueryRow(ctx, `
		WITH a AS (
			INSERT INTO apps (uuid, user_id, name, subdomain, runtime, git_repo, git_branch,
				build_command, run_command, dockerfile)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
			WHERE $14::bigint <= 0
			   OR (SELECT count(*) FROM apps WHERE user_id = $2 AND deleted_at IS NULL) < $14::bigint
			RETURNING *),
		r AS (
			INSERT INTO app_alert_rules (app_id, user_id, kind, enabled, threshold, sustain_minutes)
			SELECT a.id, a.user_id, d.kind, true, d.threshold, d.sustain
			FROM a CROSS JOIN unnest($11::text[], $12::float8[], $13::int[]) AS d(kind, threshold, sustain))
		SELECT `+appColumns+` FROM a`,
		id, na.UserID, na.Name, sub, runtime, na.GitRepo, na.GitBranch,
		na.BuildCommand, na.RunCommand, na.Dockerfile, kinds, thresholds, sustains, na.MaxApps))
	if errors.Is(err, pgx.ErrNoRows) && na.MaxApps > 0 {
		return nil, fmt.Errorf("store: create app: the plan allows %d apps: %w", na.MaxApps, ErrQuota)
	}
	if err != nil {
		return nil, mapErr("create app", err)
	}
	return a, nil
}

// CreateApp inserts an app with a fresh UUID and the DefaultAlertRules. A
// name already used by the same user, or a subdomain used by any live app,
// is ErrConflict; a user with NewApp.MaxApps live apps already gets
// ErrQuota.
func (s *Store) CreateApp(ctx context.Context, na NewApp) (*App, error) {
	if na.MaxApps <= 0 {
		return createApp(ctx, s.pool, na)
	}
	var a *App
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		a, err = createApp(ctx, tx, na)
		return err
	})
	return a, err
}

// FindAppByID returns the app (deleted ones included) or ErrNotFound.
func (s *Store) FindAppByID(ctx context.Context, id int64) (*App, error) {
	a, err := scanApp(s.pool.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE id = $1`, id))
	if err != nil {
		return nil, mapErr("find app", err)
	}
	return a, nil
}

// FindAppByUUID returns the live app with that UUID or ErrNotFound.
func (s *Store) FindAppByUUID(ctx context.Context, id string) (*App, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, mapErr("find app by uuid", pgx.ErrNoRows)
	}
	a, err := scanApp(s.pool.QueryRow(ctx,
		`SELECT `+appColumns+` FROM apps WHERE uuid = $1 AND deleted_at IS NULL`, id))
	if err != nil {
		return nil, mapErr("find app by uuid", err)
	}
	return a, nil
}

// FindAppByUserIDAndName returns the user's live app with that name or ErrNotFound.
func (s *Store) FindAppByUserIDAndName(ctx context.Context, userID int64, name string) (*App, error) {
	a, err := scanApp(s.pool.QueryRow(ctx,
		`SELECT `+appColumns+` FROM apps WHERE user_id = $1 AND name = $2 AND deleted_at IS NULL`, userID, name))
	if err != nil {
		return nil, mapErr("find app by name", err)
	}
	return a, nil
}

// ListUserApps returns the user's live apps, newest first.
func (s *Store) ListUserApps(ctx context.Context, userID int64) ([]*App, error) {
	apps, err := collectApps(s.pool.Query(ctx,
		`SELECT `+appColumns+` FROM apps WHERE user_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC`, userID))
	if err != nil {
		return nil, mapErr("list user apps", err)
	}
	return apps, nil
}

// CountUserApps counts the user's live apps (for the plan's max_apps).
func (s *Store) CountUserApps(ctx context.Context, userID int64) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM apps WHERE user_id = $1 AND deleted_at IS NULL`, userID).Scan(&n)
	if err != nil {
		return 0, mapErr("count user apps", err)
	}
	return n, nil
}

// ListAppsByWorker returns the live apps placed on the worker.
func (s *Store) ListAppsByWorker(ctx context.Context, workerID int64) ([]*App, error) {
	apps, err := collectApps(s.pool.Query(ctx,
		`SELECT `+appColumns+` FROM apps WHERE worker_id = $1 AND deleted_at IS NULL ORDER BY id`, workerID))
	if err != nil {
		return nil, mapErr("list apps by worker", err)
	}
	return apps, nil
}

// AppOwnedByWorker reports whether the app is placed on the worker, or is the
// subject of a job assigned to it (a deploy in flight): what a worker may
// speak for.
func (s *Store) AppOwnedByWorker(ctx context.Context, appID, workerID int64) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM apps WHERE id = $1 AND worker_id = $2)
		    OR EXISTS (SELECT 1 FROM app_reservations WHERE app_id = $1 AND worker_id = $2)`,
		appID, workerID).Scan(&ok)
	if err != nil {
		return false, mapErr("app owned by worker", err)
	}
	return ok, nil
}

func (s *Store) setAppFields(ctx context.Context, op, set string, args ...any) error {
	tag, err := s.pool.Exec(ctx, `UPDATE apps SET `+set+`, updated_at = now() WHERE id = $1 AND deleted_at IS NULL`, args...)
	if err != nil {
		return mapErr(op, err)
	}
	if tag.RowsAffected() == 0 {
		return mapErr(op, pgx.ErrNoRows)
	}
	return nil
}

// MarkAppViolated records a resource-limit violation reported by the worker.
func (s *Store) MarkAppViolated(ctx context.Context, appID int64, reason string) error {
	return s.setAppFields(ctx, "mark app violated", `status = 'violated', violation_reason = $2`, appID, reason)
}

// SetAppAutoDeploy toggles git push auto-deploy.
func (s *Store) SetAppAutoDeploy(ctx context.Context, appID int64, enabled bool) error {
	return s.setAppFields(ctx, "set app auto deploy", `auto_deploy = $2`, appID, enabled)
}

// SetAppWebhookID stores the id of the push webhook created at the git provider.
func (s *Store) SetAppWebhookID(ctx context.Context, appID int64, hookID string) error {
	return s.setAppFields(ctx, "set app webhook id", `webhook_id = $2`, appID, hookID)
}

// AppSpec is the part of an app a user may change between deploys.
type AppSpec struct {
	GitRepo, GitBranch, BuildCommand, RunCommand, Dockerfile, Runtime string
}

// UpdateAppSpec replaces the app's build/run spec; it takes effect on the next deploy.
func (s *Store) UpdateAppSpec(ctx context.Context, appID int64, spec AppSpec) error {
	runtime := spec.Runtime
	if runtime == "" {
		runtime = "exec"
	}
	return s.setAppFields(ctx, "update app spec",
		`git_repo = $2, git_branch = $3, build_command = $4, run_command = $5, dockerfile = $6, runtime = $7`,
		appID, spec.GitRepo, spec.GitBranch, spec.BuildCommand, spec.RunCommand, spec.Dockerfile, runtime)
}

// MarkAppDeleted soft-deletes the app: it disappears from lists and routes,
// frees its name and subdomain, and its pending job is cancelled. Capacity
// stays reserved until a worker confirms the app is gone: when the app runs
// or holds capacity somewhere and no job is in flight, a delete job pinned
// to that worker is created and returned (push it after commit; nil when
// nothing is needed). A job in flight finishes first and CompleteJob then
// creates the delete job.
func (s *Store) MarkAppDeleted(ctx context.Context, appID int64) (*Job, error) {
	return s.markAppDeleted(ctx, appID, false)
}

func (s *Store) markAppDeleted(ctx context.Context, appID int64, purge bool) (*Job, error) {
	var del *Job
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		app, err := scanApp(tx.QueryRow(ctx, `UPDATE apps SET status = 'deleted', deleted_at = now(), updated_at = now(),
			purge_requested = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING `+appColumns, appID, purge))
		if err != nil {
			return mapErr("mark app deleted", err)
		}
		if _, err = tx.Exec(ctx, `UPDATE jobs SET status = 'cancelled', completed_at = now(), updated_at = now(),
			message = 'app deleted' WHERE app_id = $1 AND status = 'pending'`, appID); err != nil {
			return mapErr("mark app deleted: cancel jobs", err)
		}
		var inFlight bool
		var target *int64
		err = tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM jobs WHERE app_id = $1 AND status IN ('assigned', 'processing')),
				coalesce($2, (SELECT min(worker_id) FROM app_reservations WHERE app_id = $1))`,
			appID, app.WorkerID).Scan(&inFlight, &target)
		if err != nil {
			return mapErr("mark app deleted: placement", err)
		}
		if inFlight || target == nil {
			return nil
		}
		del, err = s.createJob(ctx, tx, NewJob{Type: JobDelete, AppID: appID, WorkerID: target})
		return err
	})
	if err != nil {
		return nil, err
	}
	return del, nil
}

// HardDeleteApp removes the app row and everything that cascades from it
// (deployments, jobs, env vars, domains, …) and its runtime logs, in one
// transaction. It refuses (ErrConflict) while the app holds capacity on a
// worker or has any active job: something may still run there (delete it
// softly first and let the worker confirm), and a claimed job must not
// vanish under a scheduler.
func (s *Store) HardDeleteApp(ctx context.Context, appID int64) error {
	return s.InTx(ctx, func(tx pgx.Tx) error {
		var busy bool
		err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM app_reservations WHERE app_id = $1)
			    OR EXISTS (SELECT 1 FROM jobs WHERE app_id = $1 AND status IN ('pending', 'assigned', 'processing'))
			FROM apps WHERE id = $1 FOR UPDATE`, appID).Scan(&busy)
		if err != nil {
			return mapErr("hard delete app", err)
		}
		if busy {
			return fmt.Errorf("store: hard delete app %d: it still holds capacity or has an active job: %w", appID, ErrConflict)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM runtime_logs WHERE app_id = $1`, appID); err != nil {
			return mapErr("hard delete app: logs", err)
		}
		_, err = tx.Exec(ctx, `DELETE FROM apps WHERE id = $1`, appID)
		return mapErr("hard delete app", err)
	})
}
