package traefik

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route"
	"github.com/wisehosting/wisehosting/sdk/route/routetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// newTestPlugin returns a plugin logging JSON into a buffer, as sdk.Logger
// does to stderr.
func newTestPlugin(t *testing.T, configHCL string) (*Plugin, *plugintest.LogBuffer) {
	t.Helper()
	log, buf := plugintest.JSONLogger()
	p := newWithLogger(log)
	if err := configure(t, p, configHCL); err != nil {
		t.Fatal(err)
	}
	return p, buf
}

func configure(t *testing.T, p *Plugin, src string) error {
	t.Helper()
	return plugintest.Configure(p, Spec(), src)
}

func renderOK(t *testing.T, p *Plugin, routes []*pluginv1.Route) []byte {
	t.Helper()
	return renderGen(t, p, routes, 1)
}

// renderGen renders routes at generation gen and checks the answer is JSON.
func renderGen(t *testing.T, p *Plugin, routes []*pluginv1.Route, gen uint64) []byte {
	t.Helper()
	resp, err := p.Render(context.Background(), &pluginv1.RenderRequest{Routes: routes, Generation: gen})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetContentType() != "application/json" {
		t.Errorf("content type %q", resp.GetContentType())
	}
	if !json.Valid(resp.GetBody()) {
		t.Fatalf("body is not JSON: %s", resp.GetBody())
	}
	return resp.GetBody()
}

// smallTable is a route table like the core's (routetest.SmallTable) and
// one route the core got wrong, a host breaking out of its rule.
func smallTable() []*pluginv1.Route {
	return append(routetest.SmallTable(),
		&pluginv1.Route{AppId: 5, Name: "bad", Hosts: []string{"bad.apps.example.com`) || Host(`evil.com"}, Upstream: "http://10.8.0.2:8081"})
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name, config string
		routes       []*pluginv1.Route
	}{
		{name: "defaults", routes: smallTable()},
		{name: "no-tls", config: "entry_points = [\"websecure\"]\ncert_resolver = \"\"", routes: smallTable()},
		{name: "all-entry-points", config: "entry_points = []\ncert_resolver = \"le-dns\"\nhttp = \"none\"", routes: smallTable()},
		{name: "http-serve", config: "entry_points = [\"websecure\"]\nhttp = \"serve\"\nhttp_entry_points = [\"web\", \"web-alt\"]", routes: smallTable()},
		{name: "empty", routes: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestPlugin(t, tt.config)
			got := renderOK(t, p, tt.routes)
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n got: %s\nwant: %s", path, indent(got), indent(want))
			}
		})
	}
}

func indent(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}

// The rendered shape, checked field by field (the golden files pin bytes).
func TestShape(t *testing.T) {
	p, _ := newTestPlugin(t, "")
	var cfg struct {
		HTTP struct {
			Middlewares map[string]struct {
				RedirectScheme struct {
					Scheme    string
					Permanent bool
				}
			}
			Routers map[string]struct {
				EntryPoints []string
				Middlewares []string
				Rule        string
				Service     string
				TLS         *struct{ CertResolver string }
			}
			Services map[string]struct {
				LoadBalancer struct{ Servers []struct{ URL string } }
			}
		}
	}
	if err := json.Unmarshal(renderOK(t, p, smallTable()), &cfg); err != nil {
		t.Fatal(err)
	}
	r := cfg.HTTP.Routers["shop"]
	if r.Rule != "Host(`shop.apps.example.com`) || Host(`shop.example.org`) || Host(`www.shop.example.org`)" {
		t.Errorf("rule = %s", r.Rule)
	}
	if fmt.Sprint(r.EntryPoints) != "[web websecure]" || r.Service != "shop" || r.TLS == nil || r.TLS.CertResolver != "letsencrypt" {
		t.Errorf("router = %+v", r)
	}
	if s := cfg.HTTP.Services["shop"].LoadBalancer.Servers; len(s) != 1 || s[0].URL != "http://10.8.0.2:8080" {
		t.Errorf("servers = %+v", s)
	}
	// A TLS router matches only TLS requests: plain HTTP on "web" gets its
	// own router, which redirects.
	h := cfg.HTTP.Routers["shop"+HTTPRouterSuffix]
	if h.Rule != r.Rule || fmt.Sprint(h.EntryPoints) != "[web]" || h.Service != "shop" || h.TLS != nil ||
		fmt.Sprint(h.Middlewares) != "["+RedirectMiddleware+"]" {
		t.Errorf("plain-HTTP router = %+v", h)
	}
	if m := cfg.HTTP.Middlewares[RedirectMiddleware].RedirectScheme; m.Scheme != "https" || !m.Permanent {
		t.Errorf("redirect middleware = %+v", m)
	}
	if len(cfg.HTTP.Routers) != 8 || len(cfg.HTTP.Services) != 4 {
		t.Errorf("%d routers, %d services; want 8 and 4 (the bad route left out)", len(cfg.HTTP.Routers), len(cfg.HTTP.Services))
	}
}

func TestDeterministic(t *testing.T) {
	p, _ := newTestPlugin(t, "")
	render := func(routes []*pluginv1.Route, gen uint64) []byte { return renderGen(t, p, routes, gen) }
	routetest.CheckDeterministic(t, render, append(routetest.ManyRoutes(500), routetest.ContestedRoutes()...))
}

func TestInjection(t *testing.T) {
	for _, tt := range routetest.EvilRoutes() {
		t.Run(tt.Name, func(t *testing.T) {
			p, logs := newTestPlugin(t, "")
			body := renderOK(t, p, []*pluginv1.Route{routetest.GoodRoute(), tt.Route})
			if !strings.Contains(string(body), `"good"`) {
				t.Errorf("the valid route is missing: %s", body)
			}
			for _, c := range []string{"`)", `\"`, "'", `\n`, "*", "@"} {
				if strings.Contains(strings.ReplaceAll(string(body), "Host(`good.apps.example.com`)", ""), c) {
					t.Errorf("%q in the output: %s", c, body)
				}
			}
			routetest.CheckLeftOut(t, tt, body, logs.String())
		})
	}
}

// Duplicate hosts within a route are written once; the order is kept.
func TestDuplicateHosts(t *testing.T) {
	p, _ := newTestPlugin(t, "")
	body := renderOK(t, p, []*pluginv1.Route{{Name: "a", Hosts: []string{"b.example.com", "a.example.com", "b.example.com"}, Upstream: "http://10.0.0.1:80"}})
	if !strings.Contains(string(body), `"rule":"Host(`+"`b.example.com`"+`) || Host(`+"`a.example.com`"+`)"`) {
		t.Errorf("rule: %s", body)
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name, hcl, wantErr string
		want               settings
	}{
		{name: "defaults", want: settings{entryPoints: []string{"web", "websecure"}, certResolver: "letsencrypt", http: "redirect", httpEntryPoints: []string{"web"}}},
		{name: "custom", hcl: "entry_points = [\"https\"]\ncert_resolver = \"dns_cf\"\nhttp = \"serve\"\nhttp_entry_points = [\"http\"]",
			want: settings{entryPoints: []string{"https"}, certResolver: "dns_cf", http: "serve", httpEntryPoints: []string{"http"}}},
		{name: "no tls", hcl: `cert_resolver = ""`, want: settings{entryPoints: []string{"web", "websecure"}, http: "redirect", httpEntryPoints: []string{"web"}}},
		{name: "no tls needs no http entry point", hcl: "cert_resolver = \"\"\nhttp_entry_points = []", want: settings{entryPoints: []string{"web", "websecure"}, http: "redirect", httpEntryPoints: []string{}}},
		{name: "all entry points", hcl: `entry_points = []`, want: settings{entryPoints: []string{}, certResolver: "letsencrypt", http: "redirect", httpEntryPoints: []string{"web"}}},
		{name: "no plain http", hcl: "http = \"none\"\nhttp_entry_points = []", want: settings{entryPoints: []string{"web", "websecure"}, certResolver: "letsencrypt", http: "none", httpEntryPoints: []string{}}},
		{name: "bad http mode", hcl: `http = "upgrade"`, wantErr: `http = "upgrade": must be "redirect", "serve" or "none"`},
		{name: "redirect without entry point", hcl: `http_entry_points = []`, wantErr: `http = "redirect" needs at least one of http_entry_points`},
		{name: "bad http entry point", hcl: `http_entry_points = ["web;"]`, wantErr: `http_entry_points[0] = "web;"`},
		{name: "bad entry point", hcl: `entry_points = ["web", "a b"]`, wantErr: `entry_points[1] = "a b"`},
		{name: "duplicate entry point", hcl: `entry_points = ["web", "web"]`, wantErr: `"web" is listed twice`},
		{name: "bad resolver", hcl: `cert_resolver = "le@file"`, wantErr: `cert_resolver = "le@file"`},
		{name: "wrong type", hcl: `entry_points = "web"`, wantErr: "list of string required"},
		{name: "unknown attribute", hcl: `middlewares = []`, wantErr: "Unsupported argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newWithLogger(hclog.NewNullLogger())
			err := configure(t, p, tt.hcl)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := p.settings.Load()
			if fmt.Sprintf("%q", got.entryPoints) != fmt.Sprintf("%q", tt.want.entryPoints) || got.certResolver != tt.want.certResolver ||
				got.http != tt.want.http || fmt.Sprintf("%q", got.httpEntryPoints) != fmt.Sprintf("%q", tt.want.httpEntryPoints) {
				t.Errorf("settings = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestInfo(t *testing.T) {
	p := New()
	info, err := p.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.GetKind() != sdk.KindProxy || info.GetName() != Name || info.GetVersion() != Version || info.GetDescription() == "" {
		t.Errorf("info = %v", info)
	}
	if k := sdk.KindOf(p); k != sdk.KindProxy {
		t.Errorf("KindOf = %q", k)
	}
}

func TestRender20000(t *testing.T) {
	p, logs := newTestPlugin(t, "")
	routes := routetest.ManyRoutes(20000)
	start := time.Now()
	body := renderOK(t, p, routes)
	took := time.Since(start)
	var cfg struct {
		HTTP struct {
			Routers  map[string]json.RawMessage
			Services map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.HTTP.Routers) != 40000 || len(cfg.HTTP.Services) != 20000 {
		t.Errorf("%d routers, %d services", len(cfg.HTTP.Routers), len(cfg.HTTP.Services))
	}
	if len(body) >= sdk.MaxMessageSize {
		t.Errorf("%d bytes exceed the plugin message limit", len(body))
	}
	if logs.String() != "" {
		t.Errorf("unexpected log: %s", logs.String())
	}
	t.Logf("20,000 routes: %d bytes (%.1f MiB) rendered in %v", len(body), float64(len(body))/(1<<20), took)
}

func BenchmarkRender20000(b *testing.B) {
	p := newWithLogger(hclog.NewNullLogger())
	req := &pluginv1.RenderRequest{Routes: routetest.ManyRoutes(20000), Generation: 1}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Render(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// The JSON shape of Traefik's dynamic configuration, for the reference
// encoding.
type (
	refConfig struct {
		HTTP refHTTP `json:"http"`
	}
	refHTTP struct {
		Middlewares map[string]refMiddleware `json:"middlewares,omitempty"`
		Routers     map[string]refRouter     `json:"routers"`
		Services    map[string]refService    `json:"services"`
	}
	refMiddleware struct {
		RedirectScheme struct {
			Permanent bool   `json:"permanent"`
			Scheme    string `json:"scheme"`
		} `json:"redirectScheme"`
	}
	refRouter struct {
		EntryPoints []string `json:"entryPoints,omitempty"`
		Middlewares []string `json:"middlewares,omitempty"`
		Rule        string   `json:"rule"`
		Service     string   `json:"service"`
		TLS         *refTLS  `json:"tls,omitempty"`
	}
	refTLS struct {
		CertResolver string `json:"certResolver"`
	}
	refService struct {
		LoadBalancer struct {
			Servers []refServer `json:"servers"`
		} `json:"loadBalancer"`
	}
	refServer struct {
		URL string `json:"url"`
	}
)

// referenceRender is the obvious implementation: structs and maps through
// encoding/json. Routes must be valid and uniquely named.
func referenceRender(t *testing.T, s *settings, routes []*pluginv1.Route) []byte {
	t.Helper()
	cfg := refConfig{HTTP: refHTTP{Routers: map[string]refRouter{}, Services: map[string]refService{}}}
	for _, r := range routes {
		var rule []string
		for _, h := range r.GetHosts() {
			rule = append(rule, "Host(`"+h+"`)")
		}
		rt := refRouter{EntryPoints: s.entryPoints, Rule: strings.Join(rule, " || "), Service: r.GetName()}
		if s.certResolver != "" {
			rt.TLS = &refTLS{CertResolver: s.certResolver}
			if s.http != HTTPNone {
				hr := refRouter{EntryPoints: s.httpEntryPoints, Rule: rt.Rule, Service: r.GetName()}
				if s.http == HTTPRedirect {
					hr.Middlewares = []string{RedirectMiddleware}
					var mw refMiddleware
					mw.RedirectScheme.Permanent, mw.RedirectScheme.Scheme = true, "https"
					cfg.HTTP.Middlewares = map[string]refMiddleware{RedirectMiddleware: mw}
				}
				cfg.HTTP.Routers[r.GetName()+HTTPRouterSuffix] = hr
			}
		}
		cfg.HTTP.Routers[r.GetName()] = rt
		var svc refService
		svc.LoadBalancer.Servers = []refServer{{URL: r.GetUpstream()}}
		cfg.HTTP.Services[r.GetName()] = svc
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(cfg); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The direct writer produces exactly what encoding/json makes of the
// structs.
func TestMatchesEncodingJSON(t *testing.T) {
	valid := routetest.SmallTable()
	for _, s := range []*settings{
		{entryPoints: []string{"web", "websecure"}, certResolver: "letsencrypt", http: HTTPNone},
		{entryPoints: []string{"websecure"}, certResolver: "letsencrypt", http: HTTPRedirect, httpEntryPoints: []string{"web"}},
		{entryPoints: []string{"websecure"}, certResolver: "le", http: HTTPServe, httpEntryPoints: []string{"web", "web-2"}},
		{entryPoints: []string{"websecure"}, http: HTTPRedirect, httpEntryPoints: []string{"web"}},
		{entryPoints: []string{}, certResolver: "le_dns-2", http: HTTPNone},
	} {
		// Names where "<name>_http" does not sort right after "<name>".
		tricky := []*pluginv1.Route{
			{AppId: 7, Name: "a", Hosts: []string{"a.example.com"}, Upstream: "http://10.0.0.1:80"},
			{AppId: 8, Name: "a-b", Hosts: []string{"a-b.example.com"}, Upstream: "http://10.0.0.1:81"},
			{AppId: 9, Name: "a0", Hosts: []string{"a0.example.com"}, Upstream: "http://10.0.0.1:82"},
			{AppId: 10, Name: "ab", Hosts: []string{"ab.example.com"}, Upstream: "http://10.0.0.1:83"},
		}
		for _, routes := range [][]*pluginv1.Route{nil, valid, tricky, routetest.ManyRoutes(2000)} {
			checked, skipped := route.Prepare(routes)
			if len(skipped) != 0 {
				t.Fatalf("Prepare skipped %v", skipped)
			}
			got := render(s, checked)
			if want := referenceRender(t, s, routes); !bytes.Equal(got, want) {
				t.Errorf("settings %+v, %d routes: output differs from encoding/json:\n got: %.400s\nwant: %.400s", *s, len(routes), got, want)
			}
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "web", `a"b`, `a\b`, "a\nb\rc\td", "\x00\x1f", "x`y"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

// render sizes its buffer exactly: the output never grows it, and the
// estimate is never more than a few bytes over.
func TestRenderSizeEstimate(t *testing.T) {
	for _, s := range []*settings{defaultSettings(), {entryPoints: []string{"websecure"}, http: HTTPNone}} {
		checked, _ := route.Prepare(routetest.ManyRoutes(300))
		b := render(s, checked)
		if cap(b) < len(b) || cap(b)-len(b) > 256 {
			t.Errorf("settings %+v: %d bytes in a buffer of %d", *s, len(b), cap(b))
		}
	}
}
