package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/sdk/event"
)

// Job types and statuses.
const (
	JobDeploy  = "deploy"
	JobRestart = "restart"
	JobStart   = "start"
	JobStop    = "stop"
	JobDelete  = "delete"

	JobPending    = "pending"
	JobAssigned   = "assigned"
	JobProcessing = "processing"
	JobCompleted  = "completed"
	JobFailed     = "failed"
	JobCancelled  = "cancelled"
)

// Job is a unit of work for a worker. Payload is the decrypted JSON the
// worker receives (the deploy spec); it is encrypted at rest.
type Job struct {
	ID           int64           `json:"id"`
	Type         string          `json:"type"`
	AppID        int64           `json:"app_id"`
	DeploymentID *int64          `json:"deployment_id,omitempty"`
	WorkerID     *int64          `json:"worker_id,omitempty"`
	Pinned       bool            `json:"pinned"`
	Status       string          `json:"status"`
	Priority     int64           `json:"priority"`
	CPU          int64           `json:"cpu"`
	Memory       int64           `json:"memory"`
	Runtime      string          `json:"runtime"`
	Zone         string          `json:"zone,omitempty"`
	Payload      json.RawMessage `json:"-"`
	Message      string          `json:"message,omitempty"`
	Progress     int64           `json:"progress"`
	Result       json.RawMessage `json:"result,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	AssignedAt   *time.Time      `json:"assigned_at,omitempty"`
	StartedAt    *time.Time      `json:"started_at,omitempty"`
	CompletedAt  *time.Time      `json:"completed_at,omitempty"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

const jobColumns = `id, type, app_id, deployment_id, worker_id, pinned, status, priority, cpu, memory,
	runtime, zone, payload, message, progress, result, created_at, assigned_at, started_at,
	completed_at, updated_at`

// scanJob reads a row selected with jobColumns and decrypts the payload.
func (s *Store) scanJob(row pgx.Row) (*Job, error) {
	var j Job
	var payload string
	var result []byte
	err := row.Scan(&j.ID, &j.Type, &j.AppID, &j.DeploymentID, &j.WorkerID, &j.Pinned, &j.Status, &j.Priority,
		&j.CPU, &j.Memory, &j.Runtime, &j.Zone, &payload, &j.Message, &j.Progress, &result, &j.CreatedAt,
		&j.AssignedAt, &j.StartedAt, &j.CompletedAt, &j.UpdatedAt)
	if err != nil {
		return nil, err
	}
	if len(result) > 0 {
		j.Result = result
	}
	if payload != "" {
		plain, err := s.cipher.Decrypt(payload)
		if err != nil {
			return nil, fmt.Errorf("decrypt payload of job %d: %w", j.ID, err)
		}
		j.Payload = json.RawMessage(plain)
	}
	return &j, nil
}

// NewJob describes a job to create.
type NewJob struct {
	Type  string
	AppID int64
	// DeploymentID links deploy/restart jobs to their deployment row.
	DeploymentID *int64
	// WorkerID pins the job: it is created assigned to that worker (with the
	// app's capacity reserved there) and never goes through placement.
	WorkerID *int64
	Priority int64
	// CPU (millicores) and Memory (bytes) are the app's plan limits.
	CPU, Memory int64
	Runtime     string // exec (default) or podman
	Zone        string // "" = any
	// Payload is the JSON the worker receives; it is stored encrypted.
	Payload json.RawMessage
}

// needsCapacity reports whether a job of this type makes the app run.
func needsCapacity(jobType string) bool {
	return jobType == JobDeploy || jobType == JobRestart || jobType == JobStart
}

func (s *Store) createJob(ctx context.Context, tx pgx.Tx, nj NewJob) (*Job, error) {
	var payload string
	if len(nj.Payload) > 0 {
		if !json.Valid(nj.Payload) {
			return nil, fmt.Errorf("store: create job: payload is not valid JSON: %w", ErrInvalid)
		}
		enc, err := s.cipher.Encrypt(string(nj.Payload))
		if err != nil {
			return nil, fmt.Errorf("store: create job: encrypt payload: %w", err)
		}
		payload = enc
	}
	runtime := nj.Runtime
	if runtime == "" {
		runtime = "exec"
	}
	status, pinned := JobPending, nj.WorkerID != nil
	if !pinned && !needsCapacity(nj.Type) {
		return nil, fmt.Errorf("store: create job: a %s job must be pinned to the worker that runs the app: %w", nj.Type, ErrInvalid)
	}
	if pinned {
		status = JobAssigned
		if needsCapacity(nj.Type) {
			if err := ReserveApp(ctx, tx, nj.AppID, *nj.WorkerID, nj.CPU, nj.Memory); err != nil {
				return nil, err
			}
		}
	}
	j, err := s.scanJob(tx.QueryRow(ctx, `
		INSERT INTO jobs (type, app_id, deployment_id, worker_id, pinned, status, priority, cpu, memory,
			runtime, zone, payload, assigned_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, CASE WHEN $5 THEN now() END)
		RETURNING `+jobColumns,
		nj.Type, nj.AppID, nj.DeploymentID, nj.WorkerID, pinned, status, nj.Priority, nj.CPU, nj.Memory,
		runtime, nj.Zone, payload))
	if err != nil {
		return nil, mapErr("create job", err)
	}
	return j, nil
}

// CreateJob inserts a job in the caller's transaction. An app has at most
// one active (pending, assigned or processing) job: another is ErrConflict
// (constraint jobs_one_active_per_app).
func (s *Store) CreateJob(ctx context.Context, tx pgx.Tx, nj NewJob) (*Job, error) {
	return s.createJob(ctx, tx, nj)
}

// CreatePinnedJob creates a job already assigned to a worker and sets the
// app's status, in one transaction. Deploy/restart/start jobs reserve the
// app's capacity on that worker (ErrCapacity when it has none left).
func (s *Store) CreatePinnedJob(ctx context.Context, jobType string, appID, workerID int64, cpu, memory int64,
	payload json.RawMessage, appStatus string) (*Job, error) {
	var j *Job
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		j, err = s.createJob(ctx, tx, NewJob{Type: jobType, AppID: appID, WorkerID: &workerID,
			CPU: cpu, Memory: memory, Payload: payload})
		if err != nil {
			return err
		}
		if appStatus != "" {
			_, err = tx.Exec(ctx, `UPDATE apps SET status = $2, updated_at = now() WHERE id = $1`, appID, appStatus)
			return mapErr("create pinned job: app status", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return j, nil
}

// DeploySpec is everything a first deployment creates at once.
type DeploySpec struct {
	App        NewApp
	Env        map[string]string
	Deployment NewDeployment
	// Job describes the deploy job; its Type and AppID are filled in.
	Job NewJob
}

// Deployed is what a deployment transaction created.
type Deployed struct {
	App        *App
	Deployment *Deployment
	Job        *Job
}

// CreateDeploymentWithSpec creates the app (name unique per user, subdomain
// unique), its env vars, a deployment and its encrypted deploy job in one
// transaction: either all exist afterwards or none.
func (s *Store) CreateDeploymentWithSpec(ctx context.Context, spec DeploySpec) (*Deployed, error) {
	var out Deployed
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		app, err := createApp(ctx, tx, spec.App)
		if err != nil {
			return err
		}
		if err := s.setEnvVars(ctx, tx, app.ID, spec.Env); err != nil {
			return err
		}
		res, err := s.deploy(ctx, tx, app, JobDeploy, spec.Deployment, spec.Job)
		if err != nil {
			return err
		}
		out = *res
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateDeployment deploys an existing app: a deployment and a deploy job
// (placed by the scheduler unless nj.WorkerID pins it); the app goes to
// deploying.
func (s *Store) CreateDeployment(ctx context.Context, appID int64, nd NewDeployment, nj NewJob) (*Deployed, error) {
	return s.deployExisting(ctx, appID, JobDeploy, nd, nj)
}

// CreateRedeployment restarts an app on a worker at a commit: a deployment
// (commit metadata stored up front so failure paths carry the right git
// identity) and a restart job pinned to workerID; the app goes to deploying.
func (s *Store) CreateRedeployment(ctx context.Context, appID, workerID int64, nd NewDeployment, nj NewJob) (*Deployed, error) {
	nj.WorkerID = &workerID
	if nd.Trigger == "" {
		nd.Trigger = "restart"
	}
	return s.deployExisting(ctx, appID, JobRestart, nd, nj)
}

func (s *Store) deployExisting(ctx context.Context, appID int64, jobType string, nd NewDeployment, nj NewJob) (*Deployed, error) {
	var out *Deployed
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		app, err := scanApp(tx.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE`, appID))
		if err != nil {
			return mapErr("deploy: find app", err)
		}
		out, err = s.deploy(ctx, tx, app, jobType, nd, nj)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) deploy(ctx context.Context, tx pgx.Tx, app *App, jobType string, nd NewDeployment, nj NewJob) (*Deployed, error) {
	d, err := createDeployment(ctx, tx, app.ID, nj.WorkerID, nd)
	if err != nil {
		return nil, err
	}
	nj.Type, nj.AppID, nj.DeploymentID = jobType, app.ID, &d.ID
	if nj.Runtime == "" {
		nj.Runtime = app.Runtime
	}
	j, err := s.createJob(ctx, tx, nj)
	if err != nil {
		return nil, err
	}
	app, err = scanApp(tx.QueryRow(ctx, `UPDATE apps SET status = 'deploying', updated_at = now()
		WHERE id = $1 RETURNING `+appColumns, app.ID))
	if err != nil {
		return nil, mapErr("deploy: app status", err)
	}
	return &Deployed{App: app, Deployment: d, Job: j}, nil
}

// AssignedJobs returns those of the given jobs that are still assigned
// to the worker a placement named, with one query for the batch: what a
// core pushes after a scheduling pass. Jobs already started, finished or
// moved are left out.
func (s *Store) AssignedJobs(ctx context.Context, placed []AssignedJob) ([]*Job, error) {
	if len(placed) == 0 {
		return nil, nil
	}
	ids, workers := make([]int64, len(placed)), make([]int64, len(placed))
	for i, p := range placed {
		ids[i], workers[i] = p.JobID, p.WorkerID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE (id, worker_id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))
		  AND status = 'assigned'
		ORDER BY created_at, id`, ids, workers)
	if err != nil {
		return nil, mapErr("assigned jobs", err)
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		j, err := s.scanJob(rows)
		if err != nil {
			return nil, mapErr("assigned jobs", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("assigned jobs", err)
	}
	return out, nil
}

// FindJob returns a job by id.
func (s *Store) FindJob(ctx context.Context, jobID int64) (*Job, error) {
	j, err := s.scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, jobID))
	if err != nil {
		return nil, mapErr("find job", err)
	}
	return j, nil
}

// NextAssignedJob returns the worker's oldest job waiting to be started, or
// ErrNotFound when there is none.
func (s *Store) NextAssignedJob(ctx context.Context, workerID int64) (*Job, error) {
	j, err := s.scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE worker_id = $1 AND status = 'assigned' ORDER BY created_at, id LIMIT 1`, workerID))
	if err != nil {
		return nil, mapErr("next assigned job", err)
	}
	return j, nil
}

// FindActiveJobForApp returns the app's most recent pending, assigned or
// processing job, or ErrNotFound.
func (s *Store) FindActiveJobForApp(ctx context.Context, appID int64) (*Job, error) {
	j, err := s.scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE app_id = $1 AND status IN ('pending', 'assigned', 'processing')
		ORDER BY created_at DESC, id DESC LIMIT 1`, appID))
	if err != nil {
		return nil, mapErr("find active job", err)
	}
	return j, nil
}

// UpdateJobStatus records a worker's progress on its own job: status is
// processing (the first time stamps started_at and moves the deployment to
// building), message and progress are informational. A job that is not the
// worker's, or already finished, is ErrNotFound.
func (s *Store) UpdateJobStatus(ctx context.Context, jobID, workerID int64, status, message string, progress int64) error {
	if status != JobProcessing && status != JobAssigned {
		return fmt.Errorf("store: update job status: %q is not a progress status (use CompleteJob): %w", status, ErrInvalid)
	}
	progress = max(0, min(progress, 100))
	return s.InTx(ctx, func(tx pgx.Tx) error {
		var depID *int64
		err := tx.QueryRow(ctx, `
			UPDATE jobs SET status = $3, message = $4, progress = $5, updated_at = now(),
				started_at = CASE WHEN $3 = 'processing' AND started_at IS NULL THEN now() ELSE started_at END
			WHERE id = $1 AND worker_id = $2 AND status IN ('assigned', 'processing')
			RETURNING deployment_id`, jobID, workerID, status, message, progress).Scan(&depID)
		if err != nil {
			return mapErr("update job status", err)
		}
		if depID != nil && status == JobProcessing {
			_, err = tx.Exec(ctx, `UPDATE deployments SET status = 'building', worker_id = $2,
				started_at = coalesce(started_at, now()) WHERE id = $1 AND status = 'pending'`, *depID, workerID)
			return mapErr("update job status: deployment", err)
		}
		return nil
	})
}

// Outcome is what a worker reports when it finishes a job.
type Outcome struct {
	// Success is true for a completed job, false for a failed one.
	Success bool
	// Message is a short human-readable summary; Error the failure reason.
	Message, Error string
	// Port and ContainerID describe the running app (deploy/restart/start).
	Port        int64
	ContainerID string
	// CommitSHA and CommitMessage are what the worker actually built.
	CommitSHA, CommitMessage string
	// Result is stored verbatim on the job (JSON object), may be nil.
	Result json.RawMessage
}

// Completion is what CompleteJob changed.
type Completion struct {
	Job        *Job
	App        *App
	Deployment *Deployment // nil when the job has none
	Events     []event.Event
	// FollowUp is a delete job created because the app was deleted while
	// this job ran and still has something on a worker; push it after commit.
	FollowUp *Job
}

// CompleteJob finishes a worker's job in one transaction: the job, the app's
// status, the deployment's fields, the app's capacity reservation (settled:
// kept and placed on the worker when the app now runs there, released when
// the deploy failed or the app stopped), and the deployment event in the
// outbox. A job that is not the worker's or not in flight is ErrNotFound, so
// a repeated result changes nothing.
func (s *Store) CompleteJob(ctx context.Context, jobID, workerID int64, out Outcome) (*Completion, error) {
	var c Completion
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		status := JobFailed
		if out.Success {
			status = JobCompleted
		}
		msg := out.Message
		if msg == "" {
			msg = out.Error
		}
		var result any
		if len(out.Result) > 0 {
			if !json.Valid(out.Result) {
				return fmt.Errorf("store: complete job: result is not valid JSON: %w", ErrInvalid)
			}
			result = string(out.Result)
		}
		j, err := s.scanJob(tx.QueryRow(ctx, `
			UPDATE jobs SET status = $3, message = $4, result = $5::jsonb, completed_at = now(), updated_at = now(),
				progress = CASE WHEN $3 = 'completed' THEN 100 ELSE progress END
			WHERE id = $1 AND worker_id = $2 AND status IN ('assigned', 'processing')
			RETURNING `+jobColumns, jobID, workerID, status, msg, result))
		if err != nil {
			return mapErr("complete job", err)
		}
		c.Job = j
		w := *j.WorkerID
		app, err := scanApp(tx.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE id = $1 FOR NO KEY UPDATE`, j.AppID))
		if err != nil {
			return mapErr("complete job: app", err)
		}
		if err := settleApp(ctx, tx, j, app, out); err != nil {
			return err
		}
		if c.App, err = scanApp(tx.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE id = $1`, j.AppID)); err != nil {
			return mapErr("complete job: reload app", err)
		}
		if j.DeploymentID != nil {
			depStatus := DeploymentFailed
			if out.Success {
				depStatus = DeploymentSucceeded
			}
			c.Deployment, err = scanDeployment(tx.QueryRow(ctx, `
				UPDATE deployments SET status = $2, error = $3, worker_id = $4, finished_at = now(),
					started_at = coalesce(started_at, now()),
					commit_sha = CASE WHEN $5 <> '' THEN $5 ELSE commit_sha END,
					commit_message = CASE WHEN $6 <> '' THEN $6 ELSE commit_message END
				WHERE id = $1 RETURNING `+deploymentColumns,
				*j.DeploymentID, depStatus, out.Error, workerID, out.CommitSHA, out.CommitMessage))
			if err != nil {
				return mapErr("complete job: deployment", err)
			}
		}
		if app.Status == AppDeleted {
			// Deleted while the job ran: tell the worker that has it to remove it.
			if j.Type != JobDelete {
				target := w
				if c.App.WorkerID != nil {
					target = *c.App.WorkerID
				}
				if c.FollowUp, err = s.createJob(ctx, tx, NewJob{Type: JobDelete, AppID: app.ID, WorkerID: &target}); err != nil {
					return err
				}
			}
			return nil // no deployment or app events for a deleted app
		}
		c.Events = jobEvents(j, c.App, c.Deployment, out)
		return EmitEvents(ctx, tx, c.Events)
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// settleApp applies a finished job to the app's status and reservations,
// by job type and outcome first (a deleted app settles the same way, keeping
// its "deleted" status, so capacity follows what actually runs).
func settleApp(ctx context.Context, tx pgx.Tx, j *Job, app *App, out Outcome) error {
	w := *j.WorkerID
	deleted := app.Status == AppDeleted
	keep := func(status string) string {
		if deleted {
			return AppDeleted
		}
		return status
	}
	switch {
	case needsCapacity(j.Type) && out.Success:
		if err := PlaceApp(ctx, tx, app.ID, w, j.CPU, j.Memory); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE apps SET status = $2, port = $3, container_id = $4,
			restart_count = 0, violation_reason = '',
			commit_sha = CASE WHEN $5 <> '' THEN $5 ELSE commit_sha END, updated_at = now()
			WHERE id = $1`, app.ID, keep(AppRunning), out.Port, out.ContainerID, out.CommitSHA)
		return mapErr("settle app: running", err)
	case needsCapacity(j.Type):
		// Failed. A worker replaces a release only once the new one runs,
		// so a failed restart (the redeploy of a running app, pinned to
		// its worker) leaves the previous release running there, holding
		// its reservation.
		if j.Type == JobRestart && app.WorkerID != nil && *app.WorkerID == w && app.ContainerID != "" {
			_, err := tx.Exec(ctx, `UPDATE apps SET status = $2, updated_at = now() WHERE id = $1`, app.ID, keep(AppRunning))
			return mapErr("settle app: keep the previous release", err)
		}
		// Otherwise drop the reservation this job made. If the app still
		// runs on its previous worker, it keeps running (and holding) there.
		if err := ReleaseAppOn(ctx, tx, app.ID, w); err != nil {
			return err
		}
		if app.WorkerID != nil && *app.WorkerID != w {
			_, err := tx.Exec(ctx, `UPDATE apps SET status = $2, updated_at = now() WHERE id = $1`, app.ID, keep(AppRunning))
			return mapErr("settle app: keep running", err)
		}
		_, err := tx.Exec(ctx, `UPDATE apps SET status = $2, worker_id = NULL, updated_at = now() WHERE id = $1`,
			app.ID, keep(AppFailed))
		return mapErr("settle app: failed", err)
	case (j.Type == JobStop || j.Type == JobDelete) && out.Success:
		// One active job per app: nothing else is in flight, so the app holds
		// capacity only where it ran.
		if err := ReleaseApp(ctx, tx, app.ID); err != nil {
			return err
		}
		status := keep(AppStopped)
		if j.Type == JobDelete {
			status = app.Status
		}
		_, err := tx.Exec(ctx, `UPDATE apps SET status = $2, worker_id = NULL, updated_at = now() WHERE id = $1`,
			app.ID, status)
		return mapErr("settle app: stopped", err)
	}
	// A failed stop or delete leaves the app, and its capacity, as they were:
	// whatever ran there may still run.
	return nil
}

// jobEvents returns the events a finished job causes: deployment.succeeded
// or deployment.failed for deploy and restart jobs (as the seed), and
// app.stopped for a successful stop.
func jobEvents(j *Job, app *App, d *Deployment, out Outcome) []event.Event {
	data := event.AppData{AppName: app.Name, Subdomain: app.Subdomain, Error: out.Error}
	if d != nil {
		data.DeploymentID, data.CommitSHA, data.CommitMessage, data.Branch = d.ID, d.CommitSHA, d.CommitMessage, d.Branch
	}
	var typ string
	switch {
	case (j.Type == JobDeploy || j.Type == JobRestart) && out.Success:
		typ = event.DeploymentSucceeded
	case j.Type == JobDeploy || j.Type == JobRestart:
		typ = event.DeploymentFailed
	case j.Type == JobStop && out.Success:
		typ = event.AppStopped
	default:
		return nil
	}
	return []event.Event{{Type: typ, UserID: app.UserID, AppID: app.ID, Data: appEventData(data)}}
}
