package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/core/scheduler"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
)

// A job placed on a worker that never answers fails after stuck_after and
// gives its capacity back; the worker, silent, goes offline. Both once.
func TestMonitorRecoversStuckJobsAndSilentWorkers(t *testing.T) {
	st := storetest.New(t)
	seed(t, st, 2, 10, 4)
	ctx := context.Background()
	rec := &recorder{}
	s, err := scheduler.New(scheduler.Options{Store: st, Placer: plugin(t), Pusher: rec})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Pass(ctx); err != nil || len(res.Assigned) != 4 {
		t.Fatalf("pass: %+v %v", res, err)
	}
	reg := prometheus.NewRegistry()
	m, err := scheduler.NewMonitor(scheduler.MonitorOptions{Store: st, StuckAfter: 15 * time.Minute,
		WorkerTimeout: 2 * time.Minute, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := m.RecoverStuckJobs(ctx); err != nil || n != 0 {
		t.Fatalf("fresh jobs failed as stuck: %d %v", n, err)
	}
	if off, err := m.CheckWorkers(ctx); err != nil || len(off) != 0 {
		t.Fatalf("fresh workers taken offline: %+v %v", off, err)
	}
	// Time passes: the jobs were assigned 20 minutes ago, the workers last
	// heard from 5 minutes ago.
	if _, err := st.Pool().Exec(ctx, `UPDATE jobs SET assigned_at = now() - interval '20 minutes'`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(ctx, `UPDATE workers SET last_heartbeat = now() - interval '5 minutes'`); err != nil {
		t.Fatal(err)
	}
	if n, err := m.RecoverStuckJobs(ctx); err != nil || n != 4 {
		t.Fatalf("stuck jobs failed: %d %v, want 4", n, err)
	}
	if n, err := m.RecoverStuckJobs(ctx); err != nil || n != 0 {
		t.Fatalf("second recovery failed %d more: %v", n, err)
	}
	if n := count(t, st, `SELECT count(*) FROM jobs WHERE status = 'failed' AND message LIKE 'no result from the worker within 15m%'`); n != 4 {
		t.Fatalf("%d jobs failed with the stuck message", n)
	}
	if n := count(t, st, `SELECT count(*) FROM app_reservations`); n != 0 {
		t.Fatalf("%d reservations left after the deploys failed", n)
	}
	off, err := m.CheckWorkers(ctx)
	if err != nil || len(off) != 2 {
		t.Fatalf("silent workers: %+v %v", off, err)
	}
	if n := count(t, st, `SELECT count(*) FROM workers WHERE status = 'offline'`); n != 2 {
		t.Fatalf("%d workers offline", n)
	}
	if bad, err := store.CheckCapacity(ctx, st.Pool()); err != nil || len(bad) > 0 {
		t.Fatalf("capacity: %+v %v", bad, err)
	}
	for name, want := range map[string]float64{
		"wisehosting_scheduler_stuck_jobs_failed_total":      4,
		"wisehosting_scheduler_workers_marked_offline_total": 2,
	} {
		if v, _ := metrics.Sum(reg, name); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
}
