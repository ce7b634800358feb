package accounts_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/accounts/totp"
)

// enrol enrols an authenticator for the signed-in client and returns the
// raw secret.
func (e *env) enrol(t *testing.T, c *client, email string) []byte {
	t.Helper()
	var out struct{ Secret, URI string }
	c.do(t, "POST", "/api/v1/2fa/enroll", nil, http.StatusOK, &out)
	raw, err := totp.DecodeSecret(out.Secret)
	if err != nil {
		t.Fatalf("enrol: secret: %v", err)
	}
	e.rememberPlain(out.Secret, strings.ToLower(out.Secret), hex.EncodeToString(raw), string(raw),
		base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw))
	want := "otpauth://totp/WiseHosting:" + email + "?secret=" + out.Secret + "&issuer=WiseHosting&"
	if !strings.HasPrefix(out.URI, want) {
		t.Fatalf("enrol: uri %q, want it to start with %q", out.URI, want)
	}
	return raw
}

// enable turns 2FA on with the code of the current step and returns the
// backup codes.
func (e *env) enable(t *testing.T, c *client, secret []byte) []string {
	t.Helper()
	var out struct {
		BackupCodes []string `json:"backup_codes"`
	}
	c.do(t, "POST", "/api/v1/2fa/enable", map[string]string{"code": totp.Code(secret, e.now)}, http.StatusOK, &out)
	e.rememberCodes(out.BackupCodes)
	return out.BackupCodes
}

func (e *env) rememberCodes(codes []string) {
	for _, c := range codes {
		e.rememberPlain(c, strings.ReplaceAll(c, "-", ""))
	}
}

// tick moves the clock to the next TOTP step.
func (e *env) tick() { e.now = e.now.Add(totp.Period) }

// finishLogin does what an OAuth callback does for userID and reports whether
// a second factor is pending.
func (c *client) finishLogin(t *testing.T, userID int64) bool {
	t.Helper()
	var out struct {
		Pending bool `json:"two_factor_pending"`
	}
	c.do(t, "POST", "/test/finish?user="+strconv.FormatInt(userID, 10), nil, http.StatusOK, &out)
	return out.Pending
}

type verifyOut struct {
	SessionID       int64 `json:"session_id"`
	BackupCodesLeft *int  `json:"backup_codes_left"`
}

// cookie returns the client's cookie name as the jar would send it to
// path ("" when none).
func (c *client) cookie(t *testing.T, path, name string) string {
	t.Helper()
	u, _ := url.Parse(c.e.srv.URL + path)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

func TestTwoFactorFlow(t *testing.T) {
	e := newEnv(t, 1000)
	ctx := context.Background()
	a := e.client(t)
	a.login(t, e.user.ID)
	secret := e.enrol(t, a, "ada@example.com")
	var m struct {
		TOTPEnabled bool `json:"totp_enabled"`
	}
	a.do(t, "GET", "/api/v1/me", nil, http.StatusOK, &m)
	if m.TOTPEnabled {
		t.Fatal("enrolling alone turned 2FA on")
	}
	// Enrolling again before enabling replaces the secret.
	secret = e.enrol(t, a, "ada@example.com")

	// Enabling needs the right code, from the app.
	wrong := totp.Code(secret, e.now.Add(-time.Hour))
	for _, tt := range []struct {
		body map[string]string
		want int
	}{
		{map[string]string{"code": wrong}, http.StatusForbidden},
		{map[string]string{}, http.StatusBadRequest},
		{map[string]string{"code": "12345"}, http.StatusBadRequest},
		{map[string]string{"code": "abcdef"}, http.StatusBadRequest},
		{map[string]string{"backup_code": "abcd-efgh"}, http.StatusBadRequest},
		{map[string]string{"code": totp.Code(secret, e.now), "backup_code": "abcd-efgh"}, http.StatusBadRequest},
	} {
		a.do(t, "POST", "/api/v1/2fa/enable", tt.body, tt.want, nil)
	}
	codes := e.enable(t, a, secret)
	if len(codes) != accounts.BackupCodeCount {
		t.Fatalf("%d backup codes", len(codes))
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if _, err := accounts.NormalizeBackupCode(c); err != nil || len(c) != 9 || c[4] != '-' || seen[c] {
			t.Fatalf("backup codes %v", codes)
		}
		seen[c] = true
	}
	a.do(t, "GET", "/api/v1/me", nil, http.StatusOK, &m)
	if !m.TOTPEnabled {
		t.Fatal("2FA is not on after enabling")
	}
	var stored string
	if err := e.st.Pool().QueryRow(ctx, `SELECT totp_secret FROM users WHERE id = $1`, e.user.ID).Scan(&stored); err != nil ||
		!strings.HasPrefix(stored, "v1:") {
		t.Fatalf("users.totp_secret = %q, %v; want the cipher's v1: form", stored, err)
	}
	a.do(t, "POST", "/api/v1/2fa/enroll", nil, http.StatusConflict, nil)
	a.do(t, "POST", "/api/v1/2fa/enable", map[string]string{"code": totp.Code(secret, e.now)}, http.StatusConflict, nil)

	// Signing in now stops at the challenge: a pending cookie, no session.
	b := e.client(t)
	if !b.finishLogin(t, e.user.ID) {
		t.Fatal("FinishLogin did not ask for the second factor")
	}
	if b.cookie(t, "/api/v1/2fa/verify", accounts.PendingCookie) == "" || b.cookie(t, "/", accounts.SessionCookie) != "" {
		t.Fatalf("cookies after the first factor: %v", b.hc.Jar.Cookies(mustURL(t, e.srv.URL+"/api/v1/2fa/verify")))
	}
	if b.cookie(t, "/api/v1/me", accounts.PendingCookie) != "" {
		t.Error("the pending cookie is sent beyond /api/v1/2fa")
	}
	b.do(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, nil)
	resp := b.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"code": wrong}, http.StatusUnauthorized, nil)
	if code := errorCode(t, resp); code != "invalid_code" {
		t.Fatalf("wrong code: %q", code)
	}
	// The code that enabled 2FA is spent: its step cannot sign in.
	b.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"code": totp.Code(secret, e.now)}, http.StatusUnauthorized, nil)
	e.tick()
	code := totp.Code(secret, e.now)
	pending := b.cookie(t, "/api/v1/2fa/verify", accounts.PendingCookie)
	var v verifyOut
	b.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"code": code[:3] + " " + code[3:]}, http.StatusOK, &v)
	if v.SessionID == 0 || v.BackupCodesLeft != nil {
		t.Fatalf("verify = %+v", v)
	}
	if b.cookie(t, "/api/v1/2fa/verify", accounts.PendingCookie) != "" {
		t.Error("the pending cookie survived signing in")
	}
	var sl sessionList
	b.do(t, "GET", "/api/v1/sessions", nil, http.StatusOK, &sl)
	if len(sl.Sessions) != 2 || !sl.Sessions[0].Current || !sl.Sessions[0].TwoFactor {
		t.Fatalf("sessions %+v", sl)
	}
	// The redeemed challenge is gone, whatever code comes with it.
	replayed := e.client(t)
	replayed.hc.Jar.SetCookies(mustURL(t, e.srv.URL+"/api/v1/2fa"), []*http.Cookie{{Name: accounts.PendingCookie, Value: pending, Path: "/api/v1/2fa"}})
	e.tick()
	replayed.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"code": totp.Code(secret, e.now)}, http.StatusUnauthorized, nil)

	// A TOTP code works once: the same step is refused on the next login.
	c := e.client(t)
	c.finishLogin(t, e.user.ID)
	c.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"code": code}, http.StatusUnauthorized, nil)

	// Backup codes: each signs in once, typed any which way.
	c.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"backup_code": codes[0]}, http.StatusOK, &v)
	if v.BackupCodesLeft == nil || *v.BackupCodesLeft != 9 {
		t.Fatalf("after a backup code: %+v", v)
	}
	d := e.client(t)
	d.finishLogin(t, e.user.ID)
	d.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"backup_code": codes[0]}, http.StatusUnauthorized, nil)
	d.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"backup_code": "zzzz-zzzz"}, http.StatusUnauthorized, nil)
	d.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"backup_code": " " + strings.ToUpper(strings.ReplaceAll(codes[1], "-", " ")) + " "}, http.StatusOK, &v)
	if *v.BackupCodesLeft != 8 {
		t.Fatalf("after a second backup code: %+v", v)
	}

	// Regenerating needs a code and invalidates every old backup code.
	a.do(t, "POST", "/api/v1/2fa/backup-codes", map[string]string{"backup_code": codes[2]}, http.StatusBadRequest, nil)
	a.do(t, "POST", "/api/v1/2fa/backup-codes", map[string]string{"code": wrong}, http.StatusForbidden, nil)
	e.tick()
	var regen struct {
		BackupCodes []string `json:"backup_codes"`
	}
	a.do(t, "POST", "/api/v1/2fa/backup-codes", map[string]string{"code": totp.Code(secret, e.now)}, http.StatusOK, &regen)
	e.rememberCodes(regen.BackupCodes)
	if len(regen.BackupCodes) != 10 || regen.BackupCodes[0] == codes[0] {
		t.Fatalf("regenerated %v", regen.BackupCodes)
	}
	f := e.client(t)
	f.finishLogin(t, e.user.ID)
	f.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"backup_code": codes[2]}, http.StatusUnauthorized, nil)
	f.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"backup_code": regen.BackupCodes[0]}, http.StatusOK, nil)

	// Disabling needs a code (or a backup code); then logins need none.
	a.do(t, "POST", "/api/v1/2fa/disable", nil, http.StatusBadRequest, nil)
	a.do(t, "POST", "/api/v1/2fa/disable", map[string]string{}, http.StatusBadRequest, nil)
	a.do(t, "POST", "/api/v1/2fa/disable", map[string]string{"code": wrong}, http.StatusForbidden, nil)
	a.do(t, "POST", "/api/v1/2fa/disable", map[string]string{"backup_code": codes[3]}, http.StatusForbidden, nil)
	a.do(t, "POST", "/api/v1/2fa/disable", map[string]string{"backup_code": regen.BackupCodes[1]}, http.StatusNoContent, nil)
	a.do(t, "POST", "/api/v1/2fa/disable", map[string]string{"backup_code": regen.BackupCodes[2]}, http.StatusConflict, nil)
	a.do(t, "POST", "/api/v1/2fa/backup-codes", map[string]string{"code": totp.Code(secret, e.now)}, http.StatusConflict, nil)
	a.do(t, "GET", "/api/v1/me", nil, http.StatusOK, &m)
	if m.TOTPEnabled {
		t.Fatal("2FA is still on")
	}
	if err := e.st.Pool().QueryRow(ctx, `SELECT totp_secret FROM users WHERE id = $1`, e.user.ID).Scan(&stored); err != nil || stored != "" {
		t.Fatalf("the secret survived disabling: %v", err)
	}
	g := e.client(t)
	if g.finishLogin(t, e.user.ID) {
		t.Fatal("a login after disabling still asks for a code")
	}
	g.do(t, "GET", "/api/v1/me", nil, http.StatusOK, nil)

	var page auditPage
	a.do(t, "GET", "/api/v1/audit", nil, http.StatusOK, &page)
	var kinds []string
	for _, ev := range page.Events {
		if ev.Kind != "login" {
			kinds = append(kinds, ev.Kind)
		}
	}
	if got := strings.Join(kinds, " "); got != "totp_disabled backup_codes_regenerated totp_enabled" {
		t.Fatalf("2FA audit events %q", got)
	}
}

// Two requests redeeming one challenge at once (with two good backup
// codes) sign in once.
func TestTwoFactorChallengeIsConsumedOnce(t *testing.T) {
	e := newEnv(t, 1000)
	a := e.client(t)
	a.login(t, e.user.ID)
	codes := e.enable(t, a, e.enrol(t, a, "ada@example.com"))
	b := e.client(t)
	b.finishLogin(t, e.user.ID)
	var wg sync.WaitGroup
	status := make([]int, 2)
	for i := range 2 {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/2fa/verify", strings.NewReader(`{"backup_code":"`+codes[i]+`"}`))
			req.Header.Set("Origin", e.srv.URL)
			resp, err := b.hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			for _, ck := range resp.Cookies() {
				if ck.Name == accounts.SessionCookie && ck.Value != "" {
					e.remember(ck.Value)
				}
			}
			status[i] = resp.StatusCode
		})
	}
	wg.Wait()
	if ok := (status[0] == 200) != (status[1] == 200); !ok || status[0]+status[1] != 200+401 {
		t.Fatalf("statuses %v, want one 200 and one 401", status)
	}
}

func TestTwoFactorChallengeRules(t *testing.T) {
	e := newEnv(t, 1000)
	a := e.client(t)
	a.login(t, e.user.ID)

	// An API token cannot manage 2FA: a leaked one must not be able to
	// lock the owner out behind the thief's authenticator.
	var tok struct{ Token string }
	a.do(t, "POST", "/api/v1/tokens", map[string]any{"name": "ci"}, http.StatusCreated, &tok)
	e.remember(tok.Token)
	bot := e.client(t)
	bot.bearer = tok.Token
	for _, p := range []string{"enroll", "enable", "disable", "backup-codes"} {
		resp := bot.do(t, "POST", "/api/v1/2fa/"+p, map[string]string{"code": "123456"}, http.StatusForbidden, nil)
		if code := errorCode(t, resp); code != "session_required" {
			t.Errorf("%s with a token: %q", p, code)
		}
	}

	secret := e.enrol(t, a, "ada@example.com")
	e.enable(t, a, secret)
	verify := "/api/v1/2fa/verify"

	// No challenge, a malformed one, or an unknown one: 401.
	anon := e.client(t)
	for _, v := range []string{"", "whp_short", accounts.PendingPrefix + strings.Repeat("A", 43)} {
		if v != "" {
			anon.hc.Jar.SetCookies(mustURL(t, e.srv.URL+verify), []*http.Cookie{{Name: accounts.PendingCookie, Value: v, Path: "/api/v1/2fa"}})
		}
		resp := anon.do(t, "POST", verify, map[string]string{"code": "123456"}, http.StatusUnauthorized, nil)
		if code := errorCode(t, resp); code != "unauthorized" {
			t.Errorf("cookie %q: code %q", v, code)
		}
	}

	// A challenge from another site's page is refused.
	b := e.client(t)
	b.finishLogin(t, e.user.ID)
	b.origin = "https://evil.example"
	e.tick()
	b.do(t, "POST", verify, map[string]string{"code": totp.Code(secret, e.now)}, http.StatusForbidden, nil)
	b.origin = e.srv.URL

	// The challenge expires after five minutes.
	e.now = e.now.Add(accounts.PendingTTL + time.Second)
	resp := b.do(t, "POST", verify, map[string]string{"code": totp.Code(secret, e.now)}, http.StatusUnauthorized, nil)
	if code := errorCode(t, resp); code != "unauthorized" {
		t.Fatalf("expired challenge: %q", code)
	}
	if b.cookie(t, verify, accounts.PendingCookie) != "" {
		t.Error("the expired challenge's cookie was not cleared")
	}
	b.do(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, nil)
	// A fresh one works with the same (unspent) code.
	b.finishLogin(t, e.user.ID)
	b.do(t, "POST", verify, map[string]string{"code": totp.Code(secret, e.now)}, http.StatusOK, nil)
}

// clientFrom is a client whose connections come from another loopback
// address, sharing jar.
func (e *env) clientFrom(t *testing.T, ip string, jar http.CookieJar) *client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &client{e: e, hc: &http.Client{Jar: jar, Transport: &http.Transport{DialContext: d.DialContext}}, origin: e.srv.URL}
}

func TestTwoFactorRateLimit(t *testing.T) {
	e := newEnv(t, 3)
	a := e.client(t)
	a.login(t, e.user.ID)
	secret := e.enrol(t, a, "ada@example.com")
	e.enable(t, a, secret)
	e.now = e.now.Add(time.Minute) // refill the buckets enrolment used

	b := e.client(t)
	b.finishLogin(t, e.user.ID)
	wrong := totp.Code(secret, e.now.Add(-time.Hour))
	for range 3 {
		b.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"code": wrong}, http.StatusUnauthorized, nil)
	}
	resp := b.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"code": totp.Code(secret, e.now)}, http.StatusTooManyRequests, nil)
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if code := errorCode(t, resp); code != "rate_limited" {
		t.Fatalf("code %q", code)
	}

	// The user's bucket is empty too: the same challenge from another
	// address is refused, while that address is not limited otherwise.
	other := e.clientFrom(t, "127.0.0.2", b.hc.Jar)
	other.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"code": totp.Code(secret, e.now)}, http.StatusTooManyRequests, nil)
	jar, _ := cookiejar.New(nil)
	eve := e.clientFrom(t, "127.0.0.2", jar)
	if eve.finishLogin(t, e.other.ID) {
		t.Fatal("eve has no 2FA")
	}
	var sl sessionList
	eve.do(t, "GET", "/api/v1/sessions", nil, http.StatusOK, &sl)
	if len(sl.Sessions) != 1 || sl.Sessions[0].IP != "127.0.0.2" {
		t.Fatalf("eve's sessions %+v: is the second loopback address in use?", sl)
	}
	eve.do(t, "POST", "/api/v1/2fa/enroll", nil, http.StatusOK, nil)

	// Signed-in code attempts count per user as well.
	for range 2 {
		a.do(t, "POST", "/api/v1/2fa/backup-codes", map[string]string{"code": wrong}, http.StatusTooManyRequests, nil)
	}

	// A window later the right code goes through.
	e.now = e.now.Add(time.Minute)
	other.do(t, "POST", "/api/v1/2fa/verify", map[string]string{"code": totp.Code(secret, e.now)}, http.StatusOK, nil)
}

// TestTwoFactorStateRules: each change needs 2FA in the state it changes.
func TestTwoFactorStateRules(t *testing.T) {
	e := newEnv(t, 1000)
	c := e.client(t)
	c.login(t, e.user.ID)
	type errBody struct {
		Error struct{ Code string } `json:"error"`
	}
	expect := func(path string, want string) {
		t.Helper()
		var out errBody
		c.do(t, "POST", path, map[string]string{"code": "123456"}, http.StatusConflict, &out)
		if out.Error.Code != want {
			t.Fatalf("%s: error %q, want %q", path, out.Error.Code, want)
		}
	}
	expect("/api/v1/2fa/enable", "totp_not_enrolled")
	expect("/api/v1/2fa/disable", "totp_not_enabled")
	expect("/api/v1/2fa/backup-codes", "totp_not_enabled")
	e.enable(t, c, e.enrol(t, c, e.user.Email))
	e.tick()
	expect("/api/v1/2fa/enable", "totp_enabled")
}
