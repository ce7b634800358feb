package alerts_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/alerts"
	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
	"github.com/wisehosting/wisehosting/core/hub"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/workerauth"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// fakeStats is the hub's live statistics, set by the test.
type fakeStats struct {
	mu sync.Mutex
	m  map[int64]hub.AppStats
}

func (f *fakeStats) AppStatsLive(appID int64) (hub.AppStats, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.m[appID]
	return s, ok
}

func (f *fakeStats) set(appID int64, s hub.AppStats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[appID] = s
}

func (f *fakeStats) drop(appID int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, appID)
}

type fixture struct {
	st     *store.Store
	stats  *fakeStats
	clock  *testutil.Clock
	poller *alerts.Poller
	app    *store.App
	worker *store.Worker
	// silent stops tick from recording the worker's heartbeats.
	silent bool
}

// newFixture: one running app on one worker with the default rules, a
// poller over fake statistics and a fake clock.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{st: storetest.New(t), stats: &fakeStats{m: map[int64]hub.AppStats{}}, clock: testutil.NewClock(time.Now())}
	minted, err := workerauth.Mint(storetest.Cipher(t))
	if err != nil {
		t.Fatal(err)
	}
	if f.worker, err = f.st.CreateWorker(ctx, store.NewWorker{Name: "w1", Address: "10.0.0.1", Creds: minted.Creds}); err != nil {
		t.Fatal(err)
	}
	u, err := f.st.CreateUser(ctx, store.NewUser{Email: "alerts@example.com", Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	if f.app, err = f.st.CreateApp(ctx, store.NewApp{UserID: u.ID, Name: "alert-app"}); err != nil {
		t.Fatal(err)
	}
	f.exec(t, `UPDATE apps SET status = 'running', worker_id = $2 WHERE id = $1`, f.app.ID, f.worker.ID)
	f.exec(t, `UPDATE workers SET last_heartbeat = now() WHERE id = $1`, f.worker.ID)
	// CreateApp gave the app the default rules.
	f.poller, err = alerts.NewPoller(alerts.PollerOptions{Targets: f.st, Stats: f.stats, Manager: alerts.NewManager(f.st),
		Now: f.clock.Now, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := f.st.Pool().Exec(t.Context(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// heartbeat records a heartbeat of the worker at the fake clock's now.
func (f *fixture) heartbeat(t *testing.T) {
	t.Helper()
	f.exec(t, `UPDATE workers SET last_heartbeat = $2 WHERE id = $1`, f.worker.ID, f.clock.Now())
}

// tick advances the clock by d and polls; unless the worker is silent, it
// heartbeats just before.
func (f *fixture) tick(t *testing.T, d time.Duration) {
	t.Helper()
	f.clock.Advance(d)
	if !f.silent {
		f.heartbeat(t)
	}
	if err := f.poller.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) cpu(pct float64) {
	f.stats.set(f.app.ID, hub.AppStats{WorkerID: f.worker.ID, CPUPercent: pct, MemBytes: 10 << 20, MemLimit: 512 << 20, UpdatedAt: f.clock.Now()})
}

// counts returns the number of alerts of kind (open, resolved) and of
// outbox events of each type.
func (f *fixture) counts(t *testing.T, kind string) (open, resolved int, events map[string]int) {
	t.Helper()
	ctx := t.Context()
	if err := f.st.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE status <> 'resolved'), count(*) FILTER (WHERE status = 'resolved')
		FROM alerts WHERE app_id = $1 AND kind = $2`, f.app.ID, kind).Scan(&open, &resolved); err != nil {
		t.Fatal(err)
	}
	rows, err := f.st.Pool().Query(ctx, `SELECT type, count(*) FROM event_outbox WHERE app_id = $1 GROUP BY type`, f.app.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	events = map[string]int{}
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			t.Fatal(err)
		}
		events[typ] = n
	}
	return open, resolved, events
}

func (f *fixture) expect(t *testing.T, when string, open, resolved, fired, cleared int) {
	t.Helper()
	o, r, ev := f.counts(t, store.RuleCPU)
	if o != open || r != resolved || ev["app.cpu"] != fired || ev["app.cpu.resolved"] != cleared {
		t.Fatalf("%s: %d open, %d resolved cpu alerts, events %v; want %d open, %d resolved, app.cpu %d, app.cpu.resolved %d",
			when, o, r, ev, open, resolved, fired, cleared)
	}
}

// The case: a spike shorter than the sustain window fires nothing;
// a sustained spike fires exactly one alert and one event however long it
// lasts; dropping below resolves it once, after the window, and a dip
// shorter than the window does not resolve it.
func TestSustainedSpikeFiresOnceAndResolvesOnce(t *testing.T) {
	f := newFixture(t)
	const step = 30 * time.Second // the poller's period
	f.cpu(20)
	f.tick(t, step)
	f.expect(t, "quiet", 0, 0, 0, 0)

	// 4 minutes over 90% (the default window is 5): nothing.
	f.cpu(97)
	for range 8 {
		f.tick(t, step)
	}
	f.cpu(40)
	f.tick(t, step)
	f.expect(t, "a 4-minute spike", 0, 0, 0, 0)

	// A sustained spike: it fires once the 5 minutes are up, once.
	f.cpu(99)
	f.tick(t, step) // the run starts here
	for range 9 {
		f.tick(t, step)
	}
	f.expect(t, "4.5 minutes into the spike", 0, 0, 0, 0)
	f.tick(t, step)
	f.expect(t, "5 minutes into the spike", 1, 0, 1, 0)
	for range 20 {
		f.tick(t, step)
	}
	f.expect(t, "15 minutes into the spike", 1, 0, 1, 0)

	// A dip shorter than the window does not resolve.
	f.cpu(10)
	for range 6 {
		f.tick(t, step)
	}
	f.cpu(95)
	f.tick(t, step)
	f.expect(t, "a 3-minute dip", 1, 0, 1, 0)

	// Under for the window: resolved once.
	f.cpu(10)
	for range 10 {
		f.tick(t, step)
	}
	f.expect(t, "4.5 minutes under", 1, 0, 1, 0)
	f.tick(t, step)
	f.expect(t, "5 minutes under", 0, 1, 1, 1)
	for range 20 {
		f.tick(t, step)
	}
	f.expect(t, "15 minutes under", 0, 1, 1, 1)

	// Another sustained spike is a new alert.
	f.cpu(99)
	for range 11 {
		f.tick(t, step)
	}
	f.expect(t, "a second spike", 1, 1, 2, 1)
	if _, _, ev := f.counts(t, store.RuleOffline); ev["app.offline"] != 0 {
		t.Errorf("a heartbeating worker's app went offline: %v", ev)
	}
}

// Two cores polling the same app (both see its statistics, as during a
// worker's reconnect to another core) open one alert and emit one event;
// a core restarted while an alert is open resolves it later.
func TestTwoCoresAndRestart(t *testing.T) {
	f := newFixture(t)
	second, err := alerts.NewPoller(alerts.PollerOptions{Targets: f.st, Stats: f.stats, Manager: alerts.NewManager(f.st), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.cpu(99)
	for range 11 {
		f.clock.Advance(30 * time.Second)
		var wg sync.WaitGroup
		for _, p := range []*alerts.Poller{f.poller, second} {
			wg.Go(func() {
				if err := p.Tick(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	f.expect(t, "two cores, sustained spike", 1, 0, 1, 0)

	// A new poller (a restarted core) knows the alert is open.
	restarted, err := alerts.NewPoller(alerts.PollerOptions{Targets: f.st, Stats: f.stats, Manager: alerts.NewManager(f.st), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.cpu(5)
	for range 11 {
		f.clock.Advance(30 * time.Second)
		if err := restarted.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	f.expect(t, "resolved by the restarted core", 0, 1, 1, 1)
}

// Statistics this core does not hold (another core's worker, or expired)
// are no evidence: nothing fires, and a firing rule stays firing.
func TestNoStatisticsNoChange(t *testing.T) {
	f := newFixture(t)
	f.cpu(99)
	for range 11 {
		f.tick(t, 30*time.Second)
	}
	f.expect(t, "fired", 1, 0, 1, 0)
	f.stats.drop(f.app.ID)
	for range 20 {
		f.tick(t, 30*time.Second)
	}
	f.expect(t, "without statistics", 1, 0, 1, 0)
}

// The offline rule fires once the worker has been silent for its window
// (2 minutes by default) and resolves as soon as it is heard from again.
func TestOffline(t *testing.T) {
	f := newFixture(t)
	f.silent = true
	f.exec(t, `UPDATE workers SET last_heartbeat = $2 WHERE id = $1`, f.worker.ID, f.clock.Now())
	f.tick(t, time.Minute)
	if o, _, _ := f.counts(t, store.RuleOffline); o != 0 {
		t.Fatal("offline after a minute of silence")
	}
	f.tick(t, 61*time.Second)
	o, _, ev := f.counts(t, store.RuleOffline)
	if o != 1 || ev["app.offline"] != 1 {
		t.Fatalf("after 2 minutes of silence: %d open, events %v", o, ev)
	}
	f.tick(t, time.Minute)
	f.exec(t, `UPDATE workers SET last_heartbeat = $2 WHERE id = $1`, f.worker.ID, f.clock.Now())
	f.tick(t, 10*time.Second)
	o, r, ev := f.counts(t, store.RuleOffline)
	if o != 0 || r != 1 || ev["app.offline"] != 1 || ev["app.offline.resolved"] != 1 {
		t.Fatalf("heard from again: %d open, %d resolved, events %v", o, r, ev)
	}
}

// Rules are per app and kind; an app is created with the defaults, and
// EnsureAlertRules adds missing ones while keeping an owner's changes.
func TestRules(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	rules, err := f.st.ListAppAlertRules(ctx, f.app.ID)
	if err != nil || len(rules) != len(store.DefaultAlertRules) {
		t.Fatalf("rules of a new app %v, %v", rules, err)
	}
	f.exec(t, `DELETE FROM app_alert_rules WHERE app_id = $1 AND kind = 'disk'`, f.app.ID)
	if _, err := f.st.UpsertAlertRule(ctx, store.AlertRule{AppID: f.app.ID, Kind: store.RuleCPU, Enabled: true, Threshold: 50, SustainMinutes: 1}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.EnsureAlertRules(ctx, []int64{f.app.ID}); err != nil {
		t.Fatal(err)
	}
	rules, _ = f.st.ListAppAlertRules(ctx, f.app.ID)
	if len(rules) != len(store.DefaultAlertRules) {
		t.Errorf("EnsureAlertRules did not restore the missing rule: %v", rules)
	}
	for _, r := range rules {
		if r.Kind == store.RuleCPU && (r.Threshold != 50 || r.SustainMinutes != 1) {
			t.Errorf("EnsureAlertRules overwrote the owner's rule: %+v", r)
		}
	}
	for _, bad := range []store.AlertRule{
		{AppID: f.app.ID, Kind: "gpu", Threshold: 1, SustainMinutes: 1},
		{AppID: f.app.ID, Kind: store.RuleCPU, Threshold: -1, SustainMinutes: 1},
		{AppID: f.app.ID, Kind: store.RuleCPU, Threshold: 1, SustainMinutes: 0},
		{AppID: f.app.ID, Kind: store.RuleCPU, Threshold: 1, SustainMinutes: 1441},
	} {
		if _, err := f.st.UpsertAlertRule(ctx, bad); err == nil {
			t.Errorf("UpsertAlertRule(%+v) accepted", bad)
		}
	}
	// A 1-minute window fires after a minute at 60%.
	f.cpu(60)
	f.tick(t, 30*time.Second)
	f.tick(t, 30*time.Second)
	f.tick(t, 30*time.Second)
	f.expect(t, "custom rule", 1, 0, 1, 0)
	// Disabled rules are not evaluated; the open alert stays until the
	// rule is back (no event for a rule nobody watches).
	if _, err := f.st.UpsertAlertRule(ctx, store.AlertRule{AppID: f.app.ID, Kind: store.RuleCPU, Enabled: false, Threshold: 50, SustainMinutes: 1}); err != nil {
		t.Fatal(err)
	}
	f.cpu(0)
	for range 5 {
		f.tick(t, 30*time.Second)
	}
	f.expect(t, "disabled rule", 1, 0, 1, 0)
}
