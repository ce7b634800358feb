package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/core/embedpg"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
)

// hclString quotes s as an HCL string literal.
func hclString(s string) string {
	q := strconv.Quote(s)
	return strings.NewReplacer("${", "$${", "%{", "%%{").Replace(q)
}

// testConfig builds a config for a daemon on 127.0.0.1:0 over a fresh,
// migrated database of the test cluster; server adds attributes to the
// server block.
func testConfig(t *testing.T, server string) *config.Config {
	t.Helper()
	return testConfigWith(t, server, "")
}

// testConfigWith is testConfig with extra top-level blocks (plugins).
func testConfigWith(t *testing.T, server, extra string) *config.Config {
	t.Helper()
	src := fmt.Sprintf(`
platform {
  domain = "apps.test"
}

server {
  listen = "127.0.0.1:0"
  secret = %s
%s
}

database {
  url       = %s
  min_conns = 1
  max_conns = 4
}
%s`, hclString(storetest.Secret), server, hclString(storetest.ConnString(t)), extra)
	cfg, diags := config.Parse([]byte(src), filepath.Join(t.TempDir(), "wisehosting.hcl"), config.Options{
		LookupEnv: func(string) (string, bool) { return "", false },
	})
	if diags.HasErrors() {
		t.Fatalf("test config: %s\n%s", diags, src)
	}
	return cfg
}

// running is a daemon serving in a goroutine.
type running struct {
	d      *Daemon
	addr   string
	cancel context.CancelFunc
	errc   chan error // Serve's result
}

// start creates the daemon, lets setup add routes, binds and serves. The
// test's cleanup stops it if the test did not.
func start(t *testing.T, cfg *config.Config, setup func(*Daemon)) *running {
	t.Helper()
	return startLogged(t, cfg, testutil.Logger(t), setup)
}

// startLogged is start with the daemon's logger.
func startLogged(t *testing.T, cfg *config.Config, log hclog.Logger, setup func(*Daemon)) *running {
	t.Helper()
	d, err := New(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if setup != nil {
		setup(d)
	}
	addr, err := d.Listen()
	if err != nil {
		d.Close(context.Background())
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, addr: addr.String(), cancel: cancel, errc: make(chan error, 1)}
	go func() { r.errc <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.errc:
		case <-time.After(30 * time.Second):
			t.Errorf("Serve did not return within 30s of the cleanup's cancel")
		}
	})
	return r
}

// stop cancels Serve's context and returns Serve's result, failing the
// test if it takes longer than within.
func (r *running) stop(t *testing.T, within time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.errc:
		r.errc <- err // for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("Serve did not return within %s of cancel", within)
		return nil
	}
}

// selfSignedCert writes a fresh certificate for 127.0.0.1 and its key to
// dir and returns the paths and the certificate.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	certFile, keyFile, cert, err := secrets.WriteSelfSignedCert(dir, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

func TestServeTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, cert := selfSignedCert(t, t.TempDir())
	cfg := testConfig(t, fmt.Sprintf("  tls_cert = %s\n  tls_key = %s", hclString(certFile), hclString(keyFile)))
	r := start(t, cfg, nil)
	roots := x509.NewCertPool()
	roots.AddCert(cert)

	t.Run("TLS 1.3 client", func(t *testing.T) {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		}}
		defer client.CloseIdleConnections()
		resp, err := client.Get("https://" + r.addr + "/health")
		if err != nil {
			t.Fatalf("GET /health over TLS: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":"ok"`) {
			t.Errorf("GET /health over TLS: %d %s, want 200 with status ok", resp.StatusCode, body)
		}
		if resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
			t.Errorf("negotiated %v, want TLS 1.3", resp.TLS)
		}
	})
	t.Run("TLS 1.2 client is refused", func(t *testing.T) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", r.addr,
			&tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS12})
		if err == nil {
			v := conn.ConnectionState().Version
			conn.Close()
			t.Fatalf("a TLS 1.2-only client completed the handshake (version %#x)", v)
		}
		if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("handshake error = %v, want a protocol version alert", err)
		}
	})
	t.Run("plain HTTP gets no 200", func(t *testing.T) {
		client := &http.Client{Timeout: 5 * time.Second}
		resp, err := client.Get("http://" + r.addr + "/health")
		if err != nil {
			return // the server may also just hang up
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the TLS port answered 200")
		}
	})

	if err := r.stop(t, 10*time.Second); err != nil {
		t.Errorf("Serve returned %v after cancel, want nil", err)
	}
	if _, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
		t.Errorf("the port still accepts connections after Serve returned")
	}
}

func TestNewFailsOnBadTLSFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	cfg := testConfig(t, fmt.Sprintf("  tls_cert = %s\n  tls_key = %s", hclString(missing), hclString(missing)))
	d, err := New(t.Context(), cfg, testutil.Logger(t))
	if err == nil {
		d.Close(context.Background())
		t.Fatal("New succeeded with missing TLS files")
	}
	if !strings.Contains(err.Error(), "load TLS certificate") || !strings.Contains(err.Error(), missing) {
		t.Errorf("error = %v, want it to say the certificate could not be loaded and name the file", err)
	}
}

// TestShutdownLetsInFlightRequestsFinish checks the orderly shutdown: once
// shutdown starts no new connection is accepted, an in-flight request runs
// to completion with the database still open, and only then Serve returns.
// The slow route is added through the unexported d.api (this test is in
// package daemon); Daemon has no exported way to add routes.
func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, `  shutdown_timeout = "10s"`)
	started, release, handlerDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	r := start(t, cfg, func(d *Daemon) {
		pool := d.Database().Store.Pool()
		d.api.Group().GET("/test/slow", func(w http.ResponseWriter, req bunrouter.Request) error {
			defer close(handlerDone)
			close(started)
			<-release
			time.Sleep(300 * time.Millisecond) // slow work after shutdown began
			if err := pool.Ping(req.Context()); err != nil {
				return fmt.Errorf("database closed under an in-flight request: %w", err)
			}
			_, err := io.WriteString(w, "done")
			return err
		})
	})

	type reply struct {
		status int
		body   string
		err    error
	}
	replies := make(chan reply, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + r.addr + "/test/slow")
		if err != nil {
			replies <- reply{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		replies <- reply{status: resp.StatusCode, body: string(body), err: err}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never reached its handler")
	}

	r.cancel()
	testutil.WaitFor(t, 5*time.Second, "the listener closes once shutdown starts", func() bool {
		c, err := net.DialTimeout("tcp", r.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-r.errc:
		r.errc <- err
		t.Fatalf("Serve returned (%v) while a request was still in flight", err)
	default:
	}
	close(release)

	var got reply
	select {
	case got = <-replies:
	case <-time.After(15 * time.Second):
		t.Fatal("the in-flight request did not complete")
	}
	if got.err != nil || got.status != http.StatusOK || got.body != "done" {
		t.Errorf("in-flight request during shutdown: status %d, body %q, err %v; want 200 done", got.status, got.body, got.err)
	}
	err := r.stop(t, 10*time.Second)
	if err != nil {
		t.Errorf("Serve returned %v, want nil", err)
	}
	select {
	case <-handlerDone:
	default:
		t.Error("Serve returned before the in-flight handler finished")
	}
}

// TestShutdownTimeoutWithPooledConnection: a handler that outlives
// server.shutdown_timeout while holding a pooled connection must not keep
// Serve from returning once the timeout has passed.
func TestShutdownTimeoutWithPooledConnection(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, `  shutdown_timeout = "200ms"`)
	started, release := make(chan struct{}), make(chan struct{})
	r := start(t, cfg, func(d *Daemon) {
		pool := d.Database().Store.Pool()
		d.api.Group().GET("/test/stuck", func(w http.ResponseWriter, req bunrouter.Request) error {
			conn, err := pool.Acquire(req.Context())
			if err != nil {
				return err
			}
			defer conn.Release()
			close(started)
			<-release
			return nil
		})
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	go func() {
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + r.addr + "/test/stuck")
		if err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck request never reached its handler")
	}

	r.cancel()
	var returned bool
	select {
	case err := <-r.errc:
		r.errc <- err
		returned = true
	case <-time.After(3 * time.Second):
	}
	close(release)
	if !returned {
		if err := r.stop(t, 10*time.Second); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("Serve returned %v once the handler let go", err)
		}
	}
	if !returned {
		t.Fatal("Serve had not returned 3s after cancel with shutdown_timeout=200ms and a handler holding a pooled connection")
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// bufferLogger returns a logger at level that writes to the returned buffer
// and, at the test's level, to the test log.
func bufferLogger(t *testing.T, level hclog.Level) (hclog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	log := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: t.Name(), Level: level, Output: buf})
	log.RegisterSink(hclog.NewSinkAdapter(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}}))
	return log, buf
}

// testWriter sends log output to t.Log, dropping writes after the test.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestReady: /ready pings the database (200, then 503 once the database
// refuses connections) while /health stays 200, and neither is
// request-logged.
func TestReady(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	log, logs := bufferLogger(t, hclog.Debug)
	r := startLogged(t, cfg, log, nil)
	base := "http://" + r.addr

	if code, body := get(t, base+"/ready"); code != http.StatusOK || strings.TrimSpace(body) != `{"status":"ready"}` {
		t.Fatalf("GET /ready on a live database: %d %s", code, body)
	}

	// The database goes away: it refuses new sessions and the pool's are ended.
	admin, err := pgx.ParseConfig(cfg.Database.URL.Value())
	if err != nil {
		t.Fatal(err)
	}
	dbName := admin.Database
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "ALTER DATABASE "+pgx.Identifier{dbName}.Sanitize()+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", dbName); err != nil {
		t.Fatal(err)
	}

	code, body := get(t, base+"/ready")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"not_ready"`) {
		t.Fatalf("GET /ready with the database gone: %d %s, want 503 not_ready", code, body)
	}
	if code, body := get(t, base+"/health"); code != http.StatusOK {
		t.Fatalf("GET /health is a liveness probe and must not check the database: %d %s", code, body)
	}
	get(t, base+"/nope")
	testutil.WaitFor(t, 5*time.Second, "the request log of /nope", func() bool { return strings.Contains(logs.String(), "path=/nope") })
	for _, quiet := range []string{"path=/ready status=200", "path=/health"} {
		if strings.Contains(logs.String(), quiet) {
			t.Errorf("%s was request-logged:\n%s", quiet, logs)
		}
	}
}

// embeddedConfig builds a config for the embedded cluster in a fresh data
// directory the postgres OS user can reach.
func embeddedConfig(t *testing.T) *config.Config {
	t.Helper()
	dir, err := os.MkdirTemp("", "wh-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
data_dir = %s

platform {
  domain = "apps.test"
}

server {
  listen = "127.0.0.1:0"
  secret = %s
}

database {
  min_conns = 1
  max_conns = 4
}
`, hclString(filepath.Join(dir, "data")), hclString(storetest.Secret))
	cfg, diags := config.Parse([]byte(src), filepath.Join(dir, "wisehosting.hcl"), config.Options{
		LookupEnv: func(string) (string, bool) { return "", false },
	})
	if diags.HasErrors() {
		t.Fatalf("test config: %s\n%s", diags, src)
	}
	return cfg
}

// TestServeOwnsEmbeddedCluster: serve never attaches to a cluster another
// process runs, since that process's exit would take the database away from
// under it. It waits for a short-lived command to exit and then owns the
// cluster; it fails, naming the pid and the data directory, when the holder
// is another serve or outlives the wait. CLI commands still attach.
func TestServeOwnsEmbeddedCluster(t *testing.T) {
	t.Parallel()
	connect := func(opts OpenOptions) func(context.Context, *config.Config, hclog.Logger) (*Database, error) {
		return func(ctx context.Context, cfg *config.Config, log hclog.Logger) (*Database, error) {
			return ConnectWith(ctx, cfg, log, opts)
		}
	}
	// A daemon that serve opens must be closed whole (its hub and
	// notification listener run until then), not just its database.
	var mu sync.Mutex
	daemons := map[*Database]*Daemon{}
	serve := func(ctx context.Context, cfg *config.Config, log hclog.Logger) (*Database, error) {
		d, err := New(ctx, cfg, log)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		daemons[d.db] = d
		mu.Unlock()
		return d.db, nil
	}
	closeDB := func(db *Database) {
		mu.Lock()
		d := daemons[db]
		mu.Unlock()
		if d != nil {
			_ = d.Close(context.Background())
			return
		}
		_ = db.Close(context.Background())
	}
	for _, tc := range []struct {
		name       string
		holder     string // embedpg Owner of the process that runs the cluster
		open       func(context.Context, *config.Config, hclog.Logger) (*Database, error)
		release    bool          // stop the holder once open waits for it
		wantOwned  bool          // open succeeds and owns (else attaches) the cluster
		wantErr    string        // open fails saying this
		wantWithin time.Duration // open fails this fast
	}{
		{name: "serve waits for a short-lived command", holder: "wisehosting worker add", open: serve, release: true, wantOwned: true},
		{name: "short-lived command outlives the wait", open: connect(OpenOptions{RequireOwner: true, OwnerWait: 300 * time.Millisecond}),
			wantErr: "still runs after 300ms"},
		{name: "another serve fails fast", holder: ServeOwner, open: serve, wantErr: "another serve runs on this data_dir", wantWithin: 5 * time.Second},
		{name: "CLI commands attach", holder: ServeOwner, open: connect(OpenOptions{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := embeddedConfig(t)
			if err := prepareDataDir(cfg.DataDir); err != nil {
				t.Fatal(err)
			}
			holder, err := embedpg.Start(t.Context(), embedpg.Options{Dir: filepath.Join(cfg.DataDir, "postgres"), Owner: tc.holder, Logger: testutil.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = holder.Stop(context.Background()) })

			log, logs := bufferLogger(t, hclog.Info)
			type result struct {
				db  *Database
				err error
			}
			done := make(chan result, 1)
			began := time.Now()
			go func() {
				db, err := tc.open(t.Context(), cfg, log)
				done <- result{db, err}
			}()
			if tc.release {
				testutil.WaitFor(t, 20*time.Second, "open to wait for the holder", func() bool {
					return strings.Contains(logs.String(), "waiting for it to exit")
				})
				select {
				case res := <-done:
					if res.db != nil {
						closeDB(res.db)
					}
					t.Fatalf("open returned (%v) while the holder still ran", res.err)
				default:
				}
				if err := holder.Stop(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			var res result
			select {
			case res = <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("open did not return")
			}
			took := time.Since(began)
			if res.db != nil {
				t.Cleanup(func() { closeDB(res.db) })
			}
			if tc.wantErr != "" {
				if res.err == nil {
					t.Fatalf("open succeeded (owned: %v), want an error saying %q", res.db.Cluster.Owned(), tc.wantErr)
				}
				var held *embedpg.HeldError
				for _, want := range []string{tc.wantErr, fmt.Sprintf("pid %d", os.Getpid()), filepath.Join(cfg.DataDir, "postgres")} {
					if !strings.Contains(res.err.Error(), want) {
						t.Errorf("error %q does not say %q", res.err, want)
					}
				}
				if !errors.As(res.err, &held) {
					t.Errorf("error %v does not wrap a *embedpg.HeldError", res.err)
				}
				if tc.wantWithin > 0 && took > tc.wantWithin {
					t.Errorf("failed after %s, want within %s", took, tc.wantWithin)
				}
				t.Logf("error: %v", res.err)
				return
			}
			if res.err != nil {
				t.Fatalf("open: %v", res.err)
			}
			if got := res.db.Cluster.Owned(); got != tc.wantOwned {
				t.Fatalf("Owned() = %v, want %v", got, tc.wantOwned)
			}
			conn, err := pgx.Connect(t.Context(), res.db.ConnString)
			if err != nil {
				t.Fatalf("connect to the opened database: %v", err)
			}
			_ = conn.Close(t.Context())
		})
	}
}
