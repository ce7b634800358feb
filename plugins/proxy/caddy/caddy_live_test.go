//go:build linux

package caddy

// The live tests run the real Caddy (2.6 or later, from PATH, started by
// caddytest) against the plugin: Caddy listens on 127.0.0.1 only, keeps
// every file under the test's temporary directory, and never reaches
// another machine (TLS is off or from Caddy's internal CA; any HTTP it would
// send elsewhere goes to a dead proxy on 127.0.0.1). They are left out with
// -short.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/plugins/proxy/caddy/caddytest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route/routetest"
)

// liveTimeout bounds every wait for Caddy.
const liveTimeout = 20 * time.Second

// startCaddy starts Caddy through caddytest (its admin API only, on a free
// 127.0.0.1 port; stopped, its whole process group, when the test ends),
// skipping the test under -short.
func startCaddy(t *testing.T) *caddytest.Caddy {
	t.Helper()
	skipShort(t)
	return caddytest.Start(t)
}

// caddyBinary returns the path of the caddy binary, failing the test when
// there is none: the live tests are part of the suite, not optional.
func caddyBinary(t *testing.T) string {
	t.Helper()
	skipShort(t)
	return caddytest.Find(t)
}

// skipShort leaves a live test out under go test -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the real Caddy")
	}
}

// plainClient talks to Caddy directly: no proxy, no redirects followed, a
// new connection each time.
var plainClient = &http.Client{
	Timeout:       5 * time.Second,
	Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// answer is what a request got: a status, a body and a Location, or an
// error.
type answer struct {
	status   int
	body     string
	location string
	err      error
}

func (a answer) String() string {
	if a.err != nil {
		return "error: " + a.err.Error()
	}
	return fmt.Sprintf("%d %q (Location %q)", a.status, a.body, a.location)
}

// get sends GET <base><path> with Host host through client.
func get(client *http.Client, base, host, path string) answer {
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		return answer{err: err}
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return answer{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
}

// eventually polls check until it returns "" or liveTimeout passes, and
// returns how long that took; the last complaint fails the test.
func eventually(t *testing.T, what string, check func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		msg := check()
		if msg == "" {
			return time.Since(start)
		}
		if time.Since(start) > liveTimeout {
			t.Fatalf("%s: still not so after %v: %s", what, liveTimeout, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wants returns a check that a request answers status with body.
func wants(client *http.Client, base, host, path string, status int, body string) func() string {
	return func() string {
		a := get(client, base, host, path)
		if a.err != nil || a.status != status || (body != "" && a.body != body) {
			return fmt.Sprintf("%s %s%s: got %v, want %d %q", host, base, path, a, status, body)
		}
		return ""
	}
}

// startApp starts an app: it answers every request with its marker and the
// Host it was asked for.
func startApp(t *testing.T, marker string) (url string, wantBody func(host string) string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s host=%s", marker, r.Host)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func(host string) string { return marker + " host=" + host }
}

// applyLive applies routes and fails the test on error.
func applyLive(t *testing.T, p *Plugin, gen uint64, routes ...*pluginv1.Route) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), liveTimeout)
	defer cancel()
	resp, err := p.Apply(ctx, &pluginv1.ApplyRequest{Routes: routes, Generation: gen})
	if err != nil {
		t.Fatalf("Apply generation %d: %v", gen, err)
	}
	if !resp.GetApplied() {
		t.Fatalf("Apply generation %d: not applied: %v", gen, resp)
	}
}

const (
	shopHost = "shop.apps.example.test"
	blogHost = "blog.apps.example.test"
)

func TestLiveCaddyHTTP(t *testing.T) {
	c := startCaddy(t)
	httpAddr := caddytest.FreeAddr(t)
	base := "http://" + httpAddr
	p, _ := newTestPlugin(t, fmt.Sprintf("admin = %q\ntls = \"off\"\nhttp_listen = %q", c.Admin, httpAddr))
	shopURL, shopBody := startApp(t, "shop-marker")
	blogURL, blogBody := startApp(t, "blog-marker")
	shop := &pluginv1.Route{AppId: 1, Name: "shop", Hosts: []string{shopHost, "www.shop.example.test"}, Upstream: shopURL}
	blog := &pluginv1.Route{AppId: 2, Name: "blog", Hosts: []string{blogHost}, Upstream: blogURL}

	applyLive(t, p, 1, shop, blog)
	live := eventually(t, "shop live", wants(plainClient, base, shopHost, "/", 200, shopBody(shopHost)))
	t.Logf("route live %v after Apply returned", live)
	eventually(t, "second host", wants(plainClient, base, "www.shop.example.test", "/x?y=1", 200, shopBody("www.shop.example.test")))
	eventually(t, "blog live", wants(plainClient, base, blogHost, "/", 200, blogBody(blogHost)))
	eventually(t, "unknown host 404", wants(plainClient, base, "nobody.apps.example.test", "/", 404, ""))
	// caddytest's own request sees the same.
	if code, body, err := c.Get(httpAddr, shopHost); err != nil || code != http.StatusOK || body != shopBody(shopHost) {
		t.Errorf("caddytest Get %s = %d %q %v, want 200 %q", shopHost, code, body, err, shopBody(shopHost))
	}
	if code, _, err := c.Get(httpAddr, "nobody.apps.example.test"); err != nil || code != http.StatusNotFound {
		t.Errorf("caddytest Get of an unknown host = %d %v, want 404", code, err)
	}
	if err := c.AdminUp(); err != nil {
		t.Fatalf("admin API after the first apply: %v", err)
	}

	// Applying again (the same table) keeps everything up.
	applyLive(t, p, 2, shop, blog)
	if err := c.AdminUp(); err != nil {
		t.Fatalf("admin API after the second apply: %v", err)
	}
	eventually(t, "shop still live", wants(plainClient, base, shopHost, "/", 200, shopBody(shopHost)))

	// Without the shop, its hosts get a 404; the blog stays.
	applyLive(t, p, 3, blog)
	gone := eventually(t, "shop gone", wants(plainClient, base, shopHost, "/", 404, ""))
	t.Logf("route gone %v after Apply returned", gone)
	eventually(t, "blog still live", wants(plainClient, base, blogHost, "/", 200, blogBody(blogHost)))
	if err := c.AdminUp(); err != nil {
		t.Fatalf("admin API after the third apply: %v", err)
	}

	// Caddy rejecting a configuration (its HTTP port is taken): the error
	// carries Caddy's status and message, and Caddy keeps the previous
	// configuration and its admin API.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	bad, _ := newTestPlugin(t, fmt.Sprintf("admin = %q\ntls = \"off\"\nhttp_listen = %q", c.Admin, taken.Addr().String()))
	_, err = bad.Apply(context.Background(), &pluginv1.ApplyRequest{Routes: []*pluginv1.Route{shop}, Generation: 4})
	if err == nil {
		t.Fatal("Apply with a taken port succeeded")
	}
	for _, want := range []string{"caddy: apply:", c.Admin + "/load", "400 Bad Request", "address already in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	t.Logf("rejected: %v", err)
	if err := c.AdminUp(); err != nil {
		t.Fatalf("admin API after a rejected load: %v", err)
	}
	eventually(t, "previous config kept", wants(plainClient, base, blogHost, "/", 200, blogBody(blogHost)))
	eventually(t, "previous config kept (shop)", wants(plainClient, base, shopHost, "/", 404, ""))
}

// tlsClient returns a client that sends every request to addr with SNI
// host, trusting only Caddy's local root CA.
func tlsClient(roots *x509.CertPool, addr, host string) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			},
			TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// localRoot waits for the root certificate of Caddy's local CA.
func localRoot(t *testing.T, c *caddytest.Caddy) *x509.CertPool {
	t.Helper()
	path := c.RootCA()
	roots := x509.NewCertPool()
	eventually(t, "local CA root", func() string {
		pem, err := os.ReadFile(path)
		if err != nil {
			return err.Error()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return path + " holds no certificate"
		}
		return ""
	})
	return roots
}

func TestLiveCaddyInternalTLS(t *testing.T) {
	c := startCaddy(t)
	httpAddr := caddytest.FreeAddr(t)
	httpsAddr := caddytest.FreeAddr(t)
	p, _ := newTestPlugin(t, fmt.Sprintf("admin = %q\ntls = \"internal\"\nhttp_listen = %q\nhttps_listen = %q",
		c.Admin, httpAddr, httpsAddr))
	shopURL, shopBody := startApp(t, "shop-marker")
	shop := &pluginv1.Route{AppId: 1, Name: "shop", Hosts: []string{shopHost}, Upstream: shopURL}

	applyLive(t, p, 1, shop)
	roots := localRoot(t, c)
	secure := tlsClient(roots, httpsAddr, shopHost)
	base := "https://" + shopHost
	live := eventually(t, "shop live over HTTPS", wants(secure, base, shopHost, "/", 200, shopBody(shopHost)))
	t.Logf("route live over HTTPS %v after Apply returned (certificate from Caddy's local CA)", live)

	// Plain HTTP redirects the routed host to HTTPS (no port in the
	// Location: https_port is taken to be the public HTTPS port) and
	// answers 404 for anything else.
	plain := "http://" + httpAddr
	eventually(t, "redirect", func() string {
		a := get(plainClient, plain, shopHost, "/cart?item=1")
		if a.err != nil || a.status != http.StatusPermanentRedirect || a.location != "https://"+shopHost+"/cart?item=1" {
			return fmt.Sprintf("got %v, want 308 to https://%s/cart?item=1", a, shopHost)
		}
		return ""
	})
	eventually(t, "unknown host 404 over HTTP", wants(plainClient, plain, "nobody.apps.example.test", "/", 404, ""))
	// caddytest's Get returns the redirect rather than following it.
	if code, _, err := c.Get(httpAddr, shopHost); err != nil || code != http.StatusPermanentRedirect {
		t.Errorf("caddytest Get %s over HTTP = %d %v, want 308", shopHost, code, err)
	}
	// An unknown host over HTTPS gets no certificate.
	if a := get(tlsClient(roots, httpsAddr, "nobody.apps.example.test"), "https://nobody.apps.example.test", "nobody.apps.example.test", "/"); a.err == nil && a.status != 404 {
		t.Errorf("unknown host over HTTPS: %v", a)
	}

	applyLive(t, p, 2, shop)
	if err := c.AdminUp(); err != nil {
		t.Fatalf("admin API after the second apply: %v", err)
	}

	// Without the app: no redirect, and nothing served over HTTPS.
	applyLive(t, p, 3)
	gone := eventually(t, "shop gone over HTTP", wants(plainClient, plain, shopHost, "/", 404, ""))
	t.Logf("route gone %v after Apply returned", gone)
	eventually(t, "shop gone over HTTPS", func() string {
		if a := get(secure, base, shopHost, "/"); a.err == nil && a.status != 404 {
			return fmt.Sprintf("got %v, want 404 or no TLS", a)
		}
		return ""
	})
	if err := c.AdminUp(); err != nil {
		t.Fatalf("admin API after the third apply: %v", err)
	}
}

// askServer is the core's on-demand TLS endpoint: 200 for the hosts in
// allow, 404 otherwise; it records what it was asked.
type askServer struct {
	allow map[string]bool
	mu    sync.Mutex
	asked []string
}

func (a *askServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := r.URL.Query().Get("domain")
	a.mu.Lock()
	a.asked = append(a.asked, d)
	a.mu.Unlock()
	if !a.allow[d] {
		http.NotFound(w, r)
	}
}

func (a *askServer) wasAsked(d string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, x := range a.asked {
		if x == d {
			return true
		}
	}
	return false
}

func TestLiveCaddyOnDemandTLS(t *testing.T) {
	c := startCaddy(t)
	ask := &askServer{allow: map[string]bool{shopHost: true}}
	askSrv := httptest.NewServer(ask)
	t.Cleanup(askSrv.Close)
	httpAddr := caddytest.FreeAddr(t)
	httpsAddr := caddytest.FreeAddr(t)
	p, _ := newTestPlugin(t, fmt.Sprintf("admin = %q\ntls = \"internal\"\nhttp_listen = %q\nhttps_listen = %q\non_demand_ask = %q",
		c.Admin, httpAddr, httpsAddr, askSrv.URL+"/v1/proxy/tls/ask"))
	shopURL, shopBody := startApp(t, "shop-marker")
	blogURL, _ := startApp(t, "blog-marker")
	applyLive(t, p, 1,
		&pluginv1.Route{AppId: 1, Name: "shop", Hosts: []string{shopHost}, Upstream: shopURL},
		&pluginv1.Route{AppId: 2, Name: "blog", Hosts: []string{blogHost}, Upstream: blogURL})
	roots := localRoot(t, c)

	// The certificate is obtained at the first handshake, once the ask
	// endpoint agrees.
	live := eventually(t, "shop live over HTTPS", wants(tlsClient(roots, httpsAddr, shopHost), "https://"+shopHost, shopHost, "/", 200, shopBody(shopHost)))
	t.Logf("on-demand certificate and route live %v after Apply returned", live)
	if !ask.wasAsked(shopHost) {
		t.Errorf("Caddy did not ask about %s (asked: %v)", shopHost, ask.asked)
	}
	// A routed host the endpoint refuses gets no certificate.
	if a := get(tlsClient(roots, httpsAddr, blogHost), "https://"+blogHost, blogHost, "/"); a.err == nil {
		t.Errorf("%s got a certificate the ask endpoint refused: %v", blogHost, a)
	}
	if !ask.wasAsked(blogHost) {
		t.Errorf("Caddy did not ask about %s", blogHost)
	}
}

// Caddy itself accepts every golden configuration (caddy validate decodes
// and provisions every module, rejecting unknown fields, without starting
// listeners or reaching out).
func TestLiveCaddyValidatesGolden(t *testing.T) {
	bin := caddyBinary(t)
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			dir := t.TempDir()
			abs, _ := filepath.Abs(f)
			ctx, cancel := context.WithTimeout(context.Background(), liveTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "validate", "--config", abs)
			cmd.Dir, cmd.Env = dir, caddytest.Env(dir)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Valid configuration") {
				t.Errorf("caddy validate %s: %v\n%s", f, err, out)
			}
		})
	}
}

// A 20,000-route table loads well within ApplyTimeout.
func TestLiveCaddy20000(t *testing.T) {
	c := startCaddy(t)
	httpAddr := caddytest.FreeAddr(t)
	p, _ := newTestPlugin(t, fmt.Sprintf("admin = %q\ntls = \"off\"\nhttp_listen = %q", c.Admin, httpAddr))
	appURL, appBody := startApp(t, "app-marker")
	routes := routetest.ManyRoutes(20000)
	routes[12345].Upstream = appURL
	host := routes[12345].GetHosts()[0]
	for _, gen := range []uint64{1, 2} {
		start := time.Now()
		applyLive(t, p, gen, routes...)
		took := time.Since(start)
		t.Logf("Apply of 20,000 routes (generation %d): %v", gen, took)
		if took > ApplyTimeout/3 {
			t.Errorf("Apply took %v, too close to ApplyTimeout (%v)", took, ApplyTimeout)
		}
	}
	eventually(t, "route live", wants(plainClient, "http://"+httpAddr, host, "/", 200, appBody(host)))
	if err := c.AdminUp(); err != nil {
		t.Fatal(err)
	}
}
