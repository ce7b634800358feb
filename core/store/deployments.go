package store

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Deployment statuses.
const (
	DeploymentPending   = "pending"
	DeploymentBuilding  = "building"
	DeploymentSucceeded = "succeeded"
	DeploymentFailed    = "failed"
	DeploymentCancelled = "cancelled"
)

// Deployment is one attempt to build and run an app at a commit.
type Deployment struct {
	ID            int64      `json:"id"`
	AppID         int64      `json:"app_id"`
	WorkerID      *int64     `json:"worker_id,omitempty"`
	Status        string     `json:"status"`
	Trigger       string     `json:"trigger"`
	CommitSHA     string     `json:"commit_sha"`
	CommitMessage string     `json:"commit_message"`
	Branch        string     `json:"branch"`
	BuildLogs     string     `json:"build_logs,omitempty"`
	Error         string     `json:"error,omitempty"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

// deploymentColumns leaves out build_logs, which can be large; FindDeployment
// and LatestBuildLogs read it.
const deploymentColumns = `id, app_id, worker_id, status, trigger, commit_sha, commit_message, branch,
	'' AS build_logs, error, started_at, finished_at, created_at`

func scanDeployment(row pgx.Row) (*Deployment, error) {
	var d Deployment
	err := row.Scan(&d.ID, &d.AppID, &d.WorkerID, &d.Status, &d.Trigger, &d.CommitSHA, &d.CommitMessage,
		&d.Branch, &d.BuildLogs, &d.Error, &d.StartedAt, &d.FinishedAt, &d.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func collectDeployments(rows pgx.Rows, err error) ([]*Deployment, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Deployment, error) { return scanDeployment(r) })
}

// NewDeployment describes the git identity and origin of a deployment.
type NewDeployment struct {
	// Trigger is manual (default), push, api or restart.
	Trigger       string
	CommitSHA     string
	CommitMessage string
	Branch        string
}

func createDeployment(ctx context.Context, tx pgx.Tx, appID int64, workerID *int64, nd NewDeployment) (*Deployment, error) {
	trigger := nd.Trigger
	if trigger == "" {
		trigger = "manual"
	}
	d, err := scanDeployment(tx.QueryRow(ctx, `
		INSERT INTO deployments (app_id, worker_id, trigger, commit_sha, commit_message, branch)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+deploymentColumns,
		appID, workerID, trigger, nd.CommitSHA, nd.CommitMessage, nd.Branch))
	if err != nil {
		return nil, mapErr("create deployment", err)
	}
	return d, nil
}

// FindDeployment returns the deployment with its build logs, or ErrNotFound.
func (s *Store) FindDeployment(ctx context.Context, id int64) (*Deployment, error) {
	d, err := scanDeployment(s.pool.QueryRow(ctx, `
		SELECT id, app_id, worker_id, status, trigger, commit_sha, commit_message, branch, build_logs,
			error, started_at, finished_at, created_at FROM deployments WHERE id = $1`, id))
	if err != nil {
		return nil, mapErr("find deployment", err)
	}
	return d, nil
}

// ListDeployments returns the app's deployments, newest first (without logs).
func (s *Store) ListDeployments(ctx context.Context, appID int64, limit int) ([]*Deployment, error) {
	ds, err := collectDeployments(s.pool.Query(ctx, `SELECT `+deploymentColumns+` FROM deployments
		WHERE app_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, appID, clampLimit(limit)))
	if err != nil {
		return nil, mapErr("list deployments", err)
	}
	return ds, nil
}

// UserDeployment is a deployment with the name of its app.
type UserDeployment struct {
	Deployment
	AppName string `json:"app_name"`
}

// ListRecentUserDeployments returns the user's latest deployments across live apps.
func (s *Store) ListRecentUserDeployments(ctx context.Context, userID int64, limit int) ([]*UserDeployment, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT d.id, d.app_id, d.worker_id, d.status, d.trigger, d.commit_sha, d.commit_message, d.branch,
			'', d.error, d.started_at, d.finished_at, d.created_at, a.name
		FROM deployments d JOIN apps a ON a.id = d.app_id
		WHERE a.user_id = $1 AND a.deleted_at IS NULL
		ORDER BY d.created_at DESC, d.id DESC LIMIT $2`, userID, clampLimit(limit))
	if err != nil {
		return nil, mapErr("list recent deployments", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*UserDeployment, error) {
		var u UserDeployment
		d := &u.Deployment
		err := r.Scan(&d.ID, &d.AppID, &d.WorkerID, &d.Status, &d.Trigger, &d.CommitSHA, &d.CommitMessage,
			&d.Branch, &d.BuildLogs, &d.Error, &d.StartedAt, &d.FinishedAt, &d.CreatedAt, &u.AppName)
		return &u, err
	})
	if err != nil {
		return nil, mapErr("list recent deployments", err)
	}
	return out, nil
}

// LatestBuildLogs returns the build logs of the app's most recent deployment.
func (s *Store) LatestBuildLogs(ctx context.Context, appID int64) (string, error) {
	var logs string
	err := s.pool.QueryRow(ctx, `SELECT build_logs FROM deployments WHERE app_id = $1
		ORDER BY created_at DESC, id DESC LIMIT 1`, appID).Scan(&logs)
	if err != nil {
		return "", mapErr("latest build logs", err)
	}
	return logs, nil
}

// SetDeploymentBuildLogs stores build logs sent by a worker. The worker must
// hold a job for that deployment; NUL bytes are stripped (Postgres text
// cannot hold them). Capping is the caller's job.
func (s *Store) SetDeploymentBuildLogs(ctx context.Context, deploymentID, workerID int64, logs string) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE deployments d SET build_logs = $3
		WHERE d.id = $1 AND EXISTS (SELECT 1 FROM jobs j WHERE j.deployment_id = d.id AND j.worker_id = $2)`,
		deploymentID, workerID, strings.ReplaceAll(logs, "\x00", ""))
	if err != nil {
		return mapErr("set build logs", err)
	}
	if tag.RowsAffected() == 0 {
		return mapErr("set build logs", pgx.ErrNoRows)
	}
	return nil
}

// clampLimit keeps list sizes within 1..500 (default 50).
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 500:
		return 500
	}
	return n
}
