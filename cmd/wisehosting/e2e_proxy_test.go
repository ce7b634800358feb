package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/plugins/proxy/caddy/caddytest"
	"github.com/wisehosting/wisehosting/plugins/proxy/nginx/nginxtest"
)

// proxyStacks are the example stacks, one per edge proxy.
var proxyStacks = []string{"traefik", "caddy", "nginx"}

// proxyBlock matches the plugin "proxy" block of an example (its closing
// brace is the first one at the start of a line).
var proxyBlock = regexp.MustCompile(`(?ms)^plugin "proxy" "[a-z]+" \{.*?^\}\n`)

// TestExampleStacksDifferOnlyInTheProxy: switching the edge proxy is an
// edit of one block. The three example configurations are equal once
// comments and their plugin "proxy" block are left out.
func TestExampleStacksDifferOnlyInTheProxy(t *testing.T) {
	t.Parallel()
	var first string
	for _, s := range proxyStacks {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", s, "wisehosting.hcl"))
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		if n := len(proxyBlock.FindAllString(src, -1)); n != 1 {
			t.Fatalf("examples/%s has %d plugin \"proxy\" blocks, want 1", s, n)
		}
		if !strings.Contains(proxyBlock.FindString(src), `plugin "proxy" "`+s+`"`) {
			t.Errorf("examples/%s declares another proxy: %s", s, proxyBlock.FindString(src))
		}
		rest := stripComments(proxyBlock.ReplaceAllString(src, ""))
		if first == "" {
			first = rest
			continue
		}
		if rest != first {
			t.Errorf("examples/%s differs from examples/%s outside its proxy block:\n%s\n---\n%s", s, proxyStacks[0], rest, first)
		}
	}
}

// stripComments drops # comments and blank lines.
func stripComments(src string) string {
	var out []string
	for line := range strings.SplitSeq(src, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimRight(line, " \t"); line != "" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestE2EProxyStacks runs each example stack as is — `wisehosting serve
// -config examples/<proxy>/wisehosting.hcl`, the environment filling in
// loopback addresses — against the real proxy where Debian packages one:
// Caddy (pushed through its admin API, tls = "off") and nginx (files, nginx
// -t, reload), each started on loopback ports by the plugin's test kit.
// Traefik is not packaged, so its side is the body its HTTP provider would
// poll, decoded against the dynamic-configuration shape and followed to
// the upstream it names. In each stack a running app written to the store
// becomes reachable through the proxy at its slug host and its verified
// custom domain, with the upstream's own answer; stopped, it is gone.
//
// The subtests set environment variables, so they do not run in parallel
// with the package's other tests.
func TestE2EProxyStacks(t *testing.T) {
	for _, stack := range proxyStacks {
		t.Run(stack, func(t *testing.T) { runProxyStack(t, stack) })
	}
}

func runProxyStack(t *testing.T, stack string) {
	root := sharedTempDir(t)
	t.Cleanup(func() { requireNoClusterProcs(t, root) })
	secret := writeSecret(t, root)
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	const token = "e2e-proxy-token-0123456789abcdef"
	const domain = "apps.e2e.test"
	const custom = "shop.customer-e2e.test"
	for k, v := range map[string]string{
		"WISEHOSTING_DATA_DIR": filepath.Join(root, "data"), "WISEHOSTING_LISTEN": addr,
		"WISEHOSTING_SECRET": secret, "WISEHOSTING_PROXY_TOKEN": token, "WISEHOSTING_DOMAIN": domain,
	} {
		t.Setenv(k, v)
	}

	// The app itself: a tiny upstream that names itself.
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the shop app, host %s", r.Host)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upstream.Listener = ln
	upstream.Start()
	t.Cleanup(upstream.Close)
	upPort := ln.Addr().(*net.TCPAddr).Port

	// The proxy, and how to reach an app through it.
	var through func(host string) (int, string, error)
	switch stack {
	case "caddy":
		c := caddytest.Start(t)
		httpAddr := caddytest.FreeAddr(t)
		t.Setenv("CADDY_ADMIN", c.Admin)
		t.Setenv("CADDY_TLS", "off")
		t.Setenv("CADDY_HTTP_LISTEN", httpAddr)
		through = func(host string) (int, string, error) { return c.Get(httpAddr, host) }
	case "nginx":
		n := nginxtest.Start(t)
		t.Setenv("NGINX_SITES_DIR", n.Dir)
		t.Setenv("NGINX_LISTEN", n.Addr)
		t.Setenv("NGINX_PREFIX", n.Prefix)
		t.Setenv("NGINX_CONF", n.Conf)
		through = n.Get
	case "traefik":
		through = func(host string) (int, string, error) { return traefikThrough(base, token, host) }
	}

	cfg, err := filepath.Abs(filepath.Join("..", "..", "examples", stack, "wisehosting.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, cfg)
	srv.waitHealthy(t, base, 60*time.Second)

	// A worker at 127.0.0.1 running the app, with a verified custom domain:
	// written straight to the store, as the apps API will.
	db := openDatabase(t, cfg)
	st, ctx := db.Store, t.Context()
	minted, err := workerauth.Mint(db.Cipher)
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.CreateWorker(ctx, store.NewWorker{Name: "edge-e2e", Address: "127.0.0.1", Creds: minted.Creds})
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUser(ctx, store.NewUser{Email: "edge@example.com", Name: "Edge"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := st.CreateApp(ctx, store.NewApp{UserID: u.ID, Name: "shop-e2e"})
	if err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := st.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO domains (app_id, user_id, hostname, verification_token, status, verified_at)
		VALUES ($1, $2, $3, 't', 'verified', now())`, app.ID, u.ID, custom)
	slugHost := app.Subdomain + "." + domain
	if code, _, _ := through(slugHost); code == http.StatusOK {
		t.Fatalf("%s answers 200 before the app runs", slugHost)
	}

	started := time.Now()
	exec(`UPDATE apps SET status = 'running', worker_id = $2, port = $3 WHERE id = $1`, app.ID, w.ID, upPort)
	for _, host := range []string{slugHost, custom} {
		proxyEventually(t, 30*time.Second, stack+" to route "+host, func() (bool, string) {
			code, body, err := through(host)
			return err == nil && code == http.StatusOK && body == "hello from the shop app, host "+host,
				fmt.Sprintf("%d %q %v", code, body, err)
		})
	}
	t.Logf("%s: the started app answered through the proxy %v after the store changed", stack, time.Since(started).Round(time.Millisecond))
	if code, body, err := through("unknown." + domain); err != nil || code != http.StatusNotFound {
		t.Errorf("an unknown host through %s: %d %q %v, want 404", stack, code, body, err)
	}

	stopped := time.Now()
	exec(`UPDATE apps SET status = 'stopped' WHERE id = $1`, app.ID)
	for _, host := range []string{slugHost, custom} {
		proxyEventually(t, 30*time.Second, stack+" to drop "+host, func() (bool, string) {
			code, body, err := through(host)
			return err == nil && code == http.StatusNotFound, fmt.Sprintf("%d %q %v", code, body, err)
		})
	}
	t.Logf("%s: the stopped app was gone %v after the store changed", stack, time.Since(stopped).Round(time.Millisecond))
}

// proxyEventually polls cond until it holds three times in a row (a
// reloaded nginx's old workers may answer for a moment) or limit passes.
func proxyEventually(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	streak := 0
	for {
		ok, last := cond()
		if ok {
			if streak++; streak == 3 {
				return
			}
		} else {
			streak = 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", limit, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// traefikDynamic is the part of Traefik's dynamic configuration the
// example's plugin writes (the documented HTTP-provider shape).
type traefikDynamic struct {
	HTTP struct {
		Routers map[string]struct {
			EntryPoints []string `json:"entryPoints"`
			Middlewares []string `json:"middlewares"`
			Rule        string   `json:"rule"`
			Service     string   `json:"service"`
			TLS         *struct {
				CertResolver string `json:"certResolver"`
			} `json:"tls"`
		} `json:"routers"`
		Services map[string]struct {
			LoadBalancer struct {
				Servers []struct {
					URL string `json:"url"`
				} `json:"servers"`
			} `json:"loadBalancer"`
		} `json:"services"`
		Middlewares map[string]struct {
			RedirectScheme *struct {
				Scheme    string `json:"scheme"`
				Permanent bool   `json:"permanent"`
			} `json:"redirectScheme"`
		} `json:"middlewares"`
	} `json:"http"`
}

// hostRule matches one Host(`…`) matcher of a Traefik rule.
var hostRule = regexp.MustCompile("^Host\\(`([a-z0-9.-]+)`\\)$")

// traefikThrough does what Traefik would for a TLS request to host: poll
// GET /v1/traefik/proxy-config with the proxy token, pick the TLS router
// whose rule matches host, and send the request to its service's server.
// A host no router matches is Traefik's 404.
func traefikThrough(base, token, host string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/traefik/proxy-config", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("proxy-config: %d %s %v", resp.StatusCode, body, err)
	}
	var cfg traefikDynamic
	if err := json.Unmarshal(body, &cfg); err != nil {
		return 0, "", fmt.Errorf("proxy-config is not the dynamic-configuration shape: %v", err)
	}
	for name, r := range cfg.HTTP.Routers {
		var hosts []string
		for part := range strings.SplitSeq(r.Rule, " || ") {
			m := hostRule.FindStringSubmatch(part)
			if m == nil {
				return 0, "", fmt.Errorf("router %s: rule %q is not a disjunction of Host matchers", name, r.Rule)
			}
			hosts = append(hosts, m[1])
		}
		if !strings.Contains(" "+strings.Join(hosts, " ")+" ", " "+host+" ") {
			continue
		}
		if strings.HasSuffix(name, "_http") {
			// The plain-HTTP router redirects to HTTPS.
			if len(r.Middlewares) != 1 || cfg.HTTP.Middlewares[r.Middlewares[0]].RedirectScheme == nil ||
				cfg.HTTP.Middlewares[r.Middlewares[0]].RedirectScheme.Scheme != "https" || fmt.Sprint(r.EntryPoints) != "[web]" {
				return 0, "", fmt.Errorf("router %s does not redirect plain HTTP: %+v", name, r)
			}
			continue
		}
		if r.TLS == nil || r.TLS.CertResolver != "letsencrypt" || fmt.Sprint(r.EntryPoints) != "[web websecure]" {
			return 0, "", fmt.Errorf("router %s: entry points %v, tls %+v", name, r.EntryPoints, r.TLS)
		}
		servers := cfg.HTTP.Services[r.Service].LoadBalancer.Servers
		if len(servers) != 1 {
			return 0, "", fmt.Errorf("service %s has %d servers", r.Service, len(servers))
		}
		up, _ := http.NewRequest(http.MethodGet, servers[0].URL+"/", nil)
		up.Host = host
		uresp, err := http.DefaultClient.Do(up)
		if err != nil {
			return 0, "", err
		}
		defer uresp.Body.Close()
		b, err := io.ReadAll(uresp.Body)
		return uresp.StatusCode, string(b), err
	}
	return http.StatusNotFound, "no router for " + strconv.Quote(host), nil
}
