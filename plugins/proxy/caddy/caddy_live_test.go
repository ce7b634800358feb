//go:build linux

package caddy

// The live tests run the real Caddy (2.6 or later, from PATH) against the
// plugin: Caddy listens on 127.0.0.1 only, keeps every file under the
// test's temporary directory, and never reaches another machine (TLS is off
// or from Caddy's internal CA; any HTTP it would send elsewhere goes to a
// dead proxy on 127.0.0.1). They are left out with -short.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// liveTimeout bounds every wait for Caddy.
const liveTimeout = 20 * time.Second

// caddyBinary returns the path of the caddy binary, failing the test when
// there is none: the live tests are part of the suite, not optional.
func caddyBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the real Caddy")
	}
	path, err := exec.LookPath("caddy")
	if err != nil {
		t.Fatalf("the live tests need the caddy binary (Caddy 2.6 or later) in PATH: %v\n"+
			"install it with `apt-get install caddy` (Debian, Ubuntu) or `make proxies`, or run go test -short to leave the live tests out", err)
	}
	return path
}

// isolatedEnv is the environment Caddy runs in: home, data and config
// directories under dir, and a dead HTTP proxy so that nothing Caddy might
// send off this machine over HTTP gets anywhere (Go never proxies loopback
// addresses, so upstreams and the ask endpoint on 127.0.0.1 are unaffected).
func isolatedEnv(dir string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"HTTP_PROXY=http://127.0.0.1:9",
		"HTTPS_PROXY=http://127.0.0.1:9",
		"http_proxy=http://127.0.0.1:9",
		"https_proxy=http://127.0.0.1:9",
	}
}

// liveCaddy is a running Caddy.
type liveCaddy struct {
	admin string // host:port of the admin API
	dir   string // HOME; XDG_DATA_HOME is dir/data
	log   string // Caddy's output
}

// freePort returns a TCP port on 127.0.0.1 nothing listens on (now).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startCaddy runs `caddy run` with a configuration of just an admin API on
// a free 127.0.0.1 port, waits until the API answers, and stops Caddy (its
// whole process group) when the test ends.
func startCaddy(t *testing.T) *liveCaddy {
	t.Helper()
	bin := caddyBinary(t)
	c := &liveCaddy{admin: "127.0.0.1:" + strconv.Itoa(freePort(t)), dir: t.TempDir()}
	c.log = filepath.Join(c.dir, "caddy.log")
	initial := filepath.Join(c.dir, "initial.json")
	if err := os.WriteFile(initial, []byte(`{"admin":{"listen":"`+c.admin+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", initial)
	cmd.Dir = c.dir
	cmd.Env = isolatedEnv(c.dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, killed with the test binary if that dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting caddy: %v", err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("caddy did not stop within 10s of SIGTERM; killing it")
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		// Nothing of the process group is left.
		if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("a process of caddy's group %d is still there (kill 0: %v)", pgid, err)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		if t.Failed() {
			c.dumpLog(t)
		}
	})

	deadline := time.Now().Add(liveTimeout)
	for {
		select {
		case <-exited:
			c.dumpLog(t)
			t.Fatalf("caddy exited before its admin API answered")
		default:
		}
		if c.adminUp() == nil {
			return c
		}
		if time.Now().After(deadline) {
			c.dumpLog(t)
			t.Fatalf("caddy's admin API at %s did not answer within %v", c.admin, liveTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dumpLog writes the end of Caddy's output to the test log.
func (c *liveCaddy) dumpLog(t *testing.T) {
	t.Helper()
	b, _ := os.ReadFile(c.log)
	if len(b) > 16<<10 {
		b = b[len(b)-16<<10:]
	}
	t.Logf("caddy output (end):\n%s", b)
}

// adminUp checks that the admin API answers GET /config/ on its address
// and keeps itself there.
func (c *liveCaddy) adminUp() error {
	resp, err := plainClient.Get("http://" + c.admin + "/config/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /config/: %s: %s", resp.Status, body)
	}
	var cfg struct{ Admin struct{ Listen string } }
	if err := json.Unmarshal(body, &cfg); err != nil {
		return fmt.Errorf("GET /config/: %v: %s", err, body)
	}
	if cfg.Admin.Listen != c.admin {
		return fmt.Errorf("the running configuration has the admin API on %q, not %q", cfg.Admin.Listen, c.admin)
	}
	return nil
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
	httpAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	base := "http://" + httpAddr
	p, _ := newTestPlugin(t, fmt.Sprintf("admin = %q\ntls = \"off\"\nhttp_listen = %q", "http://"+c.admin, httpAddr))
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
	if err := c.adminUp(); err != nil {
		t.Fatalf("admin API after the first apply: %v", err)
	}

	// Applying again (the same table) keeps everything up.
	applyLive(t, p, 2, shop, blog)
	if err := c.adminUp(); err != nil {
		t.Fatalf("admin API after the second apply: %v", err)
	}
	eventually(t, "shop still live", wants(plainClient, base, shopHost, "/", 200, shopBody(shopHost)))

	// Without the shop, its hosts get a 404; the blog stays.
	applyLive(t, p, 3, blog)
	gone := eventually(t, "shop gone", wants(plainClient, base, shopHost, "/", 404, ""))
	t.Logf("route gone %v after Apply returned", gone)
	eventually(t, "blog still live", wants(plainClient, base, blogHost, "/", 200, blogBody(blogHost)))
	if err := c.adminUp(); err != nil {
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
	bad, _ := newTestPlugin(t, fmt.Sprintf("admin = %q\ntls = \"off\"\nhttp_listen = %q", "http://"+c.admin, taken.Addr().String()))
	_, err = bad.Apply(context.Background(), &pluginv1.ApplyRequest{Routes: []*pluginv1.Route{shop}, Generation: 4})
	if err == nil {
		t.Fatal("Apply with a taken port succeeded")
	}
	for _, want := range []string{"caddy: apply:", c.admin + "/load", "400 Bad Request", "address already in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	t.Logf("rejected: %v", err)
	if err := c.adminUp(); err != nil {
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
func (c *liveCaddy) localRoot(t *testing.T) *x509.CertPool {
	t.Helper()
	path := filepath.Join(c.dir, "data", "caddy", "pki", "authorities", "local", "root.crt")
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
	httpAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	httpsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p, _ := newTestPlugin(t, fmt.Sprintf("admin = %q\ntls = \"internal\"\nhttp_listen = %q\nhttps_listen = %q",
		"http://"+c.admin, httpAddr, httpsAddr))
	shopURL, shopBody := startApp(t, "shop-marker")
	shop := &pluginv1.Route{AppId: 1, Name: "shop", Hosts: []string{shopHost}, Upstream: shopURL}

	applyLive(t, p, 1, shop)
	roots := c.localRoot(t)
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
	// An unknown host over HTTPS gets no certificate.
	if a := get(tlsClient(roots, httpsAddr, "nobody.apps.example.test"), "https://nobody.apps.example.test", "nobody.apps.example.test", "/"); a.err == nil && a.status != 404 {
		t.Errorf("unknown host over HTTPS: %v", a)
	}

	applyLive(t, p, 2, shop)
	if err := c.adminUp(); err != nil {
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
	if err := c.adminUp(); err != nil {
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
	httpAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	httpsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p, _ := newTestPlugin(t, fmt.Sprintf("admin = %q\ntls = \"internal\"\nhttp_listen = %q\nhttps_listen = %q\non_demand_ask = %q",
		"http://"+c.admin, httpAddr, httpsAddr, askSrv.URL+"/v1/proxy/tls/ask"))
	shopURL, shopBody := startApp(t, "shop-marker")
	blogURL, _ := startApp(t, "blog-marker")
	applyLive(t, p, 1,
		&pluginv1.Route{AppId: 1, Name: "shop", Hosts: []string{shopHost}, Upstream: shopURL},
		&pluginv1.Route{AppId: 2, Name: "blog", Hosts: []string{blogHost}, Upstream: blogURL})
	roots := c.localRoot(t)

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
			cmd.Dir, cmd.Env = dir, isolatedEnv(dir)
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
	httpAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p, _ := newTestPlugin(t, fmt.Sprintf("admin = %q\ntls = \"off\"\nhttp_listen = %q", "http://"+c.admin, httpAddr))
	appURL, appBody := startApp(t, "app-marker")
	routes := manyRoutes(20000)
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
	if err := c.adminUp(); err != nil {
		t.Fatal(err)
	}
}
