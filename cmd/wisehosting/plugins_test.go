package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/plugins"
)

// defaultStack is the repository's wisehosting.hcl.
var defaultStack = filepath.Join("..", "..", "wisehosting.hcl")

// withTraefikConfig returns the default stack with the traefik block
// replaced by one holding config.
func withTraefikConfig(t *testing.T, config string) string {
	t.Helper()
	src, err := os.ReadFile(defaultStack)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^plugin "proxy" "traefik" \{\}.*$`)
	if !re.Match(src) {
		t.Fatal(`wisehosting.hcl has no line plugin "proxy" "traefik" {}`)
	}
	return re.ReplaceAllString(string(src), "plugin \"proxy\" \"traefik\" {\n  config {\n"+config+"\n  }\n}")
}

// lineCol finds the 1-based line and column of the first sub in src that
// starts after the first after ends.
func lineCol(t *testing.T, src, after, sub string) (int, int) {
	t.Helper()
	start := strings.Index(src, after)
	if start < 0 {
		t.Fatalf("%q not found", after)
	}
	start += len(after)
	i := strings.Index(src[start:], sub)
	if i < 0 {
		t.Fatalf("%q after %q not found", sub, after)
	}
	before := src[:start+i]
	return strings.Count(before, "\n") + 1, len(before) - strings.LastIndex(before, "\n")
}

// TestValidatePluginConfigTypeError is issue 3's first "done when": the
// real binary starts the built-in traefik plugin, decodes its config block
// against the plugin's schema, and reports a wrong type at file:line:col,
// naming the plugin.
func TestValidatePluginConfigTypeError(t *testing.T) {
	t.Parallel()
	src := withTraefikConfig(t, `    entry_points = "web"`)
	path, _ := stageSource(t, src)
	line, col := lineCol(t, src, "entry_points", `"web"`)

	res := runBinary(t, []string{"NO_COLOR=1"}, "validate", path)
	if res.code != 1 {
		t.Fatalf("want exit 1, got:\n%s", res)
	}
	want := fmt.Sprintf(`%s:%d:%d: error: plugin "proxy" "traefik": Incorrect attribute value type`, path, line, col)
	if !strings.Contains(res.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
	}
	for _, w := range []string{`"entry_points": list of string required`, fmt.Sprintf("%5d |     entry_points = \"***\"", line)} {
		if !strings.Contains(res.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, res.stderr)
		}
	}
	if res.stdout != "" {
		t.Errorf("stdout should be empty, got %q", res.stdout)
	}

	// -plugins=false checks only the core's own schema.
	res = runBinary(t, nil, "validate", "-plugins=false", path)
	if res.code != 0 || !strings.Contains(res.stdout, "valid (5 plugin blocks)") {
		t.Errorf("validate -plugins=false: want exit 0, got:\n%s", res)
	}
}

func TestValidatePluginDiagnostics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		config  string
		summary string
		at      [2]string // the diagnostic points at the first at[1] after at[0]
		detail  string
	}{
		{
			name:    "unknown attribute",
			config:  `    entry_point = ["web"]`,
			summary: `plugin "proxy" "traefik": Unsupported argument`,
			at:      [2]string{`plugin "proxy" "traefik"`, "entry_point "},
			detail:  `Did you mean "entry_points"?`,
		},
		{
			name:    "rejected by Configure",
			config:  `    cert_resolver = "lets encrypt"`,
			summary: `plugin "proxy" "traefik": Invalid plugin configuration`,
			at:      [2]string{"plugin \"proxy\" \"traefik\" {\n  config ", "{"},
			detail:  `The plugin rejected its configuration: cert_resolver = "lets encrypt"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := withTraefikConfig(t, tc.config)
			path, _ := stageSource(t, src)
			res := runInProcess(t, "validate", path)
			if res.code != 1 {
				t.Fatalf("want exit 1, got:\n%s", res)
			}
			line, col := lineCol(t, src, tc.at[0], tc.at[1])
			if want := fmt.Sprintf("%s:%d:%d: error: %s", path, line, col, tc.summary); !strings.Contains(res.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
			}
			if !strings.Contains(res.stderr, tc.detail) {
				t.Errorf("stderr lacks %q:\n%s", tc.detail, res.stderr)
			}
		})
	}
}

func TestPluginServeCommand(t *testing.T) {
	t.Parallel()
	res := runBinary(t, nil, "plugin", "serve", "scheduler", "nope")
	if res.code != 1 || !strings.Contains(res.stderr, `no built-in scheduler plugin "nope"`) {
		t.Errorf("unknown built-in: want exit 1 and a message, got:\n%s", res)
	}
	for _, b := range []string{`plugin "scheduler" "least-loaded"`, `plugin "plans" "static"`, `plugin "alerts" "log"`, `plugin "proxy" "traefik"`} {
		if !strings.Contains(res.stderr, b) {
			t.Errorf("the list of built-ins lacks %s:\n%s", b, res.stderr)
		}
	}
	// Run by hand, a built-in says how it is meant to be started.
	res = runBinary(t, nil, "plugin", "serve", "scheduler", "least-loaded")
	if res.code != 1 || !strings.Contains(res.stderr, "declare it in wisehosting.hcl") {
		t.Errorf("plugin serve by hand: want exit 1 and a hint, got:\n%s", res)
	}
	res = runBinary(t, nil, "plugin", "serve", "scheduler")
	if res.code != 2 {
		t.Errorf("plugin serve with a missing name: want exit 2, got:\n%s", res)
	}
	// Internal: not in the usage text; plugins list is.
	res = runInProcess(t, "help")
	if strings.Contains(res.stdout, "plugin serve") || !strings.Contains(res.stdout, "plugins  list") {
		t.Errorf("usage should list `plugins list` but not `plugin serve`:\n%s", res.stdout)
	}
}

func TestPluginsList(t *testing.T) {
	t.Parallel()
	path, secret := stage(t, defaultStack)
	begin := time.Now()
	res := runBinary(t, nil, "plugins", "list", "-config", path)
	t.Logf("plugins list took %s", time.Since(begin).Round(time.Millisecond))
	if res.code != 0 {
		t.Fatalf("plugins list failed:\n%s", res)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 6 || !regexp.MustCompile(`^KIND\s+NAME\s+SOURCE\s+VERSION\s+API\s+HEALTH\s+DESCRIPTION$`).MatchString(lines[0]) {
		t.Fatalf("want a header and 5 rows, got:\n%s", res.stdout)
	}
	for i, kn := range [][2]string{{"scheduler", "least-loaded"}, {"plans", "static"}, {"alerts", "log"}, {"proxy", "traefik"}, {"proxy", "caddy"}} {
		row := regexp.MustCompile(`^` + kn[0] + `\s+` + kn[1] + `\s+builtin\s+\d+\.\d+\.\d+\s+1\s+healthy\s+\S`)
		if !row.MatchString(lines[i+1]) {
			t.Errorf("row %d = %q, want %s %s builtin <version> 1 healthy <description>", i+1, lines[i+1], kn[0], kn[1])
		}
	}
	if res.stderr != "" {
		t.Errorf("stderr should be empty, got:\n%s", res.stderr)
	}
	if strings.Contains(res.stdout+res.stderr, secret) {
		t.Error("plugins list printed the server secret")
	}

	res = runBinary(t, nil, "plugins", "list", "-builtin")
	if res.code != 0 || strings.Count(res.stdout, "\n") != len(plugins.List()) {
		t.Errorf("plugins list -builtin: want the %d built-ins, got:\n%s", len(plugins.List()), res)
	}
	for _, b := range plugins.List() {
		if !strings.Contains(res.stdout, fmt.Sprintf("plugin %q %q", b.Kind, b.Name)) {
			t.Errorf("plugins list -builtin lacks %s/%s:\n%s", b.Kind, b.Name, res)
		}
	}

	bad, _ := stageSource(t, withTraefikConfig(t, `    entry_points = "web"`))
	res = runBinary(t, nil, "plugins", "list", "-config", bad)
	if res.code != 1 || !strings.Contains(res.stderr, `plugin "proxy" "traefik": Incorrect attribute value type`) || res.stdout != "" {
		t.Errorf("plugins list with a bad plugin config: want exit 1 and the diagnostic, got:\n%s", res)
	}
	res = runBinary(t, nil, "plugins")
	if res.code != 2 {
		t.Errorf("plugins without a subcommand: want exit 2, got:\n%s", res)
	}
}

// TestServeRejectsPluginConfig: serve refuses a plugin config error with
// the diagnostic and exit 1, and leaves no Postgres or plugin behind.
func TestServeRejectsPluginConfig(t *testing.T) {
	t.Parallel()
	root := sharedTempDir(t)
	t.Cleanup(func() { requireNoClusterProcs(t, root) })
	writeSecret(t, root)
	src := withTraefikConfig(t, `    entry_points = "web"`)
	src = strings.Replace(src, `listen = "127.0.0.1:8443"`, fmt.Sprintf("listen = %q", freeLoopbackAddr(t)), 1)
	cfg := filepath.Join(root, "wisehosting.hcl")
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, cfg)
	select {
	case <-srv.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not exit on a plugin config error:\n%s", srv.out)
	}
	if code := srv.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1:\n%s", code, srv.out)
	}
	line, col := lineCol(t, src, "entry_points", `"web"`)
	if want := fmt.Sprintf(`%s:%d:%d: error: plugin "proxy" "traefik": Incorrect attribute value type`, cfg, line, col); !strings.Contains(srv.out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, srv.out)
	}
	if strings.Contains(srv.out.String(), "serving") {
		t.Errorf("serve bound its address despite the error:\n%s", srv.out)
	}
	requireNoClusterProcs(t, root)
}

// pluginChildren returns the pids of pid's children that serve built-in
// plugins.
func pluginChildren(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil || !strings.Contains(string(status), fmt.Sprintf("\nPPid:\t%d\n", pid)) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), "plugin\x00serve\x00") {
			out = append(out, p)
		}
	}
	return out
}

// alive reports whether pid runs (and is not a zombie).
func alive(pid int) bool {
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	return err == nil && !strings.Contains(string(status), "\nState:\tZ")
}

// waitPluginsGone fails the test unless every pid has ended within 5 s.
func waitPluginsGone(t *testing.T, pids []int) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("plugin processes %v to end", pids), func() bool {
		for _, p := range pids {
			if alive(p) {
				return false
			}
		}
		return true
	})
}
