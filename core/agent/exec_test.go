package agent

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// TestExecLifecycle deploys the test app from a local git repository with
// the exec runtime, checks everything the agent reports, redeploys it,
// replays a finished job, stops it and deletes it.
func TestExecLifecycle(t *testing.T) {
	t.Parallel()
	h := startAgent(t, testConfig(t))
	repo, sha := testRepo(t, nil)
	const app = 7

	h.submit(deployJob(1, app, repo, nil))
	res := h.result(1, 20*time.Second)
	if !res.Success {
		t.Fatalf("deploy failed: %s", res.Error)
	}
	if res.Port < int64(h.cfg.PortMin) || res.Port > int64(h.cfg.PortMax) {
		t.Errorf("port %d outside %d-%d", res.Port, h.cfg.PortMin, h.cfg.PortMax)
	}
	if res.CommitSHA != sha || res.CommitMessage != "first commit" {
		t.Errorf("commit = %q %q, want %q %q", res.CommitSHA, res.CommitMessage, sha, "first commit")
	}
	pid := pidOf(t, res.ContainerID)

	// job_status processing came first, then build logs, then the result.
	msgs := h.c.all()
	if msgs[0].typ != wsproto.TypeJobStatus && msgs[0].typ != wsproto.TypeHeartbeat {
		t.Errorf("first message %s", msgs[0].typ)
	}
	st := of[wsproto.JobStatus](h.c, wsproto.TypeJobStatus)
	if len(st) != 1 || st[0].JobID != 1 || st[0].Status != "processing" {
		t.Errorf("job statuses %+v", st)
	}
	bl := h.c.lastBuildLog(1)
	for _, want := range []string{"cloning " + repo, "building the test app", "build done", "commit " + sha[:12], "accepts connections"} {
		if !strings.Contains(bl, want) {
			t.Errorf("build log lacks %q:\n%s", want, bl)
		}
	}
	if b := of[wsproto.BuildLog](h.c, wsproto.TypeBuildLog); b[0].DeploymentID != 10 {
		t.Errorf("build log deployment id %d", b[0].DeploymentID)
	}

	body, err := get(t, res.Port, "/")
	if err != nil || !strings.Contains(body, "hello world") {
		t.Fatalf("GET / = %q, %v", body, err)
	}
	waitFor(t, 5*time.Second, "app_status running", func() bool { return h.c.countStatus(app, wsproto.AppRunning) == 1 })
	waitFor(t, 5*time.Second, "the app's stdout and stderr", func() bool {
		return h.c.hasLogLine(app, "stdout", "testapp starting on port") && h.c.hasLogLine(app, "stderr", "hello on stderr")
	})
	if _, err := get(t, res.Port, "/log?line=runtime-log-probe"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a line the app printed", func() bool { return h.c.hasLogLine(app, "stdout", "runtime-log-probe") })
	env, _ := get(t, res.Port, "/env")
	if strings.Contains(env, KeyEnv) || !strings.Contains(env, "PORT") || !strings.Contains(env, "GREETING") {
		t.Errorf("app environment names: %s", env)
	}

	// Stats for the running app.
	waitFor(t, 5*time.Second, "app_stats with the app's memory", func() bool {
		for _, s := range of[wsproto.AppStats](h.c, wsproto.TypeAppStats) {
			for _, a := range s.Apps {
				if a.AppID == app && a.MemBytes > 1<<20 && a.MemLimit == 256<<20 {
					return true
				}
			}
		}
		return false
	})
	waitFor(t, 5*time.Second, "a heartbeat counting the app", func() bool {
		for _, hb := range of[wsproto.Heartbeat](h.c, wsproto.TypeHeartbeat) {
			if hb.RunningApps == 1 {
				return true
			}
		}
		return false
	})

	// A replay of the finished job: no second run, the result again.
	h.submit(deployJob(1, app, repo, nil))
	waitFor(t, 5*time.Second, "the replayed job's result", func() bool { return len(h.c.results(1)) == 2 })
	if n := len(of[wsproto.JobStatus](h.c, wsproto.TypeJobStatus)); n != 1 {
		t.Errorf("%d job statuses after a replay, want 1", n)
	}
	if h.c.results(1)[1] != res {
		t.Errorf("replayed result %+v, want %+v", h.c.results(1)[1], res)
	}

	// Redeploy: a new instance on a new port replaces the old one.
	redeploy := deployJob(2, app, repo, func(p *wsproto.DeployPayload) { p.Env["GREETING"] = "again" })
	redeploy.Type = JobRestart
	h.submit(redeploy)
	res2 := h.result(2, 20*time.Second)
	if !res2.Success || res2.Port == res.Port {
		t.Fatalf("redeploy: %+v", res2)
	}
	if body, err := get(t, res2.Port, "/"); err != nil || !strings.Contains(body, "hello again") {
		t.Fatalf("new release: GET / = %q, %v", body, err)
	}
	waitFor(t, 10*time.Second, "the old instance to stop", func() bool { return !alive(pid) })
	if _, err := get(t, res.Port, "/"); err == nil {
		t.Error("the old port still answers")
	}
	dir := h.a.appDir("app-7-uuid")
	waitFor(t, 5*time.Second, "the old build to be removed", func() bool {
		_, err := os.Stat(dir + "/builds/1")
		return os.IsNotExist(err)
	})

	// Stop.
	pid2 := pidOf(t, res2.ContainerID)
	h.submit(wsproto.Job{JobID: 3, Type: JobStop, AppID: app})
	if r := h.result(3, 15*time.Second); !r.Success {
		t.Fatalf("stop: %+v", r)
	}
	if alive(pid2) {
		t.Error("the app still runs after stop")
	}
	waitFor(t, 5*time.Second, "app_status stopped", func() bool { return h.c.countStatus(app, wsproto.AppStopped) == 1 })
	if !h.c.hasLogLine(app, "stdout", "testapp stopping") {
		t.Error("the app did not get SIGTERM first")
	}
	// Stopped apps are in no stats.
	if h.a.runningCount() != 0 {
		t.Error("running apps after stop")
	}

	// Delete.
	h.submit(wsproto.Job{JobID: 4, Type: JobDelete, AppID: app})
	if r := h.result(4, 15*time.Second); !r.Success {
		t.Fatalf("delete: %+v", r)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("app directory after delete: %v", err)
	}
}

// TestCrashLoop: an app that keeps crashing is restarted with backoff and
// reported as crashlooping after more than 5 restarts.
func TestCrashLoop(t *testing.T) {
	t.Parallel()
	h := startAgent(t, testConfig(t))
	repo, _ := testRepo(t, nil)
	const app = 8
	h.submit(deployJob(1, app, repo, func(p *wsproto.DeployPayload) { p.Env["CRASH_AFTER"] = "150ms" }))
	if r := h.result(1, 20*time.Second); !r.Success {
		t.Fatalf("deploy: %s", r.Error)
	}
	waitFor(t, 20*time.Second, "app_status crashloop", func() bool { return h.c.countStatus(app, wsproto.AppCrashloop) == 1 })
	var exits []wsproto.AppStatus
	for _, s := range h.c.statuses(app) {
		if s.Status == wsproto.AppExited {
			exits = append(exits, s)
		}
	}
	if len(exits) != 6 {
		t.Errorf("%d exited statuses, want 6: %+v", len(exits), h.c.statuses(app))
	}
	for _, e := range exits {
		if e.ExitCode != 3 {
			t.Errorf("exit code %d, want 3", e.ExitCode)
		}
	}
	st := h.c.statuses(app)
	last := st[len(st)-1]
	if last.Status != wsproto.AppCrashloop || last.RestartCount != 5 {
		t.Errorf("last status %+v, want crashloop with 5 restarts", last)
	}
	// Restarts were reported running again.
	if n := h.c.countStatus(app, wsproto.AppRunning); n != 6 {
		t.Errorf("%d running statuses, want 6 (deploy + 5 restarts)", n)
	}
	waitFor(t, 5*time.Second, "a system log line about the crash loop", func() bool { return h.c.hasLogLine(app, "system", "not restarting") })
	// No further restart.
	n := len(h.c.statuses(app))
	time.Sleep(300 * time.Millisecond)
	if len(h.c.statuses(app)) != n {
		t.Error("restarted after crashloop")
	}
	if h.a.runningCount() != 0 {
		t.Error("a crashlooping app counts as running")
	}
}

// TestFailedJobs: build failures, an app that never listens and one that
// exits at once are failed jobs whose error names the cause and quotes the
// last output lines; nothing is left running.
func TestFailedJobs(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.StartTimeout = 700 * time.Millisecond
	cfg.BuildTimeout = 2 * time.Second
	h := startAgent(t, cfg)
	repo, _ := testRepo(t, nil)

	cases := []struct {
		name string
		mod  func(*wsproto.DeployPayload)
		want []string
	}{
		{"build fails", func(p *wsproto.DeployPayload) {
			p.BuildCommand = "echo compiling; echo 'error: boom' >&2; exit 2"
		}, []string{"build failed: exit status 2", "error: boom"}},
		{"build times out", func(p *wsproto.DeployPayload) {
			p.BuildCommand = "echo slow build; sleep 30"
		}, []string{"build failed: timed out after 2s"}},
		{"never listens", func(p *wsproto.DeployPayload) {
			p.RunCommand = "echo starting slowly; echo still not listening >&2; exec sleep 30"
		}, []string{"did not accept connections", "within 700ms", "starting slowly", "still not listening"}},
		{"exits at once", func(p *wsproto.DeployPayload) {
			p.RunCommand = "echo cannot start: missing config; exit 4"
		}, []string{"exited with code 4", "cannot start: missing config"}},
		{"bad repository", func(p *wsproto.DeployPayload) {
			p.GitRepo = "ext::sh -c touch% /tmp/pwned"
		}, []string{"fetching the source", "not allowed"}},
		{"missing branch", func(p *wsproto.DeployPayload) {
			p.GitBranch = "nope"
		}, []string{"fetching the source: git clone: exit status 128", "nope"}},
		{"runtime not offered", func(p *wsproto.DeployPayload) {
			p.Runtime = wsproto.RuntimePodman
		}, []string{`runtime "podman" is not offered`}},
	}
	for i, tc := range cases {
		job := int64(100 + i)
		app := int64(20 + i)
		h.submit(deployJob(job, app, repo, tc.mod))
		defer func() {
			t.Run(tc.name, func(t *testing.T) {
				r := h.result(job, 20*time.Second)
				if r.Success {
					t.Fatalf("succeeded: %+v", r)
				}
				for _, w := range tc.want {
					if !strings.Contains(r.Error, w) {
						t.Errorf("error lacks %q:\n%s", w, r.Error)
					}
				}
				if r.Port != 0 || r.ContainerID != "" {
					t.Errorf("failed job has port/container: %+v", r)
				}
				if h.c.countStatus(app, wsproto.AppRunning) != 0 {
					t.Error("app_status running for a failed deploy")
				}
			})
		}()
	}
	// Nothing left in the process groups of the failed apps.
	t.Cleanup(func() {
		for _, s := range scanProcs(procRoot) {
			if b, err := os.ReadFile("/proc/" + itoa(s.pid) + "/cmdline"); err == nil && strings.Contains(string(b), "still not listening") {
				t.Errorf("process %d of a failed start still runs", s.pid)
			}
		}
	})
}

func itoa(n int) string   { return strconv.Itoa(n) }
func fmtInt(n int) string { return strconv.Itoa(n) }

// TestJobOrdering: jobs of one app run one at a time in order; another
// app's job runs meanwhile.
func TestJobOrdering(t *testing.T) {
	t.Parallel()
	h := startAgent(t, testConfig(t))
	repo, _ := testRepo(t, nil)
	slow := func(p *wsproto.DeployPayload) { p.BuildCommand = "sleep 0.6; ./build.sh" }
	h.submit(deployJob(1, 30, repo, slow))
	h.submit(wsproto.Job{JobID: 2, Type: JobStop, AppID: 30})
	h.submit(deployJob(3, 31, repo, nil))
	h.result(2, 20*time.Second)
	h.result(3, 20*time.Second)
	order := map[string]int{}
	for i, m := range h.c.all() {
		key := ""
		switch p := m.p.(type) {
		case wsproto.JobStatus:
			key = "status" + fmtInt(int(p.JobID))
		case wsproto.JobResult:
			key = "result" + fmtInt(int(p.JobID))
		default:
			continue
		}
		if _, ok := order[key]; !ok {
			order[key] = i
		}
	}
	if !(order["result1"] < order["status2"]) {
		t.Errorf("job 2 of the same app started before job 1 finished: %v", order)
	}
	if !(order["status3"] < order["result1"]) {
		t.Errorf("the other app's job waited for app 30: %v", order)
	}
}

// TestAdoption: an agent that exits leaves its apps running; the next one
// adopts them, reports them running and can stop them.
func TestAdoption(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.StopAppsOnExit = false
	h := startAgent(t, cfg)
	repo, _ := testRepo(t, nil)
	h.submit(deployJob(1, 40, repo, nil))
	res := h.result(1, 20*time.Second)
	if !res.Success {
		t.Fatal(res.Error)
	}
	pid := pidOf(t, res.ContainerID)
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
	h.stop()
	if !alive(pid) {
		t.Fatal("the app died with the agent")
	}
	if _, err := get(t, res.Port, "/"); err != nil {
		t.Fatalf("the app stopped answering: %v", err)
	}

	h2 := startAgent(t, cfg)
	waitFor(t, 5*time.Second, "the adopted app reported running", func() bool { return h2.c.countStatus(40, wsproto.AppRunning) == 1 })
	if _, err := get(t, res.Port, "/log?line=after-adoption"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "logs of the adopted app", func() bool { return h2.c.hasLogLine(40, "stdout", "after-adoption") })
	if h2.c.hasLogLine(40, "stdout", "testapp starting") {
		t.Error("old output shipped again after adoption")
	}
	// A new deploy does not take the adopted app's port.
	h2.submit(wsproto.Job{JobID: 2, Type: JobStop, AppID: 40})
	if r := h2.result(2, 15*time.Second); !r.Success {
		t.Fatal(r.Error)
	}
	waitFor(t, 5*time.Second, "the adopted app to stop", func() bool { return !alive(pid) })
}

// TestStopAppsOnExit: with the option, apps stop with the agent and are
// reported stopped.
func TestStopAppsOnExit(t *testing.T) {
	t.Parallel()
	h := startAgent(t, testConfig(t))
	repo, _ := testRepo(t, nil)
	h.submit(deployJob(1, 41, repo, nil))
	res := h.result(1, 20*time.Second)
	if !res.Success {
		t.Fatal(res.Error)
	}
	h.stop()
	if alive(pidOf(t, res.ContainerID)) {
		t.Error("the app outlived the agent")
	}
	if h.c.countStatus(41, wsproto.AppStopped) != 1 {
		t.Error("no app_status stopped")
	}
}

// TestLimits: an exec app over its memory limit is reported (and killed
// beyond 110 %), one over its PIDs limit is reported once.
func TestLimits(t *testing.T) {
	t.Parallel()
	h := startAgent(t, testConfig(t))
	repo, _ := testRepo(t, nil)
	h.submit(deployJob(1, 50, repo, func(p *wsproto.DeployPayload) {
		p.Limits = wsproto.Limits{Memory: 40 << 20}
		p.Env["ALLOC_MB"] = "64"
	}))
	h.submit(deployJob(2, 51, repo, func(p *wsproto.DeployPayload) { p.Limits = wsproto.Limits{PIDs: 2, Memory: 1 << 30} }))
	r1, r2 := h.result(1, 20*time.Second), h.result(2, 20*time.Second)
	if !r1.Success || !r2.Success {
		t.Fatal(r1.Error, r2.Error)
	}
	violation := func(app int64, kind, text string) bool {
		for _, v := range of[wsproto.Violation](h.c, wsproto.TypeViolation) {
			if v.AppID == app && v.Kind == kind && strings.Contains(v.Message, text) {
				return true
			}
		}
		return false
	}
	waitFor(t, 10*time.Second, "a memory violation with a kill", func() bool { return violation(50, "memory", "killed") })
	waitFor(t, 10*time.Second, "the killed app reported exited", func() bool { return h.c.countStatus(50, wsproto.AppExited) >= 1 })
	if st := h.c.statuses(50); st[1].ExitCode != 128+9 {
		t.Errorf("exit code %d, want 137 (SIGKILL)", st[1].ExitCode)
	}
	waitFor(t, 10*time.Second, "a pids violation", func() bool { return violation(51, "pids", "above the limit of 2") })
	time.Sleep(300 * time.Millisecond)
	n := 0
	for _, v := range of[wsproto.Violation](h.c, wsproto.TypeViolation) {
		if v.AppID == 51 {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d pids violations for one episode, want 1", n)
	}
}

// TestResultAfterReconnect: a result that could not be sent is sent once
// the client is connected again.
func TestResultAfterReconnect(t *testing.T) {
	t.Parallel()
	h := startAgent(t, testConfig(t))
	h.c.down.Store(true)
	h.submit(wsproto.Job{JobID: 9, Type: JobStop, AppID: 99})
	time.Sleep(200 * time.Millisecond)
	if len(h.c.results(9)) != 0 {
		t.Fatal("sent while disconnected")
	}
	h.c.down.Store(false)
	r := h.result(9, 5*time.Second)
	if !r.Success {
		t.Fatal(r.Error)
	}
	waitFor(t, 5*time.Second, "the app status kept while disconnected", func() bool { return h.c.countStatus(99, wsproto.AppStopped) == 1 })
}
