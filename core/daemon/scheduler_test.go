package daemon

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// TestSchedulerPlacesAndPushes: with a scheduler plugin declared, a deploy
// job created pending (no worker) is placed by the daemon's loop, woken by
// the insert's NOTIFY, and pushed to the connected worker as a job frame.
func TestSchedulerPlacesAndPushes(t *testing.T) {
	t.Parallel()
	cfg := testConfigWith(t, "", testStack)
	d, err := NewWithOptions(t.Context(), cfg, testutil.Logger(t), testPlugins())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	addr, err := d.Listen()
	if err != nil {
		d.Close(context.Background())
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-served })

	st := d.Database().Store
	w, key, err := workerauth.AddWorker(t.Context(), st, d.Database().Cipher, "sched-1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.RegisterWorker(t.Context(), w.ID, store.Registration{Address: "10.0.0.9", CapacityCPU: 4000,
		CapacityMemory: 8 << 30, Runtimes: []string{wsproto.RuntimeExec}}); err != nil {
		t.Fatal(err)
	}
	conn := wsWorker(t, "ws://"+addr.String()+"/v1/workers/ws", key, nil)
	heartbeat(t, conn, key, 1, 5)
	// Placement needs the worker online with a fresh heartbeat in the
	// database (the hub writes heartbeats once a second).
	testutil.WaitFor(t, 10*time.Second, "the heartbeat written", func() bool {
		var fresh bool
		err := st.Pool().QueryRow(t.Context(), `SELECT status = 'online' AND last_heartbeat > now() - interval '1 minute'
			FROM workers WHERE id = $1`, w.ID).Scan(&fresh)
		return err == nil && fresh
	})

	u, err := st.CreateUser(t.Context(), store.NewUser{Email: "sched@example.com", Name: "S"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := st.CreateApp(t.Context(), store.NewApp{UserID: u.ID, Name: "sched-app", GitRepo: "https://git.example/x.git", GitBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	dep, err := st.CreateDeployment(t.Context(), a.ID, store.NewDeployment{CommitSHA: "abc1234", Branch: "main"},
		store.NewJob{CPU: 500, Memory: 256 << 20, Payload: json.RawMessage(`{"app_id":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Job.Status != store.JobPending || dep.Job.WorkerID != nil {
		t.Fatalf("created job %+v, want it pending with no worker", dep.Job)
	}

	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		b, err := wsutil.ReadServerText(conn)
		if err != nil {
			t.Fatalf("no job frame: %v", err)
		}
		env, err := wsproto.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if env.Type != wsproto.TypeJob {
			continue
		}
		var job wsproto.Job
		if err := json.Unmarshal(env.Payload, &job); err != nil {
			t.Fatal(err)
		}
		if job.JobID != dep.Job.ID {
			t.Fatalf("pushed job %d, want %d", job.JobID, dep.Job.ID)
		}
		t.Logf("pending job created to job frame received: %s", time.Since(start).Round(time.Millisecond))
		break
	}
	j, err := st.FindJob(t.Context(), dep.Job.ID)
	if err != nil || j.Status != store.JobAssigned || j.WorkerID == nil || *j.WorkerID != w.ID {
		t.Fatalf("job after placement: %+v %v", j, err)
	}
	if bad, err := store.CheckCapacity(t.Context(), st.Pool()); err != nil || len(bad) > 0 {
		t.Fatalf("capacity: %+v %v", bad, err)
	}
}
