package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wisehosting/wisehosting/core/proxy"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/mock"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// fakeSource is a route table in memory.
type fakeSource struct {
	mu    sync.Mutex
	rows  []store.RouteRow
	err   error
	reads atomic.Int64
}

func (f *fakeSource) ListRoutes(context.Context) ([]store.RouteRow, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.RouteRow(nil), f.rows...), f.err
}

func (f *fakeSource) set(rows []store.RouteRow, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows, f.err = rows, err
}

func row(id int64, slug string, port int) store.RouteRow {
	return store.RouteRow{AppID: id, Subdomain: slug, Port: port, WorkerAddress: "10.0.0.1"}
}

// countingProxy renders "gen routes" lines and counts its calls.
type countingProxy struct {
	renders, applies atomic.Int64
	failRender       atomic.Bool
	failApply        atomic.Int64 // fail this many more applies
	mock.Proxy
}

func newCountingProxy(apply bool) *countingProxy {
	p := &countingProxy{}
	p.RenderFunc = func(_ context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error) {
		p.renders.Add(1)
		if p.failRender.Load() {
			return nil, errors.New("render exploded")
		}
		var b bytes.Buffer
		for _, r := range req.GetRoutes() {
			fmt.Fprintf(&b, "%s %v %s\n", r.GetName(), r.GetHosts(), r.GetUpstream())
		}
		if b.Len() == 0 {
			b.WriteString("empty\n")
		}
		return &pluginv1.RenderResponse{Body: b.Bytes(), ContentType: "text/plain"}, nil
	}
	if apply {
		p.ApplyFunc = func(context.Context, *pluginv1.ApplyRequest) (*pluginv1.ApplyResponse, error) {
			p.applies.Add(1)
			if p.failApply.Add(-1) >= 0 {
				return nil, errors.New("proxy unreachable")
			}
			return &pluginv1.ApplyResponse{Applied: true}, nil
		}
	}
	return p
}

type harness struct {
	m    *proxy.Manager
	src  *fakeSource
	pull *countingProxy
	push *countingProxy
	reg  *prometheus.Registry
	logs *bytes.Buffer
	mu   sync.Mutex // guards logs
}

func start(t *testing.T, rows []store.RouteRow) *harness {
	t.Helper()
	h := &harness{src: &fakeSource{rows: rows}, pull: newCountingProxy(false), push: newCountingProxy(true),
		reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	m, err := proxy.NewManager(proxy.Options{
		Source: h.src, Domain: "apps.example.com",
		Targets:  []proxy.Target{{Name: "pull", Proxy: renderOnly{&h.pull.Proxy}}, {Name: "push", Proxy: &h.push.Proxy}},
		Debounce: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond, PollInterval: time.Hour,
		RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond,
		Logger:   hclog.New(&hclog.LoggerOptions{Output: lockedWriter{&h.mu, h.logs}, Level: hclog.Debug}),
		Registry: h.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// renderOnly hides mock.Proxy's Apply method, as the plugin host's handle
// of a plugin without the proxy.apply capability does.
type renderOnly struct{ sdk.Proxy }

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settled reports whether generation gen is applied to "push" and both
// plugins' outputs render it.
func settled(m *proxy.Manager, gen uint64) bool {
	s := m.State()
	if s == nil || s.Generation != gen || m.Applied("push") != gen {
		return false
	}
	for _, name := range []string{"pull", "push"} {
		if o, ok := s.Output(name); !ok || o.Generation != gen {
			return false
		}
	}
	return true
}

func generation(m *proxy.Manager) uint64 {
	if s := m.State(); s != nil {
		return s.Generation
	}
	return 0
}

func TestManagerRendersOncePerGeneration(t *testing.T) {
	h := start(t, []store.RouteRow{row(1, "shop", 3000)})
	waitFor(t, "generation 1 applied and rendered", func() bool { return settled(h.m, 1) })
	s := h.m.State()
	out, ok := s.Output("pull")
	if !ok || string(out.Body) != "shop [shop.apps.example.com] http://10.0.0.1:3000\n" || out.Generation != 1 {
		t.Fatalf("output = %+v", out)
	}
	if out.ETag != proxy.ETag(out.Body) || !strings.HasPrefix(out.ETag, `"`) {
		t.Errorf("etag %s", out.ETag)
	}
	if !s.Routed("shop.apps.example.com") || s.Routed("other.apps.example.com") {
		t.Error("Routed")
	}
	if _, ok := s.Output("missing"); ok {
		t.Error("an output for an unknown plugin")
	}

	// Wakes over an unchanged table neither bump the generation nor render.
	for range 5 {
		h.m.Wake()
		time.Sleep(30 * time.Millisecond)
	}
	reads := h.src.reads.Load()
	if reads < 2 || generation(h.m) != 1 || h.pull.renders.Load() != 1 || h.push.applies.Load() != 1 {
		t.Fatalf("unchanged table: reads %d, generation %d, renders %d, applies %d",
			reads, generation(h.m), h.pull.renders.Load(), h.push.applies.Load())
	}

	// A burst of changes is one generation, one render and one apply. The
	// burst takes microseconds, far inside the 50 ms debounce; with sleeps
	// between wakes a loaded CI runner stretched it past the window and
	// made two generations.
	changed := h.m.Changed()
	for i := range 20 {
		h.src.set([]store.RouteRow{row(1, "shop", 3000), row(2, "blog", 3001+i)}, nil)
		h.m.Wake()
	}
	<-changed
	waitFor(t, "generation 2 applied and rendered", func() bool { return settled(h.m, 2) })
	time.Sleep(100 * time.Millisecond)
	if g := generation(h.m); g != 2 {
		t.Fatalf("generation %d after one burst", g)
	}
	if r, a := h.pull.renders.Load(), h.push.applies.Load(); r != 2 || a != 2 {
		t.Errorf("renders %d, applies %d; want 2 each", r, a)
	}
	out2, _ := h.m.State().Output("pull")
	if out2.ETag == out.ETag || !strings.Contains(string(out2.Body), "blog") {
		t.Errorf("second output %q %s", out2.Body, out2.ETag)
	}
	if got := testutil.ToFloat64(gaugeOf(t, h.reg, "wisehosting_proxy_generation")); got != 2 {
		t.Errorf("generation gauge %v", got)
	}
}

func TestManagerKeepsLastGoodOutputAndRetries(t *testing.T) {
	h := start(t, []store.RouteRow{row(1, "shop", 3000)})
	waitFor(t, "generation 1 rendered", func() bool { return settled(h.m, 1) })
	first, _ := h.m.State().Output("pull")

	h.pull.failRender.Store(true)
	h.src.set([]store.RouteRow{row(1, "shop", 3000), row(2, "blog", 3001)}, nil)
	h.m.Wake()
	waitFor(t, "generation 2", func() bool { return generation(h.m) == 2 })
	waitFor(t, "render retries", func() bool { return h.pull.renders.Load() >= 4 })
	s := h.m.State()
	if out, _ := s.Output("pull"); out != first {
		t.Fatalf("the failed render replaced the output: %+v", out)
	}
	if out, _ := s.Output("push"); out.Generation != 2 {
		t.Errorf("the other plugin's output is of generation %d", out.Generation)
	}
	h.pull.failRender.Store(false)
	waitFor(t, "the retried render", func() bool {
		out, _ := h.m.State().Output("pull")
		return out.Generation == 2
	})
	if generation(h.m) != 2 {
		t.Errorf("a retried render bumped the generation to %d", generation(h.m))
	}
	if n := testutil.ToFloat64(counterOf(t, h.reg, "wisehosting_proxy_errors_total", "render", "pull")); n < 3 {
		t.Errorf("render errors counted: %v", n)
	}
	if !strings.Contains(h.logString(), "render exploded") {
		t.Errorf("the failure is not logged: %s", h.logString())
	}
}

func TestManagerRetriesApply(t *testing.T) {
	h := start(t, nil)
	waitFor(t, "generation 1 applied", func() bool { return h.m.Applied("push") == 1 })
	h.push.failApply.Store(3)
	h.src.set([]store.RouteRow{row(1, "shop", 3000)}, nil)
	h.m.Wake()
	waitFor(t, "generation 2 applied", func() bool { return h.m.Applied("push") == 2 })
	if a := h.push.applies.Load(); a != 5 {
		t.Errorf("%d applies; want 1 + 3 failures + 1", a)
	}
	if n := testutil.ToFloat64(counterOf(t, h.reg, "wisehosting_proxy_errors_total", "apply", "push")); n != 3 {
		t.Errorf("apply errors counted: %v", n)
	}
	if !strings.Contains(h.logString(), "proxy unreachable") {
		t.Errorf("the failure is not logged: %s", h.logString())
	}
}

func TestManagerReadFailure(t *testing.T) {
	h := &harness{src: &fakeSource{err: errors.New("db down")}}
	reg := prometheus.NewRegistry()
	m, err := proxy.NewManager(proxy.Options{Source: h.src, Domain: "apps.example.com",
		RetryMin: 5 * time.Millisecond, RetryMax: 10 * time.Millisecond, PollInterval: time.Hour, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "read retries", func() bool { return h.src.reads.Load() >= 3 })
	if m.State() != nil {
		t.Fatal("a state without a successful read")
	}
	h.src.set([]store.RouteRow{row(1, "shop", 0)}, nil)
	waitFor(t, "the first generation", func() bool { return generation(m) == 1 })
}

func TestNewManagerChecksOptions(t *testing.T) {
	for _, o := range []proxy.Options{
		{Domain: "apps.example.com"},
		{Source: &fakeSource{}},
		{Source: &fakeSource{}, Domain: "apps.example.com", Targets: []proxy.Target{{Name: "a", Proxy: &mock.Proxy{}}, {Name: "a", Proxy: &mock.Proxy{}}}},
		{Source: &fakeSource{}, Domain: "apps.example.com", Targets: []proxy.Target{{Name: "a"}}},
	} {
		if _, err := proxy.NewManager(o); err == nil {
			t.Errorf("NewManager(%+v) accepted", o)
		}
	}
}

func (h *harness) logString() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logs.String()
}

func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return metricOf(t, reg, name)
}

func counterOf(t *testing.T, reg *prometheus.Registry, name string, labels ...string) prometheus.Collector {
	t.Helper()
	return metricOf(t, reg, name, labels...)
}

// metricOf finds one metric (by name and label values, in label-name order) in reg, wrapped as
// a collector testutil.ToFloat64 reads.
func metricOf(t *testing.T, reg *prometheus.Registry, name string, labels ...string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var vals []string
			for _, lp := range mt.GetLabel() {
				vals = append(vals, lp.GetValue())
			}
			if fmt.Sprint(vals) != fmt.Sprint(labels) && len(labels) > 0 {
				continue
			}
			v := mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x", Help: "x"}, func() float64 { return v })
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return nil
}

// A pushing plugin gets a new table without waiting for the renders of
// the pull endpoints, which keep serving the previous rendering meanwhile.
func TestManagerAppliesBeforeSlowRenders(t *testing.T) {
	h := start(t, []store.RouteRow{row(1, "shop", 3000)})
	waitFor(t, "generation 1", func() bool { return settled(h.m, 1) })
	release := make(chan struct{})
	render := h.pull.RenderFunc
	// The manager is idle (settled, polling hourly): no render runs now.
	h.pull.RenderFunc = func(ctx context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error) {
		<-release
		return render(ctx, req)
	}
	h.src.set([]store.RouteRow{row(1, "shop", 3000), row(2, "blog", 3001)}, nil)
	h.m.Wake()
	waitFor(t, "generation 2 applied while the render is stuck", func() bool { return h.m.Applied("push") == 2 })
	if out, _ := h.m.State().Output("pull"); out.Generation != 1 {
		t.Errorf("the pull output is of generation %d before its render finished", out.Generation)
	}
	close(release)
	waitFor(t, "generation 2 rendered", func() bool { return settled(h.m, 2) })
}

// A rejected host is logged when it first appears, not again at every
// change of an unrelated app.
func TestManagerLogsARejectionOnce(t *testing.T) {
	bad := store.RouteRow{AppID: 1, Subdomain: "shop", Port: 3000, WorkerAddress: "10.0.0.1", Domains: []string{"shop.apps.example.com"}}
	h := start(t, []store.RouteRow{bad})
	waitFor(t, "generation 1", func() bool { return settled(h.m, 1) })
	h.src.set([]store.RouteRow{bad, row(2, "blog", 3001)}, nil)
	h.m.Wake()
	waitFor(t, "generation 2", func() bool { return settled(h.m, 2) })
	if n := strings.Count(h.logString(), "host left out of the route table"); n != 1 {
		t.Errorf("the rejection was logged %d times:\n%s", n, h.logString())
	}
	if got := h.m.State().Rejected; len(got) != 1 || got[0].AppID != 1 {
		t.Errorf("rejected %+v", got)
	}
}
