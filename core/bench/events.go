package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/stdwebhook"
)

// eventsSection measures event delivery end to end: events committed to
// the outbox, read by the dispatcher, handed to the webhook sink plugin (a
// real subprocess, over gRPC) in batches, signed and POSTed to a receiver
// on loopback.
//
//   - throughput: a burst of events committed at once, timed from the
//     first commit to the last arrival; beside it, the same path with
//     events.batch_size = 1 (one plugin call and one outcome transaction
//     per event, the per-event design), in the same run;
//   - latency: events committed one per transaction at a steady rate,
//     each timed from its commit to its arrival at the receiver.
func eventsSection(ctx context.Context, env *Env) ([]Result, error) {
	burst, perEvent, rate, dur := 20_000, 1_000, 500, 6*time.Second
	if env.Quick {
		burst, perEvent, rate, dur = 2_000, 200, 200, 2*time.Second
	}
	recv, err := newEventReceiver()
	if err != nil {
		return nil, err
	}
	defer recv.Close()
	secret, err := stdwebhook.NewSecret()
	if err != nil {
		return nil, err
	}
	sink := func(batch int) string {
		return fmt.Sprintf(`events {
  batch_size = %d
}
plugin "alerts" "hooks" {
  source = "webhook"
  config {
    url             = %q
    secret          = %q
    allow_private   = true
    max_concurrency = 16
  }
}
`, batch, recv.url, secret)
	}

	var rates, baseRates, p50s, p99s []float64
	for range env.Runs {
		r, err := eventThroughput(ctx, env, recv, sink(500), burst)
		if err != nil {
			return nil, err
		}
		rates = append(rates, r)
		if r, err = eventThroughput(ctx, env, recv, sink(1), perEvent); err != nil {
			return nil, err
		}
		baseRates = append(baseRates, r)
		p50, p99, err := eventLatency(ctx, env, recv, sink(500), rate, dur)
		if err != nil {
			return nil, err
		}
		p50s, p99s = append(p50s, p50), append(p99s, p99)
	}
	ours, base := median(rates), median(baseRates)
	return []Result{
		{Metric: fmt.Sprintf("events delivered end to end, burst of %s: outbox → dispatcher → webhook plugin → receiver", commas(int64(burst))),
			Value: ours, Unit: "/s", Compare: fmt.Sprintf("one plugin call and one transaction per event: %.0f/s (%.1f×)", base, ours/base),
			Target: "≥ 5,000/s"},
		{Metric: fmt.Sprintf("event commit → delivery at %d/s, p50", rate), Value: median(p50s), Unit: "ms"},
		{Metric: fmt.Sprintf("event commit → delivery at %d/s, p99", rate), Value: median(p99s), Unit: "ms",
			Compare: "Coolify: 5 tries 10 s apart, unsigned; Dokploy: one try", Target: "≤ 100 ms"},
	}, nil
}

// eventThroughput starts a core with cfg, commits n events in
// transactions of 1,000 and returns events per second from the first
// commit to the last arrival.
func eventThroughput(ctx context.Context, env *Env, recv *eventReceiver, cfg string, n int) (float64, error) {
	c, err := env.startCore(ctx, coreOptions{extra: cfg})
	if err != nil {
		return 0, err
	}
	defer c.stop()
	st := c.store()
	recv.reset()
	start := time.Now()
	for done := 0; done < n; {
		k := min(1000, n-done)
		evs := make([]event.Event, k)
		for i := range evs {
			evs[i] = event.Event{Type: event.AppCPU, UserID: 1, AppID: int64(done + i + 1),
				Data: []byte(`{"app_name":"bench","value":97.5,"threshold":90}`)}
		}
		if err := emitEvents(ctx, st, evs); err != nil {
			return 0, err
		}
		done += k
	}
	if err := waitFor(ctx, 5*time.Minute, func() bool { return recv.count() >= n }); err != nil {
		return 0, fmt.Errorf("events: %d of %d delivered: %w", recv.count(), n, err)
	}
	return float64(n) / recv.last().Sub(start).Seconds(), nil
}

// eventLatency commits one event per transaction at rate per second for
// d and returns the p50 and p99 of commit → arrival in milliseconds.
func eventLatency(ctx context.Context, env *Env, recv *eventReceiver, cfg string, rate int, d time.Duration) (p50, p99 float64, err error) {
	c, err := env.startCore(ctx, coreOptions{extra: cfg})
	if err != nil {
		return 0, 0, err
	}
	defer c.stop()
	st := c.store()
	recv.reset()
	// Warm up: the plugin's connection to the receiver, the pool.
	if err := emitEvents(ctx, st, []event.Event{{Type: event.AppCPU}}); err != nil {
		return 0, 0, err
	}
	if err := waitFor(ctx, time.Minute, func() bool { return recv.count() == 1 }); err != nil {
		return 0, 0, fmt.Errorf("events: warm-up event not delivered: %w", err)
	}
	recv.reset()
	committed := map[string]time.Time{}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	n := int(d.Seconds() * float64(rate))
	for range n {
		<-tick.C
		ev := []event.Event{{Type: event.DeploymentSucceeded, UserID: 1, AppID: 1, Data: []byte(`{"app_name":"bench"}`)}}
		if err := emitEvents(ctx, st, ev); err != nil {
			return 0, 0, err
		}
		committed[ev[0].ID] = time.Now()
	}
	if err := waitFor(ctx, time.Minute, func() bool { return recv.count() >= n }); err != nil {
		return 0, 0, fmt.Errorf("events: %d of %d delivered: %w", recv.count(), n, err)
	}
	arrived := recv.arrivals()
	lat := make([]float64, 0, n)
	for id, at := range committed {
		a, ok := arrived[id]
		if !ok {
			return 0, 0, fmt.Errorf("events: event %s never arrived", id)
		}
		lat = append(lat, ms(max(a.Sub(at), 0)))
	}
	sort.Float64s(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], nil
}

func emitEvents(ctx context.Context, st *store.Store, evs []event.Event) error {
	return pgx.BeginFunc(ctx, st.Pool(), func(tx pgx.Tx) error { return store.EmitEvents(ctx, tx, evs) })
}

// eventReceiver is the webhook endpoint: it notes when each webhook-id
// first arrived and answers 204.
type eventReceiver struct {
	url string
	srv *http.Server

	mu     sync.Mutex
	at     map[string]time.Time
	latest time.Time
}

func newEventReceiver() (*eventReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("events: receiver: %w", err)
	}
	r := &eventReceiver{url: "http://" + ln.Addr().String() + "/hook", at: map[string]time.Time{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *eventReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	if _, dup := r.at[id]; !dup {
		r.at[id] = now
		r.latest = now
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *eventReceiver) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at, r.latest = map[string]time.Time{}, time.Time{}
}

func (r *eventReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.at)
}

func (r *eventReceiver) last() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest
}

func (r *eventReceiver) arrivals() map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.at
}

func (r *eventReceiver) Close() { _ = r.srv.Close() }
