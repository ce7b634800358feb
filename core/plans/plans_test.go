package plans

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/mock"
	sdkplans "github.com/wisehosting/wisehosting/sdk/plans"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

func catalogueOf(def string, refreshMs int64, ids ...string) *pluginv1.PlansResponse {
	r := &pluginv1.PlansResponse{DefaultPlan: def, RefreshAfterMs: refreshMs}
	for i, id := range ids {
		r.Plans = append(r.Plans, &pluginv1.Plan{Id: id, Name: strings.ToUpper(id), MaxApps: int64(i + 1), Cpu: 1000, Memory: 1 << 30})
	}
	return r
}

func ids(c *Catalogue) string {
	var out []string
	for _, p := range c.Plans() {
		out = append(out, p.GetId())
	}
	return strings.Join(out, ",") + " default=" + c.Default().GetId()
}

func TestDefaultCatalogueWithoutSource(t *testing.T) {
	t.Parallel()
	c := New(nil, testutil.Logger(t))
	if err := c.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.Run(t.Context()) // returns at once: nothing to refresh
	if got, want := ids(c), "free,pro,business default=free"; got != want {
		t.Errorf("catalogue = %s, want %s", got, want)
	}
	tests := []struct {
		name string
		user *store.User
		want string
	}{
		{"nil user", nil, "free"},
		{"own plan", &store.User{Plan: "pro"}, "pro"},
		{"unknown plan falls back", &store.User{Plan: "gold"}, "free"},
		{"empty plan falls back", &store.User{}, "free"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.PlanFor(tc.user); got == nil || got.GetId() != tc.want {
				t.Errorf("PlanFor = %v, want %s", got, tc.want)
			}
		})
	}
	want := sdkplans.Default().GetPlans()[1]
	if p, ok := c.Plan("pro"); !ok || p.GetMemory() != want.GetMemory() || p.GetMaxApps() != want.GetMaxApps() {
		t.Errorf("Plan(pro) = %v, %v", p, ok)
	}
}

// TestLoadThroughGRPC loads from a plan source served over the real gRPC
// path.
func TestLoadThroughGRPC(t *testing.T) {
	t.Parallel()
	src := plugintest.Connect(t, &mock.PlanSource{PlansFunc: func(context.Context) (*pluginv1.PlansResponse, error) {
		return catalogueOf("hobby", 0, "hobby", "team"), nil
	}}).(sdk.PlanSource)
	c := New(src, testutil.Logger(t))
	if err := c.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(c), "hobby,team default=hobby"; got != want {
		t.Errorf("catalogue = %s, want %s", got, want)
	}
	if got := c.PlanFor(&store.User{Plan: "team"}); got.GetName() != "TEAM" || got.GetMaxApps() != 2 {
		t.Errorf("PlanFor(team) = %v", got)
	}
	if got := c.PlanFor(&store.User{Plan: "free"}); got.GetId() != "hobby" {
		t.Errorf("PlanFor(free) = %v, want the default, hobby", got)
	}
}

func TestLoadRejectsInvalidCatalogues(t *testing.T) {
	t.Parallel()
	negative := catalogueOf("a", 0, "a")
	negative.Plans[0].Memory = -1
	nilPlan := catalogueOf("a", 0, "a")
	nilPlan.Plans = append(nilPlan.Plans, nil)
	tests := []struct {
		name string
		resp *pluginv1.PlansResponse
		err  error
		want string
	}{
		{"call fails", nil, errors.New("boom"), "boom"},
		{"nil response", nil, nil, "no plans"},
		{"no plans", catalogueOf("a", 0), nil, "no plans"},
		{"duplicate id", catalogueOf("a", 0, "a", "b", "a"), nil, `"a" appears twice`},
		{"invalid id", catalogueOf("a", 0, "a", "Big Plan"), nil, `id "Big Plan" is not valid`},
		{"empty id", catalogueOf("a", 0, "a", ""), nil, `id "" is not valid`},
		{"default missing", catalogueOf("gold", 0, "a", "b"), nil, `default plan "gold" is not in the catalogue`},
		{"negative limit", negative, nil, "memory is negative"},
		{"nil plan", nilPlan, nil, "plan 2 is empty"},
		{"negative refresh", catalogueOf("a", -5, "a"), nil, "refresh_after_ms is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := New(&mock.PlanSource{PlansFunc: func(context.Context) (*pluginv1.PlansResponse, error) {
				return tc.resp, tc.err
			}}, testutil.Logger(t))
			err := c.Load(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error = %v, want it to contain %q", err, tc.want)
			}
			if got, want := ids(c), "free,pro,business default=free"; got != want {
				t.Errorf("after a failed Load the catalogue = %s, want the default %s", got, want)
			}
			if c.PlanFor(&store.User{Plan: "a"}) == nil {
				t.Error("PlanFor returned nil")
			}
		})
	}
}

// source is a plan source whose next answer the test sets.
type source struct {
	mu    sync.Mutex
	resp  *pluginv1.PlansResponse
	err   error
	calls int
}

func (s *source) set(resp *pluginv1.PlansResponse, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resp, s.err, s.calls = resp, err, 0
}

func (s *source) callsSinceSet() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *source) plans(context.Context) (*pluginv1.PlansResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return s.resp, s.err
}

func TestRunKeepsLastGoodCatalogue(t *testing.T) {
	t.Parallel()
	src := &source{}
	src.set(catalogueOf("a", 5, "a", "b"), nil)
	c := New(&mock.PlanSource{PlansFunc: src.plans}, testutil.Logger(t))
	c.minRefresh, c.retryAfter = time.Millisecond, 5*time.Millisecond
	if err := c.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	const good = "a,b default=a"
	if got := ids(c); got != good {
		t.Fatalf("catalogue = %s, want %s", got, good)
	}

	bad := []struct {
		name string
		resp *pluginv1.PlansResponse
		err  error
	}{
		{"a failed call", nil, errors.New("plugin unavailable")},
		{"duplicate ids", catalogueOf("a", 5, "a", "a"), nil},
		{"no default", catalogueOf("zzz", 5, "a"), nil},
		{"no plans", &pluginv1.PlansResponse{DefaultPlan: "a", RefreshAfterMs: 5}, nil},
	}
	for _, b := range bad {
		src.set(b.resp, b.err)
		testutil.WaitFor(t, 5*time.Second, "three refreshes with "+b.name, func() bool { return src.callsSinceSet() >= 3 })
		if got := ids(c); got != good {
			t.Errorf("after refreshes with %s the catalogue = %s, want the last good %s", b.name, got, good)
		}
	}

	src.set(catalogueOf("y", 5, "x", "y"), nil)
	testutil.WaitFor(t, 5*time.Second, "the new catalogue", func() bool { return ids(c) == "x,y default=y" })
	if got := c.PlanFor(&store.User{Plan: "a"}); got.GetId() != "y" {
		t.Errorf("PlanFor(a) after the plan a disappeared = %s, want the default y", got.GetId())
	}

	// refresh_after_ms 0: the catalogue no longer changes; Run idles.
	src.set(catalogueOf("z", 0, "z"), nil)
	testutil.WaitFor(t, 5*time.Second, "the static catalogue", func() bool { return ids(c) == "z default=z" })
	calls := src.callsSinceSet()
	time.Sleep(50 * time.Millisecond) // asserting that nothing happens
	if n := src.callsSinceSet(); n != calls {
		t.Errorf("Plans called %d more times after refresh_after_ms became 0", n-calls)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestRunRetriesAfterFailedLoad: a Load that failed at start is retried by
// Run.
func TestRunRetriesAfterFailedLoad(t *testing.T) {
	t.Parallel()
	src := &source{}
	src.set(nil, errors.New("not yet"))
	c := New(&mock.PlanSource{PlansFunc: src.plans}, testutil.Logger(t))
	c.retryAfter = 5 * time.Millisecond
	if err := c.Load(t.Context()); err == nil {
		t.Fatal("Load succeeded")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go c.Run(ctx)
	src.set(catalogueOf("solo", 0, "solo"), nil)
	testutil.WaitFor(t, 5*time.Second, "the catalogue after a retry", func() bool { return ids(c) == "solo default=solo" })
}

func TestLimitsAndNewApp(t *testing.T) {
	t.Parallel()
	c := New(nil, testutil.Logger(t))
	tests := []struct {
		plan    string
		limits  wsproto.Limits
		maxApps int64
	}{
		{"free", wsproto.Limits{CPU: 1000, Memory: 512 << 20, Disk: 1 << 30, Bandwidth: 10_000_000}, 1},
		{"pro", wsproto.Limits{CPU: 2000, Memory: 2 << 30, Disk: 10 << 30, Bandwidth: 100_000_000}, 5},
		{"business", wsproto.Limits{CPU: 4000, Memory: 8 << 30, Disk: 50 << 30}, 0},
		{"gold", wsproto.Limits{CPU: 1000, Memory: 512 << 20, Disk: 1 << 30, Bandwidth: 10_000_000}, 1}, // unknown: the default
	}
	for _, tc := range tests {
		u := &store.User{Plan: tc.plan}
		if got := Limits(c.PlanFor(u)); got != tc.limits {
			t.Errorf("%s: Limits = %+v, want %+v", tc.plan, got, tc.limits)
		}
		na := c.NewApp(u, store.NewApp{Name: "shop-app"})
		if na.MaxApps != tc.maxApps || na.Name != "shop-app" {
			t.Errorf("%s: NewApp = %+v, want MaxApps %d", tc.plan, na, tc.maxApps)
		}
	}
}
