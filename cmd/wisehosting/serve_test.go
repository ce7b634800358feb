package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/embedpg"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/schema"
)

// serveProc is a `wisehosting serve` process.
type serveProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer // stdout and stderr
	done chan struct{}
	err  error // set before done closes
}

// startServe starts `wisehosting serve -config cfg`. The test's cleanup
// stops it if the test did not.
func startServe(t *testing.T, cfg string) *serveProc {
	t.Helper()
	p := &serveProc{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binPath, "serve", "-config", cfg)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			t.Errorf("serve (pid %d) ignored SIGINT for 15s; killing it", p.cmd.Process.Pid)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		t.Logf("serve output:\n%s", p.out)
	})
	return p
}

func (p *serveProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitHealthy polls /health until it answers 200 and returns the response
// body and how long it took; it fails at once when the process exits.
func (p *serveProc) waitHealthy(t *testing.T, base string, timeout time.Duration) ([]byte, time.Duration) {
	t.Helper()
	began := time.Now()
	client := &http.Client{Timeout: time.Second}
	var body []byte
	testutil.WaitFor(t, timeout, "GET /health answers 200", func() bool {
		if p.exited() {
			return true
		}
		resp, err := client.Get(base + "/health")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return false
		}
		body = b
		return true
	})
	if p.exited() {
		t.Fatalf("serve exited before it became healthy (%v):\n%s", p.err, p.out)
	}
	return body, time.Since(began)
}

// stop sends sig and requires a clean exit within 15 s.
func (p *serveProc) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not exit within 15s of %v:\n%s", sig, p.out)
	}
	if p.err != nil {
		t.Fatalf("serve exited with %v after %v, want exit status 0:\n%s", p.err, sig, p.out)
	}
}

// requireNoClusterProcs fails the test if any process of a cluster under
// root is left (briefly polling: the last backends may still be exiting).
// Leftovers are killed by pid so that no run leaves a server behind.
func requireNoClusterProcs(t *testing.T, root string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		left := clusterProcs(root)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				_ = syscall.Kill(pidOf(p), syscall.SIGKILL)
			}
			t.Fatalf("postgres processes of %s left after serve exited (killed now):\n%s", root, strings.Join(left, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var keyRE = regexp.MustCompile(`(?m)^  (whk_\S+)$`)

// apiKey extracts the API key that `worker add` / `rotate-key` printed,
// requiring that it is printed exactly once.
func apiKey(t *testing.T, res result) string {
	t.Helper()
	if res.code != 0 {
		t.Fatalf("want exit 0, got:\n%s", res)
	}
	m := keyRE.FindAllStringSubmatch(res.stdout, -1)
	if len(m) != 1 || strings.Count(res.stdout+res.stderr, "whk_") != 1 {
		t.Fatalf("want the API key (whk_…) printed exactly once on its own line, got:\n%s", res)
	}
	if strings.Contains(res.stderr, m[0][1]) {
		t.Fatalf("the API key must not reach stderr (logs):\n%s", res.stderr)
	}
	return m[0][1]
}

// register posts a worker registration with bearer and returns the status
// and decoded body.
func register(t *testing.T, base, bearer string) (int, map[string]any) {
	t.Helper()
	body := `{"address":"10.0.0.2","capacity":{"cpu":1000,"memory":1073741824}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/workers/register", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST /v1/workers/register: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST /v1/workers/register: status %d, body is not JSON: %v\n%s", resp.StatusCode, err, raw)
	}
	return resp.StatusCode, out
}

// latestSchemaVersion counts the migrations the binary ships.
func latestSchemaVersion(t *testing.T) int {
	t.Helper()
	files, err := fs.Glob(schema.Migrations, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no embedded migrations: %v", err)
	}
	return len(files)
}

// TestServe runs `wisehosting serve` as a real process on an embedded
// Postgres: health and metrics, the worker commands against the running
// cluster, worker registration, SIGINT, then a restart on the same data
// directory that reuses the cluster and its data, stopped with SIGTERM.
func TestServe(t *testing.T) {
	t.Parallel()
	root := sharedTempDir(t)
	// Registered after sharedTempDir's removal, so it runs before it: no
	// cluster process may outlive the test, whatever happened.
	t.Cleanup(func() { requireNoClusterProcs(t, root) })

	secret := writeSecret(t, root)
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	cfg := filepath.Join(root, "wisehosting.hcl")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `data_dir = "./data"

platform {
  domain = "apps.localhost"
}

server {
  listen           = %q
  secret           = file("data/secret")
  shutdown_timeout = "10s"
}

database {
  min_conns = 1
}

logging {
  level = "info"
}

plugin "scheduler" "least-loaded" {}
plugin "plans" "static" {}
plugin "alerts" "log" {}
plugin "proxy" "traefik" {}
`, addr), 0o600); err != nil {
		t.Fatal(err)
	}
	step := func(name string, fn func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, fn) {
			t.FailNow()
		}
	}
	worker := func(t *testing.T, args ...string) result {
		t.Helper()
		return runBinary(t, nil, append(append([]string{"worker"}, args...), "-config", cfg)...)
	}

	// First start: initdb, migrations, serve.
	srv := startServe(t, cfg)
	var firstStart time.Duration
	step("health", func(t *testing.T) {
		body, took := srv.waitHealthy(t, base, 30*time.Second)
		firstStart = took
		var h map[string]string
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatalf("/health body is not a JSON object of strings: %v\n%s", err, body)
		}
		if len(h) != 2 || h["status"] != "ok" {
			t.Fatalf(`/health = %s, want {"status":"ok","time":…}`, body)
		}
		ts, err := time.Parse(time.RFC3339Nano, h["time"])
		if err != nil {
			t.Fatalf("/health time %q is not RFC 3339: %v", h["time"], err)
		}
		if d := time.Since(ts); d < -time.Minute || d > time.Minute {
			t.Errorf("/health time %s is %s away from now", ts, d)
		}
		if !strings.Contains(srv.out.String(), "initialised cluster") {
			t.Errorf("the first start should initialise a cluster; log:\n%s", srv.out)
		}
	})
	step("ready", func(t *testing.T) {
		resp, err := http.Get(base + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ready"}` {
			t.Fatalf(`/ready: %d %s, want 200 {"status":"ready"}`, resp.StatusCode, body)
		}
	})
	step("metrics", func(t *testing.T) {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("/metrics: status %d, content type %q, want 200 text/plain", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, want := range []string{
			"\nwisehosting_db_pool_total_conns ",
			"\nwisehosting_db_pool_max_conns 25\n",
			`wisehosting_http_requests_total{code="200",method="GET",route="/health"} `,
			`wisehosting_plugin_up{kind="proxy",name="traefik"} 1`,
			`wisehosting_plugin_up{kind="scheduler",name="least-loaded"} 1`,
		} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})

	// The built-in plugins run as children of serve: the binary
	// re-executed as `wisehosting plugin serve <kind> <name>`.
	var plugins []int
	step("plugins", func(t *testing.T) {
		plugins = pluginChildren(t, srv.cmd.Process.Pid)
		if len(plugins) != 4 {
			t.Errorf("serve has %d plugin processes %v, want 4", len(plugins), plugins)
		}
		if out := srv.out.String(); !strings.Contains(out, "plugins started: count=4") || !strings.Contains(out, "plan catalogue loaded: plans=3 default=free") {
			t.Errorf("serve should log its plugins and plan catalogue:\n%s", out)
		}
	})

	var key string
	step("worker add", func(t *testing.T) {
		res := worker(t, "add", "-name", "edge-1", "-zone", "eu-1")
		key = apiKey(t, res)
		if !strings.Contains(res.stdout, `added worker "edge-1"`) {
			t.Errorf("worker add should confirm the name:\n%s", res)
		}
	})
	step("worker add duplicate", func(t *testing.T) {
		res := worker(t, "add", "-name", "edge-1")
		if res.code != 1 {
			t.Fatalf("a duplicate name should exit 1, got:\n%s", res)
		}
		if want := `wisehosting: a worker named "edge-1" already exists (use rotate-key to issue it a new key)`; !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
		if strings.Contains(res.stdout+res.stderr, "whk_") {
			t.Errorf("a failed add must not print a key:\n%s", res)
		}
	})
	step("worker list", func(t *testing.T) {
		res := worker(t, "list")
		if res.code != 0 {
			t.Fatalf("worker list failed:\n%s", res)
		}
		if !regexp.MustCompile(`(?m)^\d+\s+edge-1\s+\S+\s+eu-1\s`).MatchString(res.stdout) {
			t.Errorf("worker list does not show edge-1 in zone eu-1:\n%s", res.stdout)
		}
		if strings.Contains(res.stdout+res.stderr, key) {
			t.Errorf("worker list printed the API key:\n%s", res)
		}
	})
	step("register", func(t *testing.T) {
		code, body := register(t, base, key)
		if code != http.StatusOK {
			t.Fatalf("register with the worker's key: status %d, body %v; want 200", code, body)
		}
		if tok, _ := body["token"].(string); strings.Count(tok, ".") != 2 {
			t.Errorf("register returned no JWT token: %v", body)
		}
		if w, _ := body["worker"].(map[string]any); w["name"] != "edge-1" || w["address"] != "10.0.0.2" {
			t.Errorf("register returned the wrong worker: %v", body["worker"])
		}
		code, body = register(t, base, secret)
		if code != http.StatusUnauthorized {
			t.Errorf("register with the server secret as bearer: status %d, body %v; want 401", code, body)
		}
	})
	step("worker rotate-key", func(t *testing.T) {
		res := runBinary(t, nil, "worker", "rotate-key", "edge-1", "-config", cfg) // flag after the name
		newKey := apiKey(t, res)
		if newKey == key {
			t.Fatalf("rotate-key printed the old key again")
		}
		if !strings.Contains(res.stdout, `rotated the key of worker "edge-1"`) {
			t.Errorf("rotate-key should confirm the name:\n%s", res)
		}
		if code, body := register(t, base, key); code != http.StatusUnauthorized {
			t.Errorf("register with the rotated-out key: status %d, body %v; want 401", code, body)
		}
		if code, body := register(t, base, newKey); code != http.StatusOK {
			t.Errorf("register with the new key: status %d, body %v; want 200", code, body)
		}
		res = worker(t, "rotate-key", "edge-404")
		if res.code != 1 || !strings.Contains(res.stderr, `wisehosting: no worker named "edge-404"`) {
			t.Errorf("rotate-key of an unknown worker should exit 1 and say so, got:\n%s", res)
		}
	})
	step("migrate status", func(t *testing.T) {
		res := runBinary(t, nil, "migrate", "status", "-config", cfg)
		n := latestSchemaVersion(t)
		if want := fmt.Sprintf("schema version %d of %d\n", n, n); res.code != 0 || res.stdout != want {
			t.Errorf("migrate status: want %q and exit 0, got:\n%s", want, res)
		}
	})
	step("SIGINT", func(t *testing.T) {
		srv.stop(t, os.Interrupt)
		waitPluginsGone(t, plugins)
		requireNoClusterProcs(t, root)
		if _, err := os.Stat(filepath.Join(root, "data", "postgres", "data", "PG_VERSION")); err != nil {
			t.Errorf("the cluster should stay on disk after shutdown: %v", err)
		}
		if !strings.Contains(srv.out.String(), "stopped") {
			t.Errorf("serve should log its orderly stop:\n%s", srv.out)
		}
	})

	// Second start on the same data directory: no initdb, same data.
	srv = startServe(t, cfg)
	step("restart reuses the cluster", func(t *testing.T) {
		_, took := srv.waitHealthy(t, base, 30*time.Second)
		t.Logf("time to healthy: first start %s, restart %s", firstStart.Round(time.Millisecond), took.Round(time.Millisecond))
		if out := srv.out.String(); strings.Contains(out, "initialised cluster") || !strings.Contains(out, "postgres started") {
			t.Errorf("the restart should start the existing cluster, not initialise one:\n%s", out)
		}
		res := worker(t, "list", "-json")
		var ws []struct{ Name, Address, Zone string }
		if err := json.Unmarshal([]byte(res.stdout), &ws); err != nil || res.code != 0 {
			t.Fatalf("worker list -json: %v\n%s", err, res)
		}
		// A registration without a zone keeps the one `worker add -zone` set.
		if len(ws) != 1 || ws[0].Name != "edge-1" || ws[0].Address != "10.0.0.2" || ws[0].Zone != "eu-1" {
			t.Errorf("after the restart worker list shows %+v, want edge-1 in eu-1 with address 10.0.0.2 as registered before it", ws)
		}
	})
	step("SIGTERM", func(t *testing.T) {
		plugins = pluginChildren(t, srv.cmd.Process.Pid)
		if len(plugins) != 4 {
			t.Errorf("serve has %d plugin processes %v after the restart, want 4", len(plugins), plugins)
		}
		srv.stop(t, syscall.SIGTERM)
		waitPluginsGone(t, plugins)
		requireNoClusterProcs(t, root)
	})
}

// TestWorkerCommandsWithoutServer runs the worker commands with no server
// up: each starts the embedded cluster itself and stops it on exit.
func TestWorkerCommandsWithoutServer(t *testing.T) {
	t.Parallel()
	root := sharedTempDir(t)
	t.Cleanup(func() { requireNoClusterProcs(t, root) })
	writeSecret(t, root)
	cfg := filepath.Join(root, "wisehosting.hcl")
	if err := os.WriteFile(cfg, []byte("platform {\n  domain = \"apps.localhost\"\n}\n\nserver {\n  secret = file(\"data/secret\")\n}\n\nlogging {\n  level = \"warn\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	key := apiKey(t, runBinary(t, nil, "worker", "add", "-name", "solo", "-config", cfg))
	requireNoClusterProcs(t, root)

	res := runBinary(t, nil, "worker", "list", "-config", cfg)
	if res.code != 0 || !strings.Contains(res.stdout, "solo") || strings.Contains(res.stdout, key) {
		t.Errorf("worker list should show solo (and no key), got:\n%s", res)
	}
	requireNoClusterProcs(t, root)

	res = runBinary(t, nil, "worker", "add", "-name", "not a name!", "-config", cfg)
	// A usage error (exit 2), checked before the database is opened.
	if res.code != 2 || !strings.Contains(res.stderr, `worker name "not a name!" is invalid`) {
		t.Errorf("an invalid name should exit 2 and say so, got:\n%s", res)
	}
	requireNoClusterProcs(t, root)
}

// writeServeConfig writes a config for serve on addr over the embedded
// cluster in dataDir (absolute) to path.
func writeServeConfig(t *testing.T, path, dataDir, addr, shutdownTimeout string) {
	t.Helper()
	if err := os.WriteFile(path, fmt.Appendf(nil, `data_dir = %q

platform {
  domain = "apps.localhost"
}

server {
  listen           = %q
  secret           = file(%q)
  shutdown_timeout = %q
}

database {
  min_conns = 1
}

logging {
  level = "info"
}
`, dataDir, addr, filepath.Join(dataDir, "secret"), shutdownTimeout), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitOutput polls p's output for want, failing if p exits first.
func (p *serveProc) waitOutput(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	testutil.WaitFor(t, timeout, fmt.Sprintf("serve to log %q", want), func() bool {
		return strings.Contains(p.out.String(), want) || p.exited()
	})
	if !strings.Contains(p.out.String(), want) {
		t.Fatalf("serve exited (%v) before logging %q:\n%s", p.err, want, p.out)
	}
}

// TestSecondSignalKills: the first SIGINT or SIGTERM starts an orderly
// shutdown; a second one kills a shutdown that hangs (here on a request
// whose body never arrives, with shutdown_timeout = 60s) at once, by the
// signal's default action.
func TestSecondSignalKills(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			if signal.Ignored(sig) {
				t.Skipf("%v is ignored in this environment, and so in serve once it restores the default", sig)
			}
			root := sharedTempDir(t)
			t.Cleanup(func() { requireNoClusterProcs(t, root) })
			writeSecret(t, root)
			addr := freeLoopbackAddr(t)
			cfg := filepath.Join(root, "wisehosting.hcl")
			writeServeConfig(t, cfg, filepath.Join(root, "data"), addr, "60s")
			srv := startServe(t, cfg)
			srv.waitHealthy(t, "http://"+addr, 30*time.Second)

			// A request stuck in its handler, which waits for a body that
			// never comes, keeps Shutdown waiting. The server's "100
			// Continue" shows that the handler is reading the body.
			key := apiKey(t, runBinary(t, nil, "worker", "add", "-name", "w1", "-config", cfg))
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "POST /v1/workers/register HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer "+key+
				"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
				t.Fatalf("register request: %q, %v; want 100 Continue", line, err)
			}

			if err := srv.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			srv.waitOutput(t, "shutting down", 10*time.Second)
			if srv.exited() {
				t.Fatalf("serve finished its shutdown although a request was in flight:\n%s", srv.out)
			}
			sent := time.Now()
			if err := srv.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-srv.done:
			case <-time.After(5 * time.Second):
				t.Fatalf("serve still runs 5s after a second %v during a hung shutdown:\n%s", sig, srv.out)
			}
			ws, ok := srv.cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != sig {
				t.Fatalf("serve ended with %v, want killed by %v:\n%s", srv.cmd.ProcessState, sig, srv.out)
			}
			t.Logf("killed %s after the second %v", time.Since(sent).Round(time.Millisecond), sig)
			// The cluster gets SIGTERM when its parent dies and ends once the
			// dead process's sessions are gone.
			testutil.WaitFor(t, 15*time.Second, "the killed serve's postgres to exit", func() bool { return len(clusterProcs(root)) == 0 })
		})
	}
}

// TestSecondServeFailsFast: serve owns its embedded cluster, so a second
// serve on the same data directory does not attach to it (it would lose its
// database when the first exits) but fails at once, naming the first's pid
// and the data directory; the first keeps serving.
func TestSecondServeFailsFast(t *testing.T) {
	t.Parallel()
	root := sharedTempDir(t)
	t.Cleanup(func() { requireNoClusterProcs(t, root) })
	writeSecret(t, root)
	dataDir := filepath.Join(root, "data")
	addr1, addr2 := freeLoopbackAddr(t), freeLoopbackAddr(t)
	cfg1, cfg2 := filepath.Join(root, "first.hcl"), filepath.Join(root, "second.hcl")
	writeServeConfig(t, cfg1, dataDir, addr1, "10s")
	writeServeConfig(t, cfg2, dataDir, addr2, "10s")

	first := startServe(t, cfg1)
	first.waitHealthy(t, "http://"+addr1, 30*time.Second)

	began := time.Now()
	second := startServe(t, cfg2)
	select {
	case <-second.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("a second serve on the same data_dir still runs after 10s:\n%s", second.out)
	}
	t.Logf("second serve failed after %s", time.Since(began).Round(time.Millisecond))
	if code := second.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("second serve exit code %d, want 1", code)
	}
	out := second.out.String()
	for _, want := range []string{"another serve runs on this data_dir", fmt.Sprintf("pid %d", first.cmd.Process.Pid), filepath.Join(dataDir, "postgres")} {
		if !strings.Contains(out, want) {
			t.Errorf("second serve's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "attached to running postgres") {
		t.Errorf("the second serve attached to the first's cluster:\n%s", out)
	}

	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr1 + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("first serve /ready after the second failed: %d", resp.StatusCode)
	}
	first.stop(t, syscall.SIGTERM)
}

// TestServeUnderPrivateDir is `make run` as root in a checkout under /root:
// the data directory lies below a directory (mode 0700) that the postgres
// OS user cannot traverse, so the cluster is placed under
// embedpg.RelocatedBase, recorded by a marker in the data directory.
func TestServeUnderPrivateDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root runs the embedded server as another OS user")
	}
	root := t.TempDir() // mode 0700
	writeSecret(t, root)
	addr := freeLoopbackAddr(t)
	cfg := filepath.Join(root, "wisehosting.hcl")
	writeServeConfig(t, cfg, filepath.Join(root, "data"), addr, "10s")
	marker := filepath.Join(root, "data", "postgres", "embedpg.location")
	var created []string // parents of RelocatedBase this test creates, innermost first
	for p := embedpg.RelocatedBase; p != "/"; p = filepath.Dir(p) {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			created = append(created, p)
		}
	}
	var loc string
	t.Cleanup(func() {
		if loc != "" {
			requireNoClusterProcs(t, loc)
			if err := os.RemoveAll(loc); err != nil {
				t.Errorf("remove %s: %v", loc, err)
			}
		}
		for _, p := range created {
			_ = os.Remove(p) // only if empty
		}
	})

	srv := startServe(t, cfg)
	testutil.WaitFor(t, 30*time.Second, "the location marker", func() bool {
		_, err := os.Stat(marker)
		return err == nil || srv.exited()
	})
	b, err := os.ReadFile(marker)
	if err != nil {
		t.Fatalf("no location marker (%v):\n%s", err, srv.out)
	}
	loc = strings.TrimSpace(string(b))
	if filepath.Dir(loc) != embedpg.RelocatedBase {
		t.Fatalf("marker names %s, want a directory under %s", loc, embedpg.RelocatedBase)
	}
	srv.waitHealthy(t, "http://"+addr, 30*time.Second)
	if !strings.Contains(srv.out.String(), "the cluster lives outside its directory") {
		t.Errorf("serve should log where the cluster lives:\n%s", srv.out)
	}
	res := runBinary(t, nil, "worker", "list", "-config", cfg)
	if res.code != 0 {
		t.Errorf("worker list next to a relocated cluster:\n%s", res)
	}
	srv.stop(t, syscall.SIGTERM)
	requireNoClusterProcs(t, loc)
}
