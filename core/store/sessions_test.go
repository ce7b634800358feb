package store_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
)

func hash(c byte) string { return strings.Repeat(string(c), 64) }

func TestSessionsLifecycle(t *testing.T) {
	f := newFixture(t)
	other := f.mustUser(t, "eve@example.com")
	ttl := 720 * time.Hour
	ns := store.NewSession{UserID: f.user.ID, TokenHash: hash('a'), IP: "192.0.2.1", City: "Paris", Country: "FR",
		UserAgent: "Mozilla/5.0", Device: "Desktop", Browser: "Firefox", OS: "Linux", TwoFactor: true}
	id, err := f.s.CreateSession(f.ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ns   store.NewSession
		want error
	}{
		{"plaintext token", store.NewSession{UserID: f.user.ID, TokenHash: "whs_plain"}, store.ErrInvalid},
		{"unknown user", store.NewSession{UserID: 1 << 40, TokenHash: hash('b')}, store.ErrInvalid},
		{"hash in use", store.NewSession{UserID: other.ID, TokenHash: hash('a')}, store.ErrConflict},
	} {
		if _, err := f.s.CreateSession(f.ctx, tt.ns); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	got, err := f.s.FindSessionByTokenHash(f.ctx, hash('a'), ttl)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != id || got.UserID != f.user.ID || got.City != "Paris" || !got.TwoFactor || got.Browser != "Firefox" || got.RevokedAt != nil {
		t.Fatalf("found %+v", got)
	}
	if _, err := f.s.FindSessionByTokenHash(f.ctx, hash('z'), ttl); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}

	// The bump is throttled in SQL: a fresh session is not bumped; one
	// seen two minutes ago is, once, and a new IP clears the location.
	if bumped, err := f.s.BumpSessionLastSeen(f.ctx, id, "192.0.2.9", "curl"); err != nil || bumped {
		t.Fatalf("fresh bump: %v, %v", bumped, err)
	}
	f.exec(t, `UPDATE sessions SET last_seen_at = now() - interval '2 minutes' WHERE id = $1`, id)
	if bumped, err := f.s.BumpSessionLastSeen(f.ctx, id, "192.0.2.9", "curl"); err != nil || !bumped {
		t.Fatalf("stale bump: %v, %v", bumped, err)
	}
	if bumped, err := f.s.BumpSessionLastSeen(f.ctx, id, "192.0.2.9", "curl"); err != nil || bumped {
		t.Fatalf("second bump: %v, %v", bumped, err)
	}
	got, _ = f.s.FindSessionByTokenHash(f.ctx, hash('a'), ttl)
	if got.IP != "192.0.2.9" || got.City != "" || got.Country != "" || got.UserAgent != "curl" || time.Since(got.LastSeenAt) > time.Minute {
		t.Fatalf("after bump %+v", got)
	}

	// Idle expiry rolls from last_seen_at, not created_at.
	f.exec(t, `UPDATE sessions SET created_at = now() - interval '60 days' WHERE id = $1`, id)
	if _, err := f.s.FindSessionByTokenHash(f.ctx, hash('a'), ttl); err != nil {
		t.Fatalf("old but active session: %v", err)
	}
	idle, _ := f.s.CreateSession(f.ctx, store.NewSession{UserID: f.user.ID, TokenHash: hash('c')})
	f.exec(t, `UPDATE sessions SET last_seen_at = now() - interval '31 days' WHERE id = $1`, idle)
	if _, err := f.s.FindSessionByTokenHash(f.ctx, hash('c'), ttl); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("idle session: %v", err)
	}

	// List: live sessions only, most recently seen first; others' unseen.
	third, _ := f.s.CreateSession(f.ctx, store.NewSession{UserID: f.user.ID, TokenHash: hash('d')})
	f.exec(t, `UPDATE sessions SET last_seen_at = now() - interval '1 hour' WHERE id = $1`, third)
	theirs, _ := f.s.CreateSession(f.ctx, store.NewSession{UserID: other.ID, TokenHash: hash('e')})
	list, err := f.s.ListSessions(f.ctx, f.user.ID, ttl)
	if err != nil || len(list) != 2 || list[0].ID != id || list[1].ID != third {
		t.Fatalf("list = %v, %v", list, err)
	}

	// Revoke: only one's own, only once.
	if err := f.s.RevokeSession(f.ctx, theirs, f.user.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking another's session: %v", err)
	}
	if err := f.s.RevokeSession(f.ctx, third, f.user.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RevokeSession(f.ctx, third, f.user.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	if _, err := f.s.FindSessionByTokenHash(f.ctx, hash('d'), ttl); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoked session found: %v", err)
	}
	if bumped, err := f.s.BumpSessionLastSeen(f.ctx, third, "x", "y"); err != nil || bumped {
		t.Fatalf("bumped a revoked session: %v, %v", bumped, err)
	}
	fourth, _ := f.s.CreateSession(f.ctx, store.NewSession{UserID: f.user.ID, TokenHash: hash('f')})
	if n, err := f.s.RevokeOtherSessions(f.ctx, f.user.ID, id); err != nil || n != 2 { // fourth and the idle one
		t.Fatalf("revoke others = %d, %v", n, err)
	}
	if _, err := f.s.FindSessionByTokenHash(f.ctx, hash('f'), ttl); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session %d survived revoke-others: %v", fourth, err)
	}
	if _, err := f.s.FindSessionByTokenHash(f.ctx, hash('a'), ttl); err != nil {
		t.Fatalf("kept session: %v", err)
	}
	if _, err := f.s.FindSessionByTokenHash(f.ctx, hash('e'), ttl); err != nil {
		t.Fatalf("another user's session: %v", err)
	}

	// Prune: revoked and idle rows go, live ones stay.
	n, err := f.s.PruneSessions(f.ctx, ttl)
	if err != nil || n != 3 {
		t.Fatalf("prune = %d, %v", n, err)
	}
	if c := f.count(t, `SELECT count(*) FROM sessions`); c != 2 {
		t.Fatalf("%d sessions left, want 2", c)
	}
}

func TestPrunePendingTOTPs(t *testing.T) {
	f := newFixture(t)
	f.exec(t, `INSERT INTO pending_totps (token_hash, user_id, expires_at) VALUES
		($2, $1, now() - interval '1 second'), ($3, $1, now() + interval '5 minutes')`, f.user.ID, hash('a'), hash('b'))
	if n, err := f.s.PrunePendingTOTPs(f.ctx); err != nil || n != 1 {
		t.Fatalf("prune = %d, %v", n, err)
	}
	if c := f.count(t, `SELECT count(*) FROM pending_totps WHERE token_hash = $1`, hash('b')); c != 1 {
		t.Fatal("the live challenge was pruned")
	}
}

func TestAuditEvents(t *testing.T) {
	f := newFixture(t)
	other := f.mustUser(t, "eve@example.com")
	for i, kind := range []string{store.AuditLogin, store.AuditSessionRevoked, store.AuditLogout, store.AuditDomainVerify} {
		if err := f.s.RecordAuditEvent(f.ctx, store.NewAuditEvent{UserID: f.user.ID, Kind: kind, IP: "192.0.2.1",
			UserAgent: "ua", Details: json.RawMessage(`{"n":` + string(rune('0'+i)) + `}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.s.RecordAuditEvent(f.ctx, store.NewAuditEvent{UserID: other.ID, Kind: store.AuditLogin, IP: "198.51.100.1"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		e    store.NewAuditEvent
	}{
		{"unknown kind", store.NewAuditEvent{UserID: f.user.ID, Kind: "login_failed"}},
		{"details not an object", store.NewAuditEvent{UserID: f.user.ID, Kind: store.AuditLogin, Details: json.RawMessage(`[1]`)}},
		{"details not JSON", store.NewAuditEvent{UserID: f.user.ID, Kind: store.AuditLogin, Details: json.RawMessage(`{`)}},
		{"unknown user", store.NewAuditEvent{UserID: 1 << 40, Kind: store.AuditLogin}},
	} {
		if err := f.s.RecordAuditEvent(f.ctx, tt.e); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tt.name, err)
		}
	}
	page, err := f.s.ListAuditEvents(f.ctx, f.user.ID, 3, 0)
	if err != nil || len(page) != 3 || page[0].Kind != store.AuditDomainVerify || page[2].Kind != store.AuditSessionRevoked {
		t.Fatalf("first page = %v, %v", page, err)
	}
	if string(page[0].Details) != `{"n": 3}` || page[0].IP != "192.0.2.1" || page[0].UserAgent != "ua" {
		t.Fatalf("event %+v details %s", page[0], page[0].Details)
	}
	rest, err := f.s.ListAuditEvents(f.ctx, f.user.ID, 3, page[2].ID)
	if err != nil || len(rest) != 1 || rest[0].Kind != store.AuditLogin || string(rest[0].Details) != `{"n": 0}` {
		t.Fatalf("second page = %v, %v", rest, err)
	}
	if _, err := f.s.ListAuditEvents(f.ctx, f.user.ID, 0, 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("limit 0: %v", err)
	}
	for _, tt := range []struct {
		user int64
		ip   string
		want bool
	}{
		{f.user.ID, "192.0.2.1", true},
		{f.user.ID, "198.51.100.1", false}, // another user's IP
		{other.ID, "198.51.100.1", true},
		{other.ID, "192.0.2.1", false},
	} {
		if got, err := f.s.HasAuditEventForIP(f.ctx, tt.user, tt.ip); err != nil || got != tt.want {
			t.Errorf("HasAuditEventForIP(%d, %s) = %v, %v; want %v", tt.user, tt.ip, got, err, tt.want)
		}
	}
}

func TestAPITokens(t *testing.T) {
	f := newFixture(t)
	other := f.mustUser(t, "eve@example.com")
	tok, err := f.s.CreateAPIToken(f.ctx, store.NewAPIToken{UserID: f.user.ID, Name: "ci", TokenHash: hash('a'), Prefix: "wht_abcd"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Name != "ci" || tok.Prefix != "wht_abcd" || tok.LastUsedAt != nil || tok.ExpiresAt != nil || tok.RevokedAt != nil {
		t.Fatalf("created %+v", tok)
	}
	past := time.Now().Add(-time.Hour)
	for _, tt := range []struct {
		name string
		nt   store.NewAPIToken
		want error
	}{
		{"plaintext", store.NewAPIToken{UserID: f.user.ID, Name: "x", TokenHash: "wht_plain", Prefix: "p"}, store.ErrInvalid},
		{"empty name", store.NewAPIToken{UserID: f.user.ID, Name: "", TokenHash: hash('b'), Prefix: "p"}, store.ErrInvalid},
		{"long name", store.NewAPIToken{UserID: f.user.ID, Name: strings.Repeat("n", 101), TokenHash: hash('b'), Prefix: "p"}, store.ErrInvalid},
		{"no prefix", store.NewAPIToken{UserID: f.user.ID, Name: "x", TokenHash: hash('b')}, store.ErrInvalid},
		{"unknown user", store.NewAPIToken{UserID: 1 << 40, Name: "x", TokenHash: hash('b'), Prefix: "p"}, store.ErrInvalid},
		{"hash in use", store.NewAPIToken{UserID: other.ID, Name: "x", TokenHash: hash('a'), Prefix: "p"}, store.ErrConflict},
	} {
		if _, err := f.s.CreateAPIToken(f.ctx, tt.nt); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	expired, err := f.s.CreateAPIToken(f.ctx, store.NewAPIToken{UserID: f.user.ID, Name: "old", TokenHash: hash('c'), Prefix: "p", ExpiresAt: &past})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.s.FindAPITokenByHash(f.ctx, hash('a')); err != nil || got.ID != tok.ID || got.UserID != f.user.ID {
		t.Fatalf("find = %+v, %v", got, err)
	}
	if _, err := f.s.FindAPITokenByHash(f.ctx, hash('c')); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired token found: %v", err)
	}
	if list, err := f.s.ListAPITokens(f.ctx, f.user.ID); err != nil || len(list) != 2 || list[0].ID != expired.ID {
		t.Fatalf("list = %v, %v", list, err)
	}
	if list, err := f.s.ListAPITokens(f.ctx, other.ID); err != nil || len(list) != 0 {
		t.Fatalf("another user's list = %v, %v", list, err)
	}

	// Touch is throttled to once a minute.
	if touched, err := f.s.TouchAPIToken(f.ctx, tok.ID); err != nil || !touched {
		t.Fatalf("first touch: %v, %v", touched, err)
	}
	if touched, err := f.s.TouchAPIToken(f.ctx, tok.ID); err != nil || touched {
		t.Fatalf("second touch: %v, %v", touched, err)
	}
	f.exec(t, `UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1`, tok.ID)
	if touched, err := f.s.TouchAPIToken(f.ctx, tok.ID); err != nil || !touched {
		t.Fatalf("stale touch: %v, %v", touched, err)
	}

	if err := f.s.RevokeAPIToken(f.ctx, tok.ID, other.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke as another user: %v", err)
	}
	if err := f.s.RevokeAPIToken(f.ctx, tok.ID, f.user.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RevokeAPIToken(f.ctx, tok.ID, f.user.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	if _, err := f.s.FindAPITokenByHash(f.ctx, hash('a')); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoked token found: %v", err)
	}
	if list, _ := f.s.ListAPITokens(f.ctx, f.user.ID); len(list) != 1 {
		t.Fatalf("revoked token listed: %v", list)
	}
}
