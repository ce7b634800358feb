package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/sdk/event"
)

// running deploys the app pinned to the worker and completes the job.
func (f *fixture) running(t *testing.T, appID, workerID int64) {
	t.Helper()
	d := f.pinnedDeploy(t, appID, workerID)
	if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, workerID, store.Outcome{Success: true, Port: 20001}); err != nil {
		t.Fatal(err)
	}
}

func TestMarkWorkerOnline(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		from   string
		online bool
		after  string
	}{
		{"offline", true, "online"},
		{"online", false, "online"},
		{"draining", false, "draining"},
	} {
		t.Run(tc.from, func(t *testing.T) {
			if err := f.s.SetWorkerStatus(f.ctx, f.worker.ID, tc.from); err != nil {
				t.Fatal(err)
			}
			got, err := f.s.MarkWorkerOnline(f.ctx, f.worker.ID)
			if err != nil || got != tc.online {
				t.Fatalf("MarkWorkerOnline = %v, %v", got, err)
			}
			w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID)
			if w.Status != tc.after {
				t.Fatalf("status = %s, want %s", w.Status, tc.after)
			}
		})
	}
}

func TestWorkerAppIDs(t *testing.T) {
	f := newFixture(t)
	f.running(t, f.app.ID, f.worker.ID)
	inFlight := f.mustApp(t, f.user.ID, "deploying-app")
	f.pinnedDeploy(t, inFlight.ID, f.worker.ID)
	other := f.mustWorker(t, "w2", 4000, 8<<30)
	elsewhere := f.mustApp(t, f.user.ID, "elsewhere-app")
	f.running(t, elsewhere.ID, other.ID)

	ids, err := f.s.WorkerAppIDs(f.ctx, f.worker.ID)
	slices.Sort(ids)
	if err != nil || !slices.Equal(ids, []int64{f.app.ID, inFlight.ID}) {
		t.Fatalf("WorkerAppIDs = %v, %v; want placed and reserved apps", ids, err)
	}
}

func TestReportAppStatus(t *testing.T) {
	f := newFixture(t)
	f.running(t, f.app.ID, f.worker.ID)
	other := f.mustWorker(t, "w2", 4000, 8<<30)

	steps := []struct {
		name, status string
		restarts     int64
		worker       int64
		wantErr      error
		wantStatus   string
		changed      bool
		events       []string
	}{
		{"another worker", "crashloop", 1, other.ID, store.ErrNotFound, "running", false, nil},
		{"unknown status", "exploded", 0, f.worker.ID, store.ErrInvalid, "running", false, nil},
		{"crashloop", "crashloop", 3, f.worker.ID, nil, "crashloop", true, []string{event.AppCrashloop}},
		{"crashloop again", "crashloop", 4, f.worker.ID, nil, "crashloop", true, nil},
		{"same report", "crashloop", 4, f.worker.ID, nil, "crashloop", false, nil},
		{"recovered", "running", 4, f.worker.ID, nil, "running", true, nil},
		{"exited", "exited", 4, f.worker.ID, nil, "exited", true, nil},
		{"stopped", "stopped", 0, f.worker.ID, nil, "stopped", true, []string{event.AppStopped}},
		{"running after stop", "running", 0, f.worker.ID, store.ErrNotFound, "stopped", false, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			rep, err := f.s.ReportAppStatus(f.ctx, st.worker, f.app.ID, st.status, st.restarts, "exit 1")
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("err = %v, want %v", err, st.wantErr)
			}
			a, _ := f.s.FindAppByID(f.ctx, f.app.ID)
			if a.Status != st.wantStatus {
				t.Fatalf("status = %s, want %s", a.Status, st.wantStatus)
			}
			if err != nil {
				return
			}
			if rep.Changed != st.changed || len(rep.Events) != len(st.events) {
				t.Fatalf("report = %+v", rep)
			}
			for i, ev := range rep.Events {
				if ev.Type != st.events[i] || ev.AppID != f.app.ID || ev.UserID != f.user.ID {
					t.Fatalf("event %+v", ev)
				}
			}
		})
	}
	a, _ := f.s.FindAppByID(f.ctx, f.app.ID)
	if a.WorkerID != nil || len(f.reservations(t, f.app.ID)) != 0 {
		t.Fatalf("stopped app still placed: %+v", a)
	}
	f.assertCapacity(t)
	if got := strings.Join(f.outbox(t), ","); got != "deployment.succeeded,app.crashloop,app.stopped" {
		t.Fatalf("outbox = %s", got)
	}
	var data event.AppData
	raw := scalarString(t, f, `SELECT payload::text FROM event_outbox WHERE type = 'app.crashloop'`)
	if err := json.Unmarshal([]byte(raw), &data); err != nil || data.RestartCount != 3 || data.Reason != "exit 1" {
		t.Fatalf("crashloop event data = %s", raw)
	}
}

func scalarString(t *testing.T, f *fixture, sql string) string {
	t.Helper()
	var s string
	if err := f.s.Pool().QueryRow(f.ctx, sql).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReportAppStatusIgnoredWhileAJobIsInFlight(t *testing.T) {
	f := newFixture(t)
	f.running(t, f.app.ID, f.worker.ID)
	// A restart on the same worker is in flight: the worker stopping the
	// old process must not stop the app nor release its capacity.
	d, err := f.s.CreateRedeployment(f.ctx, f.app.ID, f.worker.ID, store.NewDeployment{}, store.NewJob{CPU: appCPU, Memory: appMem})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := f.s.ReportAppStatus(f.ctx, f.worker.ID, f.app.ID, "stopped", 0, "")
	if err != nil || rep.Changed || rep.Ignored == "" {
		t.Fatalf("report during a restart = %+v, %v", rep, err)
	}
	if r := f.reservations(t, f.app.ID); !r[f.worker.ID] {
		t.Fatal("capacity released during a restart")
	}
	// Only reserved on a worker (a deploy there in flight): ignored too.
	w2 := f.mustWorker(t, "w2", 4000, 8<<30)
	fresh := f.mustApp(t, f.user.ID, "fresh-app")
	f.pinnedDeploy(t, fresh.ID, w2.ID)
	if rep, err := f.s.ReportAppStatus(f.ctx, w2.ID, fresh.ID, "crashloop", 2, ""); err != nil || rep.Changed {
		t.Fatalf("report about a reserved app = %+v, %v", rep, err)
	}
	_ = d
}

func TestReportViolation(t *testing.T) {
	f := newFixture(t)
	f.running(t, f.app.ID, f.worker.ID)
	other := f.mustWorker(t, "w2", 4000, 8<<30)
	if _, err := f.s.ReportViolation(f.ctx, other.ID, f.app.ID, "memory"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another worker's violation report = %v", err)
	}
	rep, err := f.s.ReportViolation(f.ctx, f.worker.ID, f.app.ID, "memory: OOM")
	if err != nil || !rep.Changed || rep.App.Status != store.AppViolated || rep.App.ViolationReason != "memory: OOM" || len(rep.Events) != 1 {
		t.Fatalf("report = %+v, %v", rep, err)
	}
	if rep, err := f.s.ReportViolation(f.ctx, f.worker.ID, f.app.ID, "memory: OOM"); err != nil || rep.Changed {
		t.Fatalf("repeated report = %+v, %v", rep, err)
	}
	if got := strings.Join(f.outbox(t), ","); got != "deployment.succeeded,app.violation" {
		t.Fatalf("outbox = %s", got)
	}
}

func TestFleetStats(t *testing.T) {
	f := newFixture(t)
	f.running(t, f.app.ID, f.worker.ID)
	w2 := f.mustWorker(t, "w2", 2000, 4<<30)
	if err := f.s.SetWorkerStatus(f.ctx, w2.ID, "draining"); err != nil {
		t.Fatal(err)
	}
	w3 := f.mustWorker(t, "w3", 1000, 1<<30)
	if err := f.s.SetWorkerStatus(f.ctx, w3.ID, "offline"); err != nil {
		t.Fatal(err)
	}
	st, err := f.s.FleetStats(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := store.WorkerStats{Total: 3, Online: 1, Offline: 1, Draining: 1, CapacityCPU: 7000, CapacityMemory: 13 << 30,
		UsedCPU: appCPU, UsedMemory: appMem}
	if *st != want {
		t.Fatalf("FleetStats = %+v, want %+v", *st, want)
	}
}

func TestRotateWorkerKeyNotifies(t *testing.T) {
	f := newFixture(t)
	l := f.s.NewListener(testutil.Logger(t))
	var got atomic.Value
	var connects atomic.Int64
	l.Handle(store.ChannelWorkerKeys, func(p string) { got.Store(p) })
	l.OnConnect(func() { connects.Add(1) })
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	testutil.WaitFor(t, 10*time.Second, "listening", l.Listening)
	if connects.Load() != 1 {
		t.Fatalf("OnConnect ran %d times", connects.Load())
	}
	c := storetest.Cipher(t)
	wc, err := c.NewWorkerCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.RotateWorkerKey(f.ctx, f.worker.ID, store.WorkerCredentials{
		APIKeyHash: wc.KeyHash, KeyID: wc.Kid, SealedEnvelopeKey: wc.SealedEnvelopeKey}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "rotation notification", func() bool {
		p, _ := got.Load().(string)
		return p == strconv.FormatInt(f.worker.ID, 10)
	})
	// A rotation that fails notifies nobody (the NOTIFY is in its
	// transaction).
	got.Store("")
	if _, err := f.s.RotateWorkerKey(f.ctx, 999999, store.WorkerCredentials{
		APIKeyHash: wc.KeyHash, KeyID: wc.Kid, SealedEnvelopeKey: wc.SealedEnvelopeKey}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rotating an unknown worker = %v", err)
	}
	// The listener survives losing its connection and says so.
	if _, err := f.s.Pool().Exec(f.ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid() AND datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "listener reconnected", func() bool { return connects.Load() == 2 && l.Listening() })
	if p, _ := got.Load().(string); p != "" {
		t.Fatalf("notification %q from a failed rotation", p)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWithTryAdvisoryLock(t *testing.T) {
	f := newFixture(t)
	const key = store.LockPruneRuntimeLogs
	inner := make(chan bool, 1)
	ran, err := f.s.WithTryAdvisoryLock(f.ctx, key, func(ctx context.Context) error {
		again, err := f.s.WithTryAdvisoryLock(ctx, key, func(context.Context) error { return nil })
		inner <- again
		return err
	})
	if err != nil || !ran {
		t.Fatalf("outer: ran=%v err=%v", ran, err)
	}
	if <-inner {
		t.Fatal("the lock was taken twice at once")
	}
	boom := errors.New("boom")
	if ran, err := f.s.WithTryAdvisoryLock(f.ctx, key, func(context.Context) error { return boom }); !ran || !errors.Is(err, boom) {
		t.Fatalf("failing fn: ran=%v err=%v", ran, err)
	}
	if ran, err := f.s.WithTryAdvisoryLock(f.ctx, key, func(context.Context) error { return nil }); !ran || err != nil {
		t.Fatalf("the lock was not released after a failure: ran=%v err=%v", ran, err)
	}
}
