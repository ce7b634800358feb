package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/core/store"
)

// Defaults of MonitorOptions.
const (
	DefaultStuckAfter = 15 * time.Minute
	// stuckBatch bounds the jobs one recovery round fails.
	stuckBatch = 500
)

// MonitorOptions configure a Monitor. Store is required.
type MonitorOptions struct {
	Store *store.Store
	// StuckAfter is how long a job may stay assigned or processing before
	// it fails (scheduler.stuck_after).
	StuckAfter time.Duration
	// WorkerTimeout is how long a worker may stay silent before it goes
	// offline (scheduler.worker_timeout).
	WorkerTimeout time.Duration
	// Every is how often stuck jobs are looked for
	// (scheduler.poll_interval); silent workers are looked for every
	// WorkerTimeout/4.
	Every    time.Duration
	Logger   hclog.Logger
	Registry prometheus.Registerer
}

// Monitor recovers from what workers fail to say: jobs that never get a
// result fail after StuckAfter (and release what they reserved; there is
// no automatic retry), and workers silent for WorkerTimeout go offline
// with their apps stopped. Every core may run one: the store's row locks
// and re-checks make each change happen once.
type Monitor struct {
	st                 *store.Store
	log                hclog.Logger
	stuckAfter, silent time.Duration
	every              time.Duration
	m                  *monitorMetrics
}

// NewMonitor checks o and returns a Monitor.
func NewMonitor(o MonitorOptions) (*Monitor, error) {
	if o.Store == nil {
		return nil, errors.New("scheduler: monitor: Store is required")
	}
	m := &Monitor{st: o.Store, log: o.Logger, stuckAfter: o.StuckAfter, silent: o.WorkerTimeout, every: o.Every}
	if m.log == nil {
		m.log = hclog.NewNullLogger()
	}
	if m.stuckAfter <= 0 {
		m.stuckAfter = DefaultStuckAfter
	}
	if m.silent <= 0 {
		m.silent = DefaultWorkerTimeout
	}
	if m.every <= 0 {
		m.every = DefaultPollInterval
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var err error
	if m.m, err = newMonitorMetrics(reg); err != nil {
		return nil, err
	}
	return m, nil
}

// Run checks for stuck jobs every Every and for silent workers every
// WorkerTimeout/4 until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	stuck := time.NewTicker(m.every)
	defer stuck.Stop()
	health := time.NewTicker(max(m.silent/4, time.Second))
	defer health.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-stuck.C:
			if _, err := m.RecoverStuckJobs(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("stuck job recovery failed", "error", err)
			}
		case <-health.C:
			if _, err := m.CheckWorkers(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("worker health check failed", "error", err)
			}
		}
	}
}

// RecoverStuckJobs fails the jobs assigned or processing for longer than
// StuckAfter, each through store.CompleteJob (job, app, deployment,
// reservation and deployment.failed event in one transaction), and returns
// how many it failed.
func (m *Monitor) RecoverStuckJobs(ctx context.Context) (int, error) {
	jobs, err := m.st.StuckJobs(ctx, m.stuckAfter, stuckBatch)
	if err != nil {
		return 0, err
	}
	failed := 0
	for _, j := range jobs {
		msg := fmt.Sprintf("no result from the worker within %s (stuck_after); the job failed and will not be retried", m.stuckAfter)
		_, err := m.st.CompleteJob(ctx, j.ID, *j.WorkerID, store.Outcome{Success: false, Message: msg, Error: msg})
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrRetry):
			continue // finished or moved meanwhile; the next round looks again
		case err != nil:
			return failed, fmt.Errorf("scheduler: fail stuck job %d: %w", j.ID, err)
		}
		failed++
		m.log.Warn("failed a stuck job", "job_id", j.ID, "type", j.Type, "app_id", j.AppID, "worker_id", *j.WorkerID)
	}
	m.m.stuck.Add(float64(failed))
	return failed, nil
}

// CheckWorkers takes the workers silent for WorkerTimeout offline and
// stops their apps (store.TakeSilentWorkersOffline).
func (m *Monitor) CheckWorkers(ctx context.Context) ([]store.OfflineWorker, error) {
	off, err := m.st.TakeSilentWorkersOffline(ctx, m.silent)
	if err != nil {
		return nil, err
	}
	for _, w := range off {
		m.log.Warn("worker went silent; marked offline and its apps stopped", "worker", w.Name, "worker_id", w.ID,
			"apps_stopped", w.StoppedApps, "silent_for", m.silent)
		m.m.offline.Inc()
		m.m.appsStopped.Add(float64(w.StoppedApps))
	}
	return off, nil
}

type monitorMetrics struct {
	stuck, offline, appsStopped prometheus.Counter
}

func newMonitorMetrics(reg prometheus.Registerer) (*monitorMetrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "scheduler", Name: name, Help: help})
	}
	m := &monitorMetrics{
		stuck:       c("stuck_jobs_failed_total", "Jobs failed because their worker sent no result within stuck_after."),
		offline:     c("workers_marked_offline_total", "Workers taken offline after worker_timeout without a heartbeat."),
		appsStopped: c("apps_stopped_offline_total", "Apps stopped because their worker was taken offline."),
	}
	for _, x := range []prometheus.Collector{m.stuck, m.offline, m.appsStopped} {
		if err := reg.Register(x); err != nil {
			return nil, fmt.Errorf("scheduler: register metrics: %w", err)
		}
	}
	return m, nil
}
