package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/daemon"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// TestE2EWorkerDeploy runs the whole deploy path with real processes over
// loopback: `wisehosting serve` on an embedded Postgres, a worker added
// with `wisehosting worker add`, a deploy job pinned to that worker written
// through the store while no agent is connected, then the reference agent
// (`wisehosting worker run`, exec runtime) as a separate process. The job
// reaches the agent by replay-on-connect; the agent clones a local git
// repository, builds and starts core/agent/testdata/testapp, and reports
// back. The test checks the job, app, deployment, worker and outbox rows,
// the stored build log and runtime logs, and that the app answers HTTP on
// the port the core recorded. SIGTERM then stops the agent, which stops the
// app (-stop-apps-on-exit) and reports it stopped, and the core; no
// process is left behind.
func TestE2EWorkerDeploy(t *testing.T) {
	t.Parallel()
	began := time.Now()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("the agent clones the app's source with git, which is not in PATH (%v): install it, e.g. apt-get install git", err)
	}

	root := sharedTempDir(t) // the core's data directory and cluster
	t.Cleanup(func() { requireNoClusterProcs(t, root) })
	work := t.TempDir() // the agent's data directory, the app's repository and binary

	// The core, configured to accept a worker at 127.0.0.1.
	writeSecret(t, root)
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	cfg := filepath.Join(root, "wisehosting.hcl")
	writeServeConfig(t, cfg, filepath.Join(root, "data"), addr, "10s")
	appendFile(t, cfg, "\nworker {\n  allow_loopback_address = true\n}\n")
	srv := startServe(t, cfg)

	// Meanwhile: the test app's binary and a git repository whose build
	// script copies it in (as core/agent's tests do).
	appBin := filepath.Join(work, "bin", "testapp")
	build := exec.Command("go", "build", "-o", appBin, "./testdata/testapp")
	build.Dir = filepath.Join("..", "..", "core", "agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build core/agent/testdata/testapp: %v\n%s", err, out)
	}
	repo := filepath.Join(work, "repo")
	sha := gitRepo(t, repo, map[string]string{
		"build.sh": "#!/bin/sh\necho building the e2e app\ncp \"$APP_BIN\" ./app\necho build done\n",
	})

	srv.waitHealthy(t, base, 30*time.Second)
	t.Logf("%s: the core is healthy", time.Since(began).Round(time.Millisecond))

	// The worker, added with the CLI next to the running core.
	const workerName = "e2e-worker"
	key := apiKey(t, runBinary(t, nil, "worker", "add", "-name", workerName, "-config", cfg))
	// A first registration, as an earlier run of the worker would have made:
	// it declares capacity (1000m, 1 GiB), which the pinned job below
	// reserves. The worker stays offline: nothing connects yet.
	if code, body := register(t, base, key); code != http.StatusOK {
		t.Fatalf("register with the worker's key: status %d, body %v; want 200", code, body)
	}

	// The test's own connection, through the CLI's way in: it attaches to
	// the cluster serve runs.
	db := openDatabase(t, cfg)
	st := db.Store
	ctx := t.Context()
	w, err := st.FindWorkerByName(ctx, workerName)
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != "offline" || w.CapacityCPU != 1000 {
		t.Fatalf("before the agent runs the worker is %s with %dm, want offline with the 1000m registered", w.Status, w.CapacityCPU)
	}

	// A user, an app and its first deployment, with a deploy job pinned to
	// the (offline) worker.
	user, err := st.CreateUser(ctx, store.NewUser{Email: "e2e@example.com", Name: "E2E"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := st.CreateApp(ctx, store.NewApp{UserID: user.ID, Name: "e2e-app", GitRepo: repo, GitBranch: "main",
		BuildCommand: "./build.sh", RunCommand: "exec ./app"})
	if err != nil {
		t.Fatal(err)
	}
	const appCPU, appMemory = 500, 256 << 20
	payload, err := json.Marshal(wsproto.DeployPayload{
		AppID: app.ID, AppUUID: app.UUID, AppName: app.Name, Subdomain: app.Subdomain, Runtime: wsproto.RuntimeExec,
		GitRepo: repo, GitBranch: "main", BuildCommand: app.BuildCommand, RunCommand: app.RunCommand,
		Env:    map[string]string{"APP_BIN": appBin, "GREETING": "e2e"},
		Limits: wsproto.Limits{CPU: appCPU, Memory: appMemory},
	})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := st.CreateDeployment(ctx, app.ID, store.NewDeployment{Trigger: "api", Branch: "main"},
		store.NewJob{WorkerID: &w.ID, CPU: appCPU, Memory: appMemory, Payload: payload})
	if err != nil {
		t.Fatalf("create the pinned deployment: %v", err)
	}
	job := dep.Job
	if job.Status != store.JobAssigned || !job.Pinned || job.DeploymentID == nil || *job.DeploymentID != dep.Deployment.ID {
		t.Fatalf("pinned deploy job = %+v, want assigned, pinned, with deployment %d", job, dep.Deployment.ID)
	}

	// The agent, a separate process: the job reaches it by replay-on-connect.
	agentDir := filepath.Join(work, "agent")
	portLo := loopbackPort(t)
	portHi := min(portLo+19, 65535)
	agent := startAgent(t, key, agentDir, "worker", "run", "-core", base, "-name", workerName, "-address", "127.0.0.1",
		"-data-dir", agentDir, "-runtime", "exec", "-port-range", fmt.Sprintf("%d-%d", portLo, portHi),
		"-capacity-cpu", "2000", "-capacity-memory", "2GiB", "-start-timeout", "15s", "-stop-apps-on-exit",
		"-log-level", "debug")

	dump := func() string {
		return fmt.Sprintf("--- agent output:\n%s\n--- core output:\n%s", agent.out, srv.out)
	}
	// waitFor polls cond (every 50ms, at most timeout) and fails with the
	// processes' output when it does not come to hold, or a process dies
	// (the agent only while agentUp).
	agentUp := true
	waitFor := func(timeout time.Duration, what string, cond func() (bool, error)) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		var last error
		for {
			ok, err := cond()
			if ok {
				return
			}
			if err != nil {
				last = err
			}
			switch {
			case agentUp && agent.exited():
				t.Fatalf("the agent exited (%v) while the test waited for %s (last error: %v)\n%s", agent.err, what, last, dump())
			case srv.exited():
				t.Fatalf("serve exited (%v) while the test waited for %s (last error: %v)\n%s", srv.err, what, last, dump())
			case time.Now().After(deadline):
				t.Fatalf("timed out after %s waiting for %s (last error: %v)\n%s", timeout, what, last, dump())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	waitFor(20*time.Second, fmt.Sprintf("deploy job %d to finish", job.ID), func() (bool, error) {
		j, err := st.FindJob(ctx, job.ID)
		if err != nil {
			return false, err
		}
		if j.Status == store.JobFailed || j.Status == store.JobCancelled {
			t.Fatalf("deploy job %d ended %s: %s\n%s", j.ID, j.Status, j.Message, dump())
		}
		job = j
		return j.Status == store.JobCompleted, fmt.Errorf("job is %s (%s)", j.Status, j.Message)
	})
	t.Logf("%s: the deploy job completed", time.Since(began).Round(time.Millisecond))
	if job.StartedAt == nil || job.CompletedAt == nil || job.Progress != 100 || job.WorkerID == nil || *job.WorkerID != w.ID ||
		!strings.HasPrefix(job.Message, sha[:12]+" running on port ") {
		t.Errorf("completed job = %+v, want started, completed, progress 100, on worker %d, message %q…", job, w.ID, sha[:12]+" running on port ")
	}
	// The hub sent the job once, as the replay when the agent connected:
	// nothing pushed it, since the worker was offline when it was created.
	metrics, err := httpGet(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	if !strings.Contains(metrics, "\nwisehosting_hub_jobs_sent_total{cause=\"replay\"} 1\n") ||
		strings.Contains(metrics, `wisehosting_hub_jobs_sent_total{cause="push"}`) {
		var sent []string
		for _, l := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(l, "wisehosting_hub_jobs_sent_total") {
				sent = append(sent, l)
			}
		}
		t.Errorf("jobs sent by the hub: %q; want exactly one, by replay", sent)
	}

	// The app row: running on the worker, on a port of the agent's range,
	// as process pid:<n>, at the repository's commit.
	app, err = st.FindAppByID(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if app.Status != store.AppRunning || app.WorkerID == nil || *app.WorkerID != w.ID || app.CommitSHA != sha {
		t.Errorf("app after the deploy: status %s, worker %v, commit %q; want running on worker %d at %s",
			app.Status, app.WorkerID, app.CommitSHA, w.ID, sha)
	}
	if app.Port < int64(portLo) || app.Port > int64(portHi) {
		t.Fatalf("app port %d is outside the agent's range %d-%d\n%s", app.Port, portLo, portHi, dump())
	}
	var appPID int
	if _, err := fmt.Sscanf(app.ContainerID, "pid:%d", &appPID); err != nil || appPID <= 0 {
		t.Fatalf("app container id %q is not pid:<pid>", app.ContainerID)
	}

	// The deployment: succeeded on the worker, with the commit and its
	// build log.
	d, err := st.FindDeployment(ctx, dep.Deployment.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.DeploymentSucceeded || d.WorkerID == nil || *d.WorkerID != w.ID || d.CommitSHA != sha ||
		d.CommitMessage != "first commit" || d.Error != "" || d.StartedAt == nil || d.FinishedAt == nil {
		t.Errorf("deployment = %+v, want succeeded on worker %d at %s (first commit)", d, w.ID, sha)
	}
	// The agent sends the final build log before the result; poll anyway,
	// as the two are separate messages.
	waitFor(5*time.Second, "the complete build log on the deployment", func() (bool, error) {
		d, err = st.FindDeployment(ctx, dep.Deployment.ID)
		if err != nil {
			return false, err
		}
		return strings.Contains(d.BuildLogs, fmt.Sprintf("the app accepts connections on port %d", app.Port)), nil
	})
	for _, want := range []string{"cloning " + repo, "building the e2e app", "build done", "commit " + sha[:12]} {
		if !strings.Contains(d.BuildLogs, want) {
			t.Errorf("build log lacks %q:\n%s", want, d.BuildLogs)
		}
	}

	// The app answers on 127.0.0.1 at the recorded port, from the recorded
	// process.
	body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", app.Port))
	if want := fmt.Sprintf("hello e2e from pid %d", appPID); err != nil || body != want {
		t.Fatalf("GET / on the app's port %d = %q, %v; want %q\n%s", app.Port, body, err, want, dump())
	}

	// The worker: online at the address and capacity the agent declared,
	// holding the app's reservation.
	w, err = st.FindWorkerByID(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != "online" || w.Address != "127.0.0.1" || w.CapacityCPU != 2000 || w.CapacityMemory != 2<<30 ||
		w.UsedCPU != appCPU || w.UsedMemory != appMemory || len(w.Runtimes) != 1 || w.Runtimes[0] != wsproto.RuntimeExec {
		t.Errorf("worker = %+v, want online at 127.0.0.1 with 2000m/2GiB (exec), %dm/%d bytes used", w, appCPU, appMemory)
	}
	if m, err := store.CheckCapacity(ctx, st.Pool()); err != nil || len(m) != 0 {
		t.Errorf("capacity accounting: %+v, %v", m, err)
	}
	if n := countRows(t, st, `SELECT count(*) FROM event_outbox WHERE type = $1 AND app_id = $2`,
		event.DeploymentSucceeded, app.ID); n != 1 {
		t.Errorf("%d %s events for the app in the outbox, want 1", n, event.DeploymentSucceeded)
	}

	// Runtime logs: what the app printed at start on both streams, then a
	// line it prints on request, stored (in chunks) for the app and worker.
	logged := func(stream, text string) func() (bool, error) {
		return func() (bool, error) {
			var n int
			err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM runtime_logs
				WHERE app_id = $1 AND worker_id = $2 AND stream = $3 AND strpos(line, $4) > 0 AND line_count >= 1`,
				app.ID, w.ID, stream, text).Scan(&n)
			return n > 0, err
		}
	}
	waitFor(10*time.Second, "the app's start-up lines in runtime_logs", func() (bool, error) {
		out, err := logged("stdout", fmt.Sprintf("testapp starting on port %d", app.Port))()
		if !out || err != nil {
			return false, err
		}
		return logged("stderr", "testapp says hello on stderr")()
	})
	probe := fmt.Sprintf("e2e-probe-%d", time.Now().UnixNano())
	if _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/log?line=%s", app.Port, probe)); err != nil {
		t.Fatalf("GET /log on the app: %v", err)
	}
	waitFor(10*time.Second, "a line the app printed on request in runtime_logs", logged("stdout", probe))

	// Shutdown. The agent first: on SIGTERM it stops the app and reports it
	// stopped through the connection, which outlives the agent's shutdown.
	t.Logf("%s: the app runs and its logs are stored; stopping", time.Since(began).Round(time.Millisecond))
	if err := agent.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-agent.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("the agent did not exit within 15s of SIGTERM\n%s", dump())
	}
	if agent.err != nil {
		t.Fatalf("the agent exited with %v after SIGTERM, want exit status 0\n%s", agent.err, dump())
	}
	if alive(appPID) {
		t.Errorf("the app (pid %d) still runs after the agent exited with -stop-apps-on-exit", appPID)
	}
	if left := clusterProcs(agentDir); len(left) > 0 {
		t.Errorf("processes left under the agent's data directory:\n%s", strings.Join(left, "\n"))
	}
	if _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", app.Port)); err == nil {
		t.Errorf("the app still answers on port %d after the agent stopped it", app.Port)
	}
	// The hub applies the agent's last report asynchronously.
	agentUp = false
	waitFor(5*time.Second, "the app to be recorded as stopped, on no worker", func() (bool, error) {
		app, err = st.FindAppByID(ctx, app.ID)
		if err != nil {
			return false, err
		}
		return app.Status == store.AppStopped && app.WorkerID == nil, fmt.Errorf("app is %s on worker %v", app.Status, app.WorkerID)
	})
	if w, err = st.FindWorkerByID(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if w.UsedCPU != 0 || w.UsedMemory != 0 {
		t.Errorf("worker still holds %dm/%d bytes after its only app stopped", w.UsedCPU, w.UsedMemory)
	}
	// The agent's report says why (the core has no other way to learn it).
	if n := countRows(t, st, `SELECT count(*) FROM event_outbox WHERE type = $1 AND app_id = $2 AND payload->>'reason' = $3`,
		event.AppStopped, app.ID, "worker agent exiting"); n != 1 {
		t.Errorf("%d %s events for the app with the agent's reason in the outbox, want 1", n, event.AppStopped)
	}

	// Then the test's connection and the core, and its cluster.
	if err := db.Close(context.WithoutCancel(ctx)); err != nil {
		t.Errorf("close the test's database connection: %v", err)
	}
	plugins := pluginChildren(t, srv.cmd.Process.Pid)
	srv.stop(t, syscall.SIGTERM)
	waitPluginsGone(t, plugins)
	requireNoClusterProcs(t, root)
	t.Logf("%s: everything stopped", time.Since(began).Round(time.Millisecond))
}

// startAgent starts `wisehosting <args>` (a worker agent) with the worker
// key in its environment. Registered after the callers' earlier cleanups,
// its own runs first: whatever happened, the agent and its apps go before
// the database and the core, and nothing may be left running under
// agentDir.
func startAgent(t *testing.T, key, agentDir string, args ...string) *serveProc {
	t.Helper()
	agent := &serveProc{out: &syncBuffer{}, done: make(chan struct{})}
	agent.cmd = exec.Command(binPath, args...)
	agent.cmd.Env = append(os.Environ(), "WISEHOSTING_WORKER_KEY="+key)
	agent.cmd.Stdout, agent.cmd.Stderr = agent.out, agent.out
	if err := agent.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		agent.err = agent.cmd.Wait()
		close(agent.done)
	}()
	t.Cleanup(func() {
		if !agent.exited() {
			_ = agent.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-agent.done:
			case <-time.After(15 * time.Second):
				t.Errorf("the agent (pid %d) ignored SIGTERM for 15s; killing it", agent.cmd.Process.Pid)
				_ = agent.cmd.Process.Kill()
				<-agent.done
			}
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", agent.out)
		}
		for _, p := range clusterProcs(agentDir) {
			_ = syscall.Kill(pidOf(p), syscall.SIGKILL)
			t.Errorf("left running under the agent's data directory (killed now): %s", p)
		}
	})
	return agent
}

// appendFile appends text to the file at path.
func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// openDatabase opens the store of the config at path as the CLI commands
// do (withDatabase): next to a running serve it attaches to serve's
// cluster. The test's cleanup closes it if the test did not.
func openDatabase(t *testing.T, path string) *daemon.Database {
	t.Helper()
	var diags strings.Builder
	cfg, err := loadConfig(path, &diags)
	if err != nil {
		t.Fatalf("load %s: %v\n%s", path, err, diags.String())
	}
	cfg.Database.MinConns = 1
	db, err := daemon.OpenDatabase(t.Context(), cfg, testutil.Logger(t))
	if err != nil {
		t.Fatalf("open the database of %s: %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	if db.Cluster != nil && db.Cluster.Owned() {
		t.Fatalf("the test started its own cluster instead of attaching to serve's")
	}
	return db
}

// gitRepo creates a git repository in dir on branch main with files (mode
// 0755) in one commit "first commit" and returns the commit's sha.
func gitRepo(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	git("add", "-A")
	git("commit", "-q", "-m", "first commit\n\nwith a body")
	return git("rev-parse", "HEAD")
}

// loopbackPort returns a TCP port that was free a moment ago.
func loopbackPort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(freeLoopbackAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// httpGet fetches url (2 s timeout) and returns the body of a 200 answer.
func httpGet(url string) (string, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), nil
}

// countRows runs a count query.
func countRows(t *testing.T, st *store.Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
