// Package testutil holds the house test helpers: a logger tied to the test,
// polling instead of sleeping, and small assertions shared across packages.
package testutil

import (
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// LogLevelEnv names the environment variable that sets the level of test
// loggers (trace, debug, info, warn, error, off). The default is warn, so a
// green run stays quiet and a failing one can be re-run with more detail.
const LogLevelEnv = "WH_TEST_LOG"

// Logger returns an hclog.Logger whose output goes to t.Log, so log lines are
// attributed to the test that produced them and shown only on failure or -v.
func Logger(t testing.TB) hclog.Logger {
	t.Helper()
	level := hclog.Warn
	if v := os.Getenv(LogLevelEnv); v != "" {
		level = hclog.LevelFromString(v)
		if v == "off" {
			level = hclog.Off
		}
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:   t.Name(),
		Level:  level,
		Output: &testWriter{t: t},
	})
}

// testWriter adapts t.Log to io.Writer; writes after the test ended are
// dropped instead of panicking.
type testWriter struct{ t testing.TB }

func (w *testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = (*testWriter)(nil)

// WaitFor polls cond every 10ms until it returns true or timeout passes, then
// fails the test with msg. Use it instead of sleeping for an expected state.
func WaitFor(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Clock is a fake clock for code that takes a Now func: it stands still
// until Advance moves it. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock reading at.
func NewClock(at time.Time) *Clock { return &Clock{now: at} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
