package domains_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/domains"
	"github.com/wisehosting/wisehosting/core/domains/dnstest"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
)

// checkerEnv is a store with one user and app, a DNS server and a Checker
// on a fake clock.
type checkerEnv struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	dns   *dnstest.Server
	clock *testutil.Clock
	c     *domains.Checker
	app   *store.App
	moved []store.DomainTransition
	mu    sync.Mutex
}

func newCheckerEnv(t *testing.T, tune func(*checkerEnv, *domains.CheckerOptions)) *checkerEnv {
	t.Helper()
	e := &checkerEnv{t: t, ctx: context.Background(), st: storetest.New(t), dns: dnstest.New(t),
		clock: testutil.NewClock(time.Now().Truncate(time.Microsecond))}
	u, err := e.st.CreateUser(e.ctx, store.NewUser{Email: "ada@example.com", Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if e.app, err = e.st.CreateApp(e.ctx, store.NewApp{UserID: u.ID, Name: "hello-world"}); err != nil {
		t.Fatal(err)
	}
	o := domains.CheckerOptions{Store: e.st, Verifier: newVerifier(t, e.dns, 200*time.Millisecond), Now: e.clock.Now,
		Logger: testutil.Logger(t), OnTransition: func(_ context.Context, ts []store.DomainTransition) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.moved = append(e.moved, ts...)
		}}
	if tune != nil {
		tune(e, &o)
	}
	if e.c, err = domains.NewChecker(o); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *checkerEnv) domain(host string) *store.Domain {
	e.t.Helper()
	d, err := e.st.CreateDomain(e.ctx, store.NewDomain{AppID: e.app.ID, UserID: e.app.UserID, Hostname: host, Token: domains.NewToken()})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *checkerEnv) find(d *store.Domain) *store.Domain {
	e.t.Helper()
	got, err := e.st.FindDomain(e.ctx, d.ID, d.UserID)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// pass runs a pass and checks how many domains it checked.
func (e *checkerEnv) pass(wantChecked int) domains.PassResult {
	e.t.Helper()
	res, err := e.c.Pass(e.ctx)
	if err != nil || !res.Ran || res.Checked != wantChecked {
		e.t.Fatalf("pass at %s: %+v, %v; want %d checked", e.clock.Now(), res, err, wantChecked)
	}
	return res
}

// TestDomainCheckerLifecycle: a pending domain verifies by itself once its
// record appears; when the record vanishes it stays verified through the
// grace period, then fails and leaves the routes, and comes back with its
// record.
func TestDomainCheckerLifecycle(t *testing.T) {
	t.Parallel()
	e := newCheckerEnv(t, nil)
	d := e.domain("www.ada.example")
	rec := domains.RecordName(d.Hostname)

	e.pass(1) // never checked: due at once
	if got := e.find(d); got.Status != store.DomainPending || got.CheckError != "no TXT record at _wisehosting.www.ada.example" {
		t.Fatalf("after the first pass: %+v", got)
	}
	e.pass(0)
	e.clock.Advance(domains.PendingInterval + time.Second)
	e.dns.Set(rec, d.Token)
	res := e.pass(1)
	if len(res.Transitions) != 1 || res.Transitions[0].To != store.DomainVerified {
		t.Fatalf("transitions %+v", res.Transitions)
	}
	verifiedAt := e.clock.Now()
	if got := e.find(d); got.Status != store.DomainVerified || got.CheckError != "" || !got.VerifiedAt.Equal(verifiedAt) {
		t.Fatalf("after the record appeared: %+v", got)
	}
	if hosts, err := e.st.ListVerifiedDomainsForApp(e.ctx, e.app.ID); err != nil || !slices.Equal(hosts, []string{d.Hostname}) {
		t.Fatalf("verified domains %v, %v", hosts, err)
	}
	e.clock.Advance(time.Hour)
	e.pass(0) // verified: next check after the interval

	// The record vanishes: verified through the grace period, counted
	// from when the record was last seen.
	e.dns.Delete(rec)
	for {
		e.clock.Advance(domains.DefaultInterval)
		e.pass(1)
		got := e.find(d)
		if e.clock.Now().Sub(verifiedAt) <= domains.DefaultGrace {
			if got.Status != store.DomainVerified || !strings.HasPrefix(got.CheckError, "no TXT record") {
				t.Fatalf("+%s since last seen: %+v", e.clock.Now().Sub(verifiedAt), got)
			}
			continue
		}
		if got.Status != store.DomainFailed || got.VerifiedAt != nil {
			t.Fatalf("+%s since last seen: %+v, want failed", e.clock.Now().Sub(verifiedAt), got)
		}
		break
	}
	if hosts, _ := e.st.ListVerifiedDomainsForApp(e.ctx, e.app.ID); len(hosts) != 0 {
		t.Fatalf("a failed domain is still routed: %v", hosts)
	}
	e.clock.Advance(domains.DefaultInterval)
	e.dns.Set(rec, d.Token)
	e.pass(1)
	if got := e.find(d); got.Status != store.DomainVerified {
		t.Fatalf("record back: %+v", got)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var path []string
	for _, m := range e.moved {
		path = append(path, m.To)
	}
	if !slices.Equal(path, []string{store.DomainVerified, store.DomainFailed, store.DomainVerified}) {
		t.Fatalf("transitions seen: %v", path)
	}
}

// TestDomainCheckerLookupFailures: days of timeouts or SERVFAIL prove nothing
// and never fail a verified domain.
func TestDomainCheckerLookupFailures(t *testing.T) {
	t.Parallel()
	e := newCheckerEnv(t, func(e *checkerEnv, o *domains.CheckerOptions) {
		o.Verifier = newVerifier(t, e.dns, 50*time.Millisecond)
	})
	d := e.domain("www.ada.example")
	e.dns.Set(domains.RecordName(d.Hostname), d.Token)
	e.pass(1)
	e.dns.Drop(domains.RecordName(d.Hostname))
	for range 12 { // 3 days, past the grace period
		e.clock.Advance(domains.DefaultInterval)
		e.pass(1)
	}
	if got := e.find(d); got.Status != store.DomainVerified || !strings.HasPrefix(got.CheckError, "DNS lookup failed") {
		t.Fatalf("after days of timeouts: %+v", got)
	}
}

// TestDomainCheckerPendingSchedule: new pending domains are checked every
// PendingInterval during PendingWindow, then every Interval.
func TestDomainCheckerPendingSchedule(t *testing.T) {
	t.Parallel()
	e := newCheckerEnv(t, nil)
	e.domain("www.ada.example")
	e.pass(1)
	checks := 0
	for elapsed := time.Duration(0); elapsed < domains.PendingWindow; elapsed += domains.PendingInterval + time.Second {
		e.clock.Advance(domains.PendingInterval + time.Second)
		res, err := e.c.Pass(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		checks += res.Checked
	}
	if want := int(domains.PendingWindow / (domains.PendingInterval + time.Second)); checks < want-2 || checks > want+1 {
		t.Fatalf("%d checks in the pending window, want about %d", checks, want)
	}
	e.clock.Advance(domains.PendingInterval * 2)
	e.pass(0) // past the window: every Interval now
	e.clock.Advance(domains.DefaultInterval)
	e.pass(1)
}

// TestDomainCheckerBatchesAndLock: a pass takes at most a batch, and none runs
// while another core holds the lock.
func TestDomainCheckerBatchesAndLock(t *testing.T) {
	t.Parallel()
	e := newCheckerEnv(t, func(_ *checkerEnv, o *domains.CheckerOptions) { o.BatchSize = 2; o.Concurrency = 2 })
	for _, h := range []string{"a.ada.example", "b.ada.example", "c.ada.example"} {
		d := e.domain(h)
		e.dns.Set(domains.RecordName(h), d.Token)
	}
	l, err := e.st.HoldAdvisoryLock(e.ctx, store.LockCheckDomains)
	if err != nil || l == nil {
		t.Fatalf("lock: %v, %v", l, err)
	}
	if res, err := e.c.Pass(e.ctx); err != nil || res.Ran {
		t.Fatalf("pass under another's lock: %+v, %v", res, err)
	}
	if err := l.Release(e.ctx); err != nil {
		t.Fatal(err)
	}
	if res := e.pass(2); !res.Full || len(res.Transitions) != 2 {
		t.Fatalf("first batch %+v", res)
	}
	if res := e.pass(1); res.Full {
		t.Fatalf("second batch %+v", res)
	}
	e.pass(0)
}

// TestDomainCheckerRun: Run checks at once and stops with its context.
func TestDomainCheckerRun(t *testing.T) {
	t.Parallel()
	e := newCheckerEnv(t, func(_ *checkerEnv, o *domains.CheckerOptions) { o.Tick = 10 * time.Millisecond })
	d := e.domain("www.ada.example")
	e.dns.Set(domains.RecordName(d.Hostname), d.Token)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.c.Run(ctx)
	}()
	testutil.WaitFor(t, 10*time.Second, "the domain verified", func() bool { return e.find(d).Status == store.DomainVerified })
	cancel()
	<-done
}
