package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// testAppBin is the test HTTP app (testdata/testapp), built once by
// TestMain.
var testAppBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wh-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	testAppBin = filepath.Join(dir, "testapp")
	cmd := exec.Command("go", "build", "-o", testAppBin, "./testdata/testapp")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building testdata/testapp:", err)
		return 1
	}
	return m.Run()
}

// testLogger writes to t.Log at the level of $WH_TEST_LOG (default warn).
func testLogger(t testing.TB) hclog.Logger {
	level := hclog.Warn
	if v := os.Getenv("WH_TEST_LOG"); v != "" {
		level = hclog.LevelFromString(v)
	}
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: level, Output: &tWriter{t: t}})
}

type tWriter struct{ t testing.TB }

func (w *tWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeClient records what the agent sends.
type fakeClient struct {
	jobs chan wsproto.Job
	errs chan wsproto.Error
	hb   time.Duration
	down atomic.Bool

	mu   sync.Mutex
	msgs []sent
}

type sent struct {
	typ string
	p   any
}

func newFakeClient() *fakeClient {
	return &fakeClient{jobs: make(chan wsproto.Job, 16), errs: make(chan wsproto.Error, 4), hb: 50 * time.Millisecond}
}

var errDown = errors.New("fake: disconnected")

func (c *fakeClient) record(typ string, p any) error {
	if c.down.Load() {
		return errDown
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, sent{typ, p})
	c.mu.Unlock()
	return nil
}

func (c *fakeClient) Jobs() <-chan wsproto.Job         { return c.jobs }
func (c *fakeClient) Errors() <-chan wsproto.Error     { return c.errs }
func (c *fakeClient) HeartbeatInterval() time.Duration { return c.hb }
func (c *fakeClient) Connected() bool                  { return !c.down.Load() }
func (c *fakeClient) SendHeartbeat(_ context.Context, m wsproto.Heartbeat) error {
	return c.record(wsproto.TypeHeartbeat, m)
}
func (c *fakeClient) SendJobStatus(_ context.Context, m wsproto.JobStatus) error {
	return c.record(wsproto.TypeJobStatus, m)
}
func (c *fakeClient) SendJobResult(_ context.Context, m wsproto.JobResult) error {
	return c.record(wsproto.TypeJobResult, m)
}
func (c *fakeClient) SendAppStats(_ context.Context, m wsproto.AppStats) error {
	return c.record(wsproto.TypeAppStats, m)
}
func (c *fakeClient) SendAppStatus(_ context.Context, m wsproto.AppStatus) error {
	return c.record(wsproto.TypeAppStatus, m)
}
func (c *fakeClient) SendViolation(_ context.Context, m wsproto.Violation) error {
	return c.record(wsproto.TypeViolation, m)
}
func (c *fakeClient) SendRuntimeLog(_ context.Context, m wsproto.RuntimeLog) error {
	return c.record(wsproto.TypeRuntimeLog, m)
}
func (c *fakeClient) SendBuildLog(_ context.Context, m wsproto.BuildLog) error {
	return c.record(wsproto.TypeBuildLog, m)
}

func (c *fakeClient) all() []sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sent(nil), c.msgs...)
}

// of returns the payloads of one type, in order.
func of[T any](c *fakeClient, typ string) []T {
	var out []T
	for _, m := range c.all() {
		if m.typ == typ {
			out = append(out, m.p.(T))
		}
	}
	return out
}

func (c *fakeClient) results(job int64) []wsproto.JobResult {
	var out []wsproto.JobResult
	for _, r := range of[wsproto.JobResult](c, wsproto.TypeJobResult) {
		if r.JobID == job {
			out = append(out, r)
		}
	}
	return out
}

func (c *fakeClient) statuses(app int64) []wsproto.AppStatus {
	var out []wsproto.AppStatus
	for _, s := range of[wsproto.AppStatus](c, wsproto.TypeAppStatus) {
		if s.AppID == app {
			out = append(out, s)
		}
	}
	return out
}

func (c *fakeClient) countStatus(app int64, status string) int {
	n := 0
	for _, s := range c.statuses(app) {
		if s.Status == status {
			n++
		}
	}
	return n
}

func (c *fakeClient) logLines(app int64) []wsproto.LogLine {
	var out []wsproto.LogLine
	for _, m := range of[wsproto.RuntimeLog](c, wsproto.TypeRuntimeLog) {
		for _, l := range m.Lines {
			if l.AppID == app {
				out = append(out, l)
			}
		}
	}
	return out
}

func (c *fakeClient) hasLogLine(app int64, stream, text string) bool {
	for _, l := range c.logLines(app) {
		if l.Stream == stream && strings.Contains(l.Line, text) {
			return true
		}
	}
	return false
}

func (c *fakeClient) lastBuildLog(job int64) string {
	var s string
	for _, b := range of[wsproto.BuildLog](c, wsproto.TypeBuildLog) {
		if b.JobID == job {
			s = b.Logs
		}
	}
	return s
}

// harness runs an agent with a fake client.
type harness struct {
	t      *testing.T
	a      *Agent
	c      *fakeClient
	cfg    Config
	cancel context.CancelFunc
	done   chan error
}

var portBlock atomic.Int32

// testConfig is a fast configuration in a fresh data directory with a port
// range of its own.
func testConfig(t *testing.T) Config {
	n := int(portBlock.Add(1))
	lo := 21000 + n*40
	return Config{
		DataDir:           t.TempDir(),
		PortMin:           lo,
		PortMax:           lo + 39,
		StartTimeout:      10 * time.Second,
		StopTimeout:       3 * time.Second,
		StatsInterval:     100 * time.Millisecond,
		RestartBackoffMin: 20 * time.Millisecond,
		RestartBackoffMax: 100 * time.Millisecond,
		LogFlushInterval:  30 * time.Millisecond,
		BuildLogInterval:  50 * time.Millisecond,
		ShutdownGrace:     5 * time.Second,
		ResendInterval:    50 * time.Millisecond,
		StopAppsOnExit:    true,
		Logger:            testLogger(t),
	}
}

func startAgent(t *testing.T, cfg Config) *harness {
	t.Helper()
	c := newFakeClient()
	a, err := New(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, a: a, c: c, cfg: a.cfg, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// stop ends the agent (once) and waits for Run.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Error("the agent did not stop")
	}
}

func (h *harness) submit(j wsproto.Job) { h.c.jobs <- j }

// result waits for a job's (first) result.
func (h *harness) result(job int64, timeout time.Duration) wsproto.JobResult {
	h.t.Helper()
	waitFor(h.t, timeout, fmt.Sprintf("the result of job %d", job), func() bool { return len(h.c.results(job)) > 0 })
	return h.c.results(job)[0]
}

// testRepo creates a git repository with the test app's build script and
// returns its path and head commit.
func testRepo(t *testing.T, files map[string]string) (dir, sha string) {
	t.Helper()
	dir = t.TempDir()
	base := map[string]string{
		"build.sh": "#!/bin/sh\necho building the test app\ncp \"$APP_BIN\" ./app\necho build done\n",
	}
	for k, v := range files {
		base[k] = v
	}
	gitIn(t, dir, "init", "-q", "-b", "main")
	for name, body := range base {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "commit", "-q", "-m", "first commit\n\nwith a body")
	return dir, strings.TrimSpace(gitIn(t, dir, "rev-parse", "HEAD"))
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// deployJob is a deploy of the test app from repo.
func deployJob(jobID, appID int64, repo string, mod func(*wsproto.DeployPayload)) wsproto.Job {
	p := &wsproto.DeployPayload{
		AppID:        appID,
		AppUUID:      fmt.Sprintf("app-%d-uuid", appID),
		AppName:      "test",
		Runtime:      wsproto.RuntimeExec,
		GitRepo:      repo,
		GitBranch:    "main",
		BuildCommand: "./build.sh",
		RunCommand:   "exec ./app",
		Env:          map[string]string{"APP_BIN": testAppBin, "GREETING": "world"},
		Limits:       wsproto.Limits{CPU: 500, Memory: 256 << 20},
	}
	if mod != nil {
		mod(p)
	}
	return wsproto.Job{JobID: jobID, Type: JobDeploy, AppID: appID, DeploymentID: jobID * 10, Payload: p}
}

func get(t *testing.T, port int64, path string) (string, error) {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// pidOf reads the pid of an exec release's container id.
func pidOf(t *testing.T, containerID string) int {
	t.Helper()
	var pid int
	if _, err := fmt.Sscanf(containerID, "pid:%d", &pid); err != nil || pid <= 0 {
		t.Fatalf("container id %q is not pid:<pid>", containerID)
	}
	return pid
}

// alive reports whether pid runs (and is not a zombie).
func alive(pid int) bool {
	st, err := readProcStat(procRoot, pid)
	return err == nil && st.state != 'Z'
}
