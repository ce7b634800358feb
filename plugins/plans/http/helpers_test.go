package httpplans

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

const (
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// seedJSON is the seed's free/pro/business table (sdk/plans.Default) as a
// document.
const seedJSON = `{
  "default_plan": "free",
  "plans": [
    {"id": "free",     "name": "Free",     "max_apps": 1, "cpu": 1, "memory": "512MiB", "disk": "1GiB",  "bandwidth": "10mbit"},
    {"id": "pro",      "name": "Pro",      "max_apps": 5, "cpu": 2, "memory": "2GiB",   "disk": "10GiB", "bandwidth": "100mbit"},
    {"id": "business", "name": "Business", "max_apps": 0, "cpu": 4, "memory": "8GiB",   "disk": "50GiB"}
  ]
}`

// oneJSON is a one-plan document; oneWant its catalogue.
func oneJSON(id string, maxApps int) string {
	return fmt.Sprintf(`{"default_plan": %q, "plans": [{"id": %q, "max_apps": %d, "cpu": 1, "memory": "1GiB", "disk": "1GiB"}]}`, id, id, maxApps)
}

func oneWant(id string, maxApps int) *pluginv1.PlansResponse {
	return &pluginv1.PlansResponse{DefaultPlan: id, Plans: []*pluginv1.Plan{
		{Id: id, Name: id, MaxApps: int64(maxApps), Cpu: 1000, Memory: gib, Disk: gib},
	}}
}

// server is a catalogue server on 127.0.0.1 whose answer the test changes,
// recording every request's headers.
type server struct {
	srv *httptest.Server

	mu       sync.Mutex
	handler  http.HandlerFunc
	requests []http.Header
}

// newServer starts a server answering body with 200.
func newServer(t *testing.T, body string) *server {
	t.Helper()
	s := &server{}
	s.serve(body)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Header.Clone())
		h := s.handler
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// set makes h the answer from now on.
func (s *server) set(h http.HandlerFunc) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// serve makes body, with 200, the answer from now on.
func (s *server) serve(body string) {
	s.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	})
}

// status makes an answer with that status and body the answer from now on.
func (s *server) status(code int, body string) {
	s.set(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	})
}

// count is the number of requests so far.
func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// last is the headers of the latest request.
func (s *server) last(t *testing.T) http.Header {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		t.Fatal("the server got no request")
	}
	return s.requests[len(s.requests)-1]
}

// url is the server's URL with path.
func (s *server) url(path string) string { return s.srv.URL + path }

// newPlugin returns an unconfigured plugin logging JSON into the returned
// buffer; its refresh goroutine is stopped when the test ends.
func newPlugin(t *testing.T) (*Plugin, *plugintest.LogBuffer) {
	t.Helper()
	l, buf := plugintest.JSONLogger()
	p := newWithLogger(l)
	t.Cleanup(p.Close)
	return p, buf
}

// configure configures p with the HCL body src, decoded as the core does.
func configure(t *testing.T, p *Plugin, src string) error {
	t.Helper()
	return plugintest.Configure(p, Spec(), src)
}

// mustConfigure is configure that must succeed.
func mustConfigure(t *testing.T, p *Plugin, src string) {
	t.Helper()
	if err := configure(t, p, src); err != nil {
		t.Fatalf("Configure: %v", err)
	}
}

// urlConfig is a config body for url plus extra lines.
func urlConfig(url string, extra ...string) string {
	return strings.Join(append([]string{fmt.Sprintf("url = %q", url)}, extra...), "\n")
}

// plansNow calls Plans with a deadline.
func plansNow(p *Plugin) (*pluginv1.PlansResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return p.Plans(ctx)
}

// clock drives the refresh goroutine by hand: each tick lets it refetch
// once and returns when that refetch is over. It records every wait asked
// for.
type clock struct {
	ticks chan chan struct{}

	mu    sync.Mutex
	waits []time.Duration
	prev  chan struct{} // closed when the goroutine waits again
}

// manualClock replaces p's waiting; call it before the first Configure.
func manualClock(p *Plugin) *clock {
	c := &clock{ticks: make(chan chan struct{})}
	p.wait = func(ctx context.Context, d time.Duration) bool {
		c.mu.Lock()
		c.waits = append(c.waits, d)
		if c.prev != nil {
			close(c.prev)
			c.prev = nil
		}
		c.mu.Unlock()
		select {
		case done := <-c.ticks:
			c.mu.Lock()
			c.prev = done
			c.mu.Unlock()
			return true
		case <-ctx.Done():
			return false
		}
	}
	return c
}

// tick lets the refresh goroutine refetch once and waits for it to finish.
func (c *clock) tick(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	select {
	case c.ticks <- done:
	case <-time.After(10 * time.Second):
		t.Fatal("the refresh goroutine is not waiting")
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the refetch did not finish")
	}
}

// waited returns the waits asked for so far.
func (c *clock) waited() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}
