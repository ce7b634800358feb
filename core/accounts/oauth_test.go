package accounts_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/accounts/totp"
	"github.com/wisehosting/wisehosting/core/store"
)

var oauthProviders = []string{"google", "github", "gitlab", "bitbucket", "codeberg"}

// fakeAccount is who the fake provider signs in as.
type fakeAccount struct {
	ID       int
	Login    string
	Email    string
	Verified bool
}

type fakeGrant struct {
	provider, challenge, redirect, scope string
	acct                                 fakeAccount
}

// fakeProvider is an OAuth server on loopback speaking the five providers'
// shapes under /<provider>/: authorize (redirects back with code+state,
// records the PKCE challenge), token (checks client credentials, the
// redirect URI and the PKCE verifier; codes are single-use) and the user
// APIs.
type fakeProvider struct {
	t   *testing.T
	e   *env
	srv *httptest.Server

	mu           sync.Mutex
	next         fakeAccount
	grants       map[string]fakeGrant
	tokens       map[string]fakeGrant
	pkceFailures int
	lastScope    string
}

func newFakeProvider(t *testing.T, e *env) *fakeProvider {
	f := &fakeProvider{t: t, e: e, grants: map[string]fakeGrant{}, tokens: map[string]fakeGrant{},
		next: fakeAccount{ID: 42, Login: "octo", Email: "Octo@Example.com", Verified: true}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeProvider) client(name string) accounts.OAuthClient {
	base := f.srv.URL + "/" + name
	return accounts.OAuthClient{Provider: name, ClientID: "id-" + name, ClientSecret: "secret-" + name,
		AuthURL: base + "/authorize", TokenURL: base + "/token", APIURL: base + "/api"}
}

func (f *fakeProvider) signInAs(a fakeAccount) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next = a
}

func random(prefix string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func oauthErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func (f *fakeProvider) serve(w http.ResponseWriter, r *http.Request) {
	name, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case rest == "authorize":
		q := r.URL.Query()
		wantRedirect := f.e.srv.URL + "/api/v1/auth/" + name + "/callback"
		if q.Get("response_type") != "code" || q.Get("client_id") != "id-"+name || q.Get("redirect_uri") != wantRedirect ||
			q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("state") == "" {
			http.Error(w, "bad authorize request: "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		code := random("code_")
		f.e.remember(code)
		f.grants[code] = fakeGrant{provider: name, challenge: q.Get("code_challenge"), redirect: wantRedirect, scope: q.Get("scope"), acct: f.next}
		f.lastScope = q.Get("scope")
		http.Redirect(w, r, wantRedirect+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	case rest == "token":
		if r.Method != http.MethodPost || r.ParseForm() != nil {
			oauthErr(w, http.StatusBadRequest, "invalid_request")
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if id != "id-"+name || secret != "secret-"+name {
			oauthErr(w, http.StatusUnauthorized, "invalid_client")
			return
		}
		code := r.PostForm.Get("code")
		g, ok := f.grants[code]
		delete(f.grants, code)
		if !ok || g.provider != name || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("redirect_uri") != g.redirect {
			oauthErr(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			f.pkceFailures++
			oauthErr(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		tok := random("gho_")
		f.e.remember(tok)
		f.tokens[tok] = g
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "scope": g.scope})
	case strings.HasPrefix(rest, "api/"):
		g, ok := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		if !ok || g.provider != name {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		a := g.acct
		var out any
		switch name + " " + strings.TrimPrefix(rest, "api") {
		case "google /userinfo":
			out = map[string]any{"sub": fmt.Sprint(a.ID), "email": a.Email, "email_verified": a.Verified, "name": "Octo Cat", "picture": "https://pic.example/o.png"}
		case "github /user":
			out = map[string]any{"id": a.ID, "login": a.Login, "name": "Octo Cat", "avatar_url": "https://pic.example/o.png", "email": nil}
		case "github /user/emails", "codeberg /user/emails":
			out = []map[string]any{{"email": "old@example.com", "primary": false, "verified": true}, {"email": a.Email, "primary": true, "verified": a.Verified}}
		case "gitlab /user":
			var confirmed any
			if a.Verified {
				confirmed = "2024-01-02T03:04:05Z"
			}
			out = map[string]any{"id": a.ID, "username": a.Login, "name": "Octo Cat", "email": a.Email, "avatar_url": "", "confirmed_at": confirmed}
		case "bitbucket /user":
			out = map[string]any{"uuid": fmt.Sprintf("{%d}", a.ID), "username": a.Login, "display_name": "Octo Cat",
				"links": map[string]any{"avatar": map[string]any{"href": "https://pic.example/o.png"}}}
		case "bitbucket /user/emails":
			out = map[string]any{"values": []map[string]any{{"email": a.Email, "is_primary": true, "is_confirmed": a.Verified}}}
		case "codeberg /user":
			out = map[string]any{"id": a.ID, "login": a.Login, "full_name": "Octo Cat", "avatar_url": "", "email": a.Email}
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	default:
		http.NotFound(w, r)
	}
}

// oauthEnv is an env whose Service has the given providers configured
// against a fake provider.
func oauthEnv(t *testing.T, names ...string) (*env, *fakeProvider) {
	t.Helper()
	var f *fakeProvider
	e := newEnvWith(t, 1000, func(e *env, o *accounts.Options) {
		f = newFakeProvider(t, e)
		for _, n := range names {
			o.OAuth = append(o.OAuth, f.client(n))
		}
		o.OAuthStateKey = []byte(strings.Repeat("s", 32))
	})
	return e, f
}

// browser is a client that does not follow redirects.
func (e *env) browser(t *testing.T) *client {
	c := e.client(t)
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// get fetches an absolute URL with the browser, expecting status want, and
// returns the parsed Location (nil when none).
func (c *client) get(t *testing.T, raw string, want int) *url.URL {
	t.Helper()
	resp, err := c.hc.Get(raw)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == accounts.SessionCookie && ck.Value != "" {
			c.e.remember(ck.Value)
		}
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s = %d, want %d", raw, resp.StatusCode, want)
	}
	if resp.Header.Get("Location") == "" {
		return nil
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// start opens the login endpoint and returns the provider's authorize URL.
func (c *client) start(t *testing.T, provider, query string) *url.URL {
	t.Helper()
	u := c.get(t, c.e.srv.URL+"/api/v1/auth/"+provider+"/login"+query, http.StatusFound)
	c.e.remember(u.Query().Get("state"))
	return u
}

// authorize has the fake provider approve and returns the callback URL.
func (c *client) authorize(t *testing.T, auth *url.URL) *url.URL {
	t.Helper()
	return c.get(t, auth.String(), http.StatusFound)
}

// finish opens the callback and returns where it redirects to.
func (c *client) finish(t *testing.T, cb *url.URL) string {
	t.Helper()
	return c.get(t, cb.String(), http.StatusSeeOther).RequestURI()
}

// flow runs start → authorize → callback.
func (c *client) flow(t *testing.T, provider, query string) string {
	t.Helper()
	return c.finish(t, c.authorize(t, c.start(t, provider, query)))
}

func TestOAuthLogin(t *testing.T) {
	e, f := oauthEnv(t, oauthProviders...)
	ctx := context.Background()
	for i, p := range oauthProviders {
		t.Run(p, func(t *testing.T) {
			email := fmt.Sprintf("new-%s@example.com", p)
			f.signInAs(fakeAccount{ID: 100 + i, Login: "octo-" + p, Email: strings.ToUpper(email), Verified: true})

			// A new user: the state, the nonce cookie, PKCE and the
			// return path go round trip; the session works.
			b := e.browser(t)
			auth := b.start(t, p, "?return="+url.QueryEscape("/apps?tab=1"))
			if auth.Query().Get("code_challenge_method") != "S256" {
				t.Fatalf("authorize URL without PKCE: %s", auth)
			}
			var nonce *http.Cookie
			for _, ck := range b.hc.Jar.Cookies(mustURL(t, e.srv.URL+"/api/v1/auth/")) {
				if ck.Name == accounts.OAuthCookie {
					nonce = ck
				}
			}
			if nonce == nil {
				t.Fatal("no nonce cookie")
			}
			if got := b.finish(t, b.authorize(t, auth)); got != "/apps?tab=1" {
				t.Fatalf("callback went to %q", got)
			}
			var m me
			b.do(t, "GET", "/api/v1/me", nil, http.StatusOK, &m)
			if m.Email != email || m.Auth != "session" {
				t.Fatalf("me = %+v", m)
			}
			u, err := e.st.FindUserByID(ctx, m.ID)
			if err != nil || u.Name != "Octo Cat" {
				t.Fatalf("user %+v %v", u, err)
			}
			if (p == "google") != (u.GoogleID != nil) || (p == "google" && *u.GoogleID != fmt.Sprint(100+i)) {
				t.Fatalf("google_id %v", u.GoogleID)
			}
			for _, ck := range b.hc.Jar.Cookies(mustURL(t, e.srv.URL+"/api/v1/auth/")) {
				if ck.Name == accounts.OAuthCookie {
					t.Fatal("the nonce cookie survived the callback")
				}
			}

			// The same person again, in another browser: the same user.
			b2 := e.browser(t)
			if got := b2.flow(t, p, ""); got != "/" {
				t.Fatalf("callback went to %q", got)
			}
			var m2 me
			b2.do(t, "GET", "/api/v1/me", nil, http.StatusOK, &m2)
			if m2.ID != m.ID {
				t.Fatalf("returning user got user %d, want %d", m2.ID, m.ID)
			}
		})
	}

	// An existing account is found by its verified email.
	f.signInAs(fakeAccount{ID: 7, Login: "ada", Email: "ada@example.com", Verified: true})
	b := e.browser(t)
	b.flow(t, "gitlab", "")
	var m me
	b.do(t, "GET", "/api/v1/me", nil, http.StatusOK, &m)
	if m.ID != e.user.ID {
		t.Fatalf("signed in as %d, want the existing user %d", m.ID, e.user.ID)
	}
	if f.lastScope != "read_user" {
		t.Errorf("login asked gitlab for %q", f.lastScope)
	}
}

func TestOAuthCallbackFailures(t *testing.T) {
	e, f := oauthEnv(t, "github", "google")
	anon := e.browser(t)
	signedOut := func(t *testing.T, c *client) {
		t.Helper()
		c.do(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, nil)
	}
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, b *client) string
		want string
	}{
		{"tampered state", func(t *testing.T, b *client) string {
			cb := b.authorize(t, b.start(t, "github", ""))
			q := cb.Query()
			payload, mac, _ := strings.Cut(q.Get("state"), ".")
			raw, _ := base64.RawURLEncoding.DecodeString(payload)
			raw = []byte(strings.Replace(string(raw), `"m":"login"`, `"m":"login","r":"/x"`, 1))
			q.Set("state", base64.RawURLEncoding.EncodeToString(raw)+"."+mac)
			cb.RawQuery = q.Encode()
			return b.finish(t, cb)
		}, "invalid_state"},
		{"garbage state", func(t *testing.T, b *client) string {
			cb := b.authorize(t, b.start(t, "github", ""))
			q := cb.Query()
			q.Set("state", "x")
			cb.RawQuery = q.Encode()
			return b.finish(t, cb)
		}, "invalid_state"},
		{"expired state", func(t *testing.T, b *client) string {
			cb := b.authorize(t, b.start(t, "github", ""))
			e.now = e.now.Add(accounts.OAuthStateTTL + time.Second)
			return b.finish(t, cb)
		}, "state_expired"},
		{"state from another browser", func(t *testing.T, b *client) string {
			cb := b.authorize(t, b.start(t, "github", ""))
			return anon.finish(t, cb)
		}, "invalid_state"},
		{"state of another flow of another browser", func(t *testing.T, b *client) string {
			cb := b.authorize(t, b.start(t, "github", ""))
			other := e.browser(t)
			other.start(t, "github", "") // its own nonce cookie
			return other.finish(t, cb)
		}, "invalid_state"},
		{"state for another provider", func(t *testing.T, b *client) string {
			cb := b.authorize(t, b.start(t, "github", ""))
			cb.Path = strings.Replace(cb.Path, "github", "google", 1)
			return b.finish(t, cb)
		}, "invalid_state"},
		{"wrong PKCE verifier", func(t *testing.T, b *client) string {
			auth := b.start(t, "github", "")
			q := auth.Query()
			sum := sha256.Sum256([]byte("an attacker's verifier, not the flow's one......"))
			q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
			auth.RawQuery = q.Encode()
			before := f.pkceFailures
			loc := b.finish(t, b.authorize(t, auth))
			if f.pkceFailures != before+1 {
				t.Errorf("the fake did not see a PKCE mismatch")
			}
			return loc
		}, "exchange_failed"},
		{"replayed callback", func(t *testing.T, b *client) string {
			auth := b.start(t, "github", "")
			cb := b.authorize(t, auth)
			b.finish(t, cb)
			b.do(t, "POST", "/api/v1/logout", nil, http.StatusNoContent, nil)
			// replay with a fresh nonce cookie for the same state: the
			// cookie is gone, so the replay fails on the state already
			return b.finish(t, cb)
		}, "invalid_state"},
		{"no code", func(t *testing.T, b *client) string {
			cb := b.authorize(t, b.start(t, "github", ""))
			q := cb.Query()
			q.Del("code")
			cb.RawQuery = q.Encode()
			return b.finish(t, cb)
		}, "invalid_request"},
		{"denied at the provider", func(t *testing.T, b *client) string {
			b.start(t, "github", "")
			return b.finish(t, mustURL(t, e.srv.URL+"/api/v1/auth/github/callback?error=access_denied&state=x"))
		}, "oauth_denied"},
		{"unverified email", func(t *testing.T, b *client) string {
			f.signInAs(fakeAccount{ID: 9, Login: "unv", Email: "unverified@example.com", Verified: false})
			defer f.signInAs(fakeAccount{ID: 42, Login: "octo", Email: "octo@example.com", Verified: true})
			loc := b.flow(t, "github", "")
			if _, err := e.st.FindUserByEmail(context.Background(), "unverified@example.com"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a user was created for an unverified email: %v", err)
			}
			return loc
		}, "email_unverified"},
		{"unverified google email", func(t *testing.T, b *client) string {
			f.signInAs(fakeAccount{ID: 10, Login: "g", Email: "g-unverified@example.com", Verified: false})
			defer f.signInAs(fakeAccount{ID: 42, Login: "octo", Email: "octo@example.com", Verified: true})
			return b.flow(t, "google", "")
		}, "email_unverified"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.now = time.Now()
			b := e.browser(t)
			if got, want := tt.run(t, b), "/?error="+tt.want; got != want {
				t.Fatalf("callback went to %q, want %q", got, want)
			}
			signedOut(t, b)
		})
	}

	// API-ish failures of the endpoints are the uniform JSON errors.
	for _, tt := range []struct {
		path string
		want int
		code string
	}{
		{"/api/v1/auth/nope/login", http.StatusNotFound, "not_found"},
		{"/api/v1/auth/nope/callback?code=x&state=y", http.StatusNotFound, "not_found"},
		{"/api/v1/auth/gitlab/login", http.StatusNotFound, "not_found"}, // a provider without a block
		{"/api/v1/auth/gitlab/callback", http.StatusNotFound, "not_found"},
		{"/api/v1/auth/github/login?mode=admin", http.StatusBadRequest, "bad_mode"},
		{"/api/v1/auth/github/login?mode=link", http.StatusUnauthorized, "unauthorized"},
		{"/api/v1/auth/github/login?return=//evil.example/", http.StatusBadRequest, "bad_return"},
		{"/api/v1/auth/github/login?return=https://evil.example/", http.StatusBadRequest, "bad_return"},
	} {
		resp := anon.do(t, "GET", tt.path, nil, tt.want, nil)
		if code := errorCode(t, resp); code != tt.code {
			t.Errorf("%s: code %q, want %q", tt.path, code, tt.code)
		}
	}
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestOAuthLinkAndGitTokens(t *testing.T) {
	e, f := oauthEnv(t, oauthProviders...)
	ctx := context.Background()
	b := e.browser(t)
	b.login(t, e.user.ID)
	f.signInAs(fakeAccount{ID: 5, Login: "ada-gh", Email: "someone-else@example.com", Verified: false})

	// Google is not a git provider.
	resp := b.do(t, "GET", "/api/v1/auth/google/login?mode=link", nil, http.StatusBadRequest, nil)
	if code := errorCode(t, resp); code != "not_linkable" {
		t.Fatalf("code %q", code)
	}

	// Link GitHub and Codeberg: the token is stored encrypted, with the
	// provider's username, and audited; the email does not matter.
	for _, p := range []string{"github", "codeberg"} {
		if got := b.flow(t, p, "?mode=link&return=/settings/git"); got != "/settings/git" {
			t.Fatalf("link %s went to %q", p, got)
		}
	}
	if f.lastScope != "read:user read:repository write:repository" {
		t.Errorf("link asked codeberg for %q", f.lastScope)
	}
	tok, username, err := e.st.GetGitToken(ctx, e.user.ID, "github")
	if err != nil || username != "ada-gh" || !strings.HasPrefix(tok, "gho_") {
		t.Fatalf("stored token %v %q", err, username)
	}
	var raw string
	if err := e.st.Pool().QueryRow(ctx, `SELECT token FROM git_provider_tokens WHERE user_id = $1 AND provider = 'github'`,
		e.user.ID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw == tok || strings.Contains(raw, tok[4:]) || !strings.HasPrefix(raw, "v1:") {
		t.Fatalf("the token column is not encrypted: %q", raw)
	}
	var m me
	b.do(t, "GET", "/api/v1/me", nil, http.StatusOK, &m)
	if m.ID != e.user.ID {
		t.Fatal("linking changed who is signed in")
	}

	var list struct {
		GitTokens []map[string]any `json:"git_tokens"`
	}
	b.do(t, "GET", "/api/v1/git-tokens", nil, http.StatusOK, &list)
	if len(list.GitTokens) != 2 || list.GitTokens[1]["provider"] != "github" || list.GitTokens[1]["username"] != "ada-gh" {
		t.Fatalf("list %+v", list)
	}
	for _, g := range list.GitTokens {
		for k := range g {
			if strings.Contains(k, "token") {
				t.Fatalf("the list shows %q", k)
			}
		}
	}
	x := e.browser(t)
	x.login(t, e.other.ID)
	var theirs struct {
		GitTokens []map[string]any `json:"git_tokens"`
	}
	x.do(t, "GET", "/api/v1/git-tokens", nil, http.StatusOK, &theirs)
	if len(theirs.GitTokens) != 0 {
		t.Fatalf("another user sees %+v", theirs)
	}
	x.do(t, "DELETE", "/api/v1/git-tokens/github", nil, http.StatusNotFound, nil)

	// Revoke: gone, audited; twice or unknown is 404.
	b.do(t, "DELETE", "/api/v1/git-tokens/github", nil, http.StatusNoContent, nil)
	b.do(t, "DELETE", "/api/v1/git-tokens/github", nil, http.StatusNotFound, nil)
	b.do(t, "DELETE", "/api/v1/git-tokens/google", nil, http.StatusNotFound, nil)
	if _, _, err := e.st.GetGitToken(ctx, e.user.ID, "github"); !isNotFound(err) {
		t.Fatalf("after revoke: %v", err)
	}
	var page auditPage
	b.do(t, "GET", "/api/v1/audit?limit=3", nil, http.StatusOK, &page)
	if len(page.Events) != 3 || page.Events[0].Kind != "git_token_revoke" || page.Events[1].Kind != "git_token_link" || page.Events[2].Kind != "git_token_link" {
		t.Fatalf("audit %+v", page)
	}

	// A link flow finished after signing out (or as someone else) fails.
	auth := b.start(t, "gitlab", "?mode=link")
	b.do(t, "POST", "/api/v1/logout", nil, http.StatusNoContent, nil)
	if got := b.finish(t, b.authorize(t, auth)); got != "/?error=not_signed_in" {
		t.Fatalf("link after logout went to %q", got)
	}
	if _, _, err := e.st.GetGitToken(ctx, e.user.ID, "gitlab"); !isNotFound(err) {
		t.Fatalf("gitlab linked after logout: %v", err)
	}
}

func TestOAuthTwoFactorHook(t *testing.T) {
	e, f := oauthEnv(t, "github")
	var gotUser int64
	var gotProvider string
	accounts.SetFinishLogin(e.svc, func(_ context.Context, _ http.ResponseWriter, _ *http.Request, userID int64, provider string) (bool, error) {
		gotUser, gotProvider = userID, provider
		return true, nil
	})
	f.signInAs(fakeAccount{ID: 1, Login: "ada", Email: "ada@example.com", Verified: true})
	b := e.browser(t)
	if got := b.flow(t, "github", "?return=/apps"); got != "/apps?two_factor=required" {
		t.Fatalf("went to %q", got)
	}
	if gotUser != e.user.ID || gotProvider != "github" {
		t.Fatalf("hook got %d %q", gotUser, gotProvider)
	}
	b.do(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, nil)
	a := e.browser(t)
	a.login(t, e.user.ID)
}

func TestOAuthOptions(t *testing.T) {
	st := newEnv(t, 10)
	st.client(t).login(t, st.user.ID)
	base := accounts.Options{Store: st.st, RevokeKey: revokeKey}
	good := accounts.OAuthClient{Provider: "github", ClientID: "i", ClientSecret: "s"}
	key := []byte(strings.Repeat("k", 32))
	for name, tt := range map[string]struct {
		clients []accounts.OAuthClient
		key     []byte
		ok      bool
	}{
		"none":          {nil, nil, true},
		"good":          {[]accounts.OAuthClient{good}, key, true},
		"short key":     {[]accounts.OAuthClient{good}, key[:16], false},
		"unknown":       {[]accounts.OAuthClient{{Provider: "gitea", ClientID: "i", ClientSecret: "s"}}, key, false},
		"twice":         {[]accounts.OAuthClient{good, good}, key, false},
		"no secret":     {[]accounts.OAuthClient{{Provider: "github", ClientID: "i"}}, key, false},
		"relative url":  {[]accounts.OAuthClient{{Provider: "github", ClientID: "i", ClientSecret: "s", TokenURL: "/token"}}, key, false},
		"ftp api url":   {[]accounts.OAuthClient{{Provider: "gitlab", ClientID: "i", ClientSecret: "s", APIURL: "ftp://x/api"}}, key, false},
		"custom scopes": {[]accounts.OAuthClient{{Provider: "gitlab", ClientID: "i", ClientSecret: "s", Scopes: []string{"api"}}}, key, true},
	} {
		o := base
		o.OAuth, o.OAuthStateKey = tt.clients, tt.key
		_, err := accounts.New(o)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "\"s\"") {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
}

// TestOAuthWithTOTP: a user with 2FA on who signs in through a provider
// gets no session from the callback, only the pending challenge; the
// authenticator's code then finishes the login.
func TestOAuthWithTOTP(t *testing.T) {
	e, f := oauthEnv(t, "github")
	a := e.browser(t)
	a.login(t, e.user.ID)
	secret := e.enrol(t, a, e.user.Email)
	e.enable(t, a, secret)
	e.tick() // the enabling code's step is spent

	f.signInAs(fakeAccount{ID: 1, Login: "ada", Email: e.user.Email, Verified: true})
	b := e.browser(t)
	if got := b.flow(t, "github", "?return=/apps"); got != "/apps?two_factor=required" {
		t.Fatalf("went to %q", got)
	}
	b.do(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, nil)
	var out verifyOut
	b.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"code": totp.Code(secret, e.now)}, http.StatusOK, &out)
	if out.SessionID == 0 {
		t.Fatal("no session after the second factor")
	}
	b.do(t, "GET", "/api/v1/me", nil, http.StatusOK, nil)
}
