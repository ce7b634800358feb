package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/mock"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/sdktest"
)

// The test binary serves these plugins when sdktest re-executes it.
func TestMain(m *testing.M) {
	sdktest.ServeNamedIfChild(map[string]func() sdk.Plugin{
		"firstfit":        newFirstFit,
		"proxy":           func() sdk.Plugin { return &mock.Proxy{} },
		"alerts":          func() sdk.Plugin { return &mock.AlertSink{} },
		"plans":           func() sdk.Plugin { return &mock.PlanSource{} },
		"broken-config":   newBrokenConfig,
		"broken-info":     newBrokenInfo,
		"broken-spec":     newBrokenSpec,
		"broken-place":    newBrokenPlace,
		"broken-proxy":    newBrokenProxy,
		"broken-alerts":   newBrokenAlerts,
		"broken-plans":    newBrokenPlans,
		"unhealthy":       newUnhealthy,
		"configure-flaky": newConfigureFlaky,
	})
	os.Exit(m.Run())
}

// --- a tiny real plugin ---------------------------------------------------

// firstFit is a scheduler that places each job on the first worker with the
// runtime, zone and free capacity it needs.
type firstFit struct {
	sdk.Base
	cfg firstFitConfig
}

type firstFitConfig struct {
	Headroom float64  `json:"headroom"`
	Zones    []string `json:"zones"`
}

func newFirstFit() sdk.Plugin {
	p := &firstFit{}
	p.Base = sdk.Base{
		Kind: sdk.KindScheduler, Name: "first-fit", Version: "0.1.0", Description: "first worker that fits",
		Spec: hclspec.Object(map[string]*pluginv1.Spec{
			"headroom": hclspec.Default(hclspec.Attr("headroom", "number", false, "Fraction of capacity kept free."), hclspec.Literal("0.1")),
			"zones":    hclspec.Attr("zones", "list(string)", false, "Zones to place in; empty is all."),
		}),
		Config: &p.cfg,
		Validate: func() error {
			if p.cfg.Headroom < 0 || p.cfg.Headroom >= 1 {
				return fmt.Errorf("headroom must be in [0, 1), got %v", p.cfg.Headroom)
			}
			return nil
		},
	}
	return p
}

func (p *firstFit) Place(_ context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
	used := map[int64][2]int64{}
	for _, w := range req.GetWorkers() {
		used[w.GetId()] = [2]int64{w.GetUsedCpu(), w.GetUsedMemory()}
	}
	resp := &pluginv1.PlaceResponse{}
	for _, j := range req.GetJobs() {
		pl := &pluginv1.Placement{JobId: j.GetId(), Reason: "no worker fits"}
		for _, w := range req.GetWorkers() {
			if !slices.Contains(w.GetRuntimes(), j.GetRuntime()) || (j.GetZone() != "" && j.GetZone() != w.GetZone()) ||
				(len(p.cfg.Zones) > 0 && !slices.Contains(p.cfg.Zones, w.GetZone())) {
				continue
			}
			u := used[w.GetId()]
			free := 1 - p.cfg.Headroom
			if float64(u[0]+j.GetCpu()) > free*float64(w.GetCapacityCpu()) ||
				float64(u[1]+j.GetMemory()) > free*float64(w.GetCapacityMemory()) {
				continue
			}
			used[w.GetId()] = [2]int64{u[0] + j.GetCpu(), u[1] + j.GetMemory()}
			pl.WorkerId, pl.Reason = w.GetId(), ""
			break
		}
		resp.Placements = append(resp.Placements, pl)
	}
	return resp, nil
}

// --- deliberately broken plugins -------------------------------------------

// numberConfig is a spec with one optional number x and a Configure that
// rejects a negative x but accepts everything else (so some bad configs
// get through).
func numberConfig() (func(context.Context) (*pluginv1.Spec, error), func(context.Context, *pluginv1.ConfigureRequest) error) {
	return func(context.Context) (*pluginv1.Spec, error) {
			return hclspec.Object(map[string]*pluginv1.Spec{"x": hclspec.Attr("x", "number", false, "")}), nil
		}, func(_ context.Context, req *pluginv1.ConfigureRequest) error {
			var c struct {
				X *float64 `json:"x"`
			}
			if err := sdk.DecodeConfig(req.GetConfigJson(), &c); err != nil {
				return err
			}
			if c.X != nil && *c.X < 0 {
				return errors.New("x must not be negative")
			}
			if c.X != nil && *c.X == 13 {
				return status.Error(codes.Internal, "unlucky")
			}
			return nil
		}
}

func newBrokenConfig() sdk.Plugin {
	spec, configure := numberConfig()
	return &mock.AlertSink{ConfigSpecFunc: spec, ConfigureFunc: configure}
}

func newBrokenInfo() sdk.Plugin {
	return &mock.AlertSink{InfoFunc: func(context.Context) (*pluginv1.InfoResponse, error) {
		return &pluginv1.InfoResponse{Kind: sdk.KindAlerts, ApiVersions: []string{"2"}}, nil
	}}
}

func newBrokenSpec() sdk.Plugin {
	return &mock.PlanSource{ConfigSpecFunc: func(context.Context) (*pluginv1.Spec, error) {
		return hclspec.Object(map[string]*pluginv1.Spec{"x": hclspec.Attr("x", "strin", true, "")}), nil
	}}
}

func newBrokenPlace() sdk.Plugin {
	return &mock.Scheduler{PlaceFunc: func(context.Context, *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
		return &pluginv1.PlaceResponse{Placements: []*pluginv1.Placement{
			{JobId: 999, WorkerId: 11},
			{JobId: 101, WorkerId: 11},
			{JobId: 101, WorkerId: 13},
			{JobId: 102, WorkerId: 77},
			{JobId: 103, WorkerId: 0},
		}}, nil
	}}
}

func newBrokenProxy() sdk.Plugin {
	var n atomic.Int64
	return &mock.Proxy{RenderFunc: func(context.Context, *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error) {
		return &pluginv1.RenderResponse{Body: fmt.Appendf(nil, "render %d", n.Add(1))}, nil
	}}
}

func newBrokenAlerts() sdk.Plugin {
	return &mock.AlertSink{DeliverFunc: func(_ context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
		return &pluginv1.DeliverResponse{Results: []*pluginv1.DeliveryResult{
			{EventId: req.GetEvents()[0].GetId()},
			{EventId: "nope", Outcome: pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED},
		}}, nil
	}}
}

func newBrokenPlans() sdk.Plugin {
	return &mock.PlanSource{PlansFunc: func(context.Context) (*pluginv1.PlansResponse, error) {
		return &pluginv1.PlansResponse{DefaultPlan: "gold", Plans: []*pluginv1.Plan{
			{Id: "Free"}, {Id: "pro"}, {Id: "pro", Memory: -1},
		}}, nil
	}}
}

func newUnhealthy() sdk.Plugin {
	return &mock.AlertSink{HealthFunc: func(context.Context) error { return errors.New("smtp server unreachable") }}
}

// newConfigureFlaky rejects any configuration: a good config then fails at
// Configure and the kind's call is skipped.
func newConfigureFlaky() sdk.Plugin {
	return &mock.Proxy{ConfigureFunc: func(context.Context, *pluginv1.ConfigureRequest) error {
		return errors.New("cannot open the admin socket")
	}}
}

// --- the tests --------------------------------------------------------------

func TestGoodPlugins(t *testing.T) {
	for _, name := range []string{"firstfit", "proxy", "alerts", "plans"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts := sdktest.Options{Command: sdktest.SelfCommandNamed(name)}
			if name == "firstfit" {
				opts.Kind = sdk.KindScheduler
				opts.GoodConfigs = []string{``, `headroom = 0.2`, "zones = [\"eu-1\"]\nheadroom = 0"}
				opts.BadConfigs = []string{`headroom = "lots"`, `headroom = 1.5`, `zone = "eu-1"`}
			}
			rep := sdktest.Run(t, opts)
			if rep.Info == nil || rep.Info.GetKind() == "" || rep.APIVersion != sdk.APIVersion1 {
				t.Errorf("report: Info %v, API version %q", rep.Info, rep.APIVersion)
			}
			for _, g := range rep.Good {
				if g.Stage != sdktest.StageAccepted || g.JSON == "" {
					t.Errorf("good config %d: %+v", g.Index, g)
				}
			}
			if name == "firstfit" {
				want := []sdktest.Stage{sdktest.StageSpec, sdktest.StageConfigure, sdktest.StageSpec}
				for i, b := range rep.Bad {
					if b.Stage != want[i] || b.Message == "" {
						t.Errorf("bad config %d: stage %q (%q), want %q with a message", i, b.Stage, b.Message, want[i])
					}
				}
				if m := rep.Bad[0].Message; !strings.Contains(m, "BadConfigs[0]:1,12") {
					t.Errorf("spec diagnostic %q has no file:line:col", m)
				}
				if m := rep.Bad[1].Message; !strings.Contains(m, "headroom must be in [0, 1)") {
					t.Errorf("Configure diagnostic %q", m)
				}
				if j := rep.Good[0].JSON; j != `{"headroom":0.1,"zones":null}` {
					t.Errorf("default config JSON = %s", j)
				}
			}
		})
	}
}

func TestBrokenPlugins(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts sdktest.Options
		want []string // substrings of the reported errors, each must appear
	}{
		{
			name: "broken-config",
			opts: sdktest.Options{
				GoodConfigs: []string{`x = 1`, `x = -1`},
				BadConfigs:  []string{`x = "abc"`, `x = -5`, `x = 2`, `x = `, `y = 1`, `x = 13`},
			},
			want: []string{
				"BadConfigs[5]: Configure failed with Internal instead of rejecting the configuration with InvalidArgument",
				"GoodConfigs[1] rejected by Configure: rpc error: code = InvalidArgument desc = x must not be negative",
				"BadConfigs[2] was accepted by the spec and by Configure",
				"BadConfigs[3] is not valid HCL",
			},
		},
		{
			name: "broken-info",
			want: []string{"Info: empty name", "Info: empty version", `Info: api_versions [2] does not contain "1"`,
				"no API version in common"},
		},
		{
			name: "broken-spec",
			want: []string{`ConfigSpec does not convert to an hcldec spec: config.x: attribute "x": type "strin"`},
		},
		{
			name: "broken-place",
			want: []string{
				"Place: placement 0 names job 999, not a job of the request",
				"Place: job 101 is placed more than once",
				"Place: placement 3 (job 102) names worker 77, not a worker of the request",
				"Place: placement 4 (job 103) places on no worker (0) without a reason",
			},
		},
		{
			name: "broken-proxy",
			want: []string{"Render: empty content type", "Render: two calls with the same routes gave different outputs"},
		},
		{
			name: "broken-alerts",
			want: []string{
				`Deliver: result 0 (event "sdktest-evt-1") has outcome DELIVERY_OUTCOME_UNSPECIFIED`,
				`Deliver: result 1 is for event "nope", not an event of the request`,
				`Deliver: no result for event "sdktest-evt-2"`,
			},
		},
		{
			name: "broken-plans",
			want: []string{
				`Plans: plan 0 has id "Free"`,
				`Plans: id "pro" appears more than once`,
				`Plans: plan "pro" has a negative memory (-1)`,
				`Plans: default_plan "gold" is not a plan of the catalogue`,
			},
		},
		{
			name: "unhealthy",
			want: []string{"GoodConfigs[0]: Health after Configure: unhealthy: smtp server unreachable",
				"alerts calls not checked"},
		},
		{
			name: "configure-flaky",
			want: []string{"GoodConfigs[0] rejected by Configure", "cannot open the admin socket", "proxy calls not checked"},
		},
		{
			name: "wrong kind",
			opts: sdktest.Options{Command: sdktest.SelfCommandNamed("alerts"), Kind: sdk.KindProxy},
			want: []string{`Info: kind "alerts", want "proxy"`},
		},
		{
			name: "not a plugin",
			opts: sdktest.Options{Command: sdktest.SelfCommandNamed("nonexistent")},
			want: []string{"handshake: starting", "call sdktest.ServeIfChild or ServeNamedIfChild at the top of TestMain",
				`sdktest: this test binary serves no plugin named "nonexistent"`},
		},
		{
			name: "no command",
			opts: sdktest.Options{Command: func() *exec.Cmd { return nil }},
			want: []string{"handshake: Options.Command returned nil"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.opts.Command == nil {
				tc.opts.Command = sdktest.SelfCommandNamed(tc.name)
			}
			f := runFake(t, tc.opts)
			if len(f.errors) == 0 {
				t.Fatal("sdktest reported no failure for a broken plugin")
			}
			all := strings.Join(f.errors, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("sdktest did not report %q; it reported:\n%s", w, all)
				}
			}
			if f.fatal != "" {
				t.Errorf("sdktest called Fatal (%s); it should report and return", f.fatal)
			}
		})
	}
}

func TestBrokenConfigReport(t *testing.T) {
	f := runFake(t, sdktest.Options{
		Command:     sdktest.SelfCommandNamed("broken-config"),
		GoodConfigs: []string{`x = 1`},
		BadConfigs:  []string{`x = "abc"`, `x = -5`, `x = 2`},
	})
	rep := f.report
	want := []sdktest.Stage{sdktest.StageSpec, sdktest.StageConfigure, sdktest.StageAccepted}
	for i, b := range rep.Bad {
		if b.Stage != want[i] {
			t.Errorf("BadConfigs[%d]: stage %q, want %q", i, b.Stage, want[i])
		}
	}
	if !strings.Contains(rep.Bad[0].Message, `BadConfigs[0]:1,5-10: Incorrect attribute value type`) {
		t.Errorf("spec diagnostic = %q", rep.Bad[0].Message)
	}
	if !strings.Contains(rep.Bad[1].Message, "x must not be negative") {
		t.Errorf("Configure diagnostic = %q", rep.Bad[1].Message)
	}
	if rep.Bad[2].JSON != `{"x":2}` {
		t.Errorf("accepted JSON = %q", rep.Bad[2].JSON)
	}
	if len(f.errors) != 1 || !strings.Contains(f.errors[0], "BadConfigs[2] was accepted") {
		t.Errorf("errors = %q, want exactly the accepted bad config", f.errors)
	}
}

// fakeTB captures what sdktest reports; logs go to the real test.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	fatal  string
	report *sdktest.Report
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Error(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprint(args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *fakeTB) FailNow() { f.Fatalf("FailNow") }

func (f *fakeTB) Fail() { f.Errorf("Fail") }

func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.errors) > 0 || f.fatal != ""
}

// runFake runs sdktest with a fake TB in its own goroutine (so a Fatal can
// end it) and returns what was reported.
func runFake(t *testing.T, opts sdktest.Options) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.report = sdktest.Run(f, opts)
	}()
	<-done
	for _, e := range f.errors {
		t.Logf("(expected) %s", e)
	}
	return f
}
