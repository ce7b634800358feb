package accounts_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/mail"
	"github.com/wisehosting/wisehosting/sdk/event"
)

type me struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Auth  string `json:"auth"`
}

type sessionList struct {
	Sessions []struct {
		ID        int64  `json:"id"`
		IP        string `json:"ip"`
		Browser   string `json:"browser"`
		OS        string `json:"os"`
		Device    string `json:"device"`
		TwoFactor bool   `json:"two_factor"`
		Current   bool   `json:"current"`
	} `json:"sessions"`
}

type auditPage struct {
	Events []struct {
		ID   int64  `json:"id"`
		Kind string `json:"kind"`
		IP   string `json:"ip"`
	} `json:"events"`
	NextBefore int64 `json:"next_before"`
}

func TestSessionFlows(t *testing.T) {
	e := newEnv(t, 100)
	ctx := context.Background()
	a := e.client(t)
	sidA := a.login(t, e.user.ID)

	// The cookie: HttpOnly, SameSite=Lax, Path=/, not Secure here (the
	// test server is plain HTTP and SecureCookies is off).
	u, _ := url.Parse(e.srv.URL)
	if cks := a.hc.Jar.Cookies(u); len(cks) != 1 || cks[0].Name != accounts.SessionCookie || !strings.HasPrefix(cks[0].Value, accounts.SessionPrefix) {
		t.Fatalf("cookies after login: %v", cks)
	}
	var m me
	a.do(t, "GET", "/api/v1/me", nil, http.StatusOK, &m)
	if m.ID != e.user.ID || m.Email != "ada@example.com" || m.Auth != "session" {
		t.Fatalf("me = %+v", m)
	}

	// A second device of the same user, and a third; the list marks the
	// current one and parses the user agent.
	b := e.client(t)
	sidB := b.login(t, e.user.ID)
	c := e.client(t)
	c.do(t, "POST", "/test/login?2fa=1&user="+strconv.FormatInt(e.user.ID, 10), nil, http.StatusOK, nil)
	var sl sessionList
	a.do(t, "GET", "/api/v1/sessions", nil, http.StatusOK, &sl)
	if len(sl.Sessions) != 3 {
		t.Fatalf("sessions = %+v", sl)
	}
	for _, s := range sl.Sessions {
		if s.Current != (s.ID == sidA) || s.IP != "127.0.0.1" || s.Browser != "Firefox" || s.OS != "Linux" || s.Device != "Desktop" {
			t.Errorf("session %+v (current is %d)", s, sidA)
		}
	}
	if !sl.Sessions[0].TwoFactor {
		t.Errorf("the newest session passed 2FA: %+v", sl.Sessions[0])
	}

	// Revoke one: it is signed out; another user cannot revoke ours.
	x := e.client(t)
	x.login(t, e.other.ID)
	x.do(t, "DELETE", fmt.Sprintf("/api/v1/sessions/%d", sidA), nil, http.StatusNotFound, nil)
	a.do(t, "DELETE", fmt.Sprintf("/api/v1/sessions/%d", sidB), nil, http.StatusNoContent, nil)
	b.do(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, nil)
	a.do(t, "DELETE", "/api/v1/sessions/abc", nil, http.StatusBadRequest, nil)

	// Revoke the others: c goes, a stays, the other user's stays.
	var rev struct{ Revoked int64 }
	a.do(t, "POST", "/api/v1/sessions/revoke-others", nil, http.StatusOK, &rev)
	if rev.Revoked != 1 {
		t.Fatalf("revoke-others revoked %d", rev.Revoked)
	}
	c.do(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, nil)
	a.do(t, "GET", "/api/v1/me", nil, http.StatusOK, nil)
	x.do(t, "GET", "/api/v1/me", nil, http.StatusOK, nil)

	// Only the first login from 127.0.0.1 is a new device: one event.
	var n int
	if err := e.st.Pool().QueryRow(ctx, `SELECT count(*) FROM event_outbox WHERE type = $1 AND user_id = $2`,
		event.AccountLoginNewDevice, e.user.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d new-device events, %v; want 1", n, err)
	}

	// Logout ends the session, clears the cookie and is audited.
	a.do(t, "POST", "/api/v1/logout", nil, http.StatusNoContent, nil)
	if cks := a.hc.Jar.Cookies(u); len(cks) != 0 {
		t.Fatalf("cookie survived logout: %v", cks)
	}
	a.do(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, nil)

	// The audit log, newest first, paginated; the other user's is theirs.
	a2 := e.client(t)
	a2.login(t, e.user.ID)
	var page auditPage
	a2.do(t, "GET", "/api/v1/audit?limit=2", nil, http.StatusOK, &page)
	if len(page.Events) != 2 || page.Events[0].Kind != "login" || page.Events[1].Kind != "logout" || page.NextBefore != page.Events[1].ID {
		t.Fatalf("first page %+v", page)
	}
	var kinds []string
	for before := page.NextBefore; before != 0; {
		var p auditPage
		a2.do(t, "GET", "/api/v1/audit?limit=2&before="+strconv.FormatInt(before, 10), nil, http.StatusOK, &p)
		for _, ev := range p.Events {
			kinds = append(kinds, ev.Kind)
		}
		before = p.NextBefore
	}
	want := "session_revoked session_revoked login login login"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("older events %q, want %q", got, want)
	}
	a2.do(t, "GET", "/api/v1/audit?limit=0", nil, http.StatusBadRequest, nil)
	var theirs auditPage
	x.do(t, "GET", "/api/v1/audit", nil, http.StatusOK, &theirs)
	if len(theirs.Events) != 1 || theirs.NextBefore != 0 {
		t.Fatalf("the other user's audit log %+v", theirs)
	}
}

func TestAPITokenFlow(t *testing.T) {
	e := newEnv(t, 100)
	a := e.client(t)
	a.login(t, e.user.ID)
	var created struct {
		ID     int64  `json:"id"`
		Name   string `json:"name"`
		Prefix string `json:"prefix"`
		Token  string `json:"token"`
	}
	a.do(t, "POST", "/api/v1/tokens", map[string]any{"name": "ci", "expires_in_days": 30}, http.StatusCreated, &created)
	e.remember(created.Token)
	if accounts.ParseToken(accounts.APITokenPrefix, created.Token) != nil || !strings.HasPrefix(created.Token, created.Prefix) || created.Name != "ci" {
		t.Fatalf("created %+v", created)
	}
	for _, body := range []map[string]any{{"name": ""}, {"name": strings.Repeat("n", 101)}, {"name": "x", "expires_in_days": -1}, {"name": "x", "extra": 1}} {
		a.do(t, "POST", "/api/v1/tokens", body, http.StatusBadRequest, nil)
	}

	// The token works as a Bearer, with no cookie and no Origin (CSRF
	// does not apply), even from a foreign Origin.
	bot := e.client(t)
	bot.bearer, bot.origin = created.Token, "https://evil.example"
	var m me
	bot.do(t, "GET", "/api/v1/me", nil, http.StatusOK, &m)
	if m.ID != e.user.ID || m.Auth != "token" {
		t.Fatalf("me with a token = %+v", m)
	}
	var second struct{ Token string }
	bot.do(t, "POST", "/api/v1/tokens", map[string]any{"name": "made by a token"}, http.StatusCreated, &second)
	e.remember(second.Token)

	// Lists never show a token.
	var list struct {
		Tokens []map[string]any `json:"tokens"`
	}
	a.do(t, "GET", "/api/v1/tokens", nil, http.StatusOK, &list)
	if len(list.Tokens) != 2 || list.Tokens[1]["prefix"] != created.Prefix || list.Tokens[1]["token"] != nil || list.Tokens[1]["expires_at"] == nil {
		t.Fatalf("list %+v", list)
	}
	if list.Tokens[1]["last_used_at"] == nil {
		t.Errorf("using the token did not record its use: %+v", list.Tokens[1])
	}

	// Another user cannot revoke it; its owner can, and then it is dead.
	x := e.client(t)
	x.login(t, e.other.ID)
	x.do(t, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", created.ID), nil, http.StatusNotFound, nil)
	a.do(t, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", created.ID), nil, http.StatusNoContent, nil)
	resp := bot.do(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, nil)
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	// A malformed or unknown token is refused rather than ignored, even
	// with a valid session cookie alongside.
	for _, tok := range []string{"whs_" + created.Token[4:], "nonsense", second.Token + "x"} {
		a.bearer = tok
		a.do(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, nil)
	}
	a.bearer = ""
	// logout with a token is a clear error, not a silent success.
	bot.bearer = second.Token
	bot.do(t, "POST", "/api/v1/logout", nil, http.StatusBadRequest, nil)
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, 100)
	a := e.client(t)
	sid := a.login(t, e.user.ID)
	tokens := "/api/v1/tokens"
	for _, tt := range []struct {
		name, origin, referer string
		want                  int
	}{
		{"foreign origin", "https://evil.example", "", http.StatusForbidden},
		{"origin on another port", strings.Replace(e.srv.URL, "127.0.0.1:", "127.0.0.1:1", 1), "", http.StatusForbidden},
		{"other scheme", strings.Replace(e.srv.URL, "http:", "https:", 1), "", http.StatusForbidden},
		{"null origin", "null", "", http.StatusForbidden},
		{"neither header", "", "", http.StatusForbidden},
		{"foreign referer", "", "https://evil.example/page", http.StatusForbidden},
		{"matching referer", "", e.srv.URL + "/dashboard", http.StatusCreated},
		{"matching origin", e.srv.URL, "", http.StatusCreated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.srv.URL+tokens, strings.NewReader(`{"name":"csrf"}`))
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.referer != "" {
				req.Header.Set("Referer", tt.referer)
			}
			resp, err := a.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct {
				Token string
				Error struct{ Code string }
			}
			_ = decode(resp, &out)
			if out.Token != "" {
				e.remember(out.Token)
			}
			if resp.StatusCode != tt.want || (tt.want == http.StatusForbidden && out.Error.Code != "csrf") {
				t.Fatalf("status %d code %q, want %d", resp.StatusCode, out.Error.Code, tt.want)
			}
		})
	}
	// State-changing requests of every kind are covered, and safe ones are not.
	a.origin = "https://evil.example"
	a.do(t, "DELETE", fmt.Sprintf("/api/v1/sessions/%d", sid), nil, http.StatusForbidden, nil)
	a.do(t, "POST", "/api/v1/logout", nil, http.StatusForbidden, nil)
	a.do(t, "GET", "/api/v1/sessions", nil, http.StatusOK, nil)
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, 2)
	a := e.client(t)
	a.login(t, e.user.ID)
	for i := range 2 {
		var out struct{ Token string }
		a.do(t, "POST", "/api/v1/tokens", map[string]any{"name": fmt.Sprint("t", i)}, http.StatusCreated, &out)
		e.remember(out.Token)
	}
	resp := a.do(t, "POST", "/api/v1/tokens", map[string]any{"name": "t3"}, http.StatusTooManyRequests, nil)
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if code := errorCode(t, resp); code != "rate_limited" {
		t.Fatalf("code %q", code)
	}
	// Unlimited routes are not affected; the revoke link shares the IP's
	// bucket; the window refills it.
	a.do(t, "GET", "/api/v1/tokens", nil, http.StatusOK, nil)
	a.do(t, "GET", mail.RevokePath+"?token=x", nil, http.StatusTooManyRequests, nil)
	e.now = e.now.Add(time.Minute)
	a.do(t, "GET", mail.RevokePath+"?token=x", nil, http.StatusBadRequest, nil)
}

func TestRevokeByLink(t *testing.T) {
	e := newEnv(t, 100)
	a := e.client(t)
	sid := a.login(t, e.user.ID)
	x := e.client(t)
	sidX := x.login(t, e.other.ID)
	anon := e.client(t)
	link := func(tok string) string { return mail.RevokePath + "?" + url.Values{"token": {tok}}.Encode() }
	good := e.mailer.SignRevokeToken(e.user.ID, sid, e.now)

	tampered := strings.Replace(good, fmt.Sprintf(":%d:", sid), fmt.Sprintf(":%d:", sidX), 1)
	otherMailer, _ := mail.New(nil, []byte(strings.Repeat("k", 32)))
	for name, tok := range map[string]string{
		"tampered":               tampered,
		"expired":                e.mailer.SignRevokeToken(e.user.ID, sid, e.now.Add(-73*time.Hour)),
		"another key":            otherMailer.SignRevokeToken(e.user.ID, sid, e.now),
		"another user's session": e.mailer.SignRevokeToken(e.user.ID, sidX, e.now),
		"unknown session":        e.mailer.SignRevokeToken(e.user.ID, 1<<40, e.now),
		"empty":                  "",
	} {
		resp := anon.do(t, "GET", link(tok), nil, http.StatusBadRequest, nil)
		if code := errorCode(t, resp); code != "invalid_link" {
			t.Errorf("%s: code %q", name, code)
		}
	}
	a.do(t, "GET", "/api/v1/me", nil, http.StatusOK, nil)
	x.do(t, "GET", "/api/v1/me", nil, http.StatusOK, nil)

	anon.do(t, "GET", link(good), nil, http.StatusOK, nil)
	a.do(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, nil)
	anon.do(t, "GET", link(good), nil, http.StatusBadRequest, nil) // used up: same answer as a bad link
	x.do(t, "GET", "/api/v1/me", nil, http.StatusOK, nil)

	var page auditPage
	a2 := e.client(t)
	a2.login(t, e.user.ID)
	a2.do(t, "GET", "/api/v1/audit", nil, http.StatusOK, &page)
	if len(page.Events) != 3 || page.Events[1].Kind != "session_revoked" {
		t.Fatalf("audit after the link: %+v", page)
	}
}

// Every route of the table that is not public refuses a request without
// credentials, or with a dead cookie, with the uniform 401.
func TestRouteTable(t *testing.T) {
	e := newEnv(t, 1000)
	a := e.client(t)
	a.login(t, e.user.ID) // a live session exists; the requests below do not use it
	routes := e.svc.Routes()
	if len(routes) < 10 {
		t.Fatalf("%d routes", len(routes))
	}
	public := map[string]bool{}
	for _, rt := range routes {
		path := strings.ReplaceAll(strings.ReplaceAll(rt.Path, ":id", "1"), ":provider", "github")
		if rt.Public {
			public[rt.Path] = true
			continue
		}
		for name, cookie := range map[string]string{"none": "", "dead cookie": accounts.SessionPrefix + strings.Repeat("A", 43)} {
			req, _ := http.NewRequest(rt.Method, e.srv.URL+path, strings.NewReader(`{"name":"x"}`))
			req.Header.Set("Origin", e.srv.URL)
			if cookie != "" {
				req.AddCookie(&http.Cookie{Name: accounts.SessionCookie, Value: cookie})
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out struct{ Error struct{ Code string } }
			_ = decode(resp, &out)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || out.Error.Code != "unauthorized" {
				t.Errorf("%s %s (%s) = %d %q, want 401", rt.Method, rt.Path, name, resp.StatusCode, out.Error.Code)
			}
		}
	}
	if want := map[string]bool{mail.RevokePath: true, "/api/v1/2fa/verify": true,
		"/api/v1/auth/:provider/login": true, "/api/v1/auth/:provider/callback": true}; !maps.Equal(public, want) {
		t.Errorf("public routes %v, want only %v", public, want)
	}
}
