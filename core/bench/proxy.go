package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/wisehosting/wisehosting/core/proxy"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// benchProxyToken is the proxy token of the benchmark's cores.
const benchProxyToken = "wisehosting-benchmark-proxy-token-0123456789"

// proxySection measures the edge-routing path at 10,000 apps with one
// verified custom domain each:
//
//   - the render of the whole table by the Traefik plugin (a real plugin
//     subprocess, over gRPC), and a full regeneration (the table read from
//     Postgres, built and rendered);
//   - GET /v1/traefik/proxy-config at concurrency 4, answered from the
//     manager's cache (304 with a matching If-None-Match, and the full
//     body), against the same endpoint regenerating the configuration per
//     request in the same run;
//   - the time from an app started in the store to its route answering
//     through a real Caddy the Caddy plugin pushes to.
func proxySection(ctx context.Context, env *Env) ([]Result, error) {
	apps, requests, changes := 10_000, 2_000, 10
	if env.Quick {
		apps, requests, changes = 500, 200, 3
	}
	up, err := newMarkerUpstream()
	if err != nil {
		return nil, err
	}
	defer up.Close()

	c, err := env.startCore(ctx, coreOptions{extra: `proxy {
  token = "` + benchProxyToken + `"
}
plugin "proxy" "traefik" {}
`})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	if err := seedRoutes(ctx, c, apps, up.port); err != nil {
		return nil, err
	}
	m := c.d.Proxy()
	if err := waitFor(ctx, time.Minute, func() bool {
		s := m.State()
		if s == nil || len(s.Routes) != apps {
			return false
		}
		o, ok := s.Output("traefik")
		return ok && o.Generation == s.Generation
	}); err != nil {
		return nil, fmt.Errorf("proxy: the route table never reached %d routes: %w", apps, err)
	}
	traefik, err := c.d.Plugins().Proxy("traefik")
	if err != nil {
		return nil, err
	}
	st := c.store()
	regenerate := func(ctx context.Context) (*pluginv1.RenderResponse, error) {
		rows, err := st.ListRoutes(ctx)
		if err != nil {
			return nil, err
		}
		routes, _ := proxy.Build("apps.bench.test", rows)
		return traefik.Render(ctx, &pluginv1.RenderRequest{Routes: routes, Generation: 1})
	}

	// Render and regeneration times.
	routes := m.State().Routes
	var renders, regens []float64
	var size int
	// One uncounted call warms the plugin's heap and the connection.
	if _, err := traefik.Render(ctx, &pluginv1.RenderRequest{Routes: routes, Generation: 1}); err != nil {
		return nil, fmt.Errorf("proxy: render: %w", err)
	}
	for range max(env.Runs*3, 9) {
		start := time.Now()
		resp, err := traefik.Render(ctx, &pluginv1.RenderRequest{Routes: routes, Generation: 1})
		if err != nil {
			return nil, fmt.Errorf("proxy: render: %w", err)
		}
		renders = append(renders, ms(time.Since(start)))
		size = len(resp.GetBody())
		start = time.Now()
		if _, err := regenerate(ctx); err != nil {
			return nil, fmt.Errorf("proxy: regenerate: %w", err)
		}
		regens = append(regens, ms(time.Since(start)))
	}

	// The endpoint from the cache, and regenerating per request.
	out, _ := m.State().Output("traefik")
	cached := c.url + "/v1/traefik/proxy-config"
	perRequest, stopBaseline, err := serveRegenerating(regenerate)
	if err != nil {
		return nil, err
	}
	defer stopBaseline()
	var notModified, full, baseline []float64
	for range env.Runs {
		p, err := latencyP99(ctx, env, cached, out.ETag, requests, 4)
		if err != nil {
			return nil, err
		}
		notModified = append(notModified, p)
		if p, err = latencyP99(ctx, env, cached, "", requests/4, 4); err != nil {
			return nil, err
		}
		full = append(full, p)
		if p, err = latencyP99(ctx, env, perRequest, "", max(requests/40, 20), 4); err != nil {
			return nil, err
		}
		baseline = append(baseline, p)
	}
	c.stop()

	live, err := caddyLiveTime(ctx, env, apps, changes, up)
	if err != nil {
		return nil, err
	}
	small := min(apps, 1000)
	liveSmall, err := caddyLiveTime(ctx, env, small, changes, up)
	if err != nil {
		return nil, err
	}
	base := median(baseline)
	rows := []Result{
		{Metric: fmt.Sprintf("render %s apps + 1 custom domain each, Traefik plugin over gRPC (%.1f MiB)", commas(int64(apps)), float64(size)/(1<<20)),
			Value: median(renders), Unit: "ms", Target: "≤ 50 ms"},
		{Metric: "full regeneration: read the table from Postgres, build, render", Value: median(regens), Unit: "ms"},
		{Metric: "GET /v1/traefik/proxy-config p99, c=4, 304 Not Modified (ETag)", Value: median(notModified), Unit: "ms",
			Compare: fmt.Sprintf("regenerating per request: p99 %.1f ms (%.0f×)", base, base/median(notModified)), Target: "≤ 2 ms"},
		{Metric: "GET /v1/traefik/proxy-config p99, c=4, full body from the cache", Value: median(full), Unit: "ms",
			Compare: fmt.Sprintf("regenerating per request: p99 %.1f ms (%.1f×)", base, base/median(full)), Target: "≤ 20 ms"},
		{Metric: fmt.Sprintf("app started in the store → its route answers through Caddy, %s apps", commas(int64(apps))),
			Value: median(live), Unit: "ms", Compare: "Traefik's own poll: up to 5 s + 2 s", Target: "≤ 1,000 ms"},
		{Metric: fmt.Sprintf("app started in the store → its route answers through Caddy, %s apps", commas(int64(small))),
			Value: median(liveSmall), Unit: "ms", Compare: "Traefik's own poll: up to 5 s + 2 s", Target: "≤ 1,000 ms"},
	}
	return rows, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// seedRoutes writes n running apps on one worker at 127.0.0.1, each with
// one verified custom domain and its upstream at port, in a few
// statements.
func seedRoutes(ctx context.Context, c *hubCore, n, port int) error {
	st := c.store()
	u, err := st.CreateUser(ctx, store.NewUser{Email: "routes@bench.test", Name: "Routes"})
	if err != nil {
		return err
	}
	m, err := workerauth.Mint(c.d.Database().Cipher)
	if err != nil {
		return err
	}
	w, err := st.CreateWorker(ctx, store.NewWorker{Name: "edge-bench", Address: "127.0.0.1", Creds: m.Creds})
	if err != nil {
		return err
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO apps (uuid, user_id, name, subdomain, status, worker_id, port)
			SELECT gen_random_uuid(), $1, 'route-' || lpad(i::text, 5, '0'), 'route-' || lpad(i::text, 5, '0'), 'running', $2, $3
			FROM generate_series(1, $4::int) i`, []any{u.ID, w.ID, port, n}},
		{`INSERT INTO domains (app_id, user_id, hostname, verification_token, status, verified_at)
			SELECT id, $1, 'www.' || name || '.customer.test', 't', 'verified', now() FROM apps`, []any{u.ID}},
		// Stopped apps, which the Caddy measurement starts one by one.
		{`INSERT INTO apps (uuid, user_id, name, subdomain, status, worker_id, port)
			SELECT gen_random_uuid(), $1, 'later-' || lpad(i::text, 5, '0'), 'later-' || lpad(i::text, 5, '0'), 'stopped', $2, $3
			FROM generate_series(1, 100) i`, []any{u.ID, w.ID, port}},
	} {
		if _, err := st.Pool().Exec(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("seed routes: %w", err)
		}
	}
	return nil
}

// markerUpstream is the apps' upstream: it answers with the Host it got.
type markerUpstream struct {
	*http.Server
	port int
}

func newMarkerUpstream() (*markerUpstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app "+r.Host)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &markerUpstream{Server: srv, port: ln.Addr().(*net.TCPAddr).Port}, nil
}

// serveRegenerating serves the baseline: the proxy-config endpoint as the
// seed's design without its cache would, reading, building and rendering
// the table for every request.
func serveRegenerating(regenerate func(context.Context) (*pluginv1.RenderResponse, error)) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := regenerate(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", resp.GetContentType())
		w.Header().Set("ETag", proxy.ETag(resp.GetBody()))
		w.Write(resp.GetBody())
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// latencyP99 runs the load generator's GET mode in its own process (so the
// clients share neither the core's scheduler nor its garbage collector):
// n counted requests to url from conc clients at once, with the proxy
// token and If-None-Match etag when set. It returns the p99 latency in
// milliseconds.
func latencyP99(ctx context.Context, env *Env, url, etag string, n, conc int) (float64, error) {
	args := []string{"get", "-url", url, "-token", benchProxyToken, "-n", strconv.Itoa(n), "-c", strconv.Itoa(conc),
		"-warm", strconv.Itoa(min(n/10, 10*conc))}
	if etag != "" {
		args = append(args, "-etag", etag)
	}
	cmd, err := env.loadgenCmd(args)
	if err != nil {
		return 0, err
	}
	out, err := cmd.Output() // bounded: n requests, each with a timeout

	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return 0, fmt.Errorf("load generator: %w: %s", err, ee.Stderr)
		}
		return 0, fmt.Errorf("load generator: %w", err)
	}
	var p50, p99 float64
	if _, err := fmt.Sscanf(string(out), "p50 %g p99 %g", &p50, &p99); err != nil {
		return 0, fmt.Errorf("load generator said %q: %w", out, err)
	}
	return p99, nil
}

// caddyLiveTime runs a real Caddy (from Debian's package, on loopback
// ports, automatic HTTPS off) and a core with the Caddy plugin over the
// same n apps, then starts stopped apps one at a time and measures, for
// each, the time from the UPDATE's commit to the app's host answering 200
// through Caddy. It returns the times in milliseconds.
func caddyLiveTime(ctx context.Context, env *Env, n, changes int, up *markerUpstream) ([]float64, error) {
	dir, err := os.MkdirTemp("", "wh-bench-caddy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cd, err := startCaddy(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	defer cd.stop()
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c, err := env.startCore(ctx, coreOptions{extra: fmt.Sprintf(`proxy {
  token = %q
}
plugin "proxy" "caddy" {
  config {
    admin       = %q
    tls         = "off"
    http_listen = %q
  }
}
`, benchProxyToken, cd.Admin, httpAddr)})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	if err := seedRoutes(ctx, c, n, up.port); err != nil {
		return nil, err
	}
	m := c.d.Proxy()
	if err := waitFor(ctx, 2*time.Minute, func() bool {
		s := m.State()
		return s != nil && len(s.Routes) == n && m.Applied("caddy") == s.Generation
	}); err != nil {
		return nil, fmt.Errorf("proxy: Caddy never got the first %d routes: %w", n, err)
	}
	st := c.store()
	var times []float64
	for i := 1; i <= changes; i++ {
		name := fmt.Sprintf("later-%05d", i)
		host := name + ".apps.bench.test"
		start := time.Now()
		if _, err := st.Pool().Exec(ctx, `UPDATE apps SET status = 'running' WHERE name = $1`, name); err != nil {
			return nil, err
		}
		var last string
		if err := waitFor(ctx, 30*time.Second, func() bool {
			code, body, err := cd.get(httpAddr, host)
			last = strconv.Itoa(code) + " " + body
			return err == nil && code == http.StatusOK && body == "app "+host
		}); err != nil {
			return nil, fmt.Errorf("proxy: %s never answered through Caddy (last %q): %w", host, last, err)
		}
		times = append(times, ms(time.Since(start)))
		env.Log.Info("route live in Caddy", "app", name, "took", time.Since(start))
	}
	if len(times) == 0 {
		return nil, errors.New("proxy: no change measured")
	}
	return times, nil
}

// freeAddr returns 127.0.0.1:<a port free a moment ago>.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
