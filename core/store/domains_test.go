package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wisehosting/wisehosting/core/store"
)

func (f *fixture) mustDomain(t *testing.T, appID, userID int64, host string) *store.Domain {
	t.Helper()
	d, err := f.s.CreateDomain(f.ctx, store.NewDomain{AppID: appID, UserID: userID, Hostname: host, Token: "tok-" + host})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func hostnames(ds []*store.Domain) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Hostname
	}
	return out
}

func TestDomainCreateFindListDelete(t *testing.T) {
	f := newFixture(t)
	eve := f.mustUser(t, "eve@example.com")
	eveApp := f.mustApp(t, eve.ID, "eve-app1")
	d := f.mustDomain(t, f.app.ID, f.user.ID, "www.ada.example")
	if d.Status != store.DomainPending || d.Token != "tok-www.ada.example" || d.AppUUID != f.app.UUID || d.AppName != f.app.Name ||
		d.VerifiedAt != nil || d.LastCheckedAt != nil || d.CheckError != "" {
		t.Fatalf("created %+v", d)
	}
	f.mustDomain(t, f.app.ID, f.user.ID, "api.ada.example")
	other := f.mustApp(t, f.user.ID, "other-app")
	f.mustDomain(t, other.ID, f.user.ID, "other.ada.example")
	f.mustDomain(t, eveApp.ID, eve.ID, "eve.example")

	for _, tt := range []struct {
		name string
		nd   store.NewDomain
		want error
	}{
		{"same hostname, same user", store.NewDomain{AppID: other.ID, UserID: f.user.ID, Hostname: "www.ada.example", Token: "x"}, store.ErrConflict},
		{"same hostname, another user", store.NewDomain{AppID: eveApp.ID, UserID: eve.ID, Hostname: "www.ada.example", Token: "x"}, store.ErrConflict},
		{"someone else's app", store.NewDomain{AppID: eveApp.ID, UserID: f.user.ID, Hostname: "x.ada.example", Token: "x"}, store.ErrNotFound},
		{"missing app", store.NewDomain{AppID: 999999, UserID: f.user.ID, Hostname: "x.ada.example", Token: "x"}, store.ErrNotFound},
		{"bad hostname", store.NewDomain{AppID: f.app.ID, UserID: f.user.ID, Hostname: "Bad.Example", Token: "x"}, store.ErrInvalid},
		{"quota", store.NewDomain{AppID: f.app.ID, UserID: f.user.ID, Hostname: "x.ada.example", Token: "x", MaxPerUser: 3}, store.ErrQuota},
		{"quota, someone else's app", store.NewDomain{AppID: eveApp.ID, UserID: f.user.ID, Hostname: "x.ada.example", Token: "x", MaxPerUser: 3}, store.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.s.CreateDomain(f.ctx, tt.nd); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	got, err := f.s.ListDomainsForUser(f.ctx, f.user.ID)
	if err != nil || !slices.Equal(hostnames(got), []string{"api.ada.example", "other.ada.example", "www.ada.example"}) {
		t.Fatalf("ListDomainsForUser = %v, %v", hostnames(got), err)
	}
	got, err = f.s.ListDomainsForApp(f.ctx, f.app.ID, f.user.ID)
	if err != nil || !slices.Equal(hostnames(got), []string{"api.ada.example", "www.ada.example"}) {
		t.Fatalf("ListDomainsForApp = %v, %v", hostnames(got), err)
	}
	if got, err = f.s.ListDomainsForApp(f.ctx, f.app.ID, eve.ID); err != nil || len(got) != 0 {
		t.Fatalf("eve's ListDomainsForApp of ada's app = %v, %v", hostnames(got), err)
	}
	if _, err := f.s.FindDomain(f.ctx, d.ID, eve.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("eve's FindDomain = %v", err)
	}
	if got, err := f.s.FindDomainByHostname(f.ctx, "www.ada.example", f.user.ID); err != nil || got.ID != d.ID {
		t.Fatalf("FindDomainByHostname = %+v, %v", got, err)
	}
	if _, err := f.s.FindDomainByHostname(f.ctx, "www.ada.example", eve.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("eve's FindDomainByHostname = %v", err)
	}
	if _, err := f.s.DeleteDomain(f.ctx, d.ID, eve.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("eve's DeleteDomain = %v", err)
	}
	if gone, err := f.s.DeleteDomain(f.ctx, d.ID, f.user.ID); err != nil || gone.Hostname != "www.ada.example" {
		t.Fatalf("DeleteDomain = %+v, %v", gone, err)
	}
	if _, err := f.s.FindDomain(f.ctx, d.ID, f.user.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindDomain after delete = %v", err)
	}
	// The hostname is free again, for anyone.
	f.mustDomain(t, eveApp.ID, eve.ID, "www.ada.example")
}

// TestDomainClaims: a claim on a deleted app is gone; another user's
// stale unverified claim can be taken over, a verified one never.
func TestDomainClaims(t *testing.T) {
	f := newFixture(t)
	eve := f.mustUser(t, "eve@example.com")
	eveApp := f.mustApp(t, eve.ID, "eve-app1")
	deleted := f.mustApp(t, f.user.ID, "deleted-app")
	f.mustDomain(t, deleted.ID, f.user.ID, "old.example")
	f.exec(t, `UPDATE apps SET status = 'deleted', deleted_at = now() WHERE id = $1`, deleted.ID)
	if got, err := f.s.ListDomainsForUser(f.ctx, f.user.ID); err != nil || len(got) != 0 {
		t.Fatalf("domains of a deleted app listed: %v, %v", hostnames(got), err)
	}
	f.mustDomain(t, eveApp.ID, eve.ID, "old.example")

	stale := f.mustDomain(t, f.app.ID, f.user.ID, "stale.example")
	verified := f.mustDomain(t, f.app.ID, f.user.ID, "verified.example")
	if _, err := f.s.MarkDomainVerified(f.ctx, verified.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	f.exec(t, `UPDATE domains SET created_at = now() - interval '10 days'`)
	claim := func(host string, before time.Time) error {
		_, err := f.s.CreateDomain(f.ctx, store.NewDomain{AppID: eveApp.ID, UserID: eve.ID, Hostname: host, Token: "e", ReplaceStaleBefore: before})
		return err
	}
	if err := claim("stale.example", time.Now().Add(-11*24*time.Hour)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("claim younger than the cutoff taken over: %v", err)
	}
	if err := claim("verified.example", time.Now()); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("verified claim taken over: %v", err)
	}
	// Ada's own stale claim is not replaced by ada either.
	if _, err := f.s.CreateDomain(f.ctx, store.NewDomain{AppID: f.app.ID, UserID: f.user.ID, Hostname: "stale.example", Token: "a",
		ReplaceStaleBefore: time.Now()}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("own claim replaced: %v", err)
	}
	if err := claim("stale.example", time.Now().Add(-7*24*time.Hour)); err != nil {
		t.Fatalf("stale claim not taken over: %v", err)
	}
	if _, err := f.s.FindDomain(f.ctx, stale.ID, f.user.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ada's stale claim still there: %v", err)
	}
}

func TestDomainVerifiedRoutes(t *testing.T) {
	f := newFixture(t)
	f.exec(t, `UPDATE apps SET status = 'running', worker_id = $2, port = 3000 WHERE id = $1`, f.app.ID, f.worker.ID)
	d := f.mustDomain(t, f.app.ID, f.user.ID, "www.ada.example")
	f.mustDomain(t, f.app.ID, f.user.ID, "pending.ada.example")
	at := time.Now().Truncate(time.Microsecond)
	v, err := f.s.MarkDomainVerified(f.ctx, d.ID, at)
	if err != nil || v.Status != store.DomainVerified || v.VerifiedAt == nil || !v.VerifiedAt.Equal(at) || !v.LastCheckedAt.Equal(at) {
		t.Fatalf("MarkDomainVerified = %+v, %v", v, err)
	}
	hosts, err := f.s.ListVerifiedDomainsForApp(f.ctx, f.app.ID)
	if err != nil || !slices.Equal(hosts, []string{"www.ada.example"}) {
		t.Fatalf("ListVerifiedDomainsForApp = %v, %v", hosts, err)
	}
	routes, err := f.s.ListRoutes(f.ctx)
	if err != nil || len(routes) != 1 || !slices.Equal(routes[0].Domains, []string{"www.ada.example"}) {
		t.Fatalf("ListRoutes = %+v, %v", routes, err)
	}
	// A failed check by hand keeps it verified.
	v, err = f.s.MarkDomainCheckFailed(f.ctx, d.ID, "no TXT record", at.Add(time.Hour))
	if err != nil || v.Status != store.DomainVerified || v.CheckError != "no TXT record" || !v.VerifiedAt.Equal(at) {
		t.Fatalf("MarkDomainCheckFailed = %+v, %v", v, err)
	}
	if _, err := f.s.MarkDomainVerified(f.ctx, 999999, at); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("MarkDomainVerified of a missing domain = %v", err)
	}
}

// TestDomainGraceRule walks a verified domain through failing checks.
func TestDomainGraceRule(t *testing.T) {
	f := newFixture(t)
	d := f.mustDomain(t, f.app.ID, f.user.ID, "www.ada.example")
	t0 := time.Now().Truncate(time.Microsecond)
	const grace = 48 * time.Hour
	absent := store.DomainCheck{ID: d.ID, Absent: true, Error: "no TXT record"}
	lookup := store.DomainCheck{ID: d.ID, Error: "DNS lookup failed: timeout"}
	ok := store.DomainCheck{ID: d.ID, OK: true}
	steps := []struct {
		after  time.Duration // since t0
		check  store.DomainCheck
		status string
		moved  bool
	}{
		{0, absent, store.DomainPending, false}, // pending never fails
		{time.Hour, ok, store.DomainVerified, true},
		{7 * time.Hour, absent, store.DomainVerified, false},   // first failure, within grace
		{60 * time.Hour, lookup, store.DomainVerified, false},  // a lookup error proves nothing
		{66 * time.Hour, ok, store.DomainVerified, false},      // back: VerifiedAt refreshed
		{200 * time.Hour, absent, store.DomainVerified, false}, // first failure after a long silence
		{206 * time.Hour, lookup, store.DomainVerified, false}, // still nothing proven
		{212 * time.Hour, absent, store.DomainFailed, true},    // second failure, grace long over
		{218 * time.Hour, absent, store.DomainFailed, false},
		{224 * time.Hour, ok, store.DomainVerified, true}, // the record is back
	}
	for i, s := range steps {
		at := t0.Add(s.after)
		moved, err := f.s.RecordDomainChecks(f.ctx, at, at.Add(-grace), []store.DomainCheck{s.check})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		got, err := f.s.FindDomain(f.ctx, d.ID, f.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != s.status || (len(moved) == 1) != s.moved || !got.LastCheckedAt.Equal(at) || got.CheckError != s.check.Error {
			t.Fatalf("step %d: %+v, transitions %+v", i, got, moved)
		}
		if s.moved && (moved[0].ID != d.ID || moved[0].To != s.status || moved[0].Hostname != d.Hostname) {
			t.Fatalf("step %d: transitions %+v", i, moved)
		}
		if s.check.OK && !got.VerifiedAt.Equal(at) {
			t.Fatalf("step %d: VerifiedAt = %v, want %v", i, got.VerifiedAt, at)
		}
		if got.Status != store.DomainVerified && got.VerifiedAt != nil {
			t.Fatalf("step %d: VerifiedAt %v on a %s domain", i, got.VerifiedAt, got.Status)
		}
	}
}

func TestDomainsDueForCheck(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	mk := func(host string, created, checked time.Duration, status string) int64 {
		d := f.mustDomain(t, f.app.ID, f.user.ID, host)
		f.exec(t, `UPDATE domains SET created_at = $2, last_checked_at = $3::timestamptz, status = $4::text,
			verified_at = CASE WHEN $4::text = 'verified' THEN $3::timestamptz END WHERE id = $1`,
			d.ID, now.Add(-created), now.Add(-checked), status)
		return d.ID
	}
	never := f.mustDomain(t, f.app.ID, f.user.ID, "never.example").ID
	old := mk("old.example", 30*time.Hour, 7*time.Hour, store.DomainVerified)
	mk("fresh.example", 30*time.Hour, time.Hour, store.DomainVerified)
	newPending := mk("new-pending.example", time.Hour, 6*time.Minute, store.DomainPending)
	mk("new-pending-recent.example", time.Hour, 2*time.Minute, store.DomainPending)
	mk("old-pending.example", 30*time.Hour, 6*time.Minute, store.DomainPending)
	gone := f.mustApp(t, f.user.ID, "gone-app")
	f.mustDomain(t, gone.ID, f.user.ID, "gone.example")
	f.exec(t, `UPDATE apps SET deleted_at = now(), status = 'deleted' WHERE id = $1`, gone.ID)

	due := store.DomainDue{CheckedBefore: now.Add(-6 * time.Hour),
		PendingCreatedAfter: now.Add(-24 * time.Hour), PendingCheckedBefore: now.Add(-5 * time.Minute)}
	got, err := f.s.DomainsDueForCheck(f.ctx, due, 10)
	ids := make([]int64, len(got))
	for i, d := range got {
		ids[i] = d.ID
	}
	if want := []int64{never, old, newPending}; err != nil || !slices.Equal(ids, want) {
		t.Fatalf("due = %v (%v), %v; want %v", ids, hostnames(got), err, want)
	}
	if got, err := f.s.DomainsDueForCheck(f.ctx, due, 2); err != nil || len(got) != 2 {
		t.Fatalf("limit 2: %v, %v", hostnames(got), err)
	}
	if got, err := f.s.DomainsDueForCheck(f.ctx, store.DomainDue{CheckedBefore: now.Add(-6 * time.Hour)}, 10); err != nil || len(got) != 2 {
		t.Fatalf("without the pending rule: %v, %v", hostnames(got), err)
	}
}

// TestDomainRouteNotifications: the route triggers fire when a status
// changes, and a re-check pass that changes none stays silent.
func TestDomainRouteNotifications(t *testing.T) {
	f := newFixture(t)
	d := f.mustDomain(t, f.app.ID, f.user.ID, "www.ada.example")
	conn := listen(t, f.s.Pool(), store.ChannelRoutes)
	// next returns the next notification's payload after a marker sent
	// now: "" when the change notified, "marker" when it did not.
	next := func() string {
		t.Helper()
		f.exec(t, `SELECT pg_notify($1, 'marker')`, store.ChannelRoutes)
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		defer cancel()
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n.Payload == "" {
			// Drain the marker.
			if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return n.Payload
	}
	at := time.Now()
	steps := []struct {
		name   string
		do     func() error
		notify bool
	}{
		{"failed check of a pending domain", func() error {
			_, err := f.s.RecordDomainChecks(f.ctx, at, at.Add(-time.Hour), []store.DomainCheck{{ID: d.ID, Absent: true, Error: "x"}})
			return err
		}, false},
		{"verified", func() error { _, err := f.s.MarkDomainVerified(f.ctx, d.ID, at); return err }, true},
		{"verified again", func() error { _, err := f.s.MarkDomainVerified(f.ctx, d.ID, at.Add(time.Hour)); return err }, false},
		{"failed after grace", func() error {
			for _, h := range []time.Duration{100, 106} {
				at := at.Add(h * time.Hour)
				if _, err := f.s.RecordDomainChecks(f.ctx, at, at.Add(-48*time.Hour), []store.DomainCheck{{ID: d.ID, Absent: true, Error: "x"}}); err != nil {
					return err
				}
			}
			return nil
		}, true},
		{"deleted", func() error { _, err := f.s.DeleteDomain(f.ctx, d.ID, f.user.ID); return err }, true},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := next() == ""; got != s.notify {
			t.Errorf("%s: notified = %v, want %v", s.name, got, s.notify)
		}
	}
}

// listen returns a pooled connection LISTENing on channel, released at
// cleanup.
func listen(t *testing.T, pool *pgxpool.Pool, channel string) *pgxpool.Conn {
	t.Helper()
	conn, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), `UNLISTEN *`)
		conn.Release()
	})
	if _, err := conn.Exec(context.Background(), `LISTEN `+channel); err != nil {
		t.Fatal(err)
	}
	return conn
}
