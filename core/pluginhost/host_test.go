package pluginhost_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/core/pluginhost"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// env is a test's directory, configuration and host options.
type env struct {
	dir  string
	path string // the config file name
	src  string
	cfg  *config.Config
	opts pluginhost.Options
	reg  *prometheus.Registry
}

var firstScheduler = regexp.MustCompile(`plugin "scheduler" "([^"]+)"`)

// newEnv parses baseConfig plus plugins (and a scheduler block naming the
// first scheduler plugin) in a fresh directory.
func newEnv(t *testing.T, plugins string) *env {
	t.Helper()
	dir := t.TempDir()
	src := baseConfig
	if m := firstScheduler.FindStringSubmatch(plugins); m != nil {
		src += fmt.Sprintf("scheduler {\n  placement = %q\n}\n", m[1])
	}
	src += plugins
	e := &env{dir: dir, path: filepath.Join(dir, "wisehosting.hcl"), src: src, reg: prometheus.NewRegistry()}
	if err := os.WriteFile(e.path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Parse([]byte(src), e.path, config.Options{LookupEnv: noEnv})
	if diags.HasErrors() {
		t.Fatalf("test config: %s\n%s", diags, src)
	}
	e.cfg = cfg
	e.opts = pluginhost.Options{
		Logger:         testutil.Logger(t),
		Registry:       e.reg,
		BuiltinCommand: testCommand(dir),
		StartTimeout:   30 * time.Second,
	}
	return e
}

// start starts a host for e and stops it when the test ends.
func (e *env) start(t *testing.T) *pluginhost.Host {
	t.Helper()
	h := pluginhost.New(e.opts)
	t.Cleanup(func() {
		if err := h.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	begin := time.Now()
	if diags := h.Start(t.Context(), e.cfg); diags.HasErrors() {
		t.Fatalf("Start: %s", e.render(t, diags))
	}
	t.Logf("started %d plugins in %s", len(e.cfg.Plugins), time.Since(begin).Round(time.Millisecond))
	return h
}

// render prints diags the way the CLI does.
func (e *env) render(t *testing.T, diags hcl.Diagnostics) string {
	t.Helper()
	var b strings.Builder
	if err := e.cfg.WriteDiagnostics(&b, diags); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// pos returns the 1-based line and column of the first occurrence of s in
// the source after the first occurrence of after.
func (e *env) pos(t *testing.T, after, s string) (line, col int) {
	t.Helper()
	start := strings.Index(e.src, after)
	i := strings.Index(e.src[start:], s)
	if start < 0 || i < 0 {
		t.Fatalf("%q after %q not in the test config", s, after)
	}
	before := e.src[:start+i]
	line = strings.Count(before, "\n") + 1
	col = len(before) - strings.LastIndex(before, "\n")
	return line, col
}

func metricValue(t *testing.T, reg *prometheus.Registry, name, kind, plugin string) float64 {
	t.Helper()
	v, err := metrics.Sum(reg, name, "kind", kind, "name", plugin)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func statusOf(t *testing.T, h *pluginhost.Host, kind, name string) pluginhost.PluginStatus {
	t.Helper()
	for _, s := range h.Status() {
		if s.Kind == kind && s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for plugin %q %q", kind, name)
	return pluginhost.PluginStatus{}
}

var placeReq = &pluginv1.PlaceRequest{
	Jobs:    []*pluginv1.PlaceJob{{Id: 1, AppId: 10}, {Id: 2, AppId: 20}},
	Workers: []*pluginv1.PlaceWorker{{Id: 7}},
}

const allKinds = `
plugin "scheduler" "echo" {
  config {
    greeting = "hello"
    zones    = ["eu", "us"]
  }
}
plugin "proxy" "apply" {}
plugin "proxy" "plain" {}
plugin "alerts" "echo" {
  events = ["app.*", "deployment.failed"]
  env = {
    SINK_TOKEN = "not-a-core-secret"
  }
}
plugin "plans" "echo" {}
`

func TestStartAndCallEveryKind(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allKinds)
	h := e.start(t)
	ctx := t.Context()

	for _, s := range h.Status() {
		if s.State != pluginhost.StateRunning || !s.Healthy || s.Source != "builtin" || s.APIVersion != sdk.APIVersion1 || s.PID == 0 {
			t.Errorf("status %+v: want running, healthy, builtin, API 1, a pid", s)
		}
	}
	if s := statusOf(t, h, "scheduler", "echo"); s.Version != "1.2.3" || s.Description != "test scheduler" {
		t.Errorf("scheduler status = %+v, want the plugin's Info", s)
	}
	if got := metricValue(t, e.reg, "wisehosting_plugin_up", "proxy", "plain"); got != 1 {
		t.Errorf("wisehosting_plugin_up{proxy,plain} = %v, want 1", got)
	}

	sched, err := h.Scheduler("echo")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := sched.Place(ctx, placeReq)
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	if len(resp.GetPlacements()) != 2 || resp.GetPlacements()[0].GetWorkerId() != 7 || resp.GetPlacements()[0].GetReason() != "hello eu,us" {
		t.Errorf("Place = %v, want both jobs on worker 7 with the configured greeting", resp)
	}
	if info, err := sched.Info(ctx); err != nil || info.GetVersion() != "1.2.3" {
		t.Errorf("Info = %v, %v", info, err)
	}
	if err := sched.(sdk.HealthChecker).Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
	if _, err := h.Scheduler("nope"); !errors.Is(err, pluginhost.ErrNotDeclared) {
		t.Errorf("Scheduler(nope) error = %v, want ErrNotDeclared", err)
	}

	apply, err := h.Proxy("apply")
	if err != nil {
		t.Fatal(err)
	}
	applier, ok := apply.(sdk.ProxyApplier)
	if !ok {
		t.Fatal("proxy with the proxy.apply capability: handle does not implement sdk.ProxyApplier")
	}
	if ar, err := applier.Apply(ctx, &pluginv1.ApplyRequest{Generation: 4}); err != nil || !ar.GetApplied() || ar.GetMessage() != "generation 4" {
		t.Errorf("Apply = %v, %v", ar, err)
	}
	plain, err := h.Proxy("plain")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.(sdk.ProxyApplier); ok {
		t.Error("proxy without the proxy.apply capability: handle implements sdk.ProxyApplier")
	}
	rr, err := plain.Render(ctx, &pluginv1.RenderRequest{Generation: 9, Routes: []*pluginv1.Route{{Name: "web", Upstream: "http://10.0.0.1:8080", Hosts: []string{"web.apps.test"}}}})
	if err != nil || !strings.Contains(string(rr.GetBody()), "web http://10.0.0.1:8080 web.apps.test") {
		t.Errorf("Render = %v, %v", rr, err)
	}
	if names := []string{h.Proxies()[0].Name, h.Proxies()[1].Name}; !slices.Equal(names, []string{"apply", "plain"}) {
		t.Errorf("Proxies() names = %v, want file order", names)
	}

	sinks := h.AlertSinks()
	if len(sinks) != 1 || sinks[0].Name != "echo" {
		t.Fatalf("AlertSinks() = %+v", sinks)
	}
	for ev, want := range map[string]bool{"app.cpu": true, "app.cpu.resolved": true, "deployment.failed": true, "deployment.succeeded": false} {
		if got := sinks[0].Wants(ev); got != want {
			t.Errorf("Wants(%q) = %v, want %v", ev, got, want)
		}
	}
	dr, err := sinks[0].Deliver(ctx, &pluginv1.DeliverRequest{Events: []*pluginv1.Event{{Id: "e1", Type: "app.cpu"}}})
	if err != nil || len(dr.GetResults()) != 1 || dr.GetResults()[0].GetOutcome() != pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED {
		t.Errorf("Deliver = %v, %v", dr, err)
	}

	ps, ok := h.PlanSource()
	if !ok {
		t.Fatal("PlanSource() not found")
	}
	if pr, err := ps.Plans(ctx); err != nil || pr.GetDefaultPlan() != "free" || len(pr.GetPlans()) != 3 {
		t.Errorf("Plans = %v, %v", pr, err)
	}

	if err := h.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if _, err := sched.Place(ctx, placeReq); !errors.Is(err, pluginhost.ErrUnavailable) {
		t.Errorf("Place after Stop: error = %v, want ErrUnavailable", err)
	}
	if d := time.Since(begin); d > 50*time.Millisecond {
		t.Errorf("Place after Stop took %s, want an immediate failure", d)
	}
	if s := statusOf(t, h, "scheduler", "echo"); s.State != pluginhost.StateStopped || s.PID != 0 {
		t.Errorf("status after Stop = %+v", s)
	}
}

// TestPluginEnvironment: a plugin sees PATH, HOME, TMPDIR, LANG, its
// block's env and go-plugin's handshake variables — nothing else of the
// core's environment.
func TestPluginEnvironment(t *testing.T) {
	t.Setenv("WISEHOSTING_SECRET", "core-secret-never-in-a-plugin")
	t.Setenv("DATABASE_URL", "postgres://core:pw@db/wh")
	e := newEnv(t, allKinds)
	h := e.start(t)
	dr, err := h.AlertSinks()[0].Deliver(t.Context(), &pluginv1.DeliverRequest{Events: []*pluginv1.Event{{Id: "e", Type: "test.environment"}}})
	if err != nil {
		t.Fatal(err)
	}
	var environ []string
	if err := json.Unmarshal([]byte(dr.GetResults()[0].GetMessage()), &environ); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	allowed := map[string]bool{"PATH": true, "HOME": true, "TMPDIR": true, "LANG": true,
		"SINK_TOKEN": true, "WH_PLUGINHOST_TEST_PLUGIN": true, "WH_PLUGINHOST_TEST_DIR": true,
		sdk.HandshakeConfig().MagicCookieKey: true}
	for k := range got {
		if !allowed[k] && !strings.HasPrefix(k, "PLUGIN_") {
			t.Errorf("plugin environment holds %s", k)
		}
	}
	if got["SINK_TOKEN"] != "not-a-core-secret" {
		t.Errorf("block env SINK_TOKEN = %q", got["SINK_TOKEN"])
	}
	if got["PATH"] != os.Getenv("PATH") {
		t.Errorf("PATH = %q, want the core's", got["PATH"])
	}
}

// TestPluginLogsReachCoreLog: the plugin's hclog lines are re-logged under
// plugin.<kind>.<name>.
func TestPluginLogsReachCoreLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
plugin "scheduler" "echo" {
  config {
    greeting = "logged"
  }
}
`)
	var buf syncBuffer
	e.opts.Logger = hclog.New(&hclog.LoggerOptions{Name: "wisehosting", Level: hclog.Info, Output: &buf})
	e.start(t)
	// go-plugin rebuilds the plugin's key/value pairs from a JSON object, so
	// their order varies: look for each on the line, not for one order.
	testutil.WaitFor(t, 5*time.Second, "the plugin's log line in the core log", func() bool {
		for _, line := range strings.Split(buf.String(), "\n") {
			if strings.Contains(line, "wisehosting.plugin.scheduler.echo") && strings.Contains(line, "configured:") &&
				strings.Contains(line, "greeting=logged") && strings.Contains(line, "instance=echo") {
				return true
			}
		}
		return false
	})
}

func TestStartDiagnostics(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		plugins string
		summary string // want summary
		detail  string // substring of the detail
		at      [2]string
	}{
		{
			name: "wrong type in config",
			plugins: `
plugin "scheduler" "echo" {
  config {
    greeting = "hi"
    zones    = "web"
  }
}
`,
			summary: `plugin "scheduler" "echo": Incorrect attribute value type`,
			detail:  "list of string required",
			at:      [2]string{"zones", `"web"`},
		},
		{
			name: "unknown attribute",
			plugins: `
plugin "scheduler" "echo" {
  config {
    greeting = "hi"
    colour   = "blue"
  }
}
`,
			summary: `plugin "scheduler" "echo": Unsupported argument`,
			detail:  `"colour" is not expected`,
			at:      [2]string{"greeting", "colour"},
		},
		{
			name: "missing required attribute",
			plugins: `
plugin "scheduler" "echo" {
  config {
    zones = ["a"]
  }
}
`,
			summary: `plugin "scheduler" "echo": Missing required argument`,
			detail:  `"greeting" is required`,
			at:      [2]string{"config", "{"},
		},
		{
			name: "Configure rejects",
			plugins: `
plugin "scheduler" "echo" {
  config {
    greeting = "reject"
  }
}
`,
			summary: `plugin "scheduler" "echo": Invalid plugin configuration`,
			detail:  `greeting must not be "reject"`,
			at:      [2]string{"config", "{"},
		},
		{
			name:    "Info kind mismatch",
			plugins: `plugin "scheduler" "liar" {}`,
			summary: `plugin "scheduler" "liar": Wrong plugin kind`,
			detail:  `says it is a "proxy" plugin`,
			at:      [2]string{"plugin", "plugin"},
		},
		{
			name:    "no common API version",
			plugins: `plugin "scheduler" "future" {}`,
			summary: `plugin "scheduler" "future": No common API version`,
			detail:  `"7", "8"`,
			at:      [2]string{"plugin", "plugin"},
		},
		{
			name:    "invalid spec",
			plugins: `plugin "scheduler" "badspec" {}`,
			summary: `plugin "scheduler" "badspec": Invalid config spec`,
			detail:  "a bug in the plugin",
			at:      [2]string{"plugin", "plugin"},
		},
		{
			name:    "unknown built-in",
			plugins: `plugin "scheduler" "nonesuch" {}`,
			summary: `plugin "scheduler" "nonesuch": Cannot start plugin`,
			detail:  `no test plugin "scheduler/nonesuch"`, // its stderr
			at:      [2]string{"plugin", "plugin"},
		},
		{
			name: "command not found",
			plugins: `plugin "alerts" "gone" {
  command = "/nonexistent/wh-sink"
}`,
			summary: `plugin "alerts" "gone": Cannot start plugin`,
			detail:  "/nonexistent/wh-sink",
			at:      [2]string{"command", `"/nonexistent`},
		},
		{
			name: "checksum mismatch",
			plugins: fmt.Sprintf(`plugin "scheduler" "echo" {
  command  = %q
  checksum = "%064x"
  env = {
    WH_PLUGINHOST_TEST_PLUGIN = "scheduler/echo"
  }
  config {
    greeting = "hi"
  }
}`, exe, 42),
			summary: `plugin "scheduler" "echo": Checksum mismatch`,
			detail:  "was not started",
			at:      [2]string{"checksum", `"0000`},
		},
		{
			name: "two plan sources",
			plugins: `plugin "plans" "echo" {}
plugin "plans" "other" {}`,
			summary: `plugin "plans" "other": more than one plan source`,
			detail:  `plugin "plans" "echo" is already declared`,
			at:      [2]string{`"other"`, "plugin"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.plugins)
			h := pluginhost.New(e.opts)
			diags := h.Start(t.Context(), e.cfg)
			if !diags.HasErrors() {
				t.Fatal("Start succeeded, want diagnostics")
			}
			out := e.render(t, diags)
			d := diags.Errs()[0].(*hcl.Diagnostic)
			if d.Summary != tc.summary {
				t.Errorf("summary = %q, want %q\n%s", d.Summary, tc.summary, out)
			}
			if !strings.Contains(d.Detail, tc.detail) {
				t.Errorf("detail = %q, want it to contain %q", d.Detail, tc.detail)
			}
			// The subject: the line and column of the offending text.
			anchor := tc.at[0]
			if tc.at[0] == "plugin" || tc.at[0] == `"other"` {
				anchor = strings.SplitN(tc.plugins, "\n", 3)[0]
				if tc.at[0] == `"other"` {
					anchor = `plugin "plans" "other"`
				}
				anchor = strings.TrimSpace(anchor)
			}
			line, col := e.pos(t, anchor, tc.at[1])
			if d.Subject == nil || d.Subject.Filename != e.path || d.Subject.Start.Line != line || d.Subject.Start.Column != col {
				t.Errorf("subject = %v, want %s:%d:%d\n%s", d.Subject, e.path, line, col, out)
			}
			if want := fmt.Sprintf("%s:%d:%d: error: %s", e.path, line, col, tc.summary); !strings.Contains(out, want) {
				t.Errorf("rendered diagnostics lack %q:\n%s", want, out)
			}
			for _, s := range h.Status() {
				if s.PID != 0 || (s.State != pluginhost.StateStopped && s.State != pluginhost.StateFailed) {
					t.Errorf("after a failed Start: %+v, want stopped, no process", s)
				}
			}
		})
	}
}

func TestChecksumAccepted(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fmt.Sprintf(`plugin "scheduler" "ext" {
  command  = %q
  checksum = %q
  env = {
    WH_PLUGINHOST_TEST_PLUGIN = "scheduler/echo"
  }
  config {
    greeting = "checked"
  }
}`, exe, hex.EncodeToString(sum.Sum(nil))))
	h := e.start(t)
	if s := statusOf(t, h, "scheduler", "ext"); s.Source != exe || s.State != pluginhost.StateRunning {
		t.Errorf("status = %+v, want running from %s", s, exe)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allKinds)
	if diags := pluginhost.Validate(t.Context(), e.cfg, e.opts); diags.HasErrors() {
		t.Fatalf("Validate: %s", e.render(t, diags))
	}
	bad := newEnv(t, `
plugin "scheduler" "echo" {
  config {
    greeting = 42
    limit    = "many"
  }
}
`)
	diags := pluginhost.Validate(t.Context(), bad.cfg, bad.opts)
	if len(diags.Errs()) != 1 || !strings.Contains(diags.Error(), `plugin "scheduler" "echo": Incorrect attribute value type`) {
		t.Errorf("Validate diagnostics = %v, want one wrong type (limit; 42 converts to a string)", diags)
	}
}

// killAndWatch SIGKILLs the plugin's process and calls Place until it
// succeeds again, checking that every failing call fails fast with
// ErrUnavailable. It returns how long the outage lasted and how many calls
// failed.
func killAndWatch(t *testing.T, h *pluginhost.Host, sched sdk.Scheduler, pid int) (outage time.Duration, failed int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var slowest time.Duration
	for {
		begin := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err := sched.Place(ctx, placeReq)
		cancel()
		took := time.Since(begin)
		if err == nil {
			break
		}
		failed++
		slowest = max(slowest, took)
		if !errors.Is(err, pluginhost.ErrUnavailable) {
			t.Fatalf("call during the outage: %v, want ErrUnavailable", err)
		}
		if !strings.Contains(err.Error(), `plugin "scheduler" "echo"`) {
			t.Errorf("error %q does not name the plugin", err)
		}
		// Failing fast means failing without waiting on the dead process
		// (the call's own 5 s deadline); the exact figure is the machine's
		// (a loaded CI runner took 495 ms once), so it is logged, not timed.
		if took > 2*time.Second {
			t.Errorf("a call during the outage took %s; it must fail fast, not wait for its deadline", took)
		}
		if time.Since(killed) > 15*time.Second {
			t.Fatalf("plugin not back 15s after SIGKILL; status %+v", h.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("outage %s, %d calls failed, slowest failure %s", time.Since(killed).Round(time.Millisecond), failed, slowest)
	return time.Since(killed), failed
}

func TestSIGKILLMidUseRestarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
plugin "scheduler" "echo" {
  config {
    greeting = "again"
  }
}
`)
	h := e.start(t)
	sched, err := h.Scheduler("echo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sched.Place(t.Context(), placeReq); err != nil {
		t.Fatal(err)
	}
	old := statusOf(t, h, "scheduler", "echo")

	outage, failed := killAndWatch(t, h, sched, old.PID)
	if failed == 0 {
		t.Error("no call failed after SIGKILL; the outage went unnoticed")
	}
	if outage > 5*time.Second {
		t.Errorf("outage lasted %s, want a restart within seconds", outage)
	}
	resp, err := sched.Place(t.Context(), placeReq)
	if err != nil || resp.GetPlacements()[0].GetReason() != "again a" {
		t.Errorf("Place after the restart = %v, %v; want the configuration re-sent", resp, err)
	}
	now := statusOf(t, h, "scheduler", "echo")
	if now.State != pluginhost.StateRunning || now.PID == old.PID || now.PID == 0 || now.Restarts != 1 {
		t.Errorf("status after restart = %+v (before: pid %d)", now, old.PID)
	}
	if !strings.Contains(now.LastError, "signal: killed") {
		t.Errorf("LastError = %q, want the crash", now.LastError)
	}
	if got := metricValue(t, e.reg, "wisehosting_plugin_restarts_total", "scheduler", "echo"); got != 1 {
		t.Errorf("wisehosting_plugin_restarts_total = %v, want 1", got)
	}
	if got := metricValue(t, e.reg, "wisehosting_plugin_up", "scheduler", "echo"); got != 1 {
		t.Errorf("wisehosting_plugin_up = %v, want 1", got)
	}

	// A second crash is handled the same way.
	killAndWatch(t, h, sched, now.PID)
	if got := metricValue(t, e.reg, "wisehosting_plugin_restarts_total", "scheduler", "echo"); got != 2 {
		t.Errorf("wisehosting_plugin_restarts_total after a second kill = %v, want 2", got)
	}
}

// TestCrashDetectedWithoutCalls: the supervisor notices a dead plugin on
// its own and restarts it before anyone calls.
func TestCrashDetectedWithoutCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
plugin "scheduler" "echo" {
  config {
    greeting = "idle"
  }
}
`)
	h := e.start(t)
	old := statusOf(t, h, "scheduler", "echo")
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	testutil.WaitFor(t, 10*time.Second, "the plugin restarted", func() bool {
		s := statusOf(t, h, "scheduler", "echo")
		return s.State == pluginhost.StateRunning && s.PID != old.PID
	})
	t.Logf("restarted %s after SIGKILL without any call", time.Since(begin).Round(time.Millisecond))
}

// cpuTime is the user+system CPU time of this process and its reaped
// children.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			t.Fatal(err)
		}
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total
}

// TestCrashLoopBacksOff: a plugin that dies at every start stays in
// backoff (never given up), its calls fail fast, its status tells why, and
// the host does not spin. Not parallel: it measures the process's CPU.
func TestCrashLoopBacksOff(t *testing.T) {
	e := newEnv(t, `
plugin "scheduler" "crashloop" {
  config {
    greeting = "once"
  }
}
`)
	h := e.start(t)
	sched, err := h.Scheduler("crashloop")
	if err != nil {
		t.Fatal(err)
	}
	pid := statusOf(t, h, "scheduler", "crashloop").PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	testutil.WaitFor(t, 10*time.Second, "a failed restart", func() bool {
		return statusOf(t, h, "scheduler", "crashloop").Restarts >= 2
	})
	cpu0, wall0 := cpuTime(t), time.Now()
	time.Sleep(3 * time.Second) // measuring idleness: nothing to poll for
	cpu, wall := cpuTime(t)-cpu0, time.Since(wall0)

	s := statusOf(t, h, "scheduler", "crashloop")
	elapsed := time.Since(killed)
	t.Logf("after %s: %d restart attempts, CPU %s over %s, last error %q", elapsed.Round(time.Millisecond), s.Restarts, cpu, wall.Round(time.Millisecond), s.LastError)
	if s.State != pluginhost.StateRestarting || s.Healthy {
		t.Errorf("state = %s healthy=%v, want restarting, unhealthy", s.State, s.Healthy)
	}
	if !strings.Contains(s.LastError, "exit status 3") && !strings.Contains(s.LastError, "cannot start again") {
		t.Errorf("LastError = %q, want the failed start", s.LastError)
	}
	// Backoff 0.2, 0.4, 0.8, 1.6, 3.2 s (±20%): about 5 attempts in 5 s.
	if s.Restarts > 8 {
		t.Errorf("%d restart attempts in %s: the backoff does not grow", s.Restarts, elapsed)
	}
	if cpu > wall/3 {
		t.Errorf("host used %s CPU in %s while the plugin was in backoff", cpu, wall)
	}
	begin := time.Now()
	if _, err := sched.Place(t.Context(), placeReq); !errors.Is(err, pluginhost.ErrUnavailable) || !strings.Contains(err.Error(), "restarting") {
		t.Errorf("Place during backoff: %v, want ErrUnavailable saying restarting", err)
	}
	if d := time.Since(begin); d > 50*time.Millisecond {
		t.Errorf("Place during backoff took %s", d)
	}
	if got := metricValue(t, e.reg, "wisehosting_plugin_up", "scheduler", "crashloop"); got != 0 {
		t.Errorf("wisehosting_plugin_up = %v, want 0", got)
	}
	begin = time.Now()
	if err := h.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("Stop during backoff took %s", d)
	}
}

// children returns the pids of the processes whose parent is pid.
func children(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, en := range entries {
		p, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := procStat(p); ok && ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// procStat returns a process's parent pid and state letter.
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, fields[0][0], err == nil
}

// gone reports whether pid no longer runs (absent, or a zombie nobody reaped).
func gone(pid int) bool {
	_, state, ok := procStat(pid)
	return !ok || state == 'Z'
}

// TestStopLeavesNoChildren: after Stop, no process of ours remains — not
// the plugins, not what they spawned. Not parallel: it counts every child
// of the test process.
func TestStopLeavesNoChildren(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	if kids := children(t, os.Getpid()); len(kids) > 0 {
		t.Fatalf("children before the test: %v", kids)
	}
	e := newEnv(t, allKinds+`
plugin "scheduler" "spawner" {
  config {
    greeting = "spawned"
  }
}
`)
	h := e.start(t)
	var pids []int
	for _, s := range h.Status() {
		pids = append(pids, s.PID)
	}
	raw, err := os.ReadFile(filepath.Join(e.dir, "grandchild.pid"))
	if err != nil {
		t.Fatal(err)
	}
	grandchild, err := strconv.Atoi(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if kids := children(t, os.Getpid()); len(kids) != len(pids) {
		t.Errorf("children while running = %v, want the %d plugins %v", kids, len(pids), pids)
	}
	begin := time.Now()
	if err := h.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped %d plugins (one with a grandchild holding its stderr) in %s", len(pids), time.Since(begin).Round(time.Millisecond))
	if kids := children(t, os.Getpid()); len(kids) > 0 {
		t.Errorf("children after Stop: %v", kids)
	}
	// Stop waits for the plugins themselves (its children). The grandchild
	// got the same SIGKILL through the process group but is not ours to
	// wait for: give the kernel a moment to finish it.
	for _, p := range pids {
		if !gone(p) {
			t.Errorf("plugin process %d still runs after Stop", p)
		}
	}
	testutil.WaitFor(t, 2*time.Second, fmt.Sprintf("the grandchild %d to die of the group's SIGKILL", grandchild),
		func() bool { return gone(grandchild) })
}

// TestPluginsDieWithTheCore: a core killed with SIGKILL (no Stop) takes its
// plugins with it (Pdeathsig).
func TestPluginsDieWithTheCore(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), testCoreEnv+"=1", testDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	reap := func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	t.Cleanup(reap)
	line, err := readLine(bufio.NewReader(stdout), "pid=", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(line)
	if err != nil || pid == 0 {
		t.Fatalf("core printed pid=%q", line)
	}
	if ppid, _, _ := procStat(pid); ppid != cmd.Process.Pid {
		t.Fatalf("plugin %d has parent %d, want the core %d", pid, ppid, cmd.Process.Pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	reap()
	testutil.WaitFor(t, 5*time.Second, "the plugin to die with its core", func() bool { return gone(pid) })
}

// TestExternalExamplePlugin builds examples/third-party-sink (its own
// module) and loads it through command like any third-party plugin.
func TestExternalExamplePlugin(t *testing.T) {
	t.Parallel()
	src, err := filepath.Abs(filepath.Join("..", "..", "examples", "third-party-sink"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "go.mod")); err != nil {
		t.Skipf("examples/third-party-sink is not there yet (%v)", err)
	}
	runExternalExample(t, src)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Two blocks may run the same built-in: `source` names it, the block's
// name names the instance.
func TestSourceRunsABuiltinTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
plugin "alerts" "echo" {}
plugin "alerts" "echo-two" {
  source = "echo"
  events = ["deployment.failed"]
}
`)
	h := e.start(t)
	sinks := h.AlertSinks()
	if len(sinks) != 2 {
		t.Fatalf("%d alert sinks, want 2", len(sinks))
	}
	for _, s := range h.Status() {
		if s.State != pluginhost.StateRunning {
			t.Errorf("%s/%s: %s (%s)", s.Kind, s.Name, s.State, s.LastError)
		}
	}
	if s := statusOf(t, h, "alerts", "echo-two"); s.Source != "builtin:echo" {
		t.Errorf("source of the second instance = %q, want builtin:echo", s.Source)
	}
}
