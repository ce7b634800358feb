package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/core/testutil"
)

func newTestServer(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	opts.Logger = testutil.Logger(t)
	if opts.Registry == nil {
		opts.Registry = metrics.NewRegistry()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	g := s.Group()
	g.GET("/boom", func(http.ResponseWriter, bunrouter.Request) error { panic("kaboom") })
	g.GET("/secret-failure", func(http.ResponseWriter, bunrouter.Request) error {
		return errors.New("database password is hunter2")
	})
	g.GET("/teapot", func(http.ResponseWriter, bunrouter.Request) error {
		return Errorf(http.StatusTeapot, "teapot", "short and stout").WithCause(errors.New("internal detail"))
	})
	g.POST("/echo", func(w http.ResponseWriter, req bunrouter.Request) error {
		var in struct {
			Name string `json:"name"`
		}
		if err := DecodeJSON(req.Request, 64, &in); err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, in)
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

type errResp struct {
	Error struct{ Code, Message string } `json:"error"`
}

func do(t *testing.T, method, url, body string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestHealth(t *testing.T) {
	fixed := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	srv := newTestServer(t, Options{Now: func() time.Time { return fixed }})
	code, body, hdr := do(t, "GET", srv.URL+"/health", "", nil)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q", ct)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got["status"] != "ok" || got["time"] != "2026-11-23T10:00:00Z" {
		t.Fatalf("body %v", got)
	}
}

func TestReady(t *testing.T) {
	for _, tc := range []struct {
		name    string
		check   func(context.Context) error
		timeout time.Duration // 0: the default ReadyTimeout
		status  int
		code    string // of the error body
	}{
		{name: "no check", status: 200},
		{name: "check passes", status: 200, check: func(ctx context.Context) error {
			if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > ReadyTimeout {
				return fmt.Errorf("check context deadline %v (set %v), want at most %s away", dl, ok, ReadyTimeout)
			}
			return nil
		}},
		{name: "check fails", status: 503, code: "not_ready", check: func(context.Context) error {
			return errors.New("dial unix /run/pg/.s.PGSQL.5432: connect: no such file or directory")
		}},
		{name: "check hangs", status: 503, code: "not_ready", timeout: 50 * time.Millisecond, check: func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Options{Logger: testutil.Logger(t), Registry: metrics.NewRegistry(), Ready: tc.check})
			if err != nil {
				t.Fatal(err)
			}
			if tc.timeout > 0 {
				s.readyTimeout = tc.timeout
			}
			srv := httptest.NewServer(s)
			defer srv.Close()
			began := time.Now()
			code, body, _ := do(t, "GET", srv.URL+"/ready", "", nil)
			if code != tc.status {
				t.Fatalf("status %d, want %d (body %s)", code, tc.status, body)
			}
			if tc.timeout > 0 && time.Since(began) > tc.timeout+time.Second {
				t.Errorf("a hanging check held /ready for %s", time.Since(began))
			}
			if tc.status == 200 {
				if strings.TrimSpace(body) != `{"status":"ready"}` {
					t.Fatalf("body %s", body)
				}
				return
			}
			var e errResp
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Fatalf("body %s, want the error body with code %q", body, tc.code)
			}
			if strings.Contains(body, "PGSQL") || strings.Contains(body, "deadline") {
				t.Fatalf("the check's error leaked: %s", body)
			}
		})
	}
}

func TestErrorsAreUniformJSON(t *testing.T) {
	srv := newTestServer(t, Options{})
	cases := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		code                     string
	}{
		{"unknown route", "GET", "/nope", "", nil, 404, "not_found"},
		{"wrong method", "DELETE", "/health", "", nil, 405, "method_not_allowed"},
		{"panic", "GET", "/boom", "", nil, 500, "internal"},
		{"plain error hides its text", "GET", "/secret-failure", "", nil, 500, "internal"},
		{"api error with cause", "GET", "/teapot", "", nil, 418, "teapot"},
		{"bad json", "POST", "/echo", "{", nil, 400, "bad_json"},
		{"unknown field", "POST", "/echo", `{"name":"a","x":1}`, nil, 400, "bad_json"},
		{"trailing data", "POST", "/echo", `{"name":"a"} {}`, nil, 400, "bad_json"},
		{"too large", "POST", "/echo", `{"name":"` + strings.Repeat("a", 100) + `"}`, nil, 413, "too_large"},
		{"wrong content type", "POST", "/echo", `{"name":"a"}`, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := do(t, c.method, srv.URL+c.path, c.body, c.hdr)
			if code != c.status {
				t.Fatalf("status = %d, want %d (body %s)", code, c.status, body)
			}
			var e errResp
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("body is not JSON: %q", body)
			}
			if e.Error.Code != c.code || e.Error.Message == "" {
				t.Fatalf("error = %+v, want code %q", e.Error, c.code)
			}
			if strings.Contains(body, "hunter2") || strings.Contains(body, "internal detail") {
				t.Fatalf("internal error text leaked: %s", body)
			}
		})
	}
	code, body, _ := do(t, "POST", srv.URL+"/echo", `{"name":"wise"}`, map[string]string{"Content-Type": "application/json; charset=utf-8"})
	if code != 200 || !strings.Contains(body, `"wise"`) {
		t.Fatalf("echo: %d %s", code, body)
	}
}

func TestMetrics(t *testing.T) {
	srv := newTestServer(t, Options{})
	do(t, "GET", srv.URL+"/health", "", nil)
	do(t, "GET", srv.URL+"/nope", "", nil)
	code, body, _ := do(t, "GET", srv.URL+"/metrics", "", nil)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		`wisehosting_http_requests_total{code="200",method="GET",route="/health"} 1`,
		`wisehosting_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		"go_goroutines", "process_resident_memory_bytes", "wisehosting_http_request_duration_seconds_bucket",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestMetricsToken(t *testing.T) {
	srv := newTestServer(t, Options{MetricsToken: "scrape-token-123"})
	for _, c := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong", 401}, {"Basic scrape-token-123", 401}, {"Bearer scrape-token-123", 200}, {"bearer scrape-token-123", 200}} {
		code, _, hdr := do(t, "GET", srv.URL+"/metrics", "", map[string]string{"Authorization": c.auth})
		if code != c.want {
			t.Errorf("auth %q: status %d, want %d", c.auth, code, c.want)
		}
		if code == 401 && hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("auth %q: 401 without WWW-Authenticate", c.auth)
		}
	}
}
