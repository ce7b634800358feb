package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/plugins/proxy/caddy/caddytest"
)

// runCLI runs the binary like runBinary, with a longer limit (a deploy
// waits for a build) and stdin.
func runCLI(t *testing.T, env []string, stdin string, limit time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	res := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		t.Fatalf("wisehosting %s: did not finish within %v\n%s", strings.Join(args, " "), limit, res)
	}
	return res
}

// TestE2ENewcomerPath is the README's newcomer path with real processes on
// loopback: the repository's wisehosting.hcl served (as `make run` does,
// its addresses moved to free ports by the environment), a worker added
// and run with the CLI, a user and an API token, `wisehosting login`, the
// example app created and deployed from a git repository with the CLI
// while it shows the build log, and the app answering through a real
// Caddy by its Host header. A deploy that fails exits non-zero and leaves
// the running release serving.
func TestE2ENewcomerPath(t *testing.T) {
	began := time.Now()
	for _, bin := range []string{"git", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("the newcomer path needs %s in PATH (%v): the example app is cloned with git and built with go", bin, err)
		}
	}
	caddy := caddytest.Start(t) // fails with the install hint when Caddy is missing
	httpAddr := caddytest.FreeAddr(t)
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	t.Setenv("WISEHOSTING_LISTEN", addr)
	t.Setenv("CADDY_ADMIN", caddy.Admin)
	t.Setenv("CADDY_HTTP_LISTEN", httpAddr)

	// `make run`: the repository's own configuration next to a data/secret.
	cfg, _ := stage(t, defaultStack)
	root := filepath.Dir(cfg)
	t.Cleanup(func() { requireNoClusterProcs(t, root) })
	srv := startServe(t, cfg)
	srv.waitHealthy(t, base, 60*time.Second)
	t.Logf("%s: the core is healthy", time.Since(began).Round(time.Millisecond))

	// A worker on this machine.
	key := apiKey(t, runBinary(t, nil, "worker", "add", "-name", "local", "-config", cfg))
	work := t.TempDir()
	agentDir := filepath.Join(work, "agent")
	portLo := loopbackPort(t)
	agent := startAgent(t, key, agentDir, "worker", "run", "-core", base, "-name", "local", "-address", "127.0.0.1",
		"-data-dir", agentDir, "-runtime", "exec", "-port-range", fmt.Sprintf("%d-%d", portLo, min(portLo+19, 65535)),
		"-start-timeout", "30s", "-stop-apps-on-exit")

	// A user, their API token, and the CLI logged in with it.
	res := runBinary(t, nil, "user", "add", "-email", "newcomer@example.com", "-config", cfg)
	if res.code != 0 {
		t.Fatalf("user add:\n%s", res)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	token := strings.TrimSpace(lines[len(lines)-1])
	if !strings.HasPrefix(token, "wht_") {
		t.Fatalf("user add printed no token on its last line:\n%s", res)
	}
	cli := []string{"WISEHOSTING_CLI_CONFIG=" + filepath.Join(work, "cli.json")}
	if res := runCLI(t, cli, token+"\n", time.Minute, "login", "-core", base); res.code != 0 ||
		!strings.Contains(res.stdout+res.stderr, "newcomer@example.com") {
		t.Fatalf("login:\n%s", res)
	}

	// The example app, in a git repository of its own.
	files := map[string]string{}
	for _, f := range []string{"main.go", "go.mod"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "hello-app", f))
		if err != nil {
			t.Fatal(err)
		}
		files["examples/hello-app/"+f] = string(b)
	}
	repo := filepath.Join(work, "repo")
	if err := os.MkdirAll(filepath.Join(repo, "examples", "hello-app"), 0o755); err != nil {
		t.Fatal(err)
	}
	gitRepo(t, repo, files)

	deployed := time.Now()
	res = runCLI(t, cli, "", 4*time.Minute, "apps", "create", "hello-app", "-repo", "file://"+repo,
		"-build", "cd examples/hello-app && go build -o ../../app .", "-run", "./app",
		"-env", "GREETING=Howdy", "-deploy")
	if res.code != 0 {
		t.Fatalf("apps create -deploy failed:\n%s\n--- core:\n%s\n--- agent:\n%s", res, srv.out, agent.out)
	}
	out := res.stdout + res.stderr
	for _, want := range []string{"succeeded", "https://hello-app.apps.localhost"} {
		if !strings.Contains(out, want) {
			t.Errorf("apps create -deploy output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("%s: deployed in %v; the CLI showed:\n%s", time.Since(began).Round(time.Millisecond),
		time.Since(deployed).Round(time.Millisecond), out)

	// curl -H 'Host: hello-app.apps.localhost' http://<caddy>/
	const host = "hello-app.apps.localhost"
	proxyEventually(t, 30*time.Second, "Caddy to serve "+host, func() (bool, string) {
		code, body, err := caddy.Get(httpAddr, host)
		return err == nil && code == http.StatusOK && body == "Howdy from hello-app on WiseHosting (host "+host+")\n",
			fmt.Sprintf("%d %q %v", code, body, err)
	})

	// The app as the CLI lists it, and its runtime log.
	if res := runCLI(t, cli, "", time.Minute, "apps", "list"); res.code != 0 || !strings.Contains(res.stdout, "hello-app") ||
		!strings.Contains(res.stdout, "running") {
		t.Errorf("apps list:\n%s", res)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := runCLI(t, cli, "", time.Minute, "apps", "logs", "hello-app", "-tail", "50")
		if res.code == 0 && strings.Contains(res.stdout, "hello-app listening on") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("apps logs never showed the app's start line:\n%s", res)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A deploy that fails (a commit that does not exist) exits non-zero;
	// the running release keeps serving.
	res = runCLI(t, cli, "", 4*time.Minute, "apps", "deploy", "hello-app", "-commit", strings.Repeat("0", 40))
	if res.code == 0 || !strings.Contains(res.stdout+res.stderr, "failed") {
		t.Errorf("a deploy of a missing commit: want a non-zero exit saying it failed, got:\n%s", res)
	}
	if code, body, err := caddy.Get(httpAddr, host); err != nil || code != http.StatusOK {
		t.Errorf("after the failed deploy the app answers %d %q %v", code, body, err)
	}
	t.Logf("%s: the newcomer path held", time.Since(began).Round(time.Millisecond))
}
