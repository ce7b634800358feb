package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/cliclient"
	"github.com/wisehosting/wisehosting/core/cliclient/clitest"
	"github.com/wisehosting/wisehosting/core/testutil"
)

// testCLI is a cli wired to buffers, an environment map and a temporary
// config directory.
type testCLI struct {
	*cli
	env            map[string]string
	stdout, stderr *syncBuffer
	// hidden counts hideInput calls; restored the restores.
	hidden, restored int
}

// newTestCLI returns a cli whose credentials live in a fresh directory
// ($WISEHOSTING_CLI_CONFIG) and whose stdin is stdin.
func newTestCLI(t *testing.T, stdin string) *testCLI {
	t.Helper()
	tc := &testCLI{
		env:    map[string]string{envCLIConfig: filepath.Join(t.TempDir(), "conf", "cli.json")},
		stdout: &syncBuffer{},
		stderr: &syncBuffer{},
	}
	tc.cli = &cli{
		stdin:  strings.NewReader(stdin),
		stdout: tc.stdout,
		stderr: tc.stderr,
		getenv: func(k string) string { return tc.env[k] },
		home:   func() (string, error) { return "/nonexistent-home", nil },
		now:    func() time.Time { return time.Date(2025, 1, 2, 3, 14, 5, 0, time.UTC) },
		loc:    time.UTC,
		every:  time.Millisecond,
	}
	tc.hideInput = func() func() {
		tc.hidden++
		return func() { tc.restored++ }
	}
	return tc
}

// run runs one user command as `wisehosting ARGS` would, returning the
// exit code and what it printed.
func (tc *testCLI) run(ctx context.Context, args ...string) result {
	n, e := len(tc.stdout.String()), len(tc.stderr.String())
	code := exitCode(tc.command(ctx, args), tc.stderr)
	return result{code: code, stdout: tc.stdout.String()[n:], stderr: tc.stderr.String()[e:]}
}

// loggedIn returns a cli logged in to srv.
func loggedIn(t *testing.T, srv *clitest.Server) *testCLI {
	t.Helper()
	tc := newTestCLI(t, srv.Token+"\n")
	if res := tc.run(t.Context(), "login", "-core", srv.URL); res.code != 0 {
		t.Fatalf("login: %s", res)
	}
	return tc
}

func TestCLILogin(t *testing.T) {
	t.Parallel()
	srv := clitest.New(t)
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		stdin    string
		terminal bool
		code     int
		stdout   string // contained
		stderr   string // contained
		saved    bool
	}{
		{name: "token on stdin", args: []string{"-core", srv.URL}, stdin: srv.Token + "\n",
			stdout: "logged in as ada@example.com at " + srv.URL, saved: true},
		{name: "token at a terminal", args: []string{"-core", srv.URL + "/"}, stdin: srv.Token + "\r\n", terminal: true,
			stderr: "API token (wht_…): \n", saved: true},
		{name: "token without newline", args: []string{"-core", srv.URL}, stdin: srv.Token, saved: true},
		{name: "token in the environment", args: []string{"-core", srv.URL}, env: map[string]string{envToken: srv.Token},
			stdin: "ignored\n", saved: true},
		{name: "core in the environment", env: map[string]string{envCore: srv.URL}, stdin: srv.Token + "\n", saved: true},
		{name: "not an API token", args: []string{"-core", srv.URL}, stdin: "ghp_0123456789\n", code: 1,
			stderr: "wisehosting: login: that is not a WiseHosting API token: API tokens start with \"wht_\"; get one from 'wisehosting user add' or POST /api/v1/tokens\n"},
		{name: "a session token", args: []string{"-core", srv.URL}, stdin: "whs_" + strings.Repeat("A", 43) + "\n", code: 1,
			stderr: "API tokens start with \"wht_\""},
		{name: "a truncated token", args: []string{"-core", srv.URL}, stdin: srv.Token[:20] + "\n", code: 1,
			stderr: "wisehosting: login: the token is damaged (want 43 characters after the prefix, not 16): copy it whole\n"},
		{name: "a revoked token", args: []string{"-core", srv.URL}, stdin: "wht_" + strings.Repeat("B", 42) + "A\n", code: 1,
			stderr: "wisehosting: login: check the token with " + srv.URL + ": unauthorized: missing or invalid credentials\n"},
		{name: "no token", args: []string{"-core", srv.URL}, stdin: "", code: 1, stderr: "login: read the token: EOF"},
		{name: "an empty line", args: []string{"-core", srv.URL}, stdin: "\n", code: 1, stderr: "login: no token"},
		{name: "no core", stdin: srv.Token + "\n", code: 2, stderr: "login: which core? pass -core URL"},
		{name: "a bad core", args: []string{"-core", "core.example.com"}, stdin: srv.Token + "\n", code: 2,
			stderr: `-core: core URL "core.example.com": want an http:// or https:// URL`},
		{name: "an argument", args: []string{"-core", srv.URL, srv.Token}, code: 2, stderr: "login takes no arguments"},
		{name: "nothing listening", args: []string{"-core", "http://127.0.0.1:1"}, stdin: srv.Token + "\n", code: 1,
			stderr: `wisehosting: login: check the token with http://127.0.0.1:1: Get "http://127.0.0.1:1/api/v1/me": dial tcp 127.0.0.1:1: connect: connection refused` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestCLI(t, tc.stdin)
			c.terminal = tc.terminal
			for k, v := range tc.env {
				c.env[k] = v
			}
			res := c.run(t.Context(), append([]string{"login"}, tc.args...)...)
			if res.code != tc.code || !strings.Contains(res.stdout, tc.stdout) || !strings.Contains(res.stderr, tc.stderr) {
				t.Fatalf("want exit %d, stdout with %q, stderr with %q; got:\n%s", tc.code, tc.stdout, tc.stderr, res)
			}
			if strings.Contains(res.stdout+res.stderr, srv.Token) {
				t.Errorf("the token was printed:\n%s", res)
			}
			if tc.terminal && (c.hidden != 1 || c.restored != 1) {
				t.Errorf("at a terminal the input should be hidden once and restored: %d, %d", c.hidden, c.restored)
			}
			if !tc.terminal && (c.hidden != 0 || strings.Contains(res.stderr, "API token (wht_…): ")) {
				t.Errorf("without a terminal, no prompt: %s", res)
			}
			raw, err := os.ReadFile(c.env[envCLIConfig])
			if !tc.saved {
				if err == nil {
					t.Errorf("a failed login saved credentials: %s", raw)
				}
				return
			}
			var cfg cliConfig
			if err != nil || json.Unmarshal(raw, &cfg) != nil || cfg.Core != srv.URL || cfg.Token != srv.Token {
				t.Fatalf("saved %s (%v), want core %s and the token", raw, err, srv.URL)
			}
		})
	}
}

// The credentials file is 0600 in a 0700 directory, replaced atomically
// (a looser old file does not keep its mode); a file others can read is
// used with a warning.
func TestCLIConfigFilePerms(t *testing.T) {
	t.Parallel()
	srv := clitest.New(t)
	c := newTestCLI(t, srv.Token+"\n")
	path := c.env[envCLIConfig]
	if res := c.run(t.Context(), "login", "-core", srv.URL); res.code != 0 {
		t.Fatal(res)
	}
	mode := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if m := mode(path); m != 0o600 {
		t.Errorf("the credentials file has mode %v, want 0600", m)
	}
	if m := mode(filepath.Dir(path)); m != 0o700 {
		t.Errorf("its directory has mode %v, want 0700", m)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	res := c.run(t.Context(), "apps", "list")
	if res.code != 0 || !strings.Contains(res.stderr, "is readable by others (mode -rw-r--r--); run: chmod 600 "+path) {
		t.Errorf("a readable credentials file: want a warning, got:\n%s", res)
	}
	c.stdin = strings.NewReader(srv.Token + "\n")
	if res := c.run(t.Context(), "login", "-core", srv.URL); res.code != 0 {
		t.Fatal(res)
	}
	if m := mode(path); m != 0o600 {
		t.Errorf("after a new login the file has mode %v, want 0600", m)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Errorf("left in the config directory: %v, %v", entries, err)
	}

	// A broken file is reported, not overwritten by a command.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := c.run(t.Context(), "apps", "list"); res.code != 1 || !strings.Contains(res.stderr, "read the credentials in "+path) {
		t.Errorf("a broken credentials file: %s", res)
	}
}

func TestCLIConfigLocation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		env  map[string]string
		home string
		want string
	}{
		{map[string]string{envCLIConfig: "/x/cli.json", "XDG_CONFIG_HOME": "/xdg"}, dir, "/x/cli.json"},
		{map[string]string{"XDG_CONFIG_HOME": "/xdg"}, dir, "/xdg/wisehosting/cli.json"},
		{map[string]string{"XDG_CONFIG_HOME": "relative"}, dir, filepath.Join(dir, ".config/wisehosting/cli.json")},
		{nil, dir, filepath.Join(dir, ".config/wisehosting/cli.json")},
	}
	for _, tc := range tests {
		c := &cli{getenv: func(k string) string { return tc.env[k] }, home: func() (string, error) { return tc.home, nil }}
		if got, err := c.configPath(); err != nil || got != tc.want {
			t.Errorf("env %v: %q, %v; want %q", tc.env, got, err, tc.want)
		}
	}
}

// The stored token goes only to the core it was stored for;
// $WISEHOSTING_TOKEN overrides it; logout forgets it and keeps the core.
func TestCLITokenScope(t *testing.T) {
	t.Parallel()
	srv := clitest.New(t)
	other := clitest.New(t)
	other.SetToken("wht_" + strings.Repeat("O", 43))
	c := loggedIn(t, srv)
	ctx := t.Context()

	res := c.run(ctx, "apps", "list", "-core", other.URL)
	if res.code != 1 || !strings.Contains(res.stderr, "wisehosting: not logged in to "+other.URL+" (the stored token is for "+srv.URL+")") {
		t.Errorf("another core: %s", res)
	}
	if len(other.Requests()) != 0 {
		t.Fatalf("the other core was called: %v", other.Requests())
	}
	c.env[envCore] = other.URL
	if res := c.run(ctx, "apps", "list"); res.code != 1 || len(other.Requests()) != 0 {
		t.Errorf("$WISEHOSTING_CORE elsewhere: %s", res)
	}
	c.env[envToken] = "wht_" + strings.Repeat("O", 43)
	if res := c.run(ctx, "apps", "list"); res.code != 0 || len(other.Requests()) != 1 {
		t.Errorf("with $WISEHOSTING_TOKEN for the other core: %s", res)
	}
	delete(c.env, envCore)
	delete(c.env, envToken)

	if res := c.run(ctx, "logout"); res.code != 0 || !strings.Contains(res.stdout, "logged out of "+srv.URL) {
		t.Errorf("logout: %s", res)
	}
	res = c.run(ctx, "apps", "list")
	if res.code != 1 || res.stderr != "wisehosting: not logged in: run 'wisehosting login -core "+srv.URL+"' (or set $WISEHOSTING_TOKEN)\n" {
		t.Errorf("after logout: %s", res)
	}
	if res := c.run(ctx, "logout"); res.code != 0 || !strings.Contains(res.stdout, "not logged in") {
		t.Errorf("a second logout: %s", res)
	}
	// The core was kept: login needs no -core.
	c.stdin = strings.NewReader(srv.Token + "\n")
	if res := c.run(ctx, "login"); res.code != 0 {
		t.Errorf("login after logout: %s", res)
	}

	fresh := newTestCLI(t, "")
	res = fresh.run(ctx, "apps", "list")
	if res.code != 1 || !strings.Contains(res.stderr, "wisehosting: not logged in: run 'wisehosting login -core URL'") {
		t.Errorf("never logged in: %s", res)
	}
}

// Usage errors exit 2 before any request.
func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	srv := clitest.New(t)
	c := loggedIn(t, srv)
	before := len(srv.Requests())
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"apps"}, "wisehosting apps list [-json]"},
		{[]string{"apps", "frobnicate"}, `unknown apps command "frobnicate"`},
		{[]string{"apps", "list", "extra"}, "apps list takes no arguments"},
		{[]string{"apps", "list", "-nope"}, "flag provided but not defined: -nope"},
		{[]string{"apps", "info"}, "apps info: give one APP"},
		{[]string{"apps", "create"}, "apps create: -repo is required"},
		{[]string{"apps", "create", "-repo", "r", "one-name", "two-name"}, "apps create: at most one NAME"},
		{[]string{"apps", "create", "-repo", "r", "-port", "70000"}, "-port 70000: want 1..65535"},
		{[]string{"apps", "create", "-repo", "r", "-env", "NOEQUALS"}, `invalid value "NOEQUALS" for flag -env: want KEY=VALUE`},
		{[]string{"apps", "create", "-repo", "r", "-env", "=v"}, "want KEY=VALUE"},
		{[]string{"apps", "deploy"}, "apps deploy: give one APP"},
		{[]string{"apps", "deploy", "a-app", "b-app"}, "apps deploy: give one APP"},
		{[]string{"apps", "deploy", "a-app", "-timeout", "soon"}, `invalid value "soon" for flag -timeout`},
		{[]string{"apps", "deployments", "a-app", "-limit", "0"}, "-limit must be at least 1"},
		{[]string{"apps", "logs"}, "apps logs: give at least one APP"},
		{[]string{"apps", "logs", "a-app", "-tail", "-1"}, "-tail must not be negative"},
		{[]string{"apps", "env"}, "apps env: give one APP"},
		{[]string{"apps", "env", "set", "a-app"}, "apps env set: give APP and at least one KEY=VALUE"},
		{[]string{"apps", "env", "set", "a-app", "K=V", "NOEQ"}, `apps env set: want KEY=VALUE, got "NOEQ"`},
		{[]string{"apps", "env", "rm", "a-app"}, "apps env rm: give APP and at least one KEY"},
		{[]string{"apps", "domains"}, "apps domains: list, add, verify or rm?"},
		{[]string{"apps", "domains", "park"}, `unknown apps domains command "park"`},
		{[]string{"apps", "domains", "add", "a-app"}, "apps domains add: give APP and HOST"},
		{[]string{"apps", "domains", "verify"}, "apps domains verify: give the domain's ID"},
		{[]string{"apps", "stop"}, "apps stop: give one APP"},
		{[]string{"apps", "restart", "a", "b"}, "apps restart: give one APP"},
		{[]string{"apps", "delete"}, "apps delete: give one APP"},
		{[]string{"apps", "delete", "a-app"}, "apps delete a-app: stdin is not a terminal to confirm at; pass -yes"},
		{[]string{"apps", "list", "-core", "ftp://x"}, `-core: core URL "ftp://x": want an http:// or https:// URL`},
		{[]string{"logout", "now"}, "logout takes no arguments"},
	}
	for _, tc := range tests {
		res := c.run(t.Context(), tc.args...)
		if res.code != 2 || !strings.Contains(res.stderr, tc.want) || res.stdout != "" {
			t.Errorf("wisehosting %s: want exit 2 and %q on stderr, got:\n%s", strings.Join(tc.args, " "), tc.want, res)
		}
	}
	if reqs := srv.Requests()[before:]; len(reqs) != 0 {
		t.Errorf("usage errors made requests: %v", reqs)
	}
	// Through run, as the binary dispatches.
	if res := runInProcess(t, "apps"); res.code != 2 || !strings.Contains(res.stderr, "wisehosting apps create") {
		t.Errorf("wisehosting apps: %s", res)
	}
	if res := runInProcess(t, "apps", "help"); res.code != 0 || !strings.Contains(res.stdout, "wisehosting apps logs APP...") {
		t.Errorf("wisehosting apps help: %s", res)
	}
}

// A deployment followed to success: statuses on stderr, the build log
// on stdout as it grows (with one mark where the cap dropped a part), then
// the URL.
func TestCLIDeployWait(t *testing.T) {
	t.Parallel()
	srv := clitest.New(t)
	c := loggedIn(t, srv)
	ctx := t.Context()
	marker := strings.Trim(cliclient.TruncationMarker, "\n")

	head := "Cloning https://git.example.com/ada/web.git\n"
	var tail strings.Builder
	for i := range 60 {
		tail.WriteString(strings.Repeat("=", 40) + " step " + string(rune('A'+i%26)) + "\n")
	}
	long := tail.String()
	srv.SetDeployScript(
		clitest.Step{Status: "pending"},
		clitest.Step{Status: "building", Logs: head},
		clitest.Step{Status: "building", Logs: head + "go build ./...\npartial"},
		clitest.Step{Status: "building", Logs: head + cliclient.TruncationMarker + long},
		clitest.Step{Status: "deploying", Logs: head + cliclient.TruncationMarker + long[len(long)/2:] + "done\n"},
		clitest.Step{Status: "succeeded", Logs: head + cliclient.TruncationMarker + long[len(long)/2:] + "done\n"},
	)
	res := c.run(ctx, "apps", "create", "web-front", "-repo", "https://git.example.com/ada/web.git", "-port", "3000",
		"-env", "A=1", "-env", "B=x=y", "-deploy")
	if res.code != 0 {
		t.Fatalf("create -deploy: %s", res)
	}
	wantOut := "created app web-front: https://web-front.apps.test\n" +
		head + "go build ./...\npartial\n" + marker + "\n" + long + "done\n" +
		"deployed web-front: https://web-front.apps.test\n"
	if res.stdout != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", res.stdout, wantOut)
	}
	id := srv.Requests()[len(srv.Requests())-1]
	id = strings.TrimPrefix(id, "GET /api/v1/deployments/")
	wantErr := ""
	for _, s := range []string{"pending", "building", "deploying", "succeeded"} {
		wantErr += "deployment " + id + " of web-front: " + s + "\n"
	}
	if res.stderr != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", res.stderr, wantErr)
	}
	if a, _ := srv.App("web-front"); a.Port != 3000 {
		t.Errorf("port = %d", a.Port)
	}
	if env := srv.Env("web-front"); env["A"] != "1" || env["B"] != "x=y" {
		t.Errorf("env = %v", env)
	}

	// A failing build exits 1 with its error.
	srv.SetDeployScript(
		clitest.Step{Status: "building", Logs: "go build\n"},
		clitest.Step{Status: "failed", Logs: "go build\nmain.go:3:1: syntax error\n", Error: "build: exit status 1"},
	)
	res = c.run(ctx, "apps", "deploy", "web-front", "-branch", "dev")
	if res.code != 1 || res.stdout != "go build\nmain.go:3:1: syntax error\n" ||
		!strings.HasSuffix(res.stderr, " failed\nwisehosting: deployment "+lastDeployment(srv)+" of web-front failed: build: exit status 1\n") {
		t.Errorf("a failed deploy: %s", res)
	}
	if !slices.Contains(srv.Requests(), "POST /api/v1/apps/web-front/deploy") {
		t.Error("no deploy request")
	}

	// A cancelled deployment too.
	srv.SetDeployScript(clitest.Step{Status: "cancelled"})
	if res := c.run(ctx, "apps", "restart", "web-front"); res.code != 1 || !strings.Contains(res.stderr, "of web-front cancelled\n") {
		t.Errorf("a cancelled restart: %s", res)
	}

	// -no-wait returns at once.
	srv.SetDeployScript(clitest.Step{Status: "building"})
	before := len(srv.Requests())
	res = c.run(ctx, "apps", "deploy", "web-front", "-no-wait")
	if res.code != 0 || !strings.Contains(res.stdout, "of web-front started (pending); follow it with: wisehosting apps deployments web-front") ||
		len(srv.Requests()) != before+1 {
		t.Errorf("-no-wait: %s", res)
	}

	// -timeout ends the wait, not the deployment.
	res = c.run(ctx, "apps", "deploy", "web-front", "-timeout", "30ms")
	if res.code != 1 || !strings.Contains(res.stderr, "did not finish within 30ms; it goes on (see 'wisehosting apps deployments web-front')") {
		t.Errorf("-timeout: %s", res)
	}

	// Ctrl-C (the context) too.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan result, 1)
	from := len(c.stderr.String())
	go func() { done <- c.run(cctx, "apps", "deploy", "web-front") }()
	testutil.WaitFor(t, 10*time.Second, "the deployment to be followed", func() bool {
		return strings.Contains(c.stderr.String()[from:], ": building\n")
	})
	cancel()
	res = <-done
	if res.code != 1 || !strings.Contains(res.stderr, "wisehosting: stopped waiting: deployment ") || !strings.Contains(res.stderr, "goes on") {
		t.Errorf("Ctrl-C: %s", res)
	}

	// An API error while starting: one line, exit 1.
	res = c.run(ctx, "apps", "deploy", "nope-nope")
	if res.code != 1 || res.stderr != "wisehosting: deploy nope-nope: not_found: no such app\n" {
		t.Errorf("deploy of a missing app: %s", res)
	}
}

// lastDeployment is the id in the last GET of a deployment.
func lastDeployment(srv *clitest.Server) string {
	reqs := srv.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if id, ok := strings.CutPrefix(reqs[i], "GET /api/v1/deployments/"); ok {
			return id
		}
	}
	return ""
}

func TestCLIAppCommands(t *testing.T) {
	t.Parallel()
	srv := clitest.New(t)
	c := loggedIn(t, srv)
	ctx := t.Context()
	run := func(code int, args ...string) result {
		t.Helper()
		res := c.run(ctx, args...)
		if res.code != code {
			t.Fatalf("wisehosting %s: want exit %d, got:\n%s", strings.Join(args, " "), code, res)
		}
		return res
	}

	if res := run(0, "apps", "list"); res.stdout != "" || !strings.Contains(res.stderr, "no apps yet") {
		t.Errorf("no apps: %s", res)
	}
	run(0, "apps", "create", "web-front", "-repo", "https://git.example.com/a.git")
	res := run(0, "apps", "create", "-repo", "https://git.example.com/b.git", "-branch", "dev", "-no-wait")
	gen := strings.TrimSuffix(strings.Fields(res.stdout)[2], ":") // "created app NAME: URL"
	srv.SetStats("web-front", &cliclient.AppStats{CPUPercent: 12.345, MemBytes: 120 << 20, MemLimit: 512 << 20})
	res = run(0, "apps", "list")
	want := "NAME              STATUS   URL                                 CPU    MEM                UPDATED\n" +
		"web-front         stopped  https://web-front.apps.test         12.3%  120.0MiB/512.0MiB  10m ago\n" +
		"brave-otter-0101  stopped  https://brave-otter-0101.apps.test  -      -                  10m ago\n"
	if gen != "brave-otter-0101" || res.stdout != want {
		t.Errorf("apps list:\n%s\nwant:\n%s", res.stdout, want)
	}
	var apps []cliclient.App
	if res := run(0, "apps", "list", "-json"); json.Unmarshal([]byte(res.stdout), &apps) != nil || len(apps) != 2 || apps[1].GitBranch != "dev" {
		t.Errorf("apps list -json:\n%s", res.stdout)
	}
	if res := run(0, "apps", "info", "web-front"); !strings.Contains(res.stdout, "repository:     https://git.example.com/a.git") ||
		!strings.Contains(res.stdout, "created:        2025-01-02 03:04:05 UTC") {
		t.Errorf("apps info:\n%s", res.stdout)
	}

	// Env vars.
	res = run(0, "apps", "env", "set", "web-front", "DATABASE_URL=postgres://db/x?a=b", "EMPTY=")
	if res.stdout != "set DATABASE_URL on web-front\nset EMPTY on web-front\n" || !strings.Contains(res.stderr, "next deploy or restart") {
		t.Errorf("env set: %s", res)
	}
	if res := run(0, "apps", "env", "web-front"); res.stdout != "DATABASE_URL=postgres://db/x?a=b\nEMPTY=\n" {
		t.Errorf("env list: %q", res.stdout)
	}
	if res := run(0, "apps", "env", "rm", "web-front", "EMPTY"); res.stdout != "removed EMPTY from web-front\n" {
		t.Errorf("env rm: %s", res)
	}
	if res := run(1, "apps", "env", "rm", "web-front", "EMPTY"); res.stderr != "wisehosting: remove EMPTY from web-front: not_found: no such env var\n" {
		t.Errorf("env rm of a missing key: %s", res)
	}
	if res := run(1, "apps", "env", "set", "web-front", "1BAD=x"); !strings.HasPrefix(res.stderr, "wisehosting: set 1BAD on web-front: invalid: env var name") {
		t.Errorf("env set of a bad key: %s", res)
	}

	// Domains.
	res = run(0, "apps", "domains", "add", "web-front", "www.example.org")
	id := strings.TrimSuffix(strings.Fields(res.stdout)[5], ",")
	if !strings.Contains(res.stdout, "TXT  _wisehosting.www.example.org  \"wh-verify-www.example.org\"") ||
		!strings.Contains(res.stdout, "then run: wisehosting apps domains verify "+id) {
		t.Errorf("domains add:\n%s", res.stdout)
	}
	res = run(1, "apps", "domains", "verify", id)
	if res.stderr != "wisehosting: verify domain "+id+": verification_failed: no TXT record _wisehosting.www.example.org with the verification token was found\n" {
		t.Errorf("verify without the record: %s", res)
	}
	srv.SetRecord("www.example.org", true)
	if res := run(0, "apps", "domains", "verify", id); res.stdout != "verified www.example.org (active)\n" {
		t.Errorf("verify: %s", res)
	}
	if res := run(0, "apps", "domains", "list", "web-front"); !strings.Contains(res.stdout, id+"  www.example.org  active  10m ago\n") {
		t.Errorf("domains list:\n%s", res.stdout)
	}
	run(0, "apps", "domains", "rm", id)
	run(1, "apps", "domains", "rm", id)

	// Logs, then following them.
	srv.Persist("web-front", "one", "two", "three")
	srv.Persist(gen, "other")
	if res := run(0, "apps", "logs", "web-front", "-tail", "2"); res.stdout != "2025-01-02T03:04:05Z two\n2025-01-02T03:04:05Z three\n" {
		t.Errorf("logs:\n%s", res.stdout)
	}
	if res := run(0, "apps", "logs", "web-front", gen, "-tail", "1"); res.stdout != "2025-01-02T03:04:05Z web-front | three\n2025-01-02T03:04:05Z "+gen+" | other\n" {
		t.Errorf("logs of two apps:\n%s", res.stdout)
	}
	done := make(chan result, 1)
	go func() { done <- c.run(ctx, "apps", "logs", "-f", "-tail", "1", "web-front", gen) }()
	testutil.WaitFor(t, 10*time.Second, "the log stream", func() bool { return srv.Subscribers() == 1 })
	srv.Emit("web-front", "live")
	testutil.WaitFor(t, 10*time.Second, "the live line", func() bool { return strings.Contains(c.stdout.String(), "| live") })
	srv.CloseStreams()
	res = <-done
	if res.code != 0 || res.stdout != "2025-01-02T03:04:05Z web-front | three\n2025-01-02T03:04:05Z "+gen+" | other\n2025-01-02T03:04:05Z web-front | live\n" {
		t.Errorf("logs -f: %s", res)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { done <- c.run(cctx, "apps", "logs", "-f", "web-front") }()
	testutil.WaitFor(t, 10*time.Second, "the log stream", func() bool { return srv.Subscribers() == 1 })
	cancel()
	if res := <-done; res.code != 0 {
		t.Errorf("logs -f ended by Ctrl-C: %s", res)
	}
	if res := run(1, "apps", "logs", "-f", "web-front", "nope-nope"); res.stderr != "wisehosting: logs of nope-nope: not_found: no such app\n" {
		t.Errorf("logs -f of a missing app: %s", res)
	}
	if res := run(1, "apps", "logs", "-f", "nope-nope"); res.stderr != "wisehosting: logs of nope-nope: not_found: no such app: nope-nope\n" {
		t.Errorf("logs -f of a missing app: %s", res)
	}

	// Start and stop wait for their job.
	srv.SetJobScript("assigned", "processing", "completed")
	if res := run(0, "apps", "stop", "web-front"); res.stdout != "stopped web-front\n" || strings.Count(res.stderr, "stop web-front (job") != 3 {
		t.Errorf("stop: %s", res)
	}
	srv.SetJobScript("failed")
	if res := run(1, "apps", "start", "web-front"); !strings.HasSuffix(res.stderr, "failed: the worker could not start the app\n") {
		t.Errorf("a failed start: %s", res)
	}
	if res := run(0, "apps", "start", "web-front", "-no-wait"); !strings.Contains(res.stdout, "start of web-front requested (job ") {
		t.Errorf("start -no-wait: %s", res)
	}
	if res := run(0, "apps", "deployments", "web-front"); !strings.HasPrefix(res.stdout, "ID  STATUS") {
		t.Errorf("deployments:\n%s", res.stdout)
	}

	// Delete: confirmed at a terminal by typing the name, or -yes.
	c.terminal = true
	c.stdin = strings.NewReader("web\n")
	if res := run(1, "apps", "delete", "web-front"); !strings.Contains(res.stderr, "Type its name to confirm: ") ||
		!strings.Contains(res.stderr, "wisehosting: delete web-front: not confirmed; nothing was deleted") {
		t.Errorf("delete, wrong confirmation: %s", res)
	}
	if _, ok := srv.App("web-front"); !ok {
		t.Fatal("deleted without confirmation")
	}
	c.stdin = strings.NewReader("web-front\n")
	if res := run(0, "apps", "delete", "web-front", "-hard"); !strings.Contains(res.stderr, "removed for good") || res.stdout != "deleted web-front\n" {
		t.Errorf("delete: %s", res)
	}
	c.terminal = false
	run(0, "apps", "delete", gen, "-yes")
	reqs := srv.Requests()
	if !slices.Contains(reqs, "DELETE /api/v1/apps/web-front?hard=true") || !slices.Contains(reqs, "DELETE /api/v1/apps/"+gen) {
		t.Errorf("delete requests: %v", reqs)
	}

	// An expired login says how to renew it.
	srv.SetToken("wht_" + strings.Repeat("N", 43))
	if res := run(1, "apps", "list"); res.stderr != "wisehosting: list apps: unauthorized: missing or invalid credentials (log in again: wisehosting login)\n" {
		t.Errorf("a revoked token: %s", res)
	}
}
