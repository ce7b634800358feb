package accounts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
	"github.com/wisehosting/wisehosting/core/mail"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var revokeKey = bytes.Repeat([]byte{7}, 32)

// env is a Service behind the core's router on a loopback test server,
// with a test-only POST /test/login?user= that calls Login.
type env struct {
	st     *store.Store
	svc    *accounts.Service
	srv    *httptest.Server
	mailer *mail.Mailer
	logs   *syncBuffer
	user   *store.User
	other  *store.User
	now    time.Time

	mu      sync.Mutex
	secrets []string // every plaintext token handed out
	plain   []string // other secrets (TOTP secrets, backup codes) that must never be stored or logged
}

func newEnv(t *testing.T, burst int) *env {
	t.Helper()
	return newEnvWith(t, burst, nil)
}

// newEnvWith is newEnv with a hook that completes the Options (called
// with the test server's URL known).
func newEnvWith(t *testing.T, burst int, opts func(*env, *accounts.Options)) *env {
	t.Helper()
	e := &env{st: storetest.New(t), logs: &syncBuffer{}, now: time.Now()}
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: e.logs})
	var h http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	var err error
	if e.mailer, err = mail.New(nil, revokeKey); err != nil {
		t.Fatal(err)
	}
	o := accounts.Options{Store: e.st, Mailer: e.mailer, RevokeKey: revokeKey, BaseURL: e.srv.URL,
		SessionTTL: 720 * time.Hour, RateBurst: burst, RateWindow: time.Minute, Logger: log.Named("accounts"),
		Argon2: accounts.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1},
		Now:    func() time.Time { return e.now }}
	if opts != nil {
		opts(e, &o)
	}
	e.svc, err = accounts.New(o)
	if err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Options{Logger: log.Named("http")})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Register(a.Group())
	a.Group().POST("/test/login", func(w http.ResponseWriter, req bunrouter.Request) error {
		uid, _ := strconv.ParseInt(req.URL.Query().Get("user"), 10, 64)
		sid, err := e.svc.Login(req.Context(), w, req.Request, uid, req.URL.Query().Get("2fa") == "1")
		if err != nil {
			return err
		}
		return api.WriteJSON(w, http.StatusOK, map[string]int64{"session_id": sid})
	})
	// What an OAuth callback does once the provider has vouched for the user.
	a.Group().POST("/test/finish", func(w http.ResponseWriter, req bunrouter.Request) error {
		uid, _ := strconv.ParseInt(req.URL.Query().Get("user"), 10, 64)
		pending, err := e.svc.FinishLogin(req.Context(), w, req.Request, uid, "github")
		if err != nil {
			return err
		}
		return api.WriteJSON(w, http.StatusOK, map[string]bool{"two_factor_pending": pending})
	})
	h = a
	for _, email := range []string{"ada@example.com", "eve@example.com"} {
		u, err := e.st.CreateUser(context.Background(), store.NewUser{Email: email, Name: "N"})
		if err != nil {
			t.Fatal(err)
		}
		if e.user == nil {
			e.user = u
		} else {
			e.other = u
		}
	}
	t.Cleanup(func() { e.assertNoPlaintext(t) })
	return e
}

// client is a browser: a cookie jar, sending the site's Origin on
// requests that change state unless origin says otherwise.
type client struct {
	e      *env
	hc     *http.Client
	origin string
	bearer string
}

func (e *env) client(t *testing.T) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{e: e, hc: &http.Client{Jar: jar}, origin: e.srv.URL}
}

// login signs the client in as userID and returns the session id.
func (c *client) login(t *testing.T, userID int64) int64 {
	t.Helper()
	var out struct {
		SessionID int64 `json:"session_id"`
	}
	c.do(t, "POST", "/test/login?user="+strconv.FormatInt(userID, 10), nil, http.StatusOK, &out)
	return out.SessionID
}

// do sends a request, checks its status and decodes a JSON answer into
// out (when not nil); it returns the response (body read).
func (c *client) do(t *testing.T, method, path string, body any, want int, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	if c.origin != "" && method != http.MethodGet {
		req.Header.Set("Origin", c.origin)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if (ck.Name == accounts.SessionCookie || ck.Name == accounts.PendingCookie) && ck.Value != "" {
			c.e.remember(ck.Value)
		}
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	if resp.StatusCode >= 400 {
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
			t.Fatalf("%s %s: error body %q is not the uniform JSON error", method, path, raw)
		}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp
}

// errorCode returns the error code of a response do returned.
func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var eb struct {
		Error struct{ Code string } `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &eb)
	return eb.Error.Code
}

func (e *env) remember(secret string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, secret)
}

// rememberPlain records secrets that are not tokens (a TOTP secret in
// each of its forms, a backup code with and without its dash) for the
// scan.
func (e *env) rememberPlain(secrets ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.plain = append(e.plain, secrets...)
}

// assertNoPlaintext scans the rows of every table that holds credentials
// or their traces, and the logs, for any plaintext token the test saw.
func (e *env) assertNoPlaintext(t *testing.T) {
	t.Helper()
	e.svc.Wait()
	var dump strings.Builder
	for _, table := range []string{"sessions", "api_tokens", "audit_events", "event_outbox", "users", "git_provider_tokens", "backup_codes", "pending_totps"} {
		rows, err := e.st.Pool().Query(context.Background(), `SELECT t::text FROM `+table+` t`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			dump.WriteString(s + "\n")
		}
		rows.Close()
	}
	logs := e.logs.String()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.secrets) == 0 {
		t.Error("the test handed out no token to look for")
	}
	for _, s := range e.secrets {
		// Anything from the random part on would be a leak, so look for
		// the full token and its random part alone.
		for _, needle := range []string{s, s[4:]} {
			if strings.Contains(dump.String(), needle) {
				t.Errorf("a plaintext token is stored in the database")
			}
			if strings.Contains(logs, needle) {
				t.Errorf("a plaintext token is in the logs")
			}
		}
	}
	for _, s := range e.plain {
		if strings.Contains(dump.String(), s) {
			t.Errorf("a plaintext TOTP secret or backup code is stored in the database")
		}
		if strings.Contains(logs, s) {
			t.Errorf("a plaintext TOTP secret or backup code is in the logs")
		}
	}
	// The first session or API token's hash must be in the dump.
	for _, s := range e.secrets {
		if strings.HasPrefix(s, accounts.SessionPrefix) || strings.HasPrefix(s, accounts.APITokenPrefix) {
			if !strings.Contains(dump.String(), accounts.HashToken(s)) {
				t.Error("the scan did not see the first token's hash: is it scanning the right rows?")
			}
			break
		}
	}
}

func decode(resp *http.Response, out any) error { return json.NewDecoder(resp.Body).Decode(out) }
