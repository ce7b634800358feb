package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/pluginhost"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/mock"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// testPluginEnv names the test plugin ("kind/name") a re-executed test
// binary serves.
const testPluginEnv = "WH_DAEMON_TEST_PLUGIN"

// serveTestPlugin serves a test plugin and returns the exit code.
func serveTestPlugin(name string) int {
	switch name {
	case "plans/catalogue":
		sdk.Serve(&mock.PlanSource{PlansFunc: func(context.Context) (*pluginv1.PlansResponse, error) {
			return &pluginv1.PlansResponse{DefaultPlan: "hobby", Plans: []*pluginv1.Plan{
				{Id: "hobby", Name: "Hobby", MaxApps: 2, Cpu: 500, Memory: 256 << 20},
				{Id: "team", Name: "Team", MaxApps: 20, Cpu: 4000, Memory: 8 << 30},
			}}, nil
		}})
	case "scheduler/first":
		sdk.Serve(&mock.Scheduler{PlaceFunc: func(_ context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
			resp := &pluginv1.PlaceResponse{}
			for _, j := range req.GetJobs() {
				resp.Placements = append(resp.Placements, &pluginv1.Placement{JobId: j.GetId(), WorkerId: req.GetWorkers()[0].GetId()})
			}
			return resp, nil
		}})
	case "proxy/lister":
		// The mock's default Render: one text line per route.
		sdk.Serve(&mock.Proxy{})
	default:
		fmt.Fprintf(os.Stderr, "no test plugin %q\n", name)
		return 1
	}
	return 0
}

// testPlugins serves built-ins from this test binary.
func testPlugins() Options {
	exe, err := os.Executable()
	return Options{BuiltinCommand: func(kind, name string) (pluginhost.Command, error) {
		return pluginhost.Command{Path: exe, Env: []string{testPluginEnv + "=" + kind + "/" + name}}, err
	}}
}

// processRuns reports whether pid is a live (not zombie) process.
func processRuns(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	return err == nil && !strings.Contains(string(b), "\nState:\tZ")
}

const testStack = `
scheduler {
  placement = "first"
}
plugin "scheduler" "first" {}
plugin "plans" "catalogue" {}
`

// TestDaemonRunsPlugins: New starts the declared plugins and loads the plan
// catalogue from the plan source; the daemon exposes both; Close stops the
// plugins before the store.
func TestDaemonRunsPlugins(t *testing.T) {
	t.Parallel()
	cfg := testConfigWith(t, "", testStack)
	d, err := NewWithOptions(t.Context(), cfg, testutil.Logger(t), testPlugins())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			d.Close(context.Background())
		}
	})

	var pids []int
	for _, s := range d.Plugins().Status() {
		if s.State != pluginhost.StateRunning || !s.Healthy {
			t.Errorf("plugin %s %s: %+v, want running and healthy", s.Kind, s.Name, s)
		}
		pids = append(pids, s.PID)
	}
	if len(pids) != 2 {
		t.Fatalf("Status() has %d plugins, want 2", len(pids))
	}
	if got := d.Plans().PlanFor(&store.User{Plan: "team"}); got.GetId() != "team" || got.GetMaxApps() != 20 {
		t.Errorf("PlanFor(team) = %v, want the plan source's team plan", got)
	}
	if got := d.Plans().PlanFor(&store.User{Plan: "free"}); got.GetId() != "hobby" {
		t.Errorf("PlanFor(free) = %v, want the source's default, hobby", got)
	}
	sched, err := d.Plugins().Scheduler(cfg.Scheduler.Placement)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := sched.Place(t.Context(), &pluginv1.PlaceRequest{
		Jobs: []*pluginv1.PlaceJob{{Id: 5}}, Workers: []*pluginv1.PlaceWorker{{Id: 9}}})
	if err != nil || resp.GetPlacements()[0].GetWorkerId() != 9 {
		t.Errorf("Place = %v, %v", resp, err)
	}
	mfs, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "wisehosting_plugin_up"
	}
	if !found {
		t.Error("the daemon's registry lacks wisehosting_plugin_up")
	}

	begin := time.Now()
	if err := d.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	t.Logf("Close took %s", time.Since(begin).Round(time.Millisecond))
	for _, pid := range pids {
		if processRuns(pid) {
			t.Errorf("plugin process %d still runs after Close", pid)
		}
	}
	if _, err := sched.Place(t.Context(), &pluginv1.PlaceRequest{}); !errors.Is(err, pluginhost.ErrUnavailable) {
		t.Errorf("Place after Close: %v, want ErrUnavailable", err)
	}
}

// TestDaemonRejectsPluginConfig: a plugin config error makes New fail with
// a *ConfigError whose diagnostics name the plugin and the file position.
func TestDaemonRejectsPluginConfig(t *testing.T) {
	t.Parallel()
	cfg := testConfigWith(t, "", testStack+`
plugin "alerts" "nowhere" {
  command = "/nonexistent/wh-sink"
}
`)
	d, err := NewWithOptions(t.Context(), cfg, testutil.Logger(t), testPlugins())
	if err == nil {
		d.Close(context.Background())
		t.Fatal("New succeeded")
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("New error = %v (%T), want *ConfigError", err, err)
	}
	d0 := ce.Diagnostics[0]
	if d0.Summary != `plugin "alerts" "nowhere": Cannot start plugin` || d0.Subject == nil || d0.Subject.Filename != cfg.Filename {
		t.Errorf("diagnostic = %v, want the command's range naming the plugin", d0)
	}
}
