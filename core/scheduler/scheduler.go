// Package scheduler is the core's placement loop: it claims pending jobs in
// batches, asks the configured scheduler plugin where each should run (one
// call per batch), applies the placements with set-based SQL under the
// capacity guard in the same transaction, and hands the assigned jobs to
// the hub to push. The database is the truth and the plugin only proposes:
// store.AssignJobs ignores placements on workers that cannot take a job.
//
// Any number of cores may run the loop against one database, and each core
// runs Concurrency passes at once: jobs are claimed FOR UPDATE SKIP LOCKED.
// A pass that claims a full batch wakes a sibling at once, so during a
// backlog one pass claims and consults the plugin while another applies
// its batch: the capacity guard and the workers' row locks (taken in id
// order) serialize only the part that must be. A notification on
// store.ChannelJobs (migration 003) wakes the loop as soon as jobs are
// added or capacity is freed; the poll interval is only a safety net.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Placer proposes placements: a scheduler plugin (sdk.Scheduler).
type Placer interface {
	Place(ctx context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error)
}

// Pusher delivers assigned jobs to their workers (the hub).
type Pusher interface {
	PushJobs(assigned []store.AssignedJob) int
}

// Defaults of Options.
const (
	DefaultBatchSize     = 2000
	DefaultConcurrency   = 2
	DefaultPollInterval  = 5 * time.Second
	DefaultWorkerTimeout = 2 * time.Minute
	// placeTimeout bounds one plugin call.
	placeTimeout = 30 * time.Second
	// retryAfterError is how long the loop waits after a failed pass.
	retryAfterError = time.Second
	// statsEvery is how often, at most, a loop working through a backlog
	// checks that the planner's statistics of jobs are not stale, and
	// statsMinChanged how many changed rows make them worth refreshing.
	statsEvery      = 5 * time.Second
	statsMinChanged = 10_000
)

// Options configure a Scheduler. Store and Placer are required.
type Options struct {
	Store  *store.Store
	Placer Placer
	// Pusher, when set, gets every assigned batch after its commit.
	Pusher Pusher
	// Listener, when set, wakes the loop on store.ChannelJobs; the caller
	// runs it.
	Listener *store.Listener
	// BatchSize caps the jobs claimed per pass (scheduler.batch_size).
	BatchSize int
	// Concurrency is how many passes may run at once
	// (scheduler.concurrency).
	Concurrency int
	// PollInterval is the safety-net poll (scheduler.poll_interval).
	PollInterval time.Duration
	// WorkerTimeout is how recent a worker's heartbeat must be for it to
	// be placed on (scheduler.worker_timeout).
	WorkerTimeout time.Duration
	Logger        hclog.Logger
	// Registry receives the scheduler's metrics; nil means a private one.
	Registry prometheus.Registerer
}

// Scheduler runs placement passes.
type Scheduler struct {
	st     *store.Store
	placer Placer
	pusher Pusher
	log    hclog.Logger
	batch  int
	conc   int
	poll   time.Duration
	fresh  time.Duration
	wake   chan struct{}
	m      *schedMetrics
	// statsAt is when a pass last checked the jobs table's statistics.
	statsMu sync.Mutex
	statsAt time.Time
	// progress is whether the last pass that claimed jobs assigned any.
	progress atomic.Bool
}

// New checks o and returns a Scheduler; nothing runs before Run.
func New(o Options) (*Scheduler, error) {
	if o.Store == nil || o.Placer == nil {
		return nil, errors.New("scheduler: Store and Placer are required")
	}
	s := &Scheduler{st: o.Store, placer: o.Placer, pusher: o.Pusher, log: o.Logger,
		batch: o.BatchSize, conc: o.Concurrency, poll: o.PollInterval, fresh: o.WorkerTimeout, wake: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.batch <= 0 {
		s.batch = DefaultBatchSize
	}
	if s.conc <= 0 {
		s.conc = DefaultConcurrency
	}
	if s.poll <= 0 {
		s.poll = DefaultPollInterval
	}
	s.progress.Store(true) // the first full claim may wake a sibling
	if s.fresh <= 0 {
		s.fresh = DefaultWorkerTimeout
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var err error
	if s.m, err = newMetrics(reg); err != nil {
		return nil, err
	}
	if o.Listener != nil {
		o.Listener.Handle(store.ChannelJobs, func(string) { s.Wake() })
		// Notifications sent while the listener was away are lost.
		o.Listener.OnConnect(s.Wake)
	}
	return s, nil
}

// Wake makes the loop run a pass now (it never blocks; wakes coalesce).
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run runs passes, up to Concurrency at once, until ctx ends: at once,
// whenever woken, every PollInterval, and again straight away while full
// batches keep being placed.
func (s *Scheduler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range s.conc {
		wg.Go(func() { s.loop(ctx) })
	}
	wg.Wait()
	return nil
}

// loop is one of Run's pass loops.
func (s *Scheduler) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
		wait := s.poll
		res, err := s.Pass(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Warn("scheduling pass failed; retrying", "error", err)
			wait = min(retryAfterError, s.poll)
		case res.Claimed == s.batch && len(res.Assigned) > 0:
			s.Wake() // more may be waiting
			s.refreshStats(ctx)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// refreshStats keeps the claim query's plan good through a backlog (see
// store.RefreshJobStats), checking at most every statsEvery.
func (s *Scheduler) refreshStats(ctx context.Context) {
	s.statsMu.Lock()
	due := time.Since(s.statsAt) >= statsEvery
	if due {
		s.statsAt = time.Now()
	}
	s.statsMu.Unlock()
	if !due {
		return
	}
	if did, err := s.st.RefreshJobStats(ctx, statsMinChanged); err != nil {
		s.log.Warn("cannot refresh the jobs table's statistics", "error", err)
	} else if did {
		s.log.Info("refreshed the jobs table's statistics for a backlog of pending jobs")
	}
}

// Result is what a pass did.
type Result struct {
	// Claimed is how many pending jobs the pass locked.
	Claimed int
	// Workers is how many eligible workers it offered the placer.
	Workers int
	// Assigned lists the jobs it assigned (and committed).
	Assigned []store.AssignedJob
}

// Pass runs one placement pass: claim, place (one plugin call), assign,
// commit, push. Jobs it does not assign stay pending. An error leaves
// every claimed job pending.
func (s *Scheduler) Pass(ctx context.Context) (Result, error) {
	start := time.Now()
	var res Result
	err := s.st.InTx(ctx, func(tx pgx.Tx) error {
		jobs, err := store.ClaimPendingJobs(ctx, tx, s.batch)
		if err != nil || len(jobs) == 0 {
			return err
		}
		res.Claimed = len(jobs)
		if len(jobs) == s.batch && s.progress.Load() {
			// More are probably waiting: a sibling pass claims the next
			// batch while this one is placed. Not after a pass that placed
			// nothing, or a backlog nobody can take would spin.
			s.Wake()
		}
		loads, err := store.EligibleWorkers(ctx, tx, s.fresh)
		if err != nil || len(loads) == 0 {
			return err
		}
		res.Workers = len(loads)
		pctx, cancel := context.WithTimeout(ctx, placeTimeout)
		resp, err := s.placer.Place(pctx, PlaceRequest(jobs, loads))
		cancel()
		if err != nil {
			return fmt.Errorf("scheduler: place %d jobs: %w", len(jobs), err)
		}
		res.Assigned, err = store.AssignJobs(ctx, tx, loads, jobs, placements(resp))
		return err
	})
	if err != nil {
		s.m.passes.WithLabelValues("error").Inc()
		return Result{}, err
	}
	outcome := "idle"
	if res.Claimed > 0 {
		outcome = "ok"
		s.m.seconds.Observe(time.Since(start).Seconds())
	}
	s.m.passes.WithLabelValues(outcome).Inc()
	if res.Claimed > 0 {
		s.progress.Store(len(res.Assigned) > 0)
	}
	s.m.assigned.Add(float64(len(res.Assigned)))
	s.m.unplaced.Add(float64(res.Claimed - len(res.Assigned)))
	if len(res.Assigned) > 0 && s.pusher != nil {
		s.pusher.PushJobs(res.Assigned)
	}
	if res.Claimed > 0 {
		s.log.Debug("scheduling pass", "claimed", res.Claimed, "workers", res.Workers,
			"assigned", len(res.Assigned), "took", time.Since(start))
	}
	return res, nil
}

// PlaceRequest is the plugin's view of a batch: jobs in claim order and
// the eligible workers.
func PlaceRequest(jobs []store.ClaimedJob, loads []store.WorkerLoad) *pluginv1.PlaceRequest {
	req := &pluginv1.PlaceRequest{
		Jobs:    make([]*pluginv1.PlaceJob, len(jobs)),
		Workers: make([]*pluginv1.PlaceWorker, len(loads)),
	}
	for i, j := range jobs {
		pj := &pluginv1.PlaceJob{Id: j.ID, AppId: j.AppID, Type: j.Type, Priority: j.Priority, Cpu: j.CPU,
			Memory: j.Memory, Runtime: j.Runtime, Zone: j.Zone}
		if j.CurrentWorkerID != nil {
			pj.CurrentWorkerId = *j.CurrentWorkerID
		}
		for _, h := range j.Reserved {
			pj.Reserved = append(pj.Reserved, &pluginv1.Reservation{WorkerId: h.WorkerID, Cpu: h.CPU, Memory: h.Memory})
		}
		req.Jobs[i] = pj
	}
	for i, w := range loads {
		req.Workers[i] = &pluginv1.PlaceWorker{Id: w.ID, Zone: w.Zone, Runtimes: w.Runtimes,
			CapacityCpu: w.CapacityCPU, CapacityMemory: w.CapacityMemory, UsedCpu: w.UsedCPU, UsedMemory: w.UsedMemory,
			CpuPercent: w.CPUPercent, MemoryPercent: w.MemoryPercent, RunningApps: w.RunningApps}
	}
	return req
}

// placements keeps the plugin's proposals that name a worker.
func placements(resp *pluginv1.PlaceResponse) []store.Placement {
	out := make([]store.Placement, 0, len(resp.GetPlacements()))
	for _, p := range resp.GetPlacements() {
		if p.GetWorkerId() != 0 {
			out = append(out, store.Placement{JobID: p.GetJobId(), WorkerID: p.GetWorkerId()})
		}
	}
	return out
}

type schedMetrics struct {
	passes   *prometheus.CounterVec
	assigned prometheus.Counter
	unplaced prometheus.Counter
	seconds  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*schedMetrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metrics.Namespace, Subsystem: "scheduler", Name: name, Help: help}
	}
	m := &schedMetrics{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("passes_total",
			"Scheduling passes by outcome (ok, idle: nothing pending, error).")), []string{"outcome"}),
		assigned: prometheus.NewCounter(prometheus.CounterOpts(opts("jobs_assigned_total",
			"Jobs assigned to a worker by a scheduling pass."))),
		unplaced: prometheus.NewCounter(prometheus.CounterOpts(opts("jobs_unplaced_total",
			"Claimed jobs a pass left pending (no worker fits, or a concurrent pass took the capacity)."))),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "scheduler",
			Name: "pass_seconds", Help: "Duration of scheduling passes that claimed jobs.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	for _, c := range []prometheus.Collector{m.passes, m.assigned, m.unplaced, m.seconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("scheduler: register metrics: %w", err)
		}
	}
	for _, o := range []string{"ok", "idle", "error"} {
		m.passes.WithLabelValues(o)
	}
	return m, nil
}
