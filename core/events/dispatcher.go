// Package events delivers the platform's events: the outbox dispatcher
// reads what the rest of the core wrote to the event outbox (in the same
// transaction as the change behind each event), sends every event to the
// alert-sink plugins whose patterns match and to the owner's webhooks
// subscribed to it, and retries the targets that did not take it on a
// Standard Webhooks-like schedule (at once, 5 s, 5 m, 30 m, 2 h, 5 h, then
// every 10 h, each with ±10 % jitter, never sooner than a Retry-After)
// until events.max_age, when the event is dead for that target.
//
// One dispatcher delivers for the whole cluster: every core runs Run, and
// the one holding the advisory lock store.LockDispatchEvents does the
// work; the others take over within seconds of its session ending.
// Delivery is at least once. A pass records its outcomes after making its
// deliveries, so a core that dies mid-pass leaves its events pending and
// the next holder sends them again; a sink plugin that crashes fails its
// call, and the call's events are retried on the schedule. Receivers
// deduplicate on the event id (webhook-id). A stopping core gives the
// passes in flight Options.Drain to finish. Sink plugins get one Deliver
// call per pass with all the pass's events for them.
//
// Every core also runs the daily retention prune of finished outbox rows,
// webhook deliveries and audit events (one at a time: store.LockPruneEvents).
package events

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/core/pluginhost"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/stdwebhook"
)

// Defaults of Options.
const (
	DefaultBatchSize   = 500
	DefaultConcurrency = 4
	DefaultMaxAge      = 72 * time.Hour
	DefaultRetention   = 30 * 24 * time.Hour
	DefaultPoll        = time.Second
	DefaultLockRetry   = 5 * time.Second
	DefaultSinkTimeout = 2 * time.Minute
	DefaultPruneEvery  = 24 * time.Hour
	DefaultDrain       = 5 * time.Second
)

// lockCheckTimeout bounds the check that the dispatcher's lock session is
// still alive.
const lockCheckTimeout = 10 * time.Second

// defaultSchedule backs DefaultSchedule.
var defaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour,
}

// DefaultSchedule returns the retry schedule: the wait after the n-th
// failed attempt is element n-1, the last one repeating.
func DefaultSchedule() []time.Duration { return slices.Clone(defaultSchedule) }

// Store is what the dispatcher reads and writes (store.Store).
type Store interface {
	PendingEvents(ctx context.Context, limit int, skip []int64) ([]store.OutboxEvent, error)
	DueRetries(ctx context.Context, now time.Time, limit int, skip []int64) ([]store.DueRetry, error)
	RecordDeliveries(ctx context.Context, fanned []int64, attempts []store.Attempt) error
	ActiveWebhooks(ctx context.Context, userIDs []int64) ([]*store.Webhook, error)
	PruneEvents(ctx context.Context, before time.Time) (outbox, deliveries, audit int64, err error)
	HoldAdvisoryLock(ctx context.Context, key int64) (*store.HeldLock, error)
	WithTryAdvisoryLock(ctx context.Context, key int64, fn func(ctx context.Context) error) (bool, error)
}

// WebhookSender sends one event to one user's webhook.
type WebhookSender interface {
	SendWebhook(ctx context.Context, w *store.Webhook, ev event.Event) stdwebhook.Result
}

// Options configure a Dispatcher.
type Options struct {
	Store Store
	// Sinks are the alert-sink plugins (pluginhost.Host.AlertSinks).
	Sinks []pluginhost.AlertSink
	// Domain is the platform's domain: events naming an app's subdomain
	// get its URL (https://<subdomain>.<domain>) as data.url.
	Domain string
	// Webhooks sends to users' webhooks; nil leaves them out.
	Webhooks WebhookSender
	// WebhookConcurrency bounds the webhook requests of one pass in
	// flight at once (default 16).
	WebhookConcurrency int
	// Listen registers fn to be called when events are written (the
	// listener's ChannelEvents handler and OnConnect); nil means polling
	// only.
	Listen func(fn func())
	// BatchSize is how many pending events (and due retries) one pass
	// takes; Concurrency how many passes may be in flight.
	BatchSize, Concurrency int
	// MaxAge: a target still failing this long after the event is given up.
	MaxAge time.Duration
	// Retention: finished outbox rows, webhook deliveries and audit events
	// older than this are pruned every PruneEvery.
	Retention, PruneEvery time.Duration
	// Schedule is the retry schedule (DefaultSchedule when empty).
	Schedule []time.Duration
	// Poll is how often due retries are looked for, and new events when no
	// notification came; LockRetry how often a core without the lock
	// tries to take it (and the leader checks it still holds it).
	Poll, LockRetry time.Duration
	// SinkTimeout bounds one Deliver call.
	SinkTimeout time.Duration
	// Drain is how long passes in flight may go on once the core stops or
	// loses the lock (default 5 s).
	Drain time.Duration
	// Now and Jitter (a factor around 1) are the clock and the jitter;
	// nil means time.Now and a uniform 0.9..1.1.
	Now    func() time.Time
	Jitter func() float64
	Logger hclog.Logger
	// Registry gets the metrics (nil: a private registry).
	Registry prometheus.Registerer
}

// Dispatcher delivers outbox events. Create it with New and call Run.
type Dispatcher struct {
	o    Options
	log  hclog.Logger
	wake chan struct{}
	m    *dispatchMetrics

	mu       sync.Mutex
	inflight map[int64]int // outbox seq -> passes holding it
}

// New returns a dispatcher.
func New(o Options) (*Dispatcher, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("events: a store is required")
	}
	for _, s := range o.Sinks {
		for _, p := range s.Events {
			if err := event.ValidPattern(p); err != nil {
				return nil, fmt.Errorf("events: sink %s: %w", s.Name, err)
			}
		}
	}
	setDefault(&o.BatchSize, DefaultBatchSize)
	setDefault(&o.Concurrency, DefaultConcurrency)
	setDefault(&o.WebhookConcurrency, 16)
	setDefault(&o.MaxAge, DefaultMaxAge)
	setDefault(&o.Retention, DefaultRetention)
	setDefault(&o.PruneEvery, DefaultPruneEvery)
	setDefault(&o.Poll, DefaultPoll)
	setDefault(&o.LockRetry, DefaultLockRetry)
	setDefault(&o.SinkTimeout, DefaultSinkTimeout)
	setDefault(&o.Drain, DefaultDrain)
	if len(o.Schedule) == 0 {
		o.Schedule = DefaultSchedule()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Jitter == nil {
		o.Jitter = func() float64 { return 0.9 + 0.2*rand.Float64() }
	}
	d := &Dispatcher{o: o, log: o.Logger, wake: make(chan struct{}, 1), inflight: map[int64]int{}}
	if d.log == nil {
		d.log = hclog.NewNullLogger()
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var err error
	if d.m, err = newDispatchMetrics(reg); err != nil {
		return nil, err
	}
	if o.Listen != nil {
		o.Listen(d.Wake)
	}
	return d, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Wake makes the dispatcher look for events now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers events while this core holds the dispatcher lock, takes it
// over when the holder goes away, and prunes daily, until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { d.pruneLoop(ctx) })
	defer wg.Wait()
	for ctx.Err() == nil {
		l, err := d.o.Store.HoldAdvisoryLock(ctx, store.LockDispatchEvents)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				d.m.errors.WithLabelValues("lock").Inc()
				d.log.Warn("cannot take the dispatcher lock", "error", err)
			}
		case l != nil:
			d.lead(ctx, l)
			if err := l.Release(ctx); err != nil {
				d.log.Warn("releasing the dispatcher lock", "error", err)
			}
			continue
		}
		sleep(ctx, d.o.LockRetry)
	}
}

// lead dispatches while l stays held.
func (d *Dispatcher) lead(parent context.Context, l *store.HeldLock) {
	d.log.Info("delivering events: this core holds the dispatcher lock")
	d.m.leader.Set(1)
	defer d.m.leader.Set(0)
	ctx, cancel := context.WithCancel(parent)
	// The checker uses the lock's connection, which is not safe for
	// concurrent use: lead waits for it before the caller releases the
	// lock, and its pings are not cut short by ctx (a cancelled query
	// closes the connection).
	var checker sync.WaitGroup
	defer checker.Wait()
	defer cancel() // runs first: stops the checker
	checker.Go(func() {
		t := time.NewTicker(d.o.LockRetry)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// A slow answer is not a lost session: only an error or
				// lockCheckTimeout of silence gives the lock up.
				cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), lockCheckTimeout)
				err := l.Check(cctx)
				ccancel()
				if err != nil && ctx.Err() == nil {
					d.log.Warn("lost the dispatcher lock; stopping delivery", "error", err)
					cancel()
					return
				}
			}
		}
	})

	// Passes run on their own context: when the core stops or the lock is
	// lost, those in flight get Drain to finish, so what they delivered is
	// recorded rather than sent again.
	passCtx, passCancel := context.WithCancel(context.WithoutCancel(parent))
	defer passCancel()
	stopDrain := context.AfterFunc(ctx, func() { time.AfterFunc(d.o.Drain, passCancel) })
	defer stopDrain()

	slots := make(chan struct{}, d.o.Concurrency)
	var passes sync.WaitGroup
	defer passes.Wait()
	failures := 0
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		p, full, err := d.claim(ctx)
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return
			}
			failures++
			d.m.errors.WithLabelValues("read").Inc()
			d.log.Warn("reading the outbox failed", "error", err)
			sleep(ctx, min(time.Duration(failures)*d.o.Poll, 30*time.Second))
			continue
		}
		failures = 0
		if p.empty() {
			<-slots
			d.idle(ctx)
			continue
		}
		passes.Go(func() {
			defer func() { <-slots }()
			d.run(passCtx, p)
			if full {
				d.Wake()
			}
		})
		if !full {
			d.idle(ctx)
		}
	}
}

// idle waits for a notification, the poll interval or the end.
func (d *Dispatcher) idle(ctx context.Context) {
	t := time.NewTimer(d.o.Poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-d.wake:
	case <-t.C:
	}
}

func sleep(ctx context.Context, dur time.Duration) {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// pass is the work of one delivery pass.
type pass struct {
	pending []store.OutboxEvent
	retries []store.DueRetry
	seqs    []int64 // every outbox seq the pass holds
}

func (p *pass) empty() bool { return len(p.pending) == 0 && len(p.retries) == 0 }

// claim reads the next pending events and due retries that no pass in
// flight holds, and marks them held. full says more may be waiting.
func (d *Dispatcher) claim(ctx context.Context) (*pass, bool, error) {
	d.mu.Lock()
	skip := make([]int64, 0, len(d.inflight))
	for seq := range d.inflight {
		skip = append(skip, seq)
	}
	d.mu.Unlock()
	pending, err := d.o.Store.PendingEvents(ctx, d.o.BatchSize, skip)
	if err != nil {
		return nil, false, fmt.Errorf("events: %w", err)
	}
	retries, err := d.o.Store.DueRetries(ctx, d.o.Now(), d.o.BatchSize, skip)
	if err != nil {
		return nil, false, fmt.Errorf("events: %w", err)
	}
	for i := range pending {
		pending[i].Event.Data = withAppURL(pending[i].Event.Data, d.o.Domain)
	}
	for i := range retries {
		retries[i].Event.Data = withAppURL(retries[i].Event.Data, d.o.Domain)
	}
	p := &pass{pending: pending, retries: retries}
	d.mu.Lock()
	for _, e := range pending {
		p.seqs = append(p.seqs, e.Seq)
	}
	for _, r := range retries {
		p.seqs = append(p.seqs, r.Seq)
	}
	for _, seq := range p.seqs {
		d.inflight[seq]++
	}
	d.mu.Unlock()
	return p, len(pending) == d.o.BatchSize || len(retries) == d.o.BatchSize, nil
}

// release forgets the pass's seqs (after its outcomes are recorded).
func (d *Dispatcher) release(p *pass) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, seq := range p.seqs {
		if d.inflight[seq]--; d.inflight[seq] <= 0 {
			delete(d.inflight, seq)
		}
	}
}

// item is one event to send to one target.
type item struct {
	ev      store.OutboxEvent
	target  string // sink:<name> or webhook:<id>
	attempt int    // this attempt's number
}

// run delivers one pass and records its outcomes.
func (d *Dispatcher) run(ctx context.Context, p *pass) {
	defer d.release(p)
	attempts, err := d.deliver(ctx, p)
	if err != nil {
		if ctx.Err() == nil {
			d.m.errors.WithLabelValues("deliver").Inc()
			d.log.Warn("delivery pass failed; its events stay queued", "error", err)
		}
		return
	}
	fanned := make([]int64, len(p.pending))
	for i, e := range p.pending {
		fanned[i] = e.Seq
	}
	// The outcomes are recorded even when ctx ended meanwhile: the
	// deliveries happened.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for try := 1; ; try++ {
		err = d.o.Store.RecordDeliveries(rctx, fanned, attempts)
		if err == nil || try == 3 || rctx.Err() != nil {
			break
		}
		sleep(rctx, time.Duration(try)*200*time.Millisecond)
	}
	if err != nil {
		d.m.errors.WithLabelValues("record").Inc()
		d.log.Error("recording deliveries failed; their events will be sent again", "events", len(p.seqs), "error", err)
		return
	}
	now := d.o.Now()
	for _, a := range attempts {
		d.m.count(a)
	}
	for _, e := range p.pending {
		d.m.latency.Observe(now.Sub(e.Event.Time).Seconds())
	}
}

// deliver sends every item of the pass and returns the attempts to record.
func (d *Dispatcher) deliver(ctx context.Context, p *pass) ([]store.Attempt, error) {
	// The users whose webhooks may be targets.
	var users []int64
	if d.o.Webhooks != nil {
		seen := map[int64]bool{}
		add := func(u int64) {
			if u != 0 && !seen[u] {
				seen[u] = true
				users = append(users, u)
			}
		}
		for _, e := range p.pending {
			add(e.Event.UserID)
		}
		for _, r := range p.retries {
			if strings.HasPrefix(r.Target, webhookPrefix) {
				add(r.Event.UserID)
			}
		}
	}
	hooks, err := d.o.Store.ActiveWebhooks(ctx, users)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	byUser := map[int64][]*store.Webhook{}
	byID := map[int64]*store.Webhook{}
	for _, w := range hooks {
		byUser[w.UserID] = append(byUser[w.UserID], w)
		byID[w.ID] = w
	}
	sinks := map[string]pluginhost.AlertSink{}
	for _, s := range d.o.Sinks {
		sinks[s.Name] = s
	}

	perSink := map[string][]item{}
	var hookItems []item
	var hookOf []*store.Webhook
	var attempts []store.Attempt // targets settled without a request
	for _, e := range p.pending {
		for _, s := range d.o.Sinks {
			if s.Wants(e.Event.Type) {
				perSink[s.Name] = append(perSink[s.Name], item{ev: e, target: sinkPrefix + s.Name, attempt: 1})
			}
		}
		for _, w := range byUser[e.Event.UserID] {
			if len(w.Events) == 0 || event.MatchAny(w.Events, e.Event.Type) {
				hookItems = append(hookItems, item{ev: e, target: webhookTarget(w.ID), attempt: 1})
				hookOf = append(hookOf, w)
			}
		}
	}
	for _, r := range p.retries {
		it := item{ev: r.OutboxEvent, target: r.Target, attempt: r.Attempts + 1}
		switch name, id, ok := parseTarget(r.Target); {
		case !ok:
			attempts = append(attempts, d.finish(it, "unknown target", true))
		case name != "":
			if _, ok := sinks[name]; !ok {
				attempts = append(attempts, d.finish(it, "the sink "+name+" is no longer configured", true))
				continue
			}
			perSink[name] = append(perSink[name], it)
		default:
			w, ok := byID[id]
			if !ok {
				attempts = append(attempts, d.finish(it, "the webhook was deleted or disabled", false))
				continue
			}
			hookItems = append(hookItems, it)
			hookOf = append(hookOf, w)
		}
	}

	var mu sync.Mutex
	collect := func(a ...store.Attempt) {
		mu.Lock()
		attempts = append(attempts, a...)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for name, items := range perSink {
		wg.Go(func() { collect(d.deliverSink(ctx, sinks[name], items)...) })
	}
	if len(hookItems) > 0 {
		sem := make(chan struct{}, d.o.WebhookConcurrency)
		for i, it := range hookItems {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				w := hookOf[i]
				r := d.o.Webhooks.SendWebhook(ctx, w, it.ev.Event)
				a := d.settle(it, r.Outcome, r.RetryAfter, r.Message)
				a.WebhookID, a.EventID, a.EventType = w.ID, it.ev.Event.ID, it.ev.Event.Type
				a.StatusCode, a.Duration, a.Gone = r.StatusCode, r.Duration, r.Gone
				collect(a)
			})
		}
	}
	wg.Wait()
	// Even a pass cut short is recorded: a sink reports what it could not
	// send as retries, and a failed call retries all of its events.
	return attempts, nil
}

const (
	sinkPrefix    = "sink:"
	webhookPrefix = "webhook:"
)

func webhookTarget(id int64) string { return webhookPrefix + strconv.FormatInt(id, 10) }

// parseTarget splits a target into a sink name or a webhook id.
func parseTarget(t string) (sink string, webhook int64, ok bool) {
	if name, found := strings.CutPrefix(t, sinkPrefix); found && name != "" {
		return name, 0, true
	}
	if s, found := strings.CutPrefix(t, webhookPrefix); found {
		id, err := strconv.ParseInt(s, 10, 64)
		return "", id, err == nil && id > 0
	}
	return "", 0, false
}

// deliverSink makes one Deliver call per BatchSize items.
func (d *Dispatcher) deliverSink(ctx context.Context, s pluginhost.AlertSink, items []item) []store.Attempt {
	out := make([]store.Attempt, 0, len(items))
	for chunk := range slices.Chunk(items, d.o.BatchSize) {
		req := &pluginv1.DeliverRequest{Events: make([]*pluginv1.Event, len(chunk))}
		for i, it := range chunk {
			e := it.ev.Event
			req.Events[i] = &pluginv1.Event{
				Id: e.ID, Type: e.Type, TimeUnixNano: e.Time.UnixNano(), UserId: e.UserID, AppId: e.AppID,
				DataJson: e.Data, Attempt: int32(it.attempt),
			}
		}
		cctx, cancel := context.WithTimeout(ctx, d.o.SinkTimeout)
		resp, err := s.Deliver(cctx, req)
		cancel()
		if err != nil {
			d.m.errors.WithLabelValues("sink").Inc()
			d.log.Warn("alert sink call failed; its events are retried", "sink", s.Name, "events", len(chunk), "error", err)
			for _, it := range chunk {
				out = append(out, d.settle(it, stdwebhook.Retry, 0, "the sink call failed: "+err.Error()))
			}
			continue
		}
		results := make(map[string]*pluginv1.DeliveryResult, len(resp.GetResults()))
		for _, r := range resp.GetResults() {
			results[r.GetEventId()] = r
		}
		for _, it := range chunk {
			r, ok := results[it.ev.Event.ID]
			if !ok {
				out = append(out, d.settle(it, stdwebhook.Retry, 0, "the sink returned no result for the event"))
				continue
			}
			o := stdwebhook.Retry
			switch r.GetOutcome() {
			case pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED:
				o = stdwebhook.Delivered
			case pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED:
				o = stdwebhook.Failed
			}
			msg := r.GetMessage()
			if o == stdwebhook.Failed {
				d.log.Warn("alert sink refused an event", "sink", s.Name, "event", it.ev.Event.ID, "type", it.ev.Event.Type, "message", msg)
			}
			out = append(out, d.settle(it, o, time.Duration(r.GetRetryAfterMs())*time.Millisecond, msg))
		}
	}
	return out
}

// settle turns an outcome into the attempt to record: a retry at the
// schedule's next time (jittered, no sooner than retryAfter), or dead when
// that time is past the event's max age.
func (d *Dispatcher) settle(it item, o stdwebhook.Outcome, retryAfter time.Duration, msg string) store.Attempt {
	a := store.Attempt{Seq: it.ev.Seq, Target: it.target, Number: it.attempt}
	switch o {
	case stdwebhook.Delivered:
		return a
	case stdwebhook.Failed:
		a.Dead, a.Error = true, msg
		return a
	}
	if msg == "" {
		msg = "the target asked for a retry"
	}
	wait := d.o.Schedule[min(it.attempt, len(d.o.Schedule))-1]
	wait = time.Duration(float64(wait) * d.o.Jitter())
	wait = max(wait, retryAfter)
	next := d.o.Now().Add(wait)
	if next.Sub(it.ev.Event.Time) > d.o.MaxAge {
		a.Dead = true
		a.Error = fmt.Sprintf("gave up after %d attempts (events.max_age %s): %s", it.attempt, d.o.MaxAge, msg)
		return a
	}
	a.Retry, a.NextAttemptAt, a.Error = true, next, msg
	return a
}

// finish ends a target without a request.
func (d *Dispatcher) finish(it item, why string, dead bool) store.Attempt {
	return store.Attempt{Seq: it.ev.Seq, Target: it.target, Number: it.attempt, Dead: dead, Error: why}
}

// pruneLoop prunes old records every PruneEvery, the first time a minute
// after the start, one core at a time.
func (d *Dispatcher) pruneLoop(ctx context.Context) {
	wait := min(time.Minute, d.o.PruneEvery)
	for {
		sleep(ctx, wait)
		if ctx.Err() != nil {
			return
		}
		wait = d.o.PruneEvery
		if _, err := d.Prune(ctx); err != nil && ctx.Err() == nil {
			d.m.errors.WithLabelValues("prune").Inc()
			d.log.Warn("pruning old events failed", "error", err)
		}
	}
}

// Prune deletes finished outbox rows, webhook deliveries and audit events
// older than the retention, unless another core is pruning; ran says
// whether this one did.
func (d *Dispatcher) Prune(ctx context.Context) (ran bool, err error) {
	return d.o.Store.WithTryAdvisoryLock(ctx, store.LockPruneEvents, func(ctx context.Context) error {
		before := d.o.Now().Add(-d.o.Retention)
		o, w, a, err := d.o.Store.PruneEvents(ctx, before)
		if err != nil {
			return fmt.Errorf("events: prune: %w", err)
		}
		if o+w+a > 0 {
			d.log.Info("pruned old events", "outbox", o, "webhook_deliveries", w, "audit_events", a, "before", before.UTC().Format(time.RFC3339))
		}
		return nil
	})
}

// dispatchMetrics are the dispatcher's Prometheus metrics.
type dispatchMetrics struct {
	leader     prometheus.Gauge
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
	errors     *prometheus.CounterVec
}

func newDispatchMetrics(reg prometheus.Registerer) (*dispatchMetrics, error) {
	m := &dispatchMetrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "events",
			Name: "dispatcher_leader", Help: "1 while this core holds the dispatcher lock and delivers events."}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "events",
			Name: "deliveries_total", Help: "Delivery attempts by target kind (sink, webhook) and result (delivered, retry, dead; dropped: the target is gone, e.g. a deleted webhook)."},
			[]string{"target", "result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "events",
			Name: "first_pass_seconds", Help: "Time from an event's creation to the end of its first delivery pass.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "events",
			Name: "errors_total", Help: "Dispatcher failures by operation (lock, read, deliver, sink, record, prune)."},
			[]string{"op"}),
	}
	for _, c := range []prometheus.Collector{m.leader, m.deliveries, m.latency, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("events: metrics: %w", err)
		}
	}
	return m, nil
}

func (m *dispatchMetrics) count(a store.Attempt) {
	kind := "sink"
	if strings.HasPrefix(a.Target, webhookPrefix) {
		kind = "webhook"
	}
	result := "delivered"
	switch {
	case a.Retry:
		result = "retry"
	case a.Dead:
		result = "dead"
	case a.Error != "":
		result = "dropped"
	}
	m.deliveries.WithLabelValues(kind, result).Inc()
}
