package userapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
	"github.com/wisehosting/wisehosting/core/hub"
	"github.com/wisehosting/wisehosting/core/mail"
	"github.com/wisehosting/wisehosting/core/plans"
	"github.com/wisehosting/wisehosting/core/scheduler"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/userapi"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// env is the Service behind the core's router and accounts' middleware on
// a loopback test server, with two users (ada, the owner in most tests,
// and eve) and an API token each.
type env struct {
	t     *testing.T
	st    *store.Store
	svc   *userapi.Service
	srv   *httptest.Server
	ada   *store.User
	eve   *store.User
	token map[int64]string // user id → API token
	logs  *fakeLogs
}

// fakeLogs is the hub's side of log streams: a real log bus, and the
// workers "connected to this core".
type fakeLogs struct {
	bus       *hub.LogBus
	mu        sync.Mutex
	connected map[int64]bool
}

func (f *fakeLogs) Bus() *hub.LogBus { return f.bus }

func (f *fakeLogs) IsConnected(id int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected[id]
}

func (f *fakeLogs) connect(id int64, on bool) {
	f.mu.Lock()
	f.connected[id] = on
	f.mu.Unlock()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with a hook that completes the Options (called with
// the test server's URL known).
func newEnvWith(t *testing.T, opts func(*env, *userapi.Options)) *env {
	t.Helper()
	e := &env{t: t, st: storetest.New(t), token: map[int64]string{},
		logs: &fakeLogs{bus: hub.NewLogBus(), connected: map[int64]bool{}}}
	log := testutil.Logger(t)
	var h http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	mailer, err := mail.New(nil, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := accounts.New(accounts.Options{Store: e.st, Mailer: mailer, RevokeKey: bytes.Repeat([]byte{7}, 32),
		BaseURL: e.srv.URL, RateBurst: 10000, Logger: log.Named("accounts"),
		Argon2: accounts.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	o := userapi.Options{Store: e.st, Auth: acc, Logger: log.Named("userapi"), Plans: plans.New(nil, nil),
		Jobs: &scheduler.Jobs{Store: e.st}, PlatformDomain: "apps.test", AllowLocalRepos: true,
		Logs: e.logs, Cipher: storetest.Cipher(t)}
	if opts != nil {
		opts(e, &o)
	}
	// App changes reach the cache as in the daemon: through NOTIFY.
	lis := e.st.NewListener(log.Named("listen"))
	o.Listener = lis
	if e.svc, err = userapi.New(o); err != nil {
		t.Fatal(err)
	}
	lctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = lis.Run(lctx)
	}()
	t.Cleanup(func() { stop(); <-done })
	a, err := api.New(api.Options{Logger: log.Named("http")})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Register(a.Group())
	h = a
	ctx := context.Background()
	for _, email := range []string{"ada@example.com", "eve@example.com"} {
		u, err := e.st.CreateUser(ctx, store.NewUser{Email: email, Name: strings.Split(email, "@")[0]})
		if err != nil {
			t.Fatal(err)
		}
		tok, hash, err := accounts.NewToken("wht_")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.CreateAPIToken(ctx, store.NewAPIToken{UserID: u.ID, Name: "test", TokenHash: hash, Prefix: tok[:8]}); err != nil {
			t.Fatal(err)
		}
		e.token[u.ID] = tok
		if e.ada == nil {
			e.ada = u
		} else {
			e.eve = u
		}
	}
	return e
}

// reply is a decoded response.
type reply struct {
	Status int
	Body   []byte
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r reply) JSON(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v\n%s", r.Status, err, r.Body)
	}
}

// Domain decodes the body's "domain" member into v.
func (r reply) Domain(t *testing.T, v any) {
	t.Helper()
	var b struct{ Domain json.RawMessage }
	r.JSON(t, &b)
	if err := json.Unmarshal(b.Domain, v); err != nil {
		t.Fatalf("response %d has no domain: %v\n%s", r.Status, err, r.Body)
	}
}

// ErrorCode returns the code of an error body, "" when there is none.
func (r reply) ErrorCode() string {
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Code
}

// do sends a request as user (nil: unauthenticated) with body marshalled
// as JSON (nil: none; a string or []byte is sent as is).
func (e *env) do(user *store.User, method, path string, body any) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != nil {
		req.Header.Set("Authorization", "Bearer "+e.token[user.ID])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{Status: resp.StatusCode, Body: b}
}

// must is do that fails the test unless the status is want.
func (e *env) must(user *store.User, want int, method, path string, body any) reply {
	e.t.Helper()
	r := e.do(user, method, path, body)
	if r.Status != want {
		e.t.Fatalf("%s %s: status %d, want %d\n%s", method, path, r.Status, want, r.Body)
	}
	return r
}
