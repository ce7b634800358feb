package scheduler

import (
	"context"
	"encoding/json"

	"github.com/wisehosting/wisehosting/core/store"
)

// Jobs is how the rest of the core (the apps API, the recovery paths)
// creates and finishes jobs: the store's transactions, plus, for a job
// created already assigned to a worker (a pinned job: restart on the app's
// worker, stop, delete), a push after its commit so a worker connected to
// this core gets it at once. Jobs created pending are placed by the loop,
// which their insert wakes. A worker connected elsewhere gets its jobs by
// replay.
type Jobs struct {
	Store  *store.Store
	Pusher Pusher
}

// Deploy creates a deployment of an existing app and its deploy job: pending
// for the loop to place, or pinned when nj.WorkerID is set.
func (j *Jobs) Deploy(ctx context.Context, appID int64, nd store.NewDeployment, nj store.NewJob) (*store.Deployed, error) {
	d, err := j.Store.CreateDeployment(ctx, appID, nd, nj)
	if err != nil {
		return nil, err
	}
	j.push(d.Job)
	return d, nil
}

// DeployNew creates an app with its env vars, first deployment and deploy
// job in one transaction (store.CreateDeploymentWithSpec).
func (j *Jobs) DeployNew(ctx context.Context, spec store.DeploySpec) (*store.Deployed, error) {
	d, err := j.Store.CreateDeploymentWithSpec(ctx, spec)
	if err != nil {
		return nil, err
	}
	j.push(d.Job)
	return d, nil
}

// Redeploy restarts an app at a commit on the worker it runs on: a
// deployment and a restart job pinned there, pushed.
func (j *Jobs) Redeploy(ctx context.Context, appID, workerID int64, nd store.NewDeployment, nj store.NewJob) (*store.Deployed, error) {
	d, err := j.Store.CreateRedeployment(ctx, appID, workerID, nd, nj)
	if err != nil {
		return nil, err
	}
	j.push(d.Job)
	return d, nil
}

// Pinned creates a job of jobType (stop, delete, start, …) assigned to
// workerID, sets the app's status when appStatus is not empty, and pushes
// the job.
func (j *Jobs) Pinned(ctx context.Context, jobType string, appID, workerID, cpu, memory int64, payload json.RawMessage,
	appStatus string) (*store.Job, error) {
	job, err := j.Store.CreatePinnedJob(ctx, jobType, appID, workerID, cpu, memory, payload, appStatus)
	if err != nil {
		return nil, err
	}
	j.push(job)
	return job, nil
}

// Create creates a job for an existing app (store.CreateAppJob: pending
// for the loop to place, or pinned when nj.WorkerID is set, pushed then)
// and sets the app's status when appStatus is not empty.
func (j *Jobs) Create(ctx context.Context, nj store.NewJob, appStatus string) (*store.Job, error) {
	job, err := j.Store.CreateAppJob(ctx, nj, appStatus)
	if err != nil {
		return nil, err
	}
	j.push(job)
	return job, nil
}

// Delete soft-deletes the app (store.MarkAppDeleted), or with purge also
// marks it for removal for good (store.RequestAppPurge), and pushes the
// delete job its worker gets.
func (j *Jobs) Delete(ctx context.Context, appID int64, purge bool) (*store.Job, error) {
	del := j.Store.MarkAppDeleted
	if purge {
		del = j.Store.RequestAppPurge
	}
	job, err := del(ctx, appID)
	if err != nil {
		return nil, err
	}
	j.push(job)
	return job, nil
}

// Active returns the app's pending, assigned or processing job, or
// store.ErrNotFound.
func (j *Jobs) Active(ctx context.Context, appID int64) (*store.Job, error) {
	return j.Store.FindActiveJobForApp(ctx, appID)
}

// Complete finishes a worker's job (store.CompleteJob) and pushes the
// follow-up job it may have created (the delete of an app deleted while it
// deployed).
func (j *Jobs) Complete(ctx context.Context, jobID, workerID int64, out store.Outcome) (*store.Completion, error) {
	c, err := j.Store.CompleteJob(ctx, jobID, workerID, out)
	if err != nil {
		return nil, err
	}
	j.push(c.FollowUp)
	return c, nil
}

// push hands an assigned job to the pusher.
func (j *Jobs) push(job *store.Job) {
	if job == nil || job.WorkerID == nil || job.Status != store.JobAssigned || j.Pusher == nil {
		return
	}
	j.Pusher.PushJobs([]store.AssignedJob{{JobID: job.ID, WorkerID: *job.WorkerID}})
}
