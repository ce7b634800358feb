package caddy

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route/routetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// newTestPlugin returns a plugin configured with configHCL, logging JSON
// into a buffer, as sdk.Logger does to stderr.
func newTestPlugin(t *testing.T, configHCL string) (*Plugin, *plugintest.LogBuffer) {
	t.Helper()
	log, buf := plugintest.JSONLogger()
	p := newWithLogger(log)
	if err := configure(t, p, configHCL); err != nil {
		t.Fatal(err)
	}
	return p, buf
}

// configure decodes src against the spec, as the core does, and passes
// the result to Configure.
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
// one route the core got wrong, a host breaking out of Caddy's JSON.
func smallTable() []*pluginv1.Route {
	return append(routetest.SmallTable(),
		&pluginv1.Route{AppId: 5, Name: "bad", Hosts: []string{`bad.apps.example.com"]},{"host":["evil.com`}, Upstream: "http://10.8.0.2:8081"})
}

// goldenConfigs are the config blocks of the golden files, by file name.
var goldenConfigs = []struct{ name, config string }{
	{name: "acme"},
	{name: "acme-email-on-demand", config: "email = \"ops@example.com\"\non_demand_ask = \"http://127.0.0.1:8081/v1/proxy/tls/ask\""},
	{name: "internal", config: "tls = \"internal\"\nadmin = \"http://127.0.0.1:2999\"\nhttp_listen = \"127.0.0.1:8080\"\nhttps_listen = \"127.0.0.1:8443\""},
	{name: "internal-on-demand", config: "tls = \"internal\"\non_demand_ask = \"https://core.example.com/v1/proxy/tls/ask?zone=a&b=1\""},
	{name: "off", config: "tls = \"off\"\nhttp_listen = \"[::]:8080\"\nadmin = \"http://[::1]:2019\""},
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name, config string
		routes       []*pluginv1.Route
	}{
		{name: "empty", routes: nil},
	}
	for _, g := range goldenConfigs {
		tests = append(tests, struct {
			name, config string
			routes       []*pluginv1.Route
		}{g.name, g.config, smallTable()})
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

// caddyJSON is the part of Caddy's configuration the tests look at.
type caddyJSON struct {
	Admin struct{ Listen string }
	Apps  struct {
		HTTP struct {
			HTTPPort  int `json:"http_port"`
			HTTPSPort int `json:"https_port"`
			Servers   map[string]struct {
				Listen         []string
				AutomaticHTTPS *struct{ Disable bool } `json:"automatic_https"`
				Routes         []struct {
					Match  []struct{ Host []string }
					Handle []struct {
						Handler      string
						StatusCode   int `json:"status_code"`
						Upstreams    []struct{ Dial string }
						Source       string
						Destinations []string
						Mappings     []struct {
							Input   string
							Outputs []string
						}
					}
					Terminal bool
				}
			}
		}
		PKI *struct {
			CertificateAuthorities map[string]struct {
				InstallTrust *bool `json:"install_trust"`
			} `json:"certificate_authorities"`
		}
		TLS *struct {
			Automation struct {
				Policies []struct {
					Subjects []string
					Issuers  []struct{ Module, Email string }
					OnDemand bool `json:"on_demand"`
				}
				OnDemand *struct{ Ask string } `json:"on_demand"`
			}
		}
	}
}

// dials returns, for the apps' route of server srv, the upstream each host
// maps to, checking the route's shape on the way: one host matcher listing
// exactly the mapped hosts, a map from the request's host into the
// placeholder reverse_proxy dials, terminal; then the 404 catch-all.
func dials(t *testing.T, c caddyJSON, srv string) map[string]string {
	t.Helper()
	rs := c.Apps.HTTP.Servers[srv].Routes
	last := rs[len(rs)-1]
	if len(last.Match) != 0 || len(last.Handle) != 1 || last.Handle[0].Handler != "static_response" || last.Handle[0].StatusCode != 404 {
		t.Fatalf("server %s: the last route is not the 404 catch-all: %+v", srv, last)
	}
	if len(rs) == 1 {
		return map[string]string{}
	}
	if len(rs) != 2 {
		t.Fatalf("server %s: %d routes, want the apps' route and the catch-all", srv, len(rs))
	}
	r := rs[0]
	if len(r.Match) != 1 || !r.Terminal || len(r.Handle) != 2 {
		t.Fatalf("server %s: apps' route %+v", srv, r)
	}
	m, rp := r.Handle[0], r.Handle[1]
	if m.Handler != "map" || m.Source != "{http.request.host}" || fmt.Sprint(m.Destinations) != "["+upstreamPlaceholder+"]" ||
		rp.Handler != "reverse_proxy" || len(rp.Upstreams) != 1 || rp.Upstreams[0].Dial != upstreamPlaceholder {
		t.Fatalf("server %s: handlers %+v", srv, r.Handle)
	}
	out := map[string]string{}
	var inputs []string
	for _, mp := range m.Mappings {
		if len(mp.Outputs) != 1 {
			t.Fatalf("mapping %+v", mp)
		}
		if _, dup := out[mp.Input]; dup {
			t.Fatalf("host %s mapped twice", mp.Input)
		}
		out[mp.Input] = mp.Outputs[0]
		inputs = append(inputs, mp.Input)
	}
	if fmt.Sprint(inputs) != fmt.Sprint(r.Match[0].Host) {
		t.Fatalf("the matcher's hosts %v are not the mapped ones %v", r.Match[0].Host, inputs)
	}
	return out
}

func parse(t *testing.T, body []byte) caddyJSON {
	t.Helper()
	var c caddyJSON
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// The rendered shape, checked field by field (the golden files pin bytes).
func TestShape(t *testing.T) {
	t.Run("acme defaults", func(t *testing.T) {
		p, _ := newTestPlugin(t, "")
		c := parse(t, renderOK(t, p, smallTable()))
		if c.Admin.Listen != "127.0.0.1:2019" {
			t.Errorf("admin listen %q", c.Admin.Listen)
		}
		h := c.Apps.HTTP
		if h.HTTPPort != 80 || h.HTTPSPort != 443 || len(h.Servers) != 2 {
			t.Fatalf("http app: ports %d/%d, %d servers", h.HTTPPort, h.HTTPSPort, len(h.Servers))
		}
		hs := h.Servers["https"]
		if fmt.Sprint(hs.Listen) != "[:443]" || hs.AutomaticHTTPS != nil {
			t.Errorf("https server: %+v", hs)
		}
		// api-v2, blog, shop, v6 (by name); the bad route left out.
		want := map[string]string{
			"api-v2.apps.example.com": "worker-2.wg.internal:8080", "api.example.net": "worker-2.wg.internal:8080",
			"blog.apps.example.com": "10.8.0.3:3000",
			"shop.apps.example.com": "10.8.0.2:8080", "shop.example.org": "10.8.0.2:8080", "www.shop.example.org": "10.8.0.2:8080",
			"v6.apps.example.com": "[fd00::4]:8080",
		}
		if got := dials(t, c, "https"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("hosts → upstreams\n got %v\nwant %v", got, want)
		}
		hp := h.Servers["http"]
		if fmt.Sprint(hp.Listen) != "[:80]" || len(hp.Routes) != 1 || hp.Routes[0].Handle[0].StatusCode != 404 {
			t.Errorf("http server: %+v", hp)
		}
		if c.Apps.PKI == nil || c.Apps.PKI.CertificateAuthorities["local"].InstallTrust == nil || *c.Apps.PKI.CertificateAuthorities["local"].InstallTrust {
			t.Errorf("pki: install_trust is not false")
		}
		if c.Apps.TLS != nil {
			t.Errorf("tls app without email or on-demand: %+v", c.Apps.TLS)
		}
	})
	t.Run("acme email on demand", func(t *testing.T) {
		p, _ := newTestPlugin(t, "email = \"ops@example.com\"\non_demand_ask = \"http://127.0.0.1:8081/ask\"")
		c := parse(t, renderOK(t, p, smallTable()))
		a := c.Apps.TLS.Automation
		if len(a.Policies) != 1 || len(a.Policies[0].Subjects) != 0 || !a.Policies[0].OnDemand ||
			fmt.Sprint(a.Policies[0].Issuers) != "[{acme ops@example.com} {zerossl ops@example.com}]" {
			t.Errorf("policies: %+v", a.Policies)
		}
		if a.OnDemand == nil || a.OnDemand.Ask != "http://127.0.0.1:8081/ask" {
			t.Errorf("on_demand: %+v", a.OnDemand)
		}
	})
	t.Run("internal", func(t *testing.T) {
		p, _ := newTestPlugin(t, "tls = \"internal\"\nhttp_listen = \"127.0.0.1:8080\"\nhttps_listen = \"127.0.0.1:8443\"")
		c := parse(t, renderOK(t, p, smallTable()))
		a := c.Apps.TLS.Automation
		if len(a.Policies) != 1 || a.Policies[0].OnDemand || fmt.Sprint(a.Policies[0].Issuers) != "[{internal }]" || a.OnDemand != nil {
			t.Errorf("automation: %+v", a)
		}
		h := c.Apps.HTTP
		if h.HTTPPort != 8080 || h.HTTPSPort != 8443 || fmt.Sprint(h.Servers["https"].Listen) != "[127.0.0.1:8443]" ||
			fmt.Sprint(h.Servers["http"].Listen) != "[127.0.0.1:8080]" {
			t.Errorf("http app: %+v", h)
		}
		if c.Apps.PKI == nil || *c.Apps.PKI.CertificateAuthorities["local"].InstallTrust {
			t.Errorf("pki: install_trust is not false")
		}
	})
	t.Run("off", func(t *testing.T) {
		p, _ := newTestPlugin(t, "tls = \"off\"\nhttp_listen = \"127.0.0.1:8080\"")
		c := parse(t, renderOK(t, p, smallTable()))
		h := c.Apps.HTTP
		if len(h.Servers) != 1 || h.HTTPPort != 8080 || h.HTTPSPort != 0 {
			t.Fatalf("http app: %+v", h)
		}
		s := h.Servers["http"]
		if s.AutomaticHTTPS == nil || !s.AutomaticHTTPS.Disable || len(dials(t, c, "http")) != 7 || fmt.Sprint(s.Listen) != "[127.0.0.1:8080]" {
			t.Errorf("http server: %+v", s)
		}
		if c.Apps.TLS != nil || c.Apps.PKI != nil {
			t.Errorf("tls or pki app with tls off")
		}
	})
}

// The output does not depend on the table's order, in every TLS mode.
func TestDeterministic(t *testing.T) {
	for _, g := range goldenConfigs {
		t.Run(g.name, func(t *testing.T) {
			p, _ := newTestPlugin(t, g.config)
			render := func(routes []*pluginv1.Route, gen uint64) []byte { return renderGen(t, p, routes, gen) }
			routetest.CheckDeterministic(t, render, append(routetest.ManyRoutes(500), routetest.ContestedRoutes()...))
		})
	}
}

// A host claimed by two routes is served by the first by name only; the
// other route keeps its other hosts.
func TestSharedHost(t *testing.T) {
	p, logs := newTestPlugin(t, `tls = "off"`)
	c := parse(t, renderOK(t, p, []*pluginv1.Route{
		{AppId: 2, Name: "b", Hosts: []string{"shared.example.com", "b.example.com"}, Upstream: "http://10.0.0.2:80"},
		{AppId: 1, Name: "a", Hosts: []string{"shared.example.com"}, Upstream: "http://10.0.0.1:80"},
	}))
	if got := fmt.Sprint(dials(t, c, "http")); got != "map[b.example.com:10.0.0.2:80 shared.example.com:10.0.0.1:80]" {
		t.Errorf("hosts → upstreams: %s", got)
	}
	if !strings.Contains(logs.String(), "host left out of the Caddy configuration") || strings.Contains(logs.String(), "shared.example.com") {
		t.Errorf("log: %s", logs.String())
	}
}

func TestInjection(t *testing.T) {
	for _, tt := range routetest.EvilRoutes() {
		t.Run(tt.Name, func(t *testing.T) {
			p, logs := newTestPlugin(t, "")
			body := renderOK(t, p, []*pluginv1.Route{routetest.GoodRoute(), tt.Route})
			if !strings.Contains(string(body), `"good.apps.example.com"`) {
				t.Errorf("the valid route is missing: %s", body)
			}
			for _, c := range []string{`\`, "'", "*", "@", "{env", "`", " "} {
				if strings.Contains(string(body), c) {
					t.Errorf("%q in the output: %s", c, body)
				}
			}
			c := parse(t, body)
			if n := len(c.Apps.HTTP.Servers["https"].Routes); n != 2 {
				t.Errorf("%d routes, want the good one and the catch-all", n)
			}
			routetest.CheckLeftOut(t, tt, body, logs.String())
		})
	}
}

// The good and bad config blocks of the conformance table (plugins/).
var (
	goodConfigs = []string{
		``,
		"tls = \"internal\"\nhttp_listen = \"127.0.0.1:8080\"\nhttps_listen = \"127.0.0.1:8443\"",
		"admin = \"http://10.0.0.5:2019\"\nemail = \"ops@example.com\"\non_demand_ask = \"http://127.0.0.1:8443/v1/proxy/tls/ask\"",
		"tls = \"off\"\nhttp_listen = \":8080\"",
	}
	badConfigs = []string{
		`tls = "on"`,
		`admin = "http://203.0.113.7:2019"`,
		`admin = "https://127.0.0.1:2019"`,
		`admin = "http://127.0.0.1:2019/config"`,
		`http_listen = "80"`,
		"tls = \"off\"\nemail = \"ops@example.com\"",
		"tls = \"off\"\non_demand_ask = \"http://127.0.0.1:8443/ask\"",
		`on_demand_ask = "ftp://127.0.0.1/ask"`,
		`email = "not an email"`,
		"http_listen = \"127.0.0.1:8080\"\nhttps_listen = \":8443\"",
		`tls = true`,
		`origins = ["x"]`,
		`admin = ["http://127.0.0.1:2019"]`,
	}
)

func TestConfigure(t *testing.T) {
	def := *defaultSettings()
	with := func(f func(s *settings)) settings {
		s := def
		f(&s)
		return s
	}
	tests := []struct {
		name, hcl, wantErr string
		want               settings
	}{
		{name: "defaults", want: def},
		{name: "internal loopback", hcl: goodConfigs[1], want: with(func(s *settings) {
			s.tls, s.httpListen, s.httpsListen, s.httpPort, s.httpsPort = "internal", "127.0.0.1:8080", "127.0.0.1:8443", 8080, 8443
		})},
		{name: "private admin, email, on demand", hcl: goodConfigs[2], want: with(func(s *settings) {
			s.admin, s.email, s.onDemandAsk = "10.0.0.5:2019", "ops@example.com", "http://127.0.0.1:8443/v1/proxy/tls/ask"
		})},
		{name: "off", hcl: goodConfigs[3], want: with(func(s *settings) {
			s.tls, s.httpListen, s.httpPort, s.httpsListen, s.httpsPort = "off", ":8080", 8080, "", 0
		})},
		{name: "admin ipv6 loopback, trailing slash", hcl: `admin = "http://[::1]:2019/"`, want: with(func(s *settings) { s.admin = "[::1]:2019" })},
		{name: "admin ula", hcl: `admin = "http://[fd00::5]:2019"`, want: with(func(s *settings) { s.admin = "[fd00::5]:2019" })},
		{name: "ipv6 listeners", hcl: "http_listen = \"[::1]:8080\"\nhttps_listen = \"[::1]:8443\"", want: with(func(s *settings) {
			s.httpListen, s.httpsListen, s.httpPort, s.httpsPort = "[::1]:8080", "[::1]:8443", 8080, 8443
		})},
		{name: "off ignores https_listen", hcl: "tls = \"off\"\nhttps_listen = \"127.0.0.1:9\"", want: with(func(s *settings) { s.tls, s.httpsListen, s.httpsPort = "off", "", 0 })},
		{name: "ask with query", hcl: `on_demand_ask = "https://core.example.com/ask?x=1"`, want: with(func(s *settings) { s.onDemandAsk = "https://core.example.com/ask?x=1" })},

		{name: "bad tls", hcl: badConfigs[0], wantErr: `tls = "on": the TLS mode is "acme", "internal" or "off"`},
		{name: "public admin", hcl: badConfigs[1], wantErr: "must not be public"},
		{name: "https admin", hcl: badConfigs[2], wantErr: "plain HTTP"},
		{name: "admin path", hcl: badConfigs[3], wantErr: "without user info, path, query or fragment"},
		{name: "admin user info", hcl: `admin = "http://u:p@127.0.0.1:2019"`, wantErr: "without user info"},
		{name: "admin query", hcl: `admin = "http://127.0.0.1:2019?x=1"`, wantErr: "without user info"},
		{name: "admin no port", hcl: `admin = "http://127.0.0.1"`, wantErr: `admin = "http://127.0.0.1"`},
		{name: "admin port 0", hcl: `admin = "http://127.0.0.1:0"`, wantErr: "port is not a number"},
		{name: "admin name", hcl: `admin = "http://localhost:2019"`, wantErr: "must be an IP address"},
		{name: "admin name with dots", hcl: `admin = "http://caddy.internal:2019"`, wantErr: "must be an IP address"},
		{name: "admin unspecified", hcl: `admin = "http://0.0.0.0:2019"`, wantErr: "must not be public"},
		{name: "admin ipv6 unbracketed", hcl: `admin = "http://::1:2019"`, wantErr: "admin ="},
		{name: "listen no port", hcl: badConfigs[4], wantErr: `http_listen = "80": a listener address is "[ip]:port"`},
		{name: "listen name", hcl: `https_listen = "example.com:443"`, wantErr: "empty (every interface) or an IP address"},
		{name: "listen port range", hcl: `http_listen = ":80-81"`, wantErr: "port is not a number"},
		{name: "listen unix", hcl: `http_listen = "unix//run/caddy.sock"`, wantErr: "http_listen ="},
		{name: "same ports", hcl: "http_listen = \":8080\"\nhttps_listen = \":8080\"", wantErr: "different ports"},
		{name: "different hosts", hcl: badConfigs[9], wantErr: "same IP address"},
		{name: "admin on http listener", hcl: "admin = \"http://127.0.0.1:8080\"\nhttp_listen = \":8080\"", wantErr: "admin API (admin) listens there"},
		{name: "admin on https listener", hcl: "admin = \"http://127.0.0.1:8443\"\nhttps_listen = \"127.0.0.1:8443\"\nhttp_listen = \"127.0.0.1:8080\"", wantErr: "admin API (admin) listens there"},
		{name: "email with tls off", hcl: badConfigs[5], wantErr: `needs tls = "acme"`},
		{name: "email with tls internal", hcl: "tls = \"internal\"\nemail = \"ops@example.com\"", wantErr: `needs tls = "acme"`},
		{name: "on demand with tls off", hcl: badConfigs[6], wantErr: "on-demand TLS needs"},
		{name: "ask ftp", hcl: badConfigs[7], wantErr: "not an http:// or https:// URL"},
		{name: "ask relative", hcl: `on_demand_ask = "/v1/proxy/tls/ask"`, wantErr: "not an http:// or https:// URL"},
		{name: "ask user info", hcl: `on_demand_ask = "http://u:p@127.0.0.1/ask"`, wantErr: "user info"},
		{name: "ask fragment", hcl: `on_demand_ask = "http://127.0.0.1/ask#x"`, wantErr: "fragment"},
		{name: "bad email", hcl: badConfigs[8], wantErr: "not a plain email address"},
		{name: "email display name", hcl: `email = "Ops <ops@example.com>"`, wantErr: "not a plain email address"},
		{name: "bool tls", hcl: badConfigs[10], wantErr: `tls = "true"`},
		{name: "wrong type", hcl: badConfigs[12], wantErr: "string required"},
		{name: "unknown attribute", hcl: badConfigs[11], wantErr: "Unsupported argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newWithLogger(hclog.NewNullLogger())
			err := configure(t, p, tt.hcl)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if *p.settings.Load() != def {
					t.Error("a rejected config changed the settings")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := *p.settings.Load(); got != tt.want {
				t.Errorf("settings = %+v\n          want %+v", got, tt.want)
			}
		})
	}
}

// Every good conformance config renders a configuration; every bad one is
// rejected by the spec or by Configure.
func TestConformanceConfigs(t *testing.T) {
	for i, c := range goodConfigs {
		p := newWithLogger(hclog.NewNullLogger())
		if err := configure(t, p, c); err != nil {
			t.Errorf("good config %d rejected: %v", i, err)
		}
	}
	for i, c := range badConfigs {
		p := newWithLogger(hclog.NewNullLogger())
		if err := configure(t, p, c); err == nil {
			t.Errorf("bad config %d accepted: %s", i, c)
		}
	}
}

// A rejected config leaves the previous one in force.
func TestConfigureKeepsPrevious(t *testing.T) {
	p := newWithLogger(hclog.NewNullLogger())
	if err := configure(t, p, `tls = "internal"`); err != nil {
		t.Fatal(err)
	}
	if err := configure(t, p, `tls = "bogus"`); err == nil {
		t.Fatal("bad config accepted")
	}
	if p.settings.Load().tls != "internal" {
		t.Errorf("settings after a rejected config: %+v", *p.settings.Load())
	}
	// An empty JSON object (no config block decoded) means the defaults.
	if err := p.Configure(context.Background(), &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if *p.settings.Load() != *defaultSettings() {
		t.Errorf("settings after {}: %+v", *p.settings.Load())
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
	if !slices.Contains(info.GetCapabilities(), sdk.CapabilityProxyApply) {
		t.Errorf("capabilities %v lack %q", info.GetCapabilities(), sdk.CapabilityProxyApply)
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
	c := parse(t, body)
	if n := len(dials(t, c, "https")); n != 20000+20000/3+1 {
		t.Errorf("%d hosts mapped, want every host of 20,000 apps", n)
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
