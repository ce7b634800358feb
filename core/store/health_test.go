package store_test

import (
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
)

func TestTakeSilentWorkersOffline(t *testing.T) {
	f := newFixture(t)
	quiet := f.worker
	alive := f.mustWorker(t, "w2", 4000, 8<<30)
	// Two apps run on the quiet worker, one on the live one; a fourth is
	// mid-deploy on the quiet worker.
	running := func(name string, w *store.Worker) *store.App {
		a := f.mustApp(t, f.user.ID, name)
		d := f.pinnedDeploy(t, a.ID, w.ID)
		if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, w.ID, store.Outcome{Success: true, Port: 20001}); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a1, a2, a3 := running("app-one-q", quiet), running("app-two-q", quiet), running("app-three-a", alive)
	deploying := f.mustApp(t, f.user.ID, "app-four-q")
	f.pinnedDeploy(t, deploying.ID, quiet.ID)
	exec := func(sql string, args ...any) {
		if _, err := f.s.Pool().Exec(f.ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE workers SET last_heartbeat = now() - interval '5 minutes' WHERE id = $1`, quiet.ID)
	exec(`UPDATE workers SET last_heartbeat = now() WHERE id = $1`, alive.ID)

	off, err := f.s.TakeSilentWorkersOffline(f.ctx, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(off) != 1 || off[0].ID != quiet.ID || off[0].StoppedApps != 2 {
		t.Fatalf("offline = %+v, want %s with 2 apps stopped", off, quiet.Name)
	}
	status := func(sql string, id int64) string {
		var s string
		if err := f.s.Pool().QueryRow(f.ctx, sql, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, a := range []*store.App{a1, a2} {
		if s := status(`SELECT status || ':' || coalesce(worker_id::text, '-') FROM apps WHERE id = $1`, a.ID); s != "stopped:-" {
			t.Errorf("app %s on the silent worker: %s, want stopped on no worker", a.Name, s)
		}
	}
	if s := status(`SELECT status FROM apps WHERE id = $1`, a3.ID); s != "running" {
		t.Errorf("app on the live worker: %s", s)
	}
	if s := status(`SELECT status FROM apps WHERE id = $1`, deploying.ID); s != "deploying" {
		t.Errorf("app mid-deploy: %s, want it left to its job", s)
	}
	if s := status(`SELECT status FROM workers WHERE id = $1`, quiet.ID); s != "offline" {
		t.Errorf("silent worker is %s", s)
	}
	var events int
	if err := f.s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM event_outbox WHERE type = 'app.stopped'
		AND payload->>'reason' = 'worker w1 stopped responding'`).Scan(&events); err != nil || events != 2 {
		t.Fatalf("app.stopped events: %d %v", events, err)
	}
	if bad, err := store.CheckCapacity(f.ctx, f.s.Pool()); err != nil || len(bad) > 0 {
		t.Fatalf("capacity: %+v %v", bad, err)
	}
	// Only the in-flight deploy's reservation is left on the silent worker.
	if n := status(`SELECT count(*)::text FROM app_reservations WHERE worker_id = $1`, quiet.ID); n != "1" {
		t.Fatalf("%s reservations left on the silent worker, want the deploying app's", n)
	}
	// Nothing more to do: idempotent.
	if off, err := f.s.TakeSilentWorkersOffline(f.ctx, 2*time.Minute); err != nil || len(off) != 0 {
		t.Fatalf("second run: %+v %v", off, err)
	}
}

func TestStuckJobs(t *testing.T) {
	f := newFixture(t)
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	if jobs, err := f.s.StuckJobs(f.ctx, 15*time.Minute, 10); err != nil || len(jobs) != 0 {
		t.Fatalf("fresh job reported stuck: %v %v", jobs, err)
	}
	if _, err := f.s.Pool().Exec(f.ctx, `UPDATE jobs SET assigned_at = now() - interval '20 minutes' WHERE id = $1`, d.Job.ID); err != nil {
		t.Fatal(err)
	}
	jobs, err := f.s.StuckJobs(f.ctx, 15*time.Minute, 10)
	if err != nil || len(jobs) != 1 || jobs[0].ID != d.Job.ID {
		t.Fatalf("stuck jobs = %v, %v", jobs, err)
	}
}
