package api_test

import (
	"compress/gzip"
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

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/proxy"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/mock"
)

type staticRoutes []store.RouteRow

func (s staticRoutes) ListRoutes(context.Context) ([]store.RouteRow, error) { return s, nil }

type nilStates struct{}

func (nilStates) State() *proxy.State { return nil }

// fakeWorkers authenticates "good-key" as worker 7.
type fakeWorkers struct {
	rows []store.WorkerRouteRow
}

func (f *fakeWorkers) Authenticate(_ context.Context, bearer string) (*workerauth.Identity, error) {
	switch bearer {
	case "good-key":
		return &workerauth.Identity{Worker: &store.Worker{ID: 7}}, nil
	case "expired.jwt.token":
		return nil, secrets.ErrTokenExpired
	case "broken":
		return nil, errors.New("database unreachable")
	}
	return nil, workerauth.ErrUnknownKey
}

func (f *fakeWorkers) ListWorkerRoutes(_ context.Context, workerID int64) ([]store.WorkerRouteRow, error) {
	if workerID != 7 {
		return nil, errors.New("wrong worker")
	}
	return f.rows, nil
}

// proxyServer serves ProxyRoutes over a manager with one mock proxy plugin
// "traefik" that lists the routes as text.
func proxyServer(t *testing.T, token string, states api.ProxyStates) *httptest.Server {
	t.Helper()
	srvAPI, err := api.New(api.Options{Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if states == nil {
		m, err := proxy.NewManager(proxy.Options{
			Source: staticRoutes{{AppID: 1, Subdomain: "shop", Port: 3000, WorkerAddress: "10.0.0.1", Domains: []string{"shop.example.org"}}},
			Domain: "apps.example.com", Targets: []proxy.Target{{Name: "traefik", Proxy: &mock.Proxy{}}}, PollInterval: time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { m.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		deadline := time.Now().Add(5 * time.Second)
		for m.State() == nil || !hasOutput(m.State(), "traefik") {
			if time.Now().After(deadline) {
				t.Fatal("no rendering")
			}
			time.Sleep(time.Millisecond)
		}
		states = m
	}
	workers := &fakeWorkers{rows: []store.WorkerRouteRow{
		{AppID: 1, Name: "web-app1", UUID: "0b7c6c1e-55b1-4c43-9d0e-3c1f4f0c2a10", Runtime: "podman", Port: 30001, PortEnv: "3000", Domains: []string{"web.example", "www.web.example"}},
		{AppID: 2, Name: "bin-app1", UUID: "5e0f3a55-7c71-4d4f-8f3e-2a9b1b6c9d11", Runtime: "exec", Port: 30002, Domains: []string{"bin.example"}},
	}}
	(&api.ProxyRoutes{Token: token, States: states, Auth: workers, Store: workers}).Register(srvAPI.Group())
	srv := httptest.NewServer(srvAPI)
	t.Cleanup(srv.Close)
	return srv
}

func hasOutput(s *proxy.State, name string) bool {
	_, ok := s.Output(name)
	return ok
}

type response struct {
	code   int
	header http.Header
	body   string
}

func get(t *testing.T, url, bearer string, header ...string) response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

// errorCode decodes the uniform error body.
func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an error body: %q", body)
	}
	return e.Error.Code
}

func TestProxyConfigEndpoints(t *testing.T) {
	const token = "proxy-token-0123456789abcdef"
	srv := proxyServer(t, token, nil)
	for _, path := range []string{"/v1/traefik/proxy-config", "/v1/proxy/traefik/config"} {
		t.Run(path, func(t *testing.T) {
			for _, bearer := range []string{"", "wrong", token + "x", "good-key"} {
				if r := get(t, srv.URL+path, bearer); r.code != 401 || errorCode(t, r.body) != "unauthorized" {
					t.Fatalf("bearer %q: %d %s", bearer, r.code, r.body)
				}
			}
			r := get(t, srv.URL+path, token)
			if r.code != 200 || r.body != "generation 1\nshop http://10.0.0.1:3000 shop.apps.example.com shop.example.org\n" {
				t.Fatalf("%d %q", r.code, r.body)
			}
			etag := r.header.Get("ETag")
			if etag != proxy.ETag([]byte(r.body)) || r.header.Get("Content-Type") != "text/plain; charset=utf-8" ||
				r.header.Get("X-Wisehosting-Generation") != "1" || r.header.Get("Cache-Control") != "no-cache" {
				t.Errorf("headers %v", r.header)
			}
			for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
				nm := get(t, srv.URL+path, token, "If-None-Match", inm)
				if nm.code != 304 || nm.body != "" || nm.header.Get("ETag") != etag {
					t.Errorf("If-None-Match %s: %d %q", inm, nm.code, nm.body)
				}
			}
			if r := get(t, srv.URL+path, token, "If-None-Match", `"stale"`); r.code != 200 {
				t.Errorf("stale If-None-Match: %d", r.code)
			}
		})
	}
	r := get(t, srv.URL+"/v1/proxy/caddy/config", token)
	if r.code != 404 || errorCode(t, r.body) != "not_found" || !strings.Contains(r.body, `\"caddy\"`) {
		t.Errorf("unknown plugin: %d %s", r.code, r.body)
	}
}

func TestProxyConfigEmptyTokenRefusesAll(t *testing.T) {
	srv := proxyServer(t, "", nil)
	for _, bearer := range []string{"", "anything"} {
		if r := get(t, srv.URL+"/v1/traefik/proxy-config", bearer); r.code != 401 {
			t.Errorf("bearer %q: %d", bearer, r.code)
		}
	}
}

func TestProxyConfigNotReady(t *testing.T) {
	srv := proxyServer(t, "tok-0123456789", nilStates{})
	r := get(t, srv.URL+"/v1/traefik/proxy-config", "tok-0123456789")
	if r.code != 503 || errorCode(t, r.body) != "not_ready" || r.header.Get("Retry-After") == "" {
		t.Errorf("%d %v %s", r.code, r.header, r.body)
	}
	if r := get(t, srv.URL+"/v1/proxy/tls/ask?domain=shop.apps.example.com", ""); r.code != 503 {
		t.Errorf("ask before the first table: %d", r.code)
	}
}

func TestTLSAsk(t *testing.T) {
	srv := proxyServer(t, "tok-0123456789", nil)
	for _, tt := range []struct {
		query string
		code  int
	}{
		{"domain=shop.apps.example.com", 200},
		{"domain=shop.example.org", 200},
		{"domain=other.apps.example.com", 404},
		{"domain=SHOP.apps.example.com", 404},
		{"domain=", 400},
		{"", 400},
	} {
		if r := get(t, srv.URL+"/v1/proxy/tls/ask?"+tt.query, ""); r.code != tt.code {
			t.Errorf("%s: %d %s, want %d", tt.query, r.code, r.body, tt.code)
		}
	}
}

func TestLegacyWorkerConfig(t *testing.T) {
	srv := proxyServer(t, "tok-0123456789", nil)
	for _, bearer := range []string{"", "unknown", "expired.jwt.token", "tok-0123456789"} {
		if r := get(t, srv.URL+"/v1/traefik/config", bearer); r.code != 401 || errorCode(t, r.body) != "unauthorized" {
			t.Errorf("bearer %q: %d %s", bearer, r.code, r.body)
		}
	}
	if r := get(t, srv.URL+"/v1/traefik/config", "broken"); r.code != 500 {
		t.Errorf("store failure: %d", r.code)
	}
	r := get(t, srv.URL+"/v1/traefik/config", "good-key")
	want := `{"http":{"routers":{"bin-app1":{"rule":"Host(` + "`bin.example`" + `)","service":"bin-app1"},` +
		`"web-app1":{"rule":"Host(` + "`web.example`" + `) || Host(` + "`www.web.example`" + `)","service":"web-app1"}},` +
		`"services":{"bin-app1":{"loadBalancer":{"servers":[{"url":"http://127.0.0.1:30002"}]}},` +
		`"web-app1":{"loadBalancer":{"servers":[{"url":"http://wh-0b7c6c1e-55b1-4c43-9d0e-3c1f4f0c2a10:3000"}]}}}}}` + "\n"
	if r.code != 200 || r.body != want {
		t.Fatalf("%d\n got %s\nwant %s", r.code, r.body, want)
	}
	if nm := get(t, srv.URL+"/v1/traefik/config", "good-key", "If-None-Match", r.header.Get("ETag")); nm.code != 304 {
		t.Errorf("If-None-Match: %d", nm.code)
	}
}

// A large rendering is served gzip-compressed (compressed once per
// generation) to clients that accept it, with its own strong ETag; either
// representation's tag gets a 304.
func TestProxyConfigGzip(t *testing.T) {
	const token = "proxy-token-0123456789abcdef"
	var rows staticRoutes
	for i := range 100 {
		rows = append(rows, store.RouteRow{AppID: int64(i + 1), Subdomain: fmt.Sprintf("app-%03d", i), Port: 3000 + i, WorkerAddress: "10.0.0.1"})
	}
	m, err := proxy.NewManager(proxy.Options{Source: rows, Domain: "apps.example.com",
		Targets: []proxy.Target{{Name: "traefik", Proxy: &mock.Proxy{}}}, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for m.State() == nil || !hasOutput(m.State(), "traefik") {
		time.Sleep(time.Millisecond)
	}
	srv := proxyServer(t, token, m)
	url := srv.URL + "/v1/traefik/proxy-config"

	plain := get(t, url, token, "Accept-Encoding", "identity")
	if plain.code != 200 || plain.header.Get("Content-Encoding") != "" || plain.header.Get("Vary") != "Accept-Encoding" || len(plain.body) < 2048 {
		t.Fatalf("identity: %d %v %d bytes", plain.code, plain.header, len(plain.body))
	}
	for _, ae := range []string{"gzip", "br;q=1.0, gzip;q=0.8", "*", "GZIP"} {
		r := get(t, url, token, "Accept-Encoding", ae)
		if r.code != 200 || r.header.Get("Content-Encoding") != "gzip" || r.header.Get("ETag") == plain.header.Get("ETag") {
			t.Fatalf("Accept-Encoding %q: %d %v", ae, r.code, r.header)
		}
		zr, err := gzip.NewReader(strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil || string(unzipped) != plain.body {
			t.Fatalf("Accept-Encoding %q: the gzip body does not decompress to the plain one (%v)", ae, err)
		}
		if len(r.body)*3 > len(plain.body) {
			t.Errorf("gzip body %d bytes for %d plain", len(r.body), len(plain.body))
		}
		for _, inm := range []string{plain.header.Get("ETag"), r.header.Get("ETag")} {
			if nm := get(t, url, token, "Accept-Encoding", ae, "If-None-Match", inm); nm.code != 304 || nm.header.Get("Content-Encoding") != "" {
				t.Errorf("Accept-Encoding %q, If-None-Match %s: %d %v", ae, inm, nm.code, nm.header)
			}
		}
	}
	for _, ae := range []string{"gzip;q=0", "deflate", "gzip; q=0.000"} {
		if r := get(t, url, token, "Accept-Encoding", ae); r.header.Get("Content-Encoding") != "" || r.body != plain.body {
			t.Errorf("Accept-Encoding %q got %v", ae, r.header)
		}
	}
}
