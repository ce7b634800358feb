package store_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/event"
)

const (
	appCPU = 1000
	appMem = 512 << 20
)

func (f *fixture) pinnedDeploy(t *testing.T, appID, workerID int64) *store.Deployed {
	t.Helper()
	d, err := f.s.CreateDeployment(f.ctx, appID, store.NewDeployment{CommitSHA: "1234567abcdef", Branch: "main"},
		store.NewJob{WorkerID: &workerID, CPU: appCPU, Memory: appMem, Payload: json.RawMessage(`{"repo":"x"}`)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) outbox(t *testing.T) []string {
	t.Helper()
	rows, err := f.s.Pool().Query(f.ctx, `SELECT type FROM event_outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	types, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return types
}

func (f *fixture) reservations(t *testing.T, appID int64) map[int64]bool {
	t.Helper()
	rows, err := f.s.Pool().Query(f.ctx, `SELECT worker_id FROM app_reservations WHERE app_id = $1`, appID)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	m := map[int64]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func TestCreateDeploymentWithSpecIsAtomic(t *testing.T) {
	f := newFixture(t)
	spec := store.DeploySpec{
		App:        store.NewApp{UserID: f.user.ID, Name: "fresh-app", GitRepo: "https://g/x.git", GitBranch: "main"},
		Env:        map[string]string{"PORT": "3000", "API_KEY": "k"},
		Deployment: store.NewDeployment{Trigger: "api", CommitSHA: "abc"},
		Job:        store.NewJob{CPU: appCPU, Memory: appMem, Payload: json.RawMessage(`{"a":1}`)},
	}
	got, err := f.s.CreateDeploymentWithSpec(f.ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if got.App.Status != store.AppDeploying || got.Job.Status != store.JobPending || got.Job.Type != store.JobDeploy ||
		*got.Job.DeploymentID != got.Deployment.ID || got.Deployment.Trigger != "api" {
		t.Fatalf("deployed = %+v / %+v / %+v", got.App, got.Deployment, got.Job)
	}
	// Same name again: nothing at all is created.
	before := f.count(t, `SELECT count(*) FROM deployments`) + f.count(t, `SELECT count(*) FROM app_env_vars`) + f.count(t, `SELECT count(*) FROM jobs`)
	spec.Env = map[string]string{"OTHER": "x"}
	if _, err := f.s.CreateDeploymentWithSpec(f.ctx, spec); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate = %v, want ErrConflict", err)
	}
	after := f.count(t, `SELECT count(*) FROM deployments`) + f.count(t, `SELECT count(*) FROM app_env_vars`) + f.count(t, `SELECT count(*) FROM jobs`)
	if before != after {
		t.Fatalf("a failed deployment left rows behind (%d → %d)", before, after)
	}
	// A bad env key also aborts everything, including the app.
	spec.App.Name, spec.Env = "other-app", map[string]string{"bad-key": "x"}
	if _, err := f.s.CreateDeploymentWithSpec(f.ctx, spec); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad env key = %v", err)
	}
	if _, err := f.s.FindAppByUserIDAndName(f.ctx, f.user.ID, "other-app"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("app created despite a failed transaction: %v", err)
	}
}

func TestPinnedDeploySucceeds(t *testing.T) {
	f := newFixture(t)
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	if d.Job.Status != store.JobAssigned || !d.Job.Pinned || d.Job.AssignedAt == nil {
		t.Fatalf("pinned job = %+v", d.Job)
	}
	w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID)
	if w.UsedCPU != appCPU || w.UsedMemory != appMem {
		t.Fatalf("reservation not taken at assignment: %+v", w)
	}
	f.assertCapacity(t)

	next, err := f.s.NextAssignedJob(f.ctx, f.worker.ID)
	if err != nil || next.ID != d.Job.ID || string(next.Payload) != `{"repo":"x"}` {
		t.Fatalf("NextAssignedJob = %+v, %v", next, err)
	}
	other := f.mustWorker(t, "w2", 4000, 8<<30)
	if err := f.s.UpdateJobStatus(f.ctx, d.Job.ID, other.ID, store.JobProcessing, "x", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another worker updating the job = %v", err)
	}
	if err := f.s.UpdateJobStatus(f.ctx, d.Job.ID, f.worker.ID, store.JobProcessing, "building", 30); err != nil {
		t.Fatal(err)
	}
	j, _ := f.s.FindJob(f.ctx, d.Job.ID)
	dep, _ := f.s.FindDeployment(f.ctx, d.Deployment.ID)
	if j.Status != store.JobProcessing || j.StartedAt == nil || j.Progress != 30 || dep.Status != store.DeploymentBuilding || dep.StartedAt == nil {
		t.Fatalf("after processing: job %+v deployment %+v", j, dep)
	}
	if err := f.s.UpdateJobStatus(f.ctx, d.Job.ID, f.worker.ID, store.JobCompleted, "", 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("completing through UpdateJobStatus = %v", err)
	}
	if err := f.s.SetDeploymentBuildLogs(f.ctx, d.Deployment.ID, f.worker.ID, "step 1\x00\nok"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetDeploymentBuildLogs(f.ctx, d.Deployment.ID, other.ID, "forged"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another worker writing build logs = %v", err)
	}
	if logs, _ := f.s.LatestBuildLogs(f.ctx, f.app.ID); logs != "step 1\nok" {
		t.Fatalf("build logs = %q", logs)
	}

	c, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Success: true, Port: 20001,
		ContainerID: "pid-42", CommitSHA: "1234567abcdef", CommitMessage: "first\nbody"})
	if err != nil {
		t.Fatal(err)
	}
	if c.App.Status != store.AppRunning || c.App.Port != 20001 || *c.App.WorkerID != f.worker.ID ||
		c.Deployment.Status != store.DeploymentSucceeded || c.Deployment.FinishedAt == nil || c.Job.Progress != 100 {
		t.Fatalf("completion = app %+v dep %+v job %+v", c.App, c.Deployment, c.Job)
	}
	if types := f.outbox(t); len(types) != 1 || types[0] != event.DeploymentSucceeded {
		t.Fatalf("outbox = %v", types)
	}
	var data event.AppData
	if err := json.Unmarshal(c.Events[0].Data, &data); err != nil || data.AppName != "hello-world" || data.CommitSHA != "1234567abcdef" {
		t.Fatalf("event data = %s", c.Events[0].Data)
	}
	// The reservation stays while the app runs.
	if r := f.reservations(t, f.app.ID); len(r) != 1 || !r[f.worker.ID] {
		t.Fatalf("reservations = %v", r)
	}
	f.assertCapacity(t)
	// A repeated result changes nothing.
	if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Success: false}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second completion = %v", err)
	}
	if len(f.outbox(t)) != 1 {
		t.Fatal("a repeated result emitted another event")
	}
}

func TestFailedDeployReleasesCapacity(t *testing.T) {
	f := newFixture(t)
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	c, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Error: "build failed: exit 1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.App.Status != store.AppFailed || c.App.WorkerID != nil || c.Deployment.Status != store.DeploymentFailed ||
		c.Deployment.Error != "build failed: exit 1" || c.Job.Status != store.JobFailed {
		t.Fatalf("completion = app %+v dep %+v job %+v", c.App, c.Deployment, c.Job)
	}
	if len(f.reservations(t, f.app.ID)) != 0 {
		t.Fatal("failed deploy kept its reservation")
	}
	if types := f.outbox(t); len(types) != 1 || types[0] != event.DeploymentFailed {
		t.Fatalf("outbox = %v", types)
	}
	f.assertCapacity(t)
}

func TestRedeployElsewhereMovesOnSuccessKeepsOnFailure(t *testing.T) {
	f := newFixture(t)
	w2 := f.mustWorker(t, "w2", 4000, 8<<30)
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Success: true, Port: 1}); err != nil {
		t.Fatal(err)
	}
	// A redeploy to w2 reserves there too while it is in flight.
	d2 := f.pinnedDeploy(t, f.app.ID, w2.ID)
	if r := f.reservations(t, f.app.ID); len(r) != 2 {
		t.Fatalf("in-flight redeploy reservations = %v", r)
	}
	f.assertCapacity(t)
	// It fails: w2 is released, the app keeps running on w1.
	c, err := f.s.CompleteJob(f.ctx, d2.Job.ID, w2.ID, store.Outcome{Error: "boom"})
	if err != nil {
		t.Fatal(err)
	}
	if c.App.Status != store.AppRunning || *c.App.WorkerID != f.worker.ID {
		t.Fatalf("app after failed move = %+v", c.App)
	}
	if r := f.reservations(t, f.app.ID); len(r) != 1 || !r[f.worker.ID] {
		t.Fatalf("reservations after failed move = %v", r)
	}
	// Another try succeeds: the reservation moves to w2.
	d3 := f.pinnedDeploy(t, f.app.ID, w2.ID)
	c, err = f.s.CompleteJob(f.ctx, d3.Job.ID, w2.ID, store.Outcome{Success: true, Port: 2})
	if err != nil {
		t.Fatal(err)
	}
	if *c.App.WorkerID != w2.ID {
		t.Fatalf("app after move = %+v", c.App)
	}
	if r := f.reservations(t, f.app.ID); len(r) != 1 || !r[w2.ID] {
		t.Fatalf("reservations after move = %v", r)
	}
	w1, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID)
	if w1.UsedCPU != 0 {
		t.Fatalf("old worker still holds %d mCPU", w1.UsedCPU)
	}
	f.assertCapacity(t)
}

func TestStopReleasesAndEmits(t *testing.T) {
	f := newFixture(t)
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	// A restart on the same worker adds nothing to its reservation.
	stop, err := f.s.CreatePinnedJob(f.ctx, store.JobStop, f.app.ID, f.worker.ID, 0, 0, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := f.s.FindActiveJobForApp(f.ctx, f.app.ID); a == nil || a.ID != stop.ID {
		t.Fatalf("FindActiveJobForApp = %+v", a)
	}
	c, err := f.s.CompleteJob(f.ctx, stop.ID, f.worker.ID, store.Outcome{Success: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.App.Status != store.AppStopped || c.App.WorkerID != nil || len(f.reservations(t, f.app.ID)) != 0 {
		t.Fatalf("after stop: %+v", c.App)
	}
	if types := f.outbox(t); len(types) != 2 || types[1] != event.AppStopped {
		t.Fatalf("outbox = %v", types)
	}
	if _, err := f.s.FindActiveJobForApp(f.ctx, f.app.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("active job after stop = %v", err)
	}
	f.assertCapacity(t)
}

func TestRestartOnSameWorkerAddsNothing(t *testing.T) {
	f := newFixture(t)
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	r, err := f.s.CreateRedeployment(f.ctx, f.app.ID, f.worker.ID, store.NewDeployment{CommitSHA: "def"},
		store.NewJob{CPU: appCPU, Memory: appMem})
	if err != nil {
		t.Fatal(err)
	}
	if r.Job.Type != store.JobRestart || r.Deployment.Trigger != "restart" || r.Deployment.CommitSHA != "def" || r.App.Status != store.AppDeploying {
		t.Fatalf("redeployment = %+v %+v %+v", r.Job, r.Deployment, r.App)
	}
	w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID)
	if w.UsedCPU != appCPU {
		t.Fatalf("restart on the same worker changed used_cpu to %d", w.UsedCPU)
	}
	deps, err := f.s.ListDeployments(f.ctx, f.app.ID, 10)
	if err != nil || len(deps) != 2 || deps[0].ID != r.Deployment.ID {
		t.Fatalf("ListDeployments = %v, %v", deps, err)
	}
	recent, err := f.s.ListRecentUserDeployments(f.ctx, f.user.ID, 10)
	if err != nil || len(recent) != 2 || recent[0].AppName != "hello-world" {
		t.Fatalf("ListRecentUserDeployments = %v, %v", recent, err)
	}
	f.assertCapacity(t)
}

func TestReservationGuard(t *testing.T) {
	f := newFixture(t) // worker: 4000 mCPU, 8 GiB
	reserve := func(appID, cpu, mem int64) error {
		return f.s.InTx(f.ctx, func(tx pgx.Tx) error { return store.ReserveApp(f.ctx, tx, appID, f.worker.ID, cpu, mem) })
	}
	if err := reserve(f.app.ID, 3000, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := reserve(f.app.ID, 3000, 1<<30); err != nil { // already held: adds nothing
		t.Fatal(err)
	}
	a2 := f.mustApp(t, f.user.ID, "second-app")
	if err := reserve(a2.ID, 1001, 1); !errors.Is(err, store.ErrCapacity) {
		t.Fatalf("over-capacity cpu = %v", err)
	}
	if err := reserve(a2.ID, 1, 8<<30); !errors.Is(err, store.ErrCapacity) {
		t.Fatalf("over-capacity memory = %v", err)
	}
	if err := reserve(a2.ID, 1000, 1<<30); err != nil { // exactly fills cpu
		t.Fatal(err)
	}
	f.assertCapacity(t)
	// Pinned job onto a full worker: the whole creation fails, nothing changes.
	a3 := f.mustApp(t, f.user.ID, "third-app")
	if _, err := f.s.CreatePinnedJob(f.ctx, store.JobDeploy, a3.ID, f.worker.ID, 1, 1, nil, store.AppDeploying); !errors.Is(err, store.ErrCapacity) {
		t.Fatalf("pinned job on a full worker = %v", err)
	}
	if n := f.count(t, `SELECT count(*) FROM jobs WHERE app_id = $1`, a3.ID); n != 0 {
		t.Fatal("a job was created though its reservation failed")
	}
	if err := f.s.InTx(f.ctx, func(tx pgx.Tx) error { return store.ReleaseApps(f.ctx, tx, []int64{f.app.ID, a2.ID}) }); err != nil {
		t.Fatal(err)
	}
	w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID)
	if w.UsedCPU != 0 || w.UsedMemory != 0 {
		t.Fatalf("after releasing all: %+v", w)
	}
	f.assertCapacity(t)
}

func TestConcurrentReservationsNeverOvercommit(t *testing.T) {
	f := newFixture(t) // 4000 mCPU: room for exactly 4 apps of 1000
	const n = 12
	apps := make([]*store.App, n)
	for i := range apps {
		apps[i] = f.mustApp(t, f.user.ID, "racer-app-"+string(rune('a'+i)))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for _, a := range apps {
		wg.Add(1)
		go func(appID int64) {
			defer wg.Done()
			err := f.s.InTx(f.ctx, func(tx pgx.Tx) error { return store.ReserveApp(f.ctx, tx, appID, f.worker.ID, 1000, 1) })
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrCapacity) {
				t.Errorf("reserve: %v", err)
			}
		}(a.ID)
	}
	wg.Wait()
	if ok != 4 {
		t.Fatalf("%d of %d concurrent reservations succeeded, want exactly 4", ok, n)
	}
	f.assertCapacity(t)
}

func TestEmitEvents(t *testing.T) {
	f := newFixture(t)
	evs := []event.Event{{Type: event.AppCPU, UserID: f.user.ID, AppID: f.app.ID, Data: json.RawMessage(`{"value":93}`)}, {Type: event.WebhookTest}}
	if err := f.s.InTx(f.ctx, func(tx pgx.Tx) error { return store.EmitEvents(f.ctx, tx, evs) }); err != nil {
		t.Fatal(err)
	}
	if evs[0].ID == "" || evs[0].Time.IsZero() || evs[0].ID == evs[1].ID {
		t.Fatalf("ids/times not filled: %+v", evs)
	}
	if got := f.outbox(t); len(got) != 2 {
		t.Fatalf("outbox = %v", got)
	}
	// Rolled back with the change that caused them.
	_ = f.s.InTx(f.ctx, func(tx pgx.Tx) error {
		if err := store.EmitEvents(f.ctx, tx, []event.Event{{Type: event.AppDisk}}); err != nil {
			t.Fatal(err)
		}
		return errors.New("abort")
	})
	if got := f.outbox(t); len(got) != 2 {
		t.Fatalf("rolled-back event persisted: %v", got)
	}
	for _, bad := range []event.Event{{Type: "app.unknown"}, {Type: event.AppCPU, Data: json.RawMessage(`{`)}} {
		err := f.s.InTx(f.ctx, func(tx pgx.Tx) error { return store.EmitEvents(f.ctx, tx, []event.Event{bad}) })
		if err == nil {
			t.Errorf("EmitEvents(%+v) accepted", bad)
		}
	}
}

// TestFailedRestartKeepsThePreviousRelease: a worker replaces a release
// only once the new one runs, so a failed restart of a running app leaves
// it running on its worker, reserved and routed; a failed deploy of an app
// that is not running does not.
func TestFailedRestartKeepsThePreviousRelease(t *testing.T) {
	f := newFixture(t)
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Success: true, Port: 20001, ContainerID: "pid:1"}); err != nil {
		t.Fatal(err)
	}
	r, err := f.s.CreateRedeployment(f.ctx, f.app.ID, f.worker.ID, store.NewDeployment{CommitSHA: "bad"},
		store.NewJob{CPU: appCPU, Memory: appMem})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.CompleteJob(f.ctx, r.Job.ID, f.worker.ID, store.Outcome{Error: "build failed"}); err != nil {
		t.Fatal(err)
	}
	a, err := f.s.FindAppByID(f.ctx, f.app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != store.AppRunning || a.WorkerID == nil || *a.WorkerID != f.worker.ID || a.Port != 20001 ||
		!f.reservations(t, f.app.ID)[f.worker.ID] {
		t.Fatalf("after a failed restart: status %s worker %v port %d reservations %v; want running where it was",
			a.Status, a.WorkerID, a.Port, f.reservations(t, f.app.ID))
	}
	f.assertCapacity(t)

	// Crash-looping, then a deploy that fails: nothing runs, so the app is
	// failed and holds nothing.
	if _, err := f.s.Pool().Exec(f.ctx, `UPDATE apps SET status = 'crashloop' WHERE id = $1`, f.app.ID); err != nil {
		t.Fatal(err)
	}
	d2 := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	if _, err := f.s.CompleteJob(f.ctx, d2.Job.ID, f.worker.ID, store.Outcome{Error: "build failed"}); err != nil {
		t.Fatal(err)
	}
	if a, _ = f.s.FindAppByID(f.ctx, f.app.ID); a.Status != store.AppFailed || a.WorkerID != nil || len(f.reservations(t, f.app.ID)) != 0 {
		t.Fatalf("after a failed deploy of a crash-looping app: status %s worker %v reservations %v", a.Status, a.WorkerID,
			f.reservations(t, f.app.ID))
	}
	f.assertCapacity(t)
}

// TestPurgeAfterTheWorkerConfirms: a hard delete of an app that runs on a
// worker waits for the worker's delete job; then PurgeApps removes it and
// its logs for good.
func TestPurgeAfterTheWorkerConfirms(t *testing.T) {
	f := newFixture(t)
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
	if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Success: true, Port: 20001, ContainerID: "pid:1"}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.InsertRuntimeLogs(f.ctx, []store.LogChunk{{AppID: f.app.ID, Stream: "stdout", TS: time.Now(), TSEnd: time.Now(),
		Lines: 1, Text: "bye"}}); err != nil {
		t.Fatal(err)
	}
	del, err := f.s.RequestAppPurge(f.ctx, f.app.ID)
	if err != nil || del == nil || del.Type != store.JobDelete {
		t.Fatalf("RequestAppPurge = %+v, %v; want a delete job for the worker", del, err)
	}
	if ids, err := f.s.PurgeApps(f.ctx, nil); err != nil || len(ids) != 0 {
		t.Fatalf("purged %v (%v) while the worker still runs the app", ids, err)
	}
	if _, err := f.s.CompleteJob(f.ctx, del.ID, f.worker.ID, store.Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	if ids, err := f.s.PurgeApps(f.ctx, nil); err != nil || len(ids) != 1 || ids[0] != f.app.ID {
		t.Fatalf("purged %v (%v), want the app", ids, err)
	}
	var n int
	if err := f.s.Pool().QueryRow(f.ctx, `SELECT (SELECT count(*) FROM apps WHERE id = $1) + (SELECT count(*) FROM runtime_logs WHERE app_id = $1)`,
		f.app.ID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows of the purged app remain (%v)", n, err)
	}
	f.assertCapacity(t)
}
