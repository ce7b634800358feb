package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// TestPodmanRuntime runs the podman runtime against a fake podman
// (testdata/fakepodman/podman, put first on PATH): podman cannot run in
// this environment. The fake records every command line and simulates
// containers by running the test app on the published port, so the test
// checks the exact podman invocations and flags (build, run with the plan's
// limits and an env file, logs, wait, stats, rename on redeploy, stop, rm,
// rmi) and that the agent reports what a real deployment would.
func TestPodmanRuntime(t *testing.T) {
	// Not parallel: it changes PATH.
	fake, err := filepath.Abs("testdata/fakepodman")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	t.Setenv("PATH", fake+":"+os.Getenv("PATH"))
	t.Setenv("FAKE_PODMAN_DIR", state)
	t.Setenv("FAKE_PODMAN_APP", testAppBin)
	t.Cleanup(func() { killFakeContainers(state) })

	cfg := testConfig(t)
	cfg.Runtimes = []string{wsproto.RuntimeExec, wsproto.RuntimePodman}
	h := startAgent(t, cfg)
	repo, sha := testRepo(t, map[string]string{"Containerfile": "FROM scratch\nCOPY . /app\n"})
	const app = 70
	uuid := "app-70-uuid"
	podmanJob := func(job int64, greeting string) wsproto.Job {
		return deployJob(job, app, repo, func(p *wsproto.DeployPayload) {
			p.Runtime = wsproto.RuntimePodman
			p.BuildCommand = ""
			p.RunCommand = ""
			p.Env = map[string]string{"GREETING": greeting, "SECRET_VALUE": "hunter2 with spaces"}
			p.Limits = wsproto.Limits{CPU: 500, Memory: 256 << 20, PIDs: 100}
		})
	}

	h.submit(podmanJob(1, "podman"))
	res := h.result(1, 20*time.Second)
	if !res.Success {
		t.Fatalf("deploy: %s\ncalls:\n%s", res.Error, dumpCalls(state))
	}
	if res.CommitSHA != sha || !strings.HasPrefix(res.ContainerID, "fake1") {
		t.Errorf("result %+v", res)
	}
	port := strconv.FormatInt(res.Port, 10)
	calls := fakeCalls(t, state)
	build := findCall(calls, "build")
	if want := []string{"build", "-t", "wh-" + uuid + ":1", "-f", "Containerfile", "."}; !equal(build, want) {
		t.Errorf("podman build argv\n got %q\nwant %q", build, want)
	}
	run := findCall(calls, "run")
	envFile := filepath.Join(h.cfg.DataDir, "apps", uuid, "env", "1.env")
	want := []string{"run", "-d", "--name", "wh-" + uuid, "-p", port + ":8080",
		"--memory", "268435456", "--cpus", "0.5", "--pids-limit", "100",
		"--env-file", envFile, "wh-" + uuid + ":1"}
	if !equal(run, want) {
		t.Errorf("podman run argv\n got %q\nwant %q", run, want)
	}
	for _, c := range calls {
		if strings.Contains(strings.Join(c, " "), "hunter2") {
			t.Errorf("an env value is in podman's argv: %q", c)
		}
	}
	env, _ := os.ReadFile(filepath.Join(state, "env.fake1"))
	if !strings.Contains(string(env), "SECRET_VALUE=hunter2 with spaces\n") || !strings.Contains(string(env), "PORT=8080\n") {
		t.Errorf("env file given to podman:\n%s", env)
	}
	if _, err := os.Stat(envFile); !os.IsNotExist(err) {
		t.Error("the env file outlived podman run")
	}
	if findCall(calls, "wait") == nil {
		waitFor(t, 5*time.Second, "podman wait", func() bool { return findCall(fakeCalls(t, state), "wait") != nil })
	}
	if body, err := get(t, res.Port, "/"); err != nil || !strings.Contains(body, "hello podman") {
		t.Fatalf("GET / = %q, %v", body, err)
	}
	waitFor(t, 5*time.Second, "runtime logs through podman logs -f", func() bool { return h.c.hasLogLine(app, "stdout", "testapp starting") })
	if got := findCall(fakeCalls(t, state), "logs"); !equal(got, []string{"logs", "-f", "wh-" + uuid}) {
		t.Errorf("podman logs argv %q", got)
	}
	waitFor(t, 5*time.Second, "app_stats from podman stats", func() bool {
		for _, s := range of[wsproto.AppStats](h.c, wsproto.TypeAppStats) {
			for _, a := range s.Apps {
				if a.AppID == app && a.MemBytes == 12_500_000 && a.CPUPercent == 2.5 && a.NetRxBytes == 1500 && a.NetTxBytes == 3000 {
					return true
				}
			}
		}
		return false
	})
	if got := findCall(fakeCalls(t, state), "stats"); !equal(got, []string{"stats", "--no-stream", "--format", "json"}) {
		t.Errorf("podman stats argv %q", got)
	}

	// Redeploy: the running container steps aside (rename), the new one
	// takes the name, then the old one is stopped, removed with its image.
	h.submit(podmanJob(2, "again"))
	res2 := h.result(2, 20*time.Second)
	if !res2.Success {
		t.Fatalf("redeploy: %s\n%s", res2.Error, dumpCalls(state))
	}
	if body, err := get(t, res2.Port, "/"); err != nil || !strings.Contains(body, "hello again") {
		t.Fatalf("GET / = %q, %v", body, err)
	}
	aside := "wh-" + uuid + "-1"
	waitFor(t, 10*time.Second, "the old container removed", func() bool {
		return hasCall(fakeCalls(t, state), "rmi", "-f", "wh-"+uuid+":1")
	})
	calls = fakeCalls(t, state)
	for _, w := range [][]string{
		{"rename", "wh-" + uuid, aside},
		{"stop", "-t", "3", aside},
		{"rm", "-f", "--ignore", aside},
	} {
		if !hasCall(calls, w...) {
			t.Errorf("no call %q in\n%s", w, dumpCalls(state))
		}
	}

	// A crash: podman wait returns, the agent reports it and runs
	// `podman start`.
	apid, _ := os.ReadFile(filepath.Join(state, "apid.fake2"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(apid)))
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, 10*time.Second, "app_status exited", func() bool { return h.c.countStatus(app, wsproto.AppExited) == 1 })
	if st := h.c.statuses(app); st[len(st)-1].ExitCode != 137 {
		t.Errorf("exit code %d, want 137", st[len(st)-1].ExitCode)
	}
	waitFor(t, 10*time.Second, "the restarted container running", func() bool {
		return hasCall(fakeCalls(t, state), "start", "wh-"+uuid) && h.c.countStatus(app, wsproto.AppRunning) == 3
	})
	if _, err := get(t, res2.Port, "/"); err != nil {
		t.Errorf("after restart: %v", err)
	}

	// Stop.
	h.submit(wsproto.Job{JobID: 3, Type: JobStop, AppID: app})
	if r := h.result(3, 20*time.Second); !r.Success {
		t.Fatal(r.Error)
	}
	calls = fakeCalls(t, state)
	for _, w := range [][]string{
		{"stop", "-t", "3", "wh-" + uuid},
		{"rm", "-f", "--ignore", "wh-" + uuid},
		{"rmi", "-f", "wh-" + uuid + ":2"},
	} {
		if !hasCall(calls, w...) {
			t.Errorf("no call %q in\n%s", w, dumpCalls(state))
		}
	}
	if _, err := get(t, res2.Port, "/"); err == nil {
		t.Error("the app answers after stop")
	}
}

// TestPodmanRunArgs covers the optional parts of podman run's command line.
func TestPodmanRunArgs(t *testing.T) {
	spec := &runSpec{Container: "wh-x", Port: 20001, ContainerPort: 3000, Image: "wh-x:5", Command: "node server.js"}
	got := podmanRunArgs(spec, "/d/e.env")
	want := []string{"run", "-d", "--name", "wh-x", "-p", "20001:3000", "--env-file", "/d/e.env", "wh-x:5", "sh", "-c", "node server.js"}
	if !equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	spec.Limits = wsproto.Limits{CPU: 1250, Memory: 1 << 30, PIDs: 64}
	got = podmanRunArgs(spec, "/d/e.env")
	if !strings.Contains(strings.Join(got, " "), "--memory 1073741824 --cpus 1.25 --pids-limit 64") {
		t.Errorf("limits: %q", got)
	}
}

func fakeCalls(t *testing.T, state string) [][]string {
	b, err := os.ReadFile(filepath.Join(state, "calls"))
	if err != nil {
		return nil
	}
	var out [][]string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		out = append(out, strings.Split(strings.TrimSuffix(line, "\x1f"), "\x1f"))
	}
	return out
}

func dumpCalls(state string) string {
	b, _ := os.ReadFile(filepath.Join(state, "calls"))
	return strings.ReplaceAll(string(b), "\x1f", " ")
}

func findCall(calls [][]string, cmd string) []string {
	for _, c := range calls {
		if len(c) > 0 && c[0] == cmd {
			return c
		}
	}
	return nil
}

func hasCall(calls [][]string, argv ...string) bool {
	for _, c := range calls {
		if equal(c, argv) {
			return true
		}
	}
	return false
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// killFakeContainers ends the test apps the fake podman started.
func killFakeContainers(state string) {
	files, _ := filepath.Glob(filepath.Join(state, "apid.*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
