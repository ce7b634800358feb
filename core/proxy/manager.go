package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Defaults of Options.
const (
	// DefaultDebounce is how long a change notification waits for more
	// before the table is read: a burst of changes costs one render.
	DefaultDebounce = 50 * time.Millisecond
	// DefaultMaxDelay bounds the debounce while changes keep coming.
	DefaultMaxDelay = 500 * time.Millisecond
	// DefaultPollInterval is the safety poll: the table is read this often
	// even without notifications (a change is missed only if its
	// notification was lost while the listener reconnected, and that
	// reconnect itself triggers a read).
	DefaultPollInterval = 30 * time.Second
	// DefaultRetryMin and DefaultRetryMax bound the backoff between retries
	// of a failed render or apply.
	DefaultRetryMin = 500 * time.Millisecond
	DefaultRetryMax = 30 * time.Second
	// DefaultCallTimeout bounds one Render or Apply call.
	DefaultCallTimeout = 30 * time.Second
)

// Source reads the route table (store.Store.ListRoutes).
type Source interface {
	ListRoutes(ctx context.Context) ([]store.RouteRow, error)
}

// Target is a proxy plugin the manager renders the table for; a Proxy that
// also implements sdk.ProxyApplier gets every generation applied.
type Target struct {
	// Name is the plugin block's name: plugin "proxy" "<Name>".
	Name string
	sdk.Proxy
}

// Options configure a Manager.
type Options struct {
	// Source reads the route table; required.
	Source Source
	// Domain is platform.domain; required.
	Domain string
	// Targets are the proxy plugins, in config order.
	Targets []Target
	// Listener delivers store.ChannelRoutes notifications; nil polls only.
	Listener *store.Listener
	// Debounce, MaxDelay, PollInterval, RetryMin, RetryMax and CallTimeout
	// default to the constants of the same names.
	Debounce, MaxDelay, PollInterval, RetryMin, RetryMax, CallTimeout time.Duration
	// Logger defaults to a null logger; Registry to a private registry.
	Logger   hclog.Logger
	Registry prometheus.Registerer
}

// Output is one proxy plugin's rendering of one generation of the table.
type Output struct {
	// Body and ContentType are what the plugin rendered.
	Body        []byte
	ContentType string
	// ETag is a strong entity tag derived from the body alone, so every
	// core serving the same table gives the same tag.
	ETag string
	// Generation is the generation this output renders.
	Generation uint64
	// Gzip is Body gzip-compressed, once per generation, for pollers that
	// accept it (Go's HTTP client, hence Traefik, does by default); nil
	// for bodies too small to gain. GzipETag is its own strong tag.
	Gzip     []byte
	GzipETag string
}

// minGzip is the smallest body worth compressing.
const minGzip = 1 << 10

// compress fills o.Gzip and o.GzipETag. A proxy configuration is highly
// repetitive: at 10,000 routes the 4.5 MiB Traefik body shrinks about
// tenfold, which is what every poll then sends.
func (o *Output) compress() error {
	if len(o.Body) < minGzip {
		return nil
	}
	var buf bytes.Buffer
	buf.Grow(len(o.Body) / 8)
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if _, err := zw.Write(o.Body); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	o.Gzip = buf.Bytes()
	o.GzipETag = strings.TrimSuffix(o.ETag, `"`) + `-gzip"`
	return nil
}

// State is one generation of the route table.
type State struct {
	// Generation increases by one with every change of the table (on this
	// core; other cores count their own, and agree on ETags).
	Generation uint64
	// Routes are the routes, sorted by name.
	Routes []*pluginv1.Route
	// Rejected are the routes and hosts Build left out.
	Rejected []Rejection
	// At is when this generation was built.
	At time.Time

	hosts   map[string]struct{}
	outputs map[string]*Output
	targets []string
}

// HasTarget reports whether name is one of the manager's proxy plugins.
func (s *State) HasTarget(name string) bool { return slices.Contains(s.targets, name) }

// Routed reports whether host is one of the table's hosts.
func (s *State) Routed(host string) bool {
	_, ok := s.hosts[host]
	return ok
}

// Output returns the rendering of proxy plugin name: the latest one that
// succeeded, which may be of an earlier generation when the latest render
// failed (never a partial one). ok is false while the plugin has rendered
// nothing.
func (s *State) Output(name string) (*Output, bool) {
	o, ok := s.outputs[name]
	return o, ok
}

// Manager keeps the route table and every proxy plugin's rendering of it
// current: it reads the table at start, on every route-change notification
// (debounced), on every listener reconnect and on the safety poll; when the
// table changed it bumps the generation, renders it once per plugin and
// applies it to every plugin that can push; failed renders and applies are
// logged, counted and retried with backoff.
type Manager struct {
	o        Options
	log      hclog.Logger
	m        *managerMetrics
	state    atomic.Pointer[State]
	wake     chan struct{}
	appliers []*applier
	names    []string // of the targets

	mu      sync.Mutex // guards changed
	changed chan struct{}
}

// applier is the push loop of one target that implements
// sdk.ProxyApplier.
type applier struct {
	name    string
	a       sdk.ProxyApplier
	kick    chan struct{}
	applied atomic.Uint64
}

// NewManager checks o and returns a Manager; nothing runs before Run.
func NewManager(o Options) (*Manager, error) {
	if o.Source == nil || o.Domain == "" {
		return nil, errors.New("proxy: Source and Domain are required")
	}
	seen := map[string]bool{}
	for _, t := range o.Targets {
		if t.Name == "" || t.Proxy == nil || seen[t.Name] {
			return nil, fmt.Errorf("proxy: target %q: names must be set and unique, each with a plugin", t.Name)
		}
		seen[t.Name] = true
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&o.Debounce, DefaultDebounce}, {&o.MaxDelay, DefaultMaxDelay}, {&o.PollInterval, DefaultPollInterval},
		{&o.RetryMin, DefaultRetryMin}, {&o.RetryMax, DefaultRetryMax}, {&o.CallTimeout, DefaultCallTimeout}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	m := &Manager{o: o, log: o.Logger, wake: make(chan struct{}, 1), changed: make(chan struct{})}
	if m.log == nil {
		m.log = hclog.NewNullLogger()
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var err error
	if m.m, err = newManagerMetrics(reg, o.Targets); err != nil {
		return nil, err
	}
	for _, t := range o.Targets {
		m.names = append(m.names, t.Name)
		if a, ok := t.Proxy.(sdk.ProxyApplier); ok {
			m.appliers = append(m.appliers, &applier{name: t.Name, a: a, kick: make(chan struct{}, 1)})
		}
	}
	if o.Listener != nil {
		o.Listener.Handle(store.ChannelRoutes, func(string) { m.Wake() })
		// Notifications sent while the listener was away are lost.
		o.Listener.OnConnect(m.Wake)
	}
	return m, nil
}

// Wake makes the manager read the table soon (after the debounce); it
// never blocks, and wakes coalesce.
func (m *Manager) Wake() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// State returns the current generation, or nil before the first read of
// the table succeeded.
func (m *Manager) State() *State { return m.state.Load() }

// Changed returns a channel closed when the next generation is published.
func (m *Manager) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Applied returns the generation proxy plugin name last applied
// successfully (0: none, or not a pushing plugin).
func (m *Manager) Applied(name string) uint64 {
	for _, a := range m.appliers {
		if a.name == name {
			return a.applied.Load()
		}
	}
	return 0
}

// Run keeps the table current until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, a := range m.appliers {
		wg.Go(func() { m.applyLoop(ctx, a) })
	}
	defer wg.Wait()

	poll := time.NewTicker(m.o.PollInterval)
	defer poll.Stop()
	retry := time.NewTimer(0)
	if !retry.Stop() {
		<-retry.C
	}
	backoff := time.Duration(0)
	for {
		failed := m.refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		if failed {
			backoff = nextBackoff(backoff, m.o.RetryMin, m.o.RetryMax)
			retry.Reset(backoff)
		} else {
			backoff = 0
			retry.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-retry.C:
		case <-m.wake:
			m.debounce(ctx)
		}
	}
}

// debounce waits until no wake came for Debounce, or MaxDelay passed.
func (m *Manager) debounce(ctx context.Context) {
	deadline := time.NewTimer(m.o.MaxDelay)
	defer deadline.Stop()
	quiet := time.NewTimer(m.o.Debounce)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-quiet.C:
			return
		case <-m.wake:
			quiet.Reset(m.o.Debounce)
		}
	}
}

// refresh reads the table and, when it changed or a plugin's output is
// stale, renders and publishes it. It reports whether something failed
// (the read, or a render) and needs a retry.
func (m *Manager) refresh(ctx context.Context) (failed bool) {
	start := time.Now()
	rows, err := m.o.Source.ListRoutes(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("reading the route table failed; retrying", "error", err)
			m.m.errors.WithLabelValues("", "read").Inc()
		}
		return true
	}
	routes, rejected := Build(m.o.Domain, rows)
	m.m.read.Observe(time.Since(start).Seconds())
	prev := m.state.Load()
	var next *State
	switch {
	case prev == nil || !sameRoutes(prev.Routes, routes):
		var gen uint64 = 1
		if prev != nil {
			gen = prev.Generation + 1
		}
		next = &State{Generation: gen, Routes: routes, Rejected: rejected, At: time.Now(),
			hosts: make(map[string]struct{}, len(routes)*2), outputs: map[string]*Output{}, targets: m.names}
		for _, r := range routes {
			for _, h := range r.GetHosts() {
				next.hosts[h] = struct{}{}
			}
		}
		if prev != nil {
			next.outputs = prev.outputs // shared, never modified
		}
		m.logRejected(prev, rejected)
		m.log.Debug("route table changed", "generation", next.Generation, "routes", len(routes),
			"rejected", len(rejected), "read_took", time.Since(start))
		// The pushing plugins start on the new table at once; the pull
		// endpoints keep serving the previous renderings until the new
		// ones are done.
		m.publish(next)
	case m.stale(prev):
		next = prev
	default:
		return false
	}
	outputs, failed := m.render(ctx, next)
	done := *next
	done.outputs = outputs
	m.publish(&done)
	return failed
}

// stale reports whether some plugin's output is older than s.
func (m *Manager) stale(s *State) bool {
	for _, t := range m.o.Targets {
		if o, ok := s.outputs[t.Name]; !ok || o.Generation != s.Generation {
			return true
		}
	}
	return false
}

// render renders s for every plugin whose output is older than s, in
// parallel, and returns the outputs with the new renderings in a new map
// (s.outputs belongs to a published State, which is never modified). It
// reports whether a render failed.
func (m *Manager) render(ctx context.Context, s *State) (_ map[string]*Output, failed bool) {
	type result struct {
		name string
		out  *Output
		err  error
	}
	outputs := make(map[string]*Output, len(s.outputs))
	for k, v := range s.outputs {
		outputs[k] = v
	}
	var todo []Target
	for _, t := range m.o.Targets {
		if o, ok := outputs[t.Name]; !ok || o.Generation != s.Generation {
			todo = append(todo, t)
		}
	}
	results := make([]result, len(todo))
	var wg sync.WaitGroup
	for i, t := range todo {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, m.o.CallTimeout)
			defer cancel()
			start := time.Now()
			resp, err := t.Render(cctx, &pluginv1.RenderRequest{Routes: s.Routes, Generation: s.Generation})
			m.m.render.WithLabelValues(t.Name).Observe(time.Since(start).Seconds())
			if err == nil && len(resp.GetBody()) == 0 {
				err = errors.New("the plugin rendered an empty body")
			}
			if err != nil {
				results[i] = result{name: t.Name, err: err}
				return
			}
			out := &Output{Body: resp.GetBody(), ContentType: resp.GetContentType(), ETag: ETag(resp.GetBody()), Generation: s.Generation}
			if err := out.compress(); err != nil {
				results[i] = result{name: t.Name, err: fmt.Errorf("gzip: %w", err)}
				return
			}
			results[i] = result{name: t.Name, out: out}
		})
	}
	wg.Wait()
	for _, r := range results {
		if r.err != nil {
			failed = true
			if ctx.Err() == nil {
				m.m.errors.WithLabelValues(r.name, "render").Inc()
				m.log.Error("rendering the proxy configuration failed; the previous one is kept and the render retried",
					"proxy", r.name, "generation", s.Generation, "error", r.err)
			}
			continue
		}
		if r.out.ContentType == "" {
			r.out.ContentType = "application/octet-stream"
		}
		outputs[r.name] = r.out
	}
	return outputs, failed
}

// publish makes s the current state, updates the gauges and wakes the
// appliers and Changed's waiters.
func (m *Manager) publish(s *State) {
	m.state.Store(s)
	m.m.generation.Set(float64(s.Generation))
	m.m.routes.Set(float64(len(s.Routes)))
	m.m.rejected.Set(float64(len(s.Rejected)))
	for _, a := range m.appliers {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// maxLoggedRejections bounds the warnings one new generation logs host by
// host; the rest are only counted.
const maxLoggedRejections = 20

// logRejected warns about the rejections of a new generation that the
// previous one did not have (a bad domain is reported once, not at every
// change of an unrelated app).
func (m *Manager) logRejected(prev *State, rejected []Rejection) {
	// A set, not a scan of the previous list per rejection: a table with
	// thousands of bad domains changes generation often.
	var known map[Rejection]bool
	if prev != nil {
		known = make(map[Rejection]bool, len(prev.Rejected))
		for _, r := range prev.Rejected {
			known[r] = true
		}
	}
	var fresh []Rejection
	for _, r := range rejected {
		if !known[r] {
			fresh = append(fresh, r)
		}
	}
	for i, r := range fresh {
		if i == maxLoggedRejections {
			m.log.Warn("more routes or hosts left out of the route table", "count", len(fresh)-i)
			break
		}
		if r.Host == "" {
			m.log.Warn("route left out of the route table", "app_id", r.AppID, "reason", r.Reason)
		} else {
			m.log.Warn("host left out of the route table", "app_id", r.AppID, "host", strconv.Quote(r.Host), "reason", r.Reason)
		}
	}
}

// applyLoop applies every new generation to one pushing plugin, retrying a
// failure with backoff until it succeeds or a newer generation replaces it.
func (m *Manager) applyLoop(ctx context.Context, a *applier) {
	retry := time.NewTimer(0)
	if !retry.Stop() {
		<-retry.C
	}
	defer retry.Stop()
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-retry.C:
		}
		s := m.state.Load()
		if s == nil || s.Generation == a.applied.Load() {
			continue
		}
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, m.o.CallTimeout)
		resp, err := a.a.Apply(cctx, &pluginv1.ApplyRequest{Routes: s.Routes, Generation: s.Generation})
		cancel()
		if err == nil && !resp.GetApplied() {
			err = fmt.Errorf("the plugin did not apply the configuration: %s", resp.GetMessage())
		}
		m.m.apply.WithLabelValues(a.name).Observe(time.Since(start).Seconds())
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = nextBackoff(backoff, m.o.RetryMin, m.o.RetryMax)
			m.m.errors.WithLabelValues(a.name, "apply").Inc()
			m.log.Error("applying the proxy configuration failed; retrying", "proxy", a.name,
				"generation", s.Generation, "retry_in", backoff, "error", err)
			retry.Reset(backoff)
			continue
		}
		if backoff > 0 {
			m.log.Info("proxy configuration applied after failures", "proxy", a.name, "generation", s.Generation)
		}
		backoff = 0
		retry.Stop()
		a.applied.Store(s.Generation)
		m.m.applied.WithLabelValues(a.name).Set(float64(s.Generation))
		m.log.Debug("proxy configuration applied", "proxy", a.name, "generation", s.Generation,
			"routes", len(s.Routes), "took", time.Since(start))
	}
}

// nextBackoff doubles prev within [lo, hi].
func nextBackoff(prev, lo, hi time.Duration) time.Duration {
	if prev < lo {
		return lo
	}
	return min(2*prev, hi)
}

// sameRoutes reports whether two sorted tables are equal.
func sameRoutes(a, b []*pluginv1.Route) bool {
	return slices.EqualFunc(a, b, func(x, y *pluginv1.Route) bool {
		return x.GetAppId() == y.GetAppId() && x.GetName() == y.GetName() &&
			x.GetUpstream() == y.GetUpstream() && slices.Equal(x.GetHosts(), y.GetHosts())
	})
}

// ETag is the strong entity tag of a rendered body: a quoted, URL-safe
// base64 SHA-256 prefix (128 bits) of the bytes alone.
func ETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

type managerMetrics struct {
	generation, routes, rejected prometheus.Gauge
	applied                      *prometheus.GaugeVec
	read                         prometheus.Histogram
	render, apply                *prometheus.HistogramVec
	errors                       *prometheus.CounterVec
}

func newManagerMetrics(reg prometheus.Registerer, targets []Target) (*managerMetrics, error) {
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "proxy", Name: name, Help: help})
	}
	buckets := prometheus.ExponentialBuckets(0.0005, 2, 16)
	m := &managerMetrics{
		generation: gauge("generation", "Generation of the route table on this core (bumps on every change)."),
		routes:     gauge("routes", "Routes in the current route table."),
		rejected:   gauge("rejected", "Routes and hosts left out of the current route table (invalid or conflicting)."),
		applied: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "proxy",
			Name: "applied_generation", Help: "Generation each pushing proxy plugin last applied."}, []string{"proxy"}),
		read: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "proxy",
			Name: "read_seconds", Help: "Time to read and build the route table.", Buckets: buckets}),
		render: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "proxy",
			Name: "render_seconds", Help: "Duration of Render calls, by proxy plugin.", Buckets: buckets}, []string{"proxy"}),
		apply: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "proxy",
			Name: "apply_seconds", Help: "Duration of Apply calls, by proxy plugin.", Buckets: buckets}, []string{"proxy"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "proxy",
			Name: "errors_total", Help: "Failed route-table reads, renders and applies (each is retried)."}, []string{"proxy", "op"}),
	}
	for _, c := range []prometheus.Collector{m.generation, m.routes, m.rejected, m.applied, m.read, m.render, m.apply, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("proxy: register metrics: %w", err)
		}
	}
	m.errors.WithLabelValues("", "read")
	for _, t := range targets {
		m.errors.WithLabelValues(t.Name, "render")
		if _, ok := t.Proxy.(sdk.ProxyApplier); ok {
			m.errors.WithLabelValues(t.Name, "apply")
		}
	}
	return m, nil
}
