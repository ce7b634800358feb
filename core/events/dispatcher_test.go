package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
	"github.com/wisehosting/wisehosting/core/events"
	"github.com/wisehosting/wisehosting/core/pluginhost"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/mock"
	"github.com/wisehosting/wisehosting/sdk/outbound/outboundtest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/stdwebhook"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const (
	delivered = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED
	retry     = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_RETRY
	failed    = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED
)

// recorder is a sink that records every event it is given and answers
// with answer (nil: delivered).
type recorder struct {
	mu     sync.Mutex
	calls  int
	events []*pluginv1.Event
	answer func(e *pluginv1.Event) (*pluginv1.DeliveryResult, error)
}

func (r *recorder) sink(name string, patterns ...string) pluginhost.AlertSink {
	return pluginhost.AlertSink{Name: name, Events: patterns, AlertSink: &mock.AlertSink{
		DeliverFunc: func(_ context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.calls++
			resp := &pluginv1.DeliverResponse{}
			for _, e := range req.GetEvents() {
				r.events = append(r.events, e)
				res := &pluginv1.DeliveryResult{EventId: e.GetId(), Outcome: delivered}
				if r.answer != nil {
					var err error
					if res, err = r.answer(e); err != nil {
						return nil, err
					}
				}
				if res != nil {
					resp.Results = append(resp.Results, res)
				}
			}
			return resp, nil
		},
	}}
}

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.GetType())
	}
	slices.Sort(out)
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *recorder) attempts() []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int32
	for _, e := range r.events {
		out = append(out, e.GetAttempt())
	}
	return out
}

func (r *recorder) setAnswer(f func(e *pluginv1.Event) (*pluginv1.DeliveryResult, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = f
}

func emit(t *testing.T, st *store.Store, evs ...event.Event) []event.Event {
	t.Helper()
	err := pgx.BeginFunc(t.Context(), st.Pool(), func(tx pgx.Tx) error {
		return store.EmitEvents(t.Context(), tx, evs)
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// start runs a dispatcher until the test ends.
func start(t *testing.T, o events.Options) *events.Dispatcher {
	t.Helper()
	if o.Poll == 0 {
		o.Poll = 20 * time.Millisecond
	}
	if o.LockRetry == 0 {
		o.LockRetry = 50 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = testutil.Logger(t)
	}
	if o.Jitter == nil {
		o.Jitter = func() float64 { return 1 }
	}
	d, err := events.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return d
}

type outboxRow struct {
	status   string
	attempts int
	lastErr  string
}

func outbox(t *testing.T, st *store.Store, id string) outboxRow {
	t.Helper()
	var r outboxRow
	err := st.Pool().QueryRow(t.Context(), `SELECT status, attempts, last_error FROM event_outbox WHERE event_id = $1`, id).
		Scan(&r.status, &r.attempts, &r.lastErr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type retryRow struct {
	target   string
	attempts int
	next     time.Time
	lastErr  string
}

func retries(t *testing.T, st *store.Store, id string) []retryRow {
	t.Helper()
	rows, err := st.Pool().Query(t.Context(), `
		SELECT r.target, r.attempts, r.next_attempt_at, r.last_error FROM event_retries r
		JOIN event_outbox o ON o.id = r.outbox_id WHERE o.event_id = $1 ORDER BY r.target`, id)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (retryRow, error) {
		var r retryRow
		return r, row.Scan(&r.target, &r.attempts, &r.next, &r.lastErr)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFanOutByPattern(t *testing.T) {
	st := storetest.New(t)
	var apps, deploys, all recorder
	evs := emit(t, st,
		event.Event{Type: event.AppCPU, AppID: 7, Data: []byte(`{"app_name":"shop","value":97}`)},
		event.Event{Type: event.DeploymentFailed, AppID: 7},
		event.Event{Type: event.AccountLoginNewDevice, UserID: 3},
		event.Event{Type: event.AppCPUResolved, AppID: 7},
	)
	start(t, events.Options{Store: st, Sinks: []pluginhost.AlertSink{
		apps.sink("apps", "app.*"), deploys.sink("deploys", "deployment.*"), all.sink("all"),
	}})
	testutil.WaitFor(t, 10*time.Second, "every sink served", func() bool {
		return all.count() == 4 && apps.count() == 2 && deploys.count() == 1
	})
	for _, tt := range []struct {
		name string
		r    *recorder
		want []string
	}{
		{"apps", &apps, []string{"app.cpu", "app.cpu.resolved"}},
		{"deploys", &deploys, []string{"deployment.failed"}},
		{"all", &all, []string{"account.login_new_device", "app.cpu", "app.cpu.resolved", "deployment.failed"}},
	} {
		if got := tt.r.types(); !slices.Equal(got, tt.want) {
			t.Errorf("%s got %v, want %v", tt.name, got, tt.want)
		}
	}
	// One call per sink: the pass batches.
	if all.calls != 1 {
		t.Errorf("the catch-all sink got %d calls for 4 events, want 1", all.calls)
	}
	all.mu.Lock()
	first := all.events[0]
	all.mu.Unlock()
	if first.GetAttempt() != 1 || first.GetTimeUnixNano() == 0 {
		t.Errorf("event %v: want attempt 1 and a time", first)
	}
	for _, e := range evs {
		testutil.WaitFor(t, 5*time.Second, "the outbox row delivered", func() bool { return outbox(t, st, e.ID).status == "delivered" })
		if r := retries(t, st, e.ID); len(r) != 0 {
			t.Errorf("%s: retry rows %v", e.Type, r)
		}
	}
	var cpu *pluginv1.Event
	apps.mu.Lock()
	for _, e := range apps.events {
		if e.GetType() == event.AppCPU {
			cpu = e
		}
	}
	apps.mu.Unlock()
	if cpu.GetId() != evs[0].ID || cpu.GetAppId() != 7 || string(cpu.GetDataJson()) != `{"value": 97, "app_name": "shop"}` {
		t.Errorf("app.cpu as delivered: %v", cpu)
	}
}

func TestRetryScheduleHonoursRetryAfter(t *testing.T) {
	st := storetest.New(t)
	clk := testutil.NewClock(time.Now())
	var r recorder
	r.answer = func(e *pluginv1.Event) (*pluginv1.DeliveryResult, error) {
		return &pluginv1.DeliveryResult{EventId: e.GetId(), Outcome: retry, Message: "busy"}, nil
	}
	ev := emit(t, st, event.Event{Type: event.AppOffline, AppID: 1})[0]
	start(t, events.Options{Store: st, Sinks: []pluginhost.AlertSink{r.sink("ops")}, Now: clk.Now})

	// The first attempt fails: the next is in 5 s.
	testutil.WaitFor(t, 10*time.Second, "a retry row", func() bool { return len(retries(t, st, ev.ID)) == 1 })
	rr := retries(t, st, ev.ID)[0]
	if rr.target != "sink:ops" || rr.attempts != 1 || rr.lastErr != "busy" || !rr.next.Equal(clk.Now().Add(5*time.Second).Truncate(time.Microsecond)) {
		t.Fatalf("retry row %+v, want sink:ops, 1 attempt, busy, due at %v", rr, clk.Now().Add(5*time.Second))
	}
	if o := outbox(t, st, ev.ID); o.status != "retrying" {
		t.Fatalf("outbox %+v, want retrying", o)
	}
	time.Sleep(100 * time.Millisecond) // polls come and go: not due yet
	if n := r.count(); n != 1 {
		t.Fatalf("%d attempts before the retry was due", n)
	}

	// The second attempt asks for 10 minutes, longer than the schedule's 5.
	r.setAnswer(func(e *pluginv1.Event) (*pluginv1.DeliveryResult, error) {
		return &pluginv1.DeliveryResult{EventId: e.GetId(), Outcome: retry, RetryAfterMs: (10 * time.Minute).Milliseconds(), Message: "429"}, nil
	})
	clk.Advance(5 * time.Second)
	testutil.WaitFor(t, 10*time.Second, "the second attempt", func() bool {
		rs := retries(t, st, ev.ID)
		return len(rs) == 1 && rs[0].attempts == 2
	})
	rr = retries(t, st, ev.ID)[0]
	if want := clk.Now().Add(10 * time.Minute).Truncate(time.Microsecond); !rr.next.Equal(want) {
		t.Fatalf("next attempt at %v, want %v (Retry-After beats the schedule)", rr.next, want)
	}

	// The third attempt succeeds.
	r.setAnswer(nil)
	clk.Advance(10 * time.Minute)
	testutil.WaitFor(t, 10*time.Second, "delivered", func() bool { return outbox(t, st, ev.ID).status == "delivered" })
	if rs := retries(t, st, ev.ID); len(rs) != 0 {
		t.Fatalf("retry rows left: %+v", rs)
	}
	if got := r.attempts(); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("attempt numbers %v, want 1 2 3", got)
	}
	if o := outbox(t, st, ev.ID); o.attempts != 3 {
		t.Fatalf("outbox attempts %d, want 3", o.attempts)
	}
}

func TestFailedAndTooOldAreDead(t *testing.T) {
	st := storetest.New(t)
	var r recorder
	r.answer = func(e *pluginv1.Event) (*pluginv1.DeliveryResult, error) {
		if e.GetType() == event.AppStopped {
			return &pluginv1.DeliveryResult{EventId: e.GetId(), Outcome: failed, Message: "410 Gone"}, nil
		}
		return &pluginv1.DeliveryResult{EventId: e.GetId(), Outcome: retry, Message: "503"}, nil
	}
	var ok recorder
	evs := emit(t, st,
		event.Event{Type: event.AppStopped, AppID: 1},
		// Written an hour ago with a max age of an hour: no time left.
		event.Event{Type: event.AppCrashloop, AppID: 1, Time: time.Now().Add(-time.Hour)},
	)
	start(t, events.Options{Store: st, Sinks: []pluginhost.AlertSink{r.sink("flaky"), ok.sink("fine")}, MaxAge: time.Hour})
	for _, e := range evs {
		testutil.WaitFor(t, 10*time.Second, e.Type+" dead", func() bool { return outbox(t, st, e.ID).status == "dead" })
		if rs := retries(t, st, e.ID); len(rs) != 0 {
			t.Errorf("%s: retry rows %+v", e.Type, rs)
		}
	}
	if o := outbox(t, st, evs[0].ID); o.lastErr != "sink:flaky: 410 Gone" {
		t.Errorf("failed: last_error %q", o.lastErr)
	}
	if o := outbox(t, st, evs[1].ID); o.lastErr != "sink:flaky: gave up after 1 attempts (events.max_age 1h0m0s): 503" {
		t.Errorf("too old: last_error %q", o.lastErr)
	}
	if ok.count() != 2 {
		t.Errorf("the healthy sink got %d events, want both", ok.count())
	}
}

func TestSinkCrashIsRetried(t *testing.T) {
	st := storetest.New(t)
	clk := testutil.NewClock(time.Now())
	var r recorder
	r.answer = func(*pluginv1.Event) (*pluginv1.DeliveryResult, error) {
		return nil, errors.New("plugin alerts.ops is unavailable: restarting")
	}
	var silent recorder // answers nothing at all
	silent.answer = func(*pluginv1.Event) (*pluginv1.DeliveryResult, error) { return nil, nil }
	ev := emit(t, st, event.Event{Type: event.DeploymentSucceeded, AppID: 2})[0]
	start(t, events.Options{Store: st, Sinks: []pluginhost.AlertSink{r.sink("ops"), silent.sink("mute")}, Now: clk.Now})
	testutil.WaitFor(t, 10*time.Second, "two retry rows", func() bool { return len(retries(t, st, ev.ID)) == 2 })
	rs := retries(t, st, ev.ID)
	if rs[0].target != "sink:mute" || rs[0].lastErr != "the sink returned no result for the event" {
		t.Errorf("mute: %+v", rs[0])
	}
	if rs[1].target != "sink:ops" || rs[1].lastErr != "the sink call failed: plugin alerts.ops is unavailable: restarting" {
		t.Errorf("ops: %+v", rs[1])
	}
	r.setAnswer(nil)
	silent.setAnswer(nil)
	clk.Advance(5 * time.Second)
	testutil.WaitFor(t, 10*time.Second, "delivered", func() bool { return outbox(t, st, ev.ID).status == "delivered" })
}

// TestOneDispatcherPerCluster: two cores' dispatchers share a database;
// every event is delivered once, by the one holding the lock, and the
// other takes over when it stops.
func TestOneDispatcherPerCluster(t *testing.T) {
	st := storetest.New(t)
	var r recorder
	seen := map[string]int{}
	r.answer = func(e *pluginv1.Event) (*pluginv1.DeliveryResult, error) {
		seen[e.GetId()]++ // under r.mu
		return &pluginv1.DeliveryResult{EventId: e.GetId(), Outcome: delivered}, nil
	}
	sinks := []pluginhost.AlertSink{r.sink("ops")}
	ctx1, stop1 := context.WithCancel(context.Background())
	d1, err := events.New(events.Options{Store: st, Sinks: sinks, Poll: 20 * time.Millisecond, LockRetry: 50 * time.Millisecond, BatchSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	done1 := make(chan struct{})
	go func() { defer close(done1); d1.Run(ctx1) }()
	t.Cleanup(func() { stop1(); <-done1 })
	start(t, events.Options{Store: st, Sinks: sinks, BatchSize: 50})

	emitMany := func(n int) {
		for i := 0; i < n; i += 25 {
			evs := make([]event.Event, 25)
			for j := range evs {
				evs[j] = event.Event{Type: event.AppCPU, AppID: int64(i + j)}
			}
			emit(t, st, evs...)
		}
	}
	emitMany(300)
	testutil.WaitFor(t, 20*time.Second, "300 events delivered", func() bool { return r.count() >= 300 })
	stop1()
	<-done1
	emitMany(300)
	testutil.WaitFor(t, 20*time.Second, "600 events delivered", func() bool { return r.count() >= 600 })
	time.Sleep(200 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(seen) != 600 || len(r.events) != 600 {
		t.Fatalf("%d deliveries of %d distinct events, want 600 of 600", len(r.events), len(seen))
	}
}

// TestStopMidPassLosesNothing: a core stops while a sink is busy with a
// pass; what the sink took is recorded, what it did not is sent again by
// the next dispatcher, and nothing is lost.
func TestStopMidPassLosesNothing(t *testing.T) {
	st := storetest.New(t)
	release := make(chan struct{})
	var mu sync.Mutex
	got := map[string]int{}
	slow := pluginhost.AlertSink{Name: "slow", AlertSink: &mock.AlertSink{
		DeliverFunc: func(ctx context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
			resp := &pluginv1.DeliverResponse{}
			for i, e := range req.GetEvents() {
				if i == len(req.GetEvents())/2 {
					select { // half way through, the core stops
					case <-release:
					case <-ctx.Done():
					}
				}
				if ctx.Err() != nil {
					resp.Results = append(resp.Results, &pluginv1.DeliveryResult{EventId: e.GetId(), Outcome: retry, Message: "cancelled"})
					continue
				}
				mu.Lock()
				got[e.GetId()]++
				mu.Unlock()
				resp.Results = append(resp.Results, &pluginv1.DeliveryResult{EventId: e.GetId(), Outcome: delivered})
			}
			return resp, nil
		},
	}}
	evs := make([]event.Event, 100)
	for i := range evs {
		evs[i] = event.Event{Type: event.AppMemory, AppID: int64(i)}
	}
	emit(t, st, evs...)
	d, err := events.New(events.Options{Store: st, Sinks: []pluginhost.AlertSink{slow}, Poll: 20 * time.Millisecond,
		LockRetry: 50 * time.Millisecond, Drain: 50 * time.Millisecond, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	testutil.WaitFor(t, 10*time.Second, "half delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 50
	})
	cancel() // the drain runs out while the sink still waits
	<-done
	close(release)
	var retrying int
	if err := st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM event_retries`).Scan(&retrying); err != nil {
		t.Fatal(err)
	}
	if retrying != 50 {
		t.Fatalf("%d retry rows after the stop, want the 50 the sink did not take", retrying)
	}
	clk := testutil.NewClock(time.Now().Add(6 * time.Second))
	start(t, events.Options{Store: st, Sinks: []pluginhost.AlertSink{slow}, Now: clk.Now})
	testutil.WaitFor(t, 10*time.Second, "every event delivered", func() bool {
		var n int
		_ = st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM event_outbox WHERE status = 'delivered'`).Scan(&n)
		return n == 100
	})
	mu.Lock()
	defer mu.Unlock()
	for _, e := range evs {
		if got[e.ID] != 1 {
			t.Errorf("event %s delivered %d times", e.ID, got[e.ID])
		}
	}
}

func TestPrune(t *testing.T) {
	st := storetest.New(t)
	ctx := t.Context()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := st.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	u, err := st.CreateUser(ctx, store.NewUser{Email: "prune@example.com", Name: "P"})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-40 * 24 * time.Hour)
	exec(`INSERT INTO event_outbox (type, status, created_at) VALUES
		('app.cpu', 'delivered', $1), ('app.cpu', 'dead', $1), ('app.cpu', 'pending', $1),
		('app.cpu', 'retrying', $1), ('app.cpu', 'delivered', now())`, old)
	exec(`INSERT INTO event_retries (outbox_id, target, attempts, next_attempt_at)
		SELECT id, 'sink:ops', 1, now() FROM event_outbox WHERE status = 'retrying'`)
	var hook int64
	if err := st.Pool().QueryRow(ctx, `INSERT INTO webhooks (user_id, url, secret) VALUES ($1, 'https://h.example/x', 's') RETURNING id`, u.ID).Scan(&hook); err != nil {
		t.Fatal(err)
	}
	exec(`INSERT INTO webhook_deliveries (webhook_id, event_id, event, created_at) VALUES ($1, 'a', 'app.cpu', $2), ($1, 'b', 'app.cpu', now())`, hook, old)
	exec(`INSERT INTO audit_events (user_id, kind, created_at) VALUES ($1, 'login', $2), ($1, 'login', now())`, u.ID, old)

	d, err := events.New(events.Options{Store: st, Retention: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ran, err := d.Prune(ctx)
	if err != nil || !ran {
		t.Fatalf("prune: ran %v, %v", ran, err)
	}
	for _, c := range []struct {
		sql  string
		want string
	}{
		{`SELECT string_agg(status, ',' ORDER BY id) FROM event_outbox`, "pending,retrying,delivered"},
		{`SELECT string_agg(event_id, ',') FROM webhook_deliveries`, "b"},
		{`SELECT count(*)::text FROM audit_events`, "1"},
	} {
		var got string
		if err := st.Pool().QueryRow(ctx, c.sql).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s = %q, want %q", c.sql, got, c.want)
		}
	}
}

func ExampleDefaultSchedule() {
	fmt.Println(events.DefaultSchedule())
	// Output: [5s 5m0s 30m0s 2h0m0s 5h0m0s 10h0m0s]
}

// hookServer is a user's endpoint on loopback verifying signatures with
// key (sdk/outbound/outboundtest).
type hookServer struct {
	*outboundtest.Receiver
	url string
}

func newHookServer(t *testing.T, key stdwebhook.Secret) *hookServer {
	rc := outboundtest.Start(t, func(r *http.Request, body []byte) error {
		return stdwebhook.Verify(r.Header, body, time.Now(), time.Minute, key)
	})
	return &hookServer{Receiver: rc, url: rc.URL + "/hook"}
}

// answer makes the endpoint answer status (503 with Retry-After: 60).
func (h *hookServer) answer(status int) {
	hdr := map[string]string{}
	if status == http.StatusServiceUnavailable {
		hdr["Retry-After"] = "60"
	}
	h.SetRespond(outboundtest.Reply(status, hdr, ""))
}

// received returns the types of the verified deliveries and how many
// failed verification.
func (h *hookServer) received() ([]string, int) {
	var types []string
	for _, r := range h.Requests() {
		var ev struct{ Type string }
		_ = json.Unmarshal(r.Body, &ev)
		types = append(types, ev.Type)
	}
	return types, len(h.Rejected())
}

type hookRow struct {
	active        bool
	reason        string
	total, failed int
	lastStatus    *int
	deliveries    []string // "event attempt status success error"
}

func hookState(t *testing.T, st *store.Store, id int64) hookRow {
	t.Helper()
	var h hookRow
	if err := st.Pool().QueryRow(t.Context(), `SELECT active, disabled_reason, total_deliveries, failed_deliveries, last_status_code
		FROM webhooks WHERE id = $1`, id).Scan(&h.active, &h.reason, &h.total, &h.failed, &h.lastStatus); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Pool().Query(t.Context(), `SELECT event || ' ' || attempt || ' ' || coalesce(status_code::text, '-') || ' ' || success || ' ' || error
		FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.deliveries, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestUsersWebhooks: an event reaches its owner's webhooks subscribed to
// it (signed with each webhook's own secret), not other users'; every
// attempt is recorded with the webhook's counters; 503 is retried with
// its Retry-After; 410 disables the webhook; a private address is refused
// unless allowed.
func TestUsersWebhooks(t *testing.T) {
	st := storetest.New(t)
	ctx := t.Context()
	cipher := storetest.Cipher(t)
	newUser := func(email string) int64 {
		u, err := st.CreateUser(ctx, store.NewUser{Email: email, Name: email})
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	alice, bob := newUser("alice@example.com"), newUser("bob@example.com")
	newHook := func(user int64, url string, patterns ...string) (int64, stdwebhook.Secret) {
		raw, err := stdwebhook.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		enc, err := cipher.Encrypt(raw)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := stdwebhook.ParseSecret(raw)
		var id int64
		if err := st.Pool().QueryRow(ctx, `INSERT INTO webhooks (user_id, url, secret, events) VALUES ($1, $2, $3, $4) RETURNING id`,
			user, url, enc, append([]string{}, patterns...)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id, key
	}
	// Each endpoint needs its key before the webhook exists: make the key
	// first through a placeholder row, then point the row at the server.
	mk := func(user int64, patterns ...string) (int64, *hookServer) {
		id, key := newHook(user, "https://placeholder.example/x", patterns...)
		h := newHookServer(t, key)
		if _, err := st.Pool().Exec(ctx, `UPDATE webhooks SET url = $2 WHERE id = $1`, id, h.url); err != nil {
			t.Fatal(err)
		}
		return id, h
	}
	deploysID, deploys := mk(alice, "deployment.*")
	allID, all := mk(alice)
	goneID, gone := mk(alice, "app.*")
	gone.answer(http.StatusGone)
	bobID, bobHook := mk(bob)
	clk := testutil.NewClock(time.Now())
	start(t, events.Options{Store: st, Now: clk.Now,
		Webhooks: events.NewWebhooks(cipher, stdwebhook.ClientOptions{Timeout: 5 * time.Second, AllowPrivate: true})})

	evs := emit(t, st,
		event.Event{Type: event.DeploymentSucceeded, UserID: alice, AppID: 1},
		event.Event{Type: event.AppCPU, UserID: alice, AppID: 1},
	)
	// The deployment reaches both of alice's hooks that want it; the CPU
	// alert is refused for good by the 410 hook, so it is dead for that one.
	testutil.WaitFor(t, 10*time.Second, "delivered", func() bool { return outbox(t, st, evs[0].ID).status == "delivered" })
	testutil.WaitFor(t, 10*time.Second, "dead", func() bool { return outbox(t, st, evs[1].ID).status == "dead" })
	if got, bad := deploys.received(); !slices.Equal(got, []string{"deployment.succeeded"}) || bad != 0 {
		t.Errorf("deployment.* hook got %v (%d bad)", got, bad)
	}
	if got, bad := all.received(); len(got) != 2 || bad != 0 {
		t.Errorf("catch-all hook got %v (%d bad)", got, bad)
	}
	if got, _ := bobHook.received(); len(got) != 0 {
		t.Errorf("bob's hook got alice's events: %v", got)
	}
	if h := hookState(t, st, allID); h.total != 2 || h.failed != 0 || *h.lastStatus != 204 || len(h.deliveries) != 2 ||
		!slices.Contains(h.deliveries, "deployment.succeeded 1 204 true ") || !slices.Contains(h.deliveries, "app.cpu 1 204 true ") {
		t.Errorf("catch-all hook state %+v", h)
	}
	if h := hookState(t, st, goneID); h.active || !strings.Contains(h.reason, "410 Gone") || h.total != 1 || h.failed != 1 ||
		len(h.deliveries) != 1 || !strings.HasPrefix(h.deliveries[0], "app.cpu 1 410 false") {
		t.Errorf("410 hook state %+v", h)
	}
	if h := hookState(t, st, bobID); h.total != 0 {
		t.Errorf("bob's hook state %+v", h)
	}
	if o := outbox(t, st, evs[1].ID); !strings.HasPrefix(o.lastErr, fmt.Sprintf("webhook:%d: the endpoint answered 410 Gone", goneID)) {
		t.Errorf("app.cpu outbox %+v", o)
	}

	// 503 with Retry-After: 60 is retried no sooner than a minute later.
	deploys.answer(http.StatusServiceUnavailable)
	ev := emit(t, st, event.Event{Type: event.DeploymentFailed, UserID: alice, AppID: 1})[0]
	testutil.WaitFor(t, 10*time.Second, "a retry row", func() bool { return len(retries(t, st, ev.ID)) == 1 })
	rr := retries(t, st, ev.ID)[0]
	if rr.target != fmt.Sprintf("webhook:%d", deploysID) || !rr.next.Equal(clk.Now().Add(time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("retry %+v, want webhook:%d a minute from now", rr, deploysID)
	}
	deploys.answer(http.StatusOK)
	clk.Advance(time.Minute)
	testutil.WaitFor(t, 10*time.Second, "delivered on retry", func() bool { return outbox(t, st, ev.ID).status == "delivered" })
	if h := hookState(t, st, deploysID); len(h.deliveries) != 3 || !strings.HasPrefix(h.deliveries[1], "deployment.failed 1 503 false") ||
		!strings.HasPrefix(h.deliveries[2], "deployment.failed 2 200 true") || h.failed != 1 || h.total != 3 {
		t.Errorf("retried hook state %+v", h)
	}
}

// TestUsersWebhooksPrivateRefused: without allow_private_targets a user's
// webhook at a loopback address is refused at connect time, recorded, and
// not retried.
func TestUsersWebhooksPrivateRefused(t *testing.T) {
	st := storetest.New(t)
	ctx := t.Context()
	cipher := storetest.Cipher(t)
	u, err := st.CreateUser(ctx, store.NewUser{Email: "p@example.com", Name: "P"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := stdwebhook.NewSecret()
	key, _ := stdwebhook.ParseSecret(raw)
	h := newHookServer(t, key)
	enc, _ := cipher.Encrypt(raw)
	var id int64
	// A host name, so the URL check passes and the dial-time guard acts.
	url := strings.Replace(h.url, "127.0.0.1", "localhost", 1)
	if err := st.Pool().QueryRow(ctx, `INSERT INTO webhooks (user_id, url, secret) VALUES ($1, $2, $3) RETURNING id`, u.ID, url, enc).Scan(&id); err != nil {
		t.Fatal(err)
	}
	start(t, events.Options{Store: st, Webhooks: events.NewWebhooks(cipher, stdwebhook.ClientOptions{Timeout: 5 * time.Second})})
	ev := emit(t, st, event.Event{Type: event.AppStopped, UserID: u.ID})[0]
	testutil.WaitFor(t, 10*time.Second, "dead", func() bool { return outbox(t, st, ev.ID).status == "dead" })
	if got, _ := h.received(); len(got) != 0 {
		t.Fatalf("the loopback endpoint was reached: %v", got)
	}
	s := hookState(t, st, id)
	if len(s.deliveries) != 1 || !strings.Contains(s.deliveries[0], "loopback") || !strings.Contains(s.deliveries[0], "security.allow_private_targets") {
		t.Fatalf("delivery records %q", s.deliveries)
	}
}
