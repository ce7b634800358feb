package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/stdwebhook"
)

// hookReceiver is a webhook endpoint on loopback that verifies every
// delivery's Standard Webhooks signature and counts webhook-ids.
type hookReceiver struct {
	secret stdwebhook.Secret
	delay  time.Duration

	mu       sync.Mutex
	seen     map[string]int
	rejected int
	sample   *http.Request // one accepted delivery, for the tamper check
	body     []byte
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	time.Sleep(h.delay)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := stdwebhook.Verify(r.Header, body, time.Now(), 5*time.Minute, h.secret); err != nil {
		h.rejected++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	h.seen[r.Header.Get("webhook-id")]++
	if h.sample == nil {
		h.sample, h.body = r.Clone(context.Background()), body
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) counts() (unique, total int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.seen {
		unique++
		total += n
	}
	return unique, total
}

// TestE2EEventsSurviveCrashes is the outbox's promise: during a burst of
// 1,000 events the webhook sink plugin is killed, then the core itself is
// SIGKILLed mid-delivery and started again; a receiver verifying every
// signature sees every event, and duplicates only for deliveries in
// flight at a kill.
func TestE2EEventsSurviveCrashes(t *testing.T) {
	t.Parallel()
	const total = 1000
	secret, err := stdwebhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	key, err := stdwebhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	recv := &hookReceiver{secret: key, delay: 2 * time.Millisecond, seen: map[string]int{}}
	srvHook := httptest.NewUnstartedServer(recv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvHook.Listener = ln
	srvHook.Start()
	t.Cleanup(srvHook.Close)

	root := sharedTempDir(t)
	t.Cleanup(func() { requireNoClusterProcs(t, root) })
	writeSecret(t, root)
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	cfg := filepath.Join(root, "wisehosting.hcl")
	writeServeConfig(t, cfg, filepath.Join(root, "data"), addr, "10s")
	appendFile(t, cfg, fmt.Sprintf(`
events {
  batch_size = 100
}

plugin "alerts" "hooks" {
  source = "webhook"
  events = ["app.*"]
  config {
    url             = %q
    secret          = %q
    allow_private   = true
    max_concurrency = 4
  }
}
`, srvHook.URL+"/hook", secret))

	srv := startServe(t, cfg)
	srv.waitHealthy(t, base, 60*time.Second)
	db := openDatabase(t, cfg)

	emitted := 0
	emitBatch := func(st *store.Store, n int) {
		t.Helper()
		evs := make([]event.Event, n)
		for i := range evs {
			evs[i] = event.Event{Type: event.AppCPU, AppID: int64(emitted + i + 1), Data: []byte(`{"app_name":"burst"}`)}
		}
		if err := pgx.BeginFunc(t.Context(), st.Pool(), func(tx pgx.Tx) error {
			return store.EmitEvents(t.Context(), tx, evs)
		}); err != nil {
			t.Fatal(err)
		}
		emitted += n
	}
	burst := func(st *store.Store, n int) {
		for i := 0; i < n; i += 10 {
			emitBatch(st, 10)
			time.Sleep(3 * time.Millisecond)
		}
	}

	// 1. The sink plugin is killed a quarter into the burst.
	burst(db.Store, 250)
	sinks := pluginChildren(t, srv.cmd.Process.Pid) // the sink is serve's only plugin
	if len(sinks) != 1 {
		t.Fatalf("found %d plugin processes under serve, want the webhook sink alone", len(sinks))
	}
	if err := syscall.Kill(sinks[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the sink plugin (pid %d) after %d events", sinks[0], emitted)
	burst(db.Store, 350)

	// 2. The core dies while deliveries are in flight (the receiver is
	// slow on purpose, so there is a backlog), and comes back.
	testutil.WaitFor(t, 60*time.Second, "the plugin restarted and deliveries under way", func() bool {
		u, _ := recv.counts()
		return u >= 300 && len(pluginChildren(t, srv.cmd.Process.Pid)) == 1
	})
	u, _ := recv.counts()
	_ = db.Close(context.Background())
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	t.Logf("SIGKILLed the core with %d of %d events received", u, emitted)
	srv = startServe(t, cfg)
	srv.waitHealthy(t, base, 60*time.Second)
	db = openDatabase(t, cfg)
	burst(db.Store, total-emitted)

	testutil.WaitFor(t, 90*time.Second, "every event received", func() bool {
		u, _ := recv.counts()
		return u == total
	})
	testutil.WaitFor(t, 30*time.Second, "the outbox drained", func() bool {
		var left int
		_ = db.Store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM event_outbox WHERE status <> 'delivered'`).Scan(&left)
		return left == 0
	})
	unique, got := recv.counts()
	recv.mu.Lock()
	rejected := recv.rejected
	recv.mu.Unlock()
	if rejected != 0 {
		t.Errorf("%d deliveries failed signature verification", rejected)
	}
	t.Logf("%d events: %d distinct webhook-ids received, %d deliveries, %d duplicates (deliveries in flight at the kills)",
		total, unique, got, got-unique)
	// In flight at each kill: at most the dispatcher's passes (4) of
	// batch_size (100) events, whose outcomes were not yet recorded.
	if dup := got - unique; dup > 2*4*100 {
		t.Errorf("%d duplicates: more than what could have been in flight at the two kills", dup)
	}

	// A tampered delivery fails verification.
	recv.mu.Lock()
	h, body := recv.sample.Header.Clone(), bytes.Clone(recv.body)
	recv.mu.Unlock()
	if err := stdwebhook.Verify(h, body, time.Now(), 5*time.Minute, key); err != nil {
		t.Fatalf("the genuine sample does not verify: %v", err)
	}
	tampered := bytes.Replace(body, []byte("burst"), []byte("bursT"), 1)
	if err := stdwebhook.Verify(h, tampered, time.Now(), 5*time.Minute, key); err == nil {
		t.Fatal("a tampered body verified")
	}
}
