package store_test

import (
	"errors"
	"testing"

	"github.com/wisehosting/wisehosting/core/store"
)

func TestOneActiveJobPerApp(t *testing.T) {
	f := newFixture(t)
	f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	_, err := f.s.CreateDeployment(f.ctx, f.app.ID, store.NewDeployment{}, store.NewJob{CPU: appCPU, Memory: appMem})
	var ce *store.ConstraintError
	if !errors.Is(err, store.ErrConflict) || !errors.As(err, &ce) || ce.Constraint != "jobs_one_active_per_app" {
		t.Fatalf("second deploy while one is in flight = %v, want ErrConflict on jobs_one_active_per_app", err)
	}
	if n := f.count(t, `SELECT count(*) FROM deployments WHERE app_id = $1`, f.app.ID); n != 1 {
		t.Fatalf("the refused deploy left %d deployments", n)
	}
}

// Deleting a running app: a delete job goes to its worker, capacity stays
// held until the worker confirms, and is released then.
func TestDeleteRunningApp(t *testing.T) {
	f := newFixture(t)
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	del, err := f.s.MarkAppDeleted(f.ctx, f.app.ID)
	if err != nil || del == nil || del.Type != store.JobDelete || del.Status != store.JobAssigned || *del.WorkerID != f.worker.ID {
		t.Fatalf("MarkAppDeleted = %+v, %v; want a delete job assigned to the app's worker", del, err)
	}
	if w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID); w.UsedCPU != appCPU {
		t.Fatalf("capacity released before the worker confirmed: used %d", w.UsedCPU)
	}
	// A failed delete keeps the capacity: the app may still run.
	if _, err := f.s.CompleteJob(f.ctx, del.ID, f.worker.ID, store.Outcome{Error: "rm: busy"}); err != nil {
		t.Fatal(err)
	}
	if w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID); w.UsedCPU != appCPU {
		t.Fatalf("a failed delete released capacity: used %d", w.UsedCPU)
	}
	// A retried delete that succeeds releases it.
	retry, err := f.s.CreatePinnedJob(f.ctx, store.JobDelete, f.app.ID, f.worker.ID, 0, 0, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.s.CompleteJob(f.ctx, retry.ID, f.worker.ID, store.Outcome{Success: true})
	if err != nil || c.FollowUp != nil || c.App.Status != store.AppDeleted || c.App.WorkerID != nil {
		t.Fatalf("successful delete = %+v, %v", c, err)
	}
	if w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID); w.UsedCPU != 0 {
		t.Fatalf("after a confirmed delete: used %d", w.UsedCPU)
	}
	if err := f.s.HardDeleteApp(f.ctx, f.app.ID); err != nil {
		t.Fatalf("hard delete after the worker confirmed: %v", err)
	}
	f.assertCapacity(t)
}

// Deleting an app while its deploy is in flight: the deploy finishes, then
// a delete job follows to where it now runs; no deployment event is emitted
// for the deleted app, and capacity follows what runs.
func TestDeleteWhileDeploying(t *testing.T) {
	f := newFixture(t)
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	if del, err := f.s.MarkAppDeleted(f.ctx, f.app.ID); err != nil || del != nil {
		t.Fatalf("MarkAppDeleted during a deploy = %+v, %v; want no delete job yet", del, err)
	}
	c, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Success: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.App.Status != store.AppDeleted || c.FollowUp == nil || c.FollowUp.Type != store.JobDelete || *c.FollowUp.WorkerID != f.worker.ID {
		t.Fatalf("completion after deletion = app %+v follow-up %+v", c.App, c.FollowUp)
	}
	if len(f.outbox(t)) != 0 || len(c.Events) != 0 {
		t.Fatalf("events for a deleted app: %v", f.outbox(t))
	}
	if w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID); w.UsedCPU != appCPU {
		t.Fatalf("the running container's capacity was dropped: used %d", w.UsedCPU)
	}
	f.assertCapacity(t)
}

func TestDeleteUser(t *testing.T) {
	f := newFixture(t)
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	// A raw delete is refused by the foreign key; DeleteUser says why.
	if _, err := f.s.Pool().Exec(f.ctx, `DELETE FROM users WHERE id = $1`, f.user.ID); !errors.Is(store.MapError("raw", err), store.ErrInvalid) {
		t.Fatalf("raw delete of a user with a running app = %v", err)
	}
	if err := f.s.DeleteUser(f.ctx, f.user.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("DeleteUser with a running app = %v, want ErrConflict", err)
	}
	stop, err := f.s.CreatePinnedJob(f.ctx, store.JobStop, f.app.ID, f.worker.ID, 0, 0, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.CompleteJob(f.ctx, stop.ID, f.worker.ID, store.Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteUser(f.ctx, f.user.ID); err != nil {
		t.Fatalf("DeleteUser after the app stopped: %v", err)
	}
	if n := f.count(t, `SELECT count(*) FROM apps`); n != 0 {
		t.Fatalf("%d apps survived their user", n)
	}
	if err := f.s.DeleteUser(f.ctx, f.user.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting twice = %v", err)
	}
	f.assertCapacity(t)
}

func TestRegisterBelowReservedIsRefused(t *testing.T) {
	f := newFixture(t) // 4000 mCPU
	f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	_, err := f.s.RegisterWorker(f.ctx, f.worker.ID, store.Registration{Address: "10.0.0.1", CapacityCPU: 500, CapacityMemory: 8 << 30})
	if !errors.Is(err, store.ErrCapacity) {
		t.Fatalf("capacity below reserved = %v, want ErrCapacity", err)
	}
	if _, err := f.s.RegisterWorker(f.ctx, f.worker.ID, store.Registration{Address: "10.0.0.1", CapacityCPU: appCPU, CapacityMemory: appMem}); err != nil {
		t.Fatalf("capacity exactly at reserved: %v", err)
	}
	if _, err := f.s.RegisterWorker(f.ctx, 424242, store.Registration{CapacityCPU: 1, CapacityMemory: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown worker = %v", err)
	}
	if _, err := f.s.RegisterWorker(f.ctx, f.worker.ID, store.Registration{CapacityCPU: 3_000_000_000_000, CapacityMemory: 8 << 30}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("out-of-range capacity = %v, want ErrInvalid", err)
	}
	f.assertCapacity(t)
}

// The deadlock the review reproduced (a hard delete against a scheduling
// pass holding the app's job) cannot happen: hard delete refuses apps with
// any active job.
func TestHardDeleteRefusesPendingJobs(t *testing.T) {
	f := newFixture(t)
	if _, err := f.s.CreateDeployment(f.ctx, f.app.ID, store.NewDeployment{}, store.NewJob{CPU: 1, Memory: 1}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.HardDeleteApp(f.ctx, f.app.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("hard delete with a pending job = %v", err)
	}
}
