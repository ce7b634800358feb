package scheduler_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wisehosting/wisehosting/core/scheduler"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
)

func TestJobsPushPinnedJobsOnly(t *testing.T) {
	st := storetest.New(t)
	seed(t, st, 1, 10, 0)
	ctx := context.Background()
	var worker, user int64
	if err := st.Pool().QueryRow(ctx, `SELECT (SELECT id FROM workers LIMIT 1), (SELECT id FROM users LIMIT 1)`).Scan(&worker, &user); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	jobs := &scheduler.Jobs{Store: st, Pusher: rec}

	// A first deployment with no worker is left to the loop: not pushed.
	d, err := jobs.DeployNew(ctx, store.DeploySpec{
		App: store.NewApp{UserID: user, Name: "jobs-api-app", GitRepo: "https://git.example/x.git", GitBranch: "main"},
		Job: store.NewJob{CPU: 100, Memory: 64 << 20, Payload: []byte(`{"app_id":1}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Job.Status != store.JobPending || len(rec.all()) != 0 {
		t.Fatalf("first deploy: %s, %d pushed", d.Job.Status, len(rec.all()))
	}
	if a, err := jobs.Active(ctx, d.App.ID); err != nil || a.ID != d.Job.ID {
		t.Fatalf("active job: %v %v", a, err)
	}
	// The loop places it; the worker completes it.
	s, err := scheduler.New(scheduler.Options{Store: st, Placer: plugin(t), Pusher: rec})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Pass(ctx); err != nil || len(res.Assigned) != 1 {
		t.Fatalf("pass: %+v %v", res, err)
	}
	if _, err := jobs.Complete(ctx, d.Job.ID, worker, store.Outcome{Success: true, Port: 20001}); err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.Active(ctx, d.App.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("active job after completion: %v", err)
	}
	// A stop is pinned to the app's worker and pushed at once.
	stop, err := jobs.Pinned(ctx, store.JobStop, d.App.ID, worker, 0, 0, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	pushed := rec.all()
	if last := pushed[len(pushed)-1]; len(pushed) != 2 || last.JobID != stop.ID || last.WorkerID != worker {
		t.Fatalf("pushed %+v, want the placed deploy then the stop %d", pushed, stop.ID)
	}
	if _, err := jobs.Complete(ctx, stop.ID, worker, store.Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	// A redeploy on that worker is pinned and pushed too.
	rd, err := jobs.Redeploy(ctx, d.App.ID, worker, store.NewDeployment{CommitSHA: "def5678"},
		store.NewJob{CPU: 100, Memory: 64 << 20, Payload: []byte(`{"app_id":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if pushed := rec.all(); len(pushed) != 3 || pushed[2].JobID != rd.Job.ID {
		t.Fatalf("pushed %+v, want the redeploy last", pushed)
	}
	if bad, err := store.CheckCapacity(ctx, st.Pool()); err != nil || len(bad) > 0 {
		t.Fatalf("capacity: %+v %v", bad, err)
	}
}
