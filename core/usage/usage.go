// Package usage keeps each app's usage history: every minute it samples
// the live statistics of the apps this core holds, aggregates them into
// 5-minute buckets (average and maximum CPU, memory and network rate, and
// the bytes moved, from the worker's running byte counter), writes each
// bucket when it closes, and once a day prunes buckets older than the
// retention (90 days) under a cluster-wide advisory lock.
//
// Every core samples the apps whose statistics it holds. A bucket written
// twice for one app (a core that stopped mid-bucket and flushed, or a worker
// that moved to another core) is merged by the store, weighted by sample
// counts, so no reading is lost or counted twice.
package usage

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/core/hub"
	"github.com/wisehosting/wisehosting/core/store"
)

// Defaults of Options.
const (
	// BucketSize is the width of a usage bucket (the schema checks it).
	BucketSize = 5 * time.Minute
	// DefaultSampleEvery is how often the live statistics are read.
	DefaultSampleEvery = time.Minute
	// DefaultRetention is how long buckets are kept.
	DefaultRetention = 90 * 24 * time.Hour
	// DefaultPruneEvery is how often old buckets are pruned.
	DefaultPruneEvery = 24 * time.Hour
)

// Store is what the recorder reads and writes (store.Store).
type Store interface {
	ListRunningApps(ctx context.Context) ([]store.RunningApp, error)
	UpsertUsageSamples(ctx context.Context, samples []store.UsageSample) error
	PruneUsageSamples(ctx context.Context, before time.Time) (int64, error)
	WithTryAdvisoryLock(ctx context.Context, key int64, fn func(ctx context.Context) error) (bool, error)
}

// StatsSource gives an app's live statistics when this core holds them
// (hub.Hub.AppStatsLive).
type StatsSource interface {
	AppStatsLive(appID int64) (hub.AppStats, bool)
}

// Options configure a Recorder.
type Options struct {
	Store Store
	Stats StatsSource
	// SampleEvery, Retention and PruneEvery default to the constants.
	SampleEvery, Retention, PruneEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger hclog.Logger
}

// Recorder samples and aggregates usage.
type Recorder struct {
	o   Options
	log hclog.Logger

	mu      sync.Mutex // guards acc, last and pending
	acc     map[int64]*bucket
	last    map[int64]int64 // the last NetTotalBytes seen per app
	pending []store.UsageSample
}

// bucket accumulates one app's readings in one bucket.
type bucket struct {
	userID         int64
	start          time.Time
	n              int
	cpuSum, cpuMax float64
	memSum         float64
	memMax         int64
	netSum, netMax float64
	bytes          int64
}

// New returns a recorder; nothing runs before Run.
func New(o Options) (*Recorder, error) {
	if o.Store == nil || o.Stats == nil {
		return nil, fmt.Errorf("usage: Store and Stats are required")
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = DefaultSampleEvery
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = DefaultPruneEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Recorder{o: o, log: o.Logger, acc: map[int64]*bucket{}, last: map[int64]int64{}}
	if r.log == nil {
		r.log = hclog.NewNullLogger()
	}
	return r, nil
}

// BucketStart is the start of the bucket t falls in.
func BucketStart(t time.Time) time.Time { return t.UTC().Truncate(BucketSize) }

// Run samples every SampleEvery and prunes every PruneEvery until ctx
// ends, then writes the open buckets.
func (r *Recorder) Run(ctx context.Context) {
	sample := time.NewTicker(r.o.SampleEvery)
	defer sample.Stop()
	prune := time.NewTimer(time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.log.Warn("writing the open usage buckets at shutdown failed", "error", err)
			}
			cancel()
			return
		case <-sample.C:
			if err := r.Sample(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("usage sampling failed", "error", err)
			}
		case <-prune.C:
			start := time.Now()
			if ran, n, err := r.Prune(ctx); err != nil {
				r.log.Warn("usage pruning failed", "error", err)
			} else if ran {
				r.log.Info("usage history pruned", "rows", n, "retention", r.o.Retention, "took", time.Since(start).Round(time.Millisecond))
			}
			prune.Reset(r.o.PruneEvery)
		}
	}
}

// Sample reads the live statistics of every running app this core holds,
// adds them to the apps' open buckets, and writes (in one statement) the
// buckets that closed.
func (r *Recorder) Sample(ctx context.Context) error {
	apps, err := r.o.Store.ListRunningApps(ctx)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	now := r.o.Now()
	cur := BucketStart(now)
	r.mu.Lock()
	closed := r.takePending()
	for _, a := range apps {
		st, ok := r.o.Stats.AppStatsLive(a.AppID)
		if !ok {
			continue
		}
		b := r.acc[a.AppID]
		if b != nil && !b.start.Equal(cur) {
			closed = append(closed, b.sample(a.AppID))
			b = nil
		}
		if b == nil {
			b = &bucket{userID: a.UserID, start: cur}
			r.acc[a.AppID] = b
		}
		b.add(st, r.delta(a.AppID, st.NetTotalBytes))
	}
	// Counters of apps no longer running are forgotten.
	if len(r.last) > len(apps) {
		running := make(map[int64]bool, len(apps))
		for _, a := range apps {
			running[a.AppID] = true
		}
		for id := range r.last {
			if !running[id] {
				delete(r.last, id)
			}
		}
	}
	// Buckets of apps no longer sampled here (stopped, or moved to
	// another core) close when their time is up.
	for id, b := range r.acc {
		if !b.start.Equal(cur) {
			closed = append(closed, b.sample(id))
			delete(r.acc, id)
		}
	}
	r.mu.Unlock()
	if err := r.o.Store.UpsertUsageSamples(ctx, closed); err != nil {
		r.requeue(closed)
		return fmt.Errorf("usage: %w", err)
	}
	return nil
}

// delta is how many bytes an app moved since its last reading: the growth
// of its running counter, or the whole counter after a reset (the app
// restarted, its counter began again from zero). The first reading gives
// no delta. Called with mu held.
func (r *Recorder) delta(appID, total int64) int64 {
	prev, ok := r.last[appID]
	r.last[appID] = total
	switch {
	case !ok:
		return 0
	case total >= prev:
		return total - prev
	default:
		return total
	}
}

// maxPending bounds the closed buckets kept for a retry while the
// database refuses writes (a day of 5-minute buckets of ~350 apps).
const maxPending = 100_000

// requeue keeps closed buckets whose write failed, for the next write;
// past maxPending the oldest are dropped, with a warning.
func (r *Recorder) requeue(samples []store.UsageSample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(samples, r.pending...)
	if over := len(r.pending) - maxPending; over > 0 {
		r.log.Warn("usage buckets dropped: the database has refused writes for too long", "dropped", over)
		r.pending = r.pending[over:]
	}
}

// takePending returns and clears the buckets waiting for a retry. Called
// with mu held.
func (r *Recorder) takePending() []store.UsageSample {
	p := r.pending
	r.pending = nil
	return p
}

// Flush writes every open bucket (at shutdown; the store merges a bucket
// written twice).
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	open := r.takePending()
	for id, b := range r.acc {
		open = append(open, b.sample(id))
	}
	r.acc = map[int64]*bucket{}
	r.mu.Unlock()
	if err := r.o.Store.UpsertUsageSamples(ctx, open); err != nil {
		r.requeue(open)
		return fmt.Errorf("usage: flush: %w", err)
	}
	return nil
}

// Prune deletes the buckets older than the retention, unless another core
// is doing it (advisory lock). It reports whether it ran and how many rows
// went.
func (r *Recorder) Prune(ctx context.Context) (ran bool, deleted int64, err error) {
	before := r.o.Now().Add(-r.o.Retention)
	ran, err = r.o.Store.WithTryAdvisoryLock(ctx, store.LockPruneUsage, func(ctx context.Context) error {
		var err error
		deleted, err = r.o.Store.PruneUsageSamples(ctx, before)
		return err
	})
	if err != nil {
		return ran, deleted, fmt.Errorf("usage: prune: %w", err)
	}
	return ran, deleted, nil
}

func (b *bucket) add(s hub.AppStats, bytes int64) {
	b.n++
	b.cpuSum += s.CPUPercent
	b.cpuMax = max(b.cpuMax, s.CPUPercent)
	b.memSum += float64(s.MemBytes)
	b.memMax = max(b.memMax, s.MemBytes)
	b.netSum += s.NetMbps
	b.netMax = max(b.netMax, s.NetMbps)
	b.bytes += bytes
}

func (b *bucket) sample(appID int64) store.UsageSample {
	u := store.UsageSample{AppID: appID, UserID: b.userID, BucketStart: b.start, CPUMax: b.cpuMax, MemMax: b.memMax,
		NetMax: b.netMax, NetBytesDelta: b.bytes, Samples: b.n}
	if b.n > 0 {
		n := float64(b.n)
		// min keeps avg ≤ max against rounding (the schema checks it).
		u.CPUAvg = min(b.cpuSum/n, b.cpuMax)
		u.MemAvg = min(int64(b.memSum/n), b.memMax)
		u.NetAvg = min(b.netSum/n, b.netMax)
	}
	return u
}
