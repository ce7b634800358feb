// Package caddy is the built-in "caddy" proxy plugin: it renders the route
// table as a complete Caddy JSON configuration (Render) and pushes it to
// Caddy's admin API with POST /load (Apply, capability "proxy.apply"), so
// Caddy runs with no configuration of its own beyond its admin address.
//
// All apps share one route of Caddy's HTTP app: a host matcher with every
// routed host (in route-name order), a map from the request's host to its
// upstream, and one reverse_proxy that dials it; then a catch-all answers
// 404, so that unknown hosts get no empty 200:
//
//	{"match":[{"host":["blog.apps.example.com","shop.apps.example.com","shop.example.org"]}],
//	 "handle":[{"handler":"map","source":"{http.request.host}","destinations":["{wisehosting_upstream}"],
//	            "mappings":[{"input":"blog.apps.example.com","outputs":["10.8.0.3:3000"]},
//	                        {"input":"shop.apps.example.com","outputs":["10.8.0.2:8080"]}, …]},
//	           {"handler":"reverse_proxy","upstreams":[{"dial":"{wisehosting_upstream}"}]}],
//	 "terminal":true}
//
// (Caddy binary-searches a long host list; one route per app would be
// tried app by app on every request. See render.)
//
// The configuration always carries an admin section keeping the admin API
// on the configured address: POST /load replaces the whole configuration,
// and without one Caddy would move its admin API to localhost:2019 (even
// when it then rejects the configuration).
//
// TLS modes:
//
//   - "acme" (the default): Caddy's automatic HTTPS gets certificates from
//     its default ACME issuers (Let's Encrypt, ZeroSSL); email, when set, is
//     the ACME account address.
//   - "internal": certificates from Caddy's own local CA (for tests, private
//     networks and hosts behind another TLS terminator). Clients must trust
//     the root in Caddy's data directory (pki/authorities/local/root.crt).
//   - "off": plain HTTP on http_listen only; no certificates, no redirects.
//
// With TLS on, the routes are served on https_listen, and http_listen
// answers 308 redirects to HTTPS for the routed hosts (Caddy's automatic
// HTTPS adds them), ACME HTTP challenges, and 404 for anything else. The
// ports of the two listeners become the HTTP app's http_port and
// https_port, which Caddy takes to be the public ones: a redirect's
// Location names no port, so with non-default ports the redirects assume
// port forwarding from 80 and 443. With TLS on, the local CA's
// install_trust is false: Caddy never touches the system trust store.
//
// With on_demand_ask set, certificates are obtained on demand, at the first
// TLS handshake for a host, and only for hosts that URL answers 2xx for
// (Caddy calls it with ?domain=<host>); otherwise Caddy obtains them for
// every routed host as soon as a configuration is loaded.
//
// Equal route tables give byte-equal output whatever their order. Routes are
// checked again here with sdk/route, whatever the core did: a route whose
// name, hosts or upstream are unsafe is left out and logged (by name and app
// id, never by host or upstream).
//
// Configuration (all optional; the values shown are the defaults):
//
//	plugin "proxy" "caddy" {
//	  config {
//	    admin         = "http://127.0.0.1:2019" # Caddy's admin API: a loopback or private IP address
//	    tls           = "acme"                  # "acme", "internal" or "off"
//	    email         = ""                      # ACME account email (tls = "acme" only)
//	    http_listen   = ":80"                   # [ip]:port of the HTTP listener
//	    https_listen  = ":443"                  # [ip]:port of the HTTPS listener (ignored with tls = "off")
//	    on_demand_ask = ""                      # e.g. "http://127.0.0.1:8443/v1/proxy/tls/ask"
//	  }
//	}
//
// With TLS on, http_listen and https_listen must have the same IP address
// (or none): Caddy puts its HTTP->HTTPS redirects on https_listen's address
// at the HTTP port.
//
// Apply posts the configuration with a fixed timeout of [ApplyTimeout] (or
// the caller's deadline, if sooner) and does not retry: the core does.
// Caddy answers /load only once the new configuration runs (or has been
// rolled back, keeping the previous one), so a successful Apply means Caddy
// serves the table. Caddy saves every loaded configuration (autosave.json in
// its config directory): `caddy run --resume` restarts with the last table
// applied until the core applies the next one.
package caddy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route"
)

// Name is the plugin's name: plugin "proxy" "caddy".
const Name = "caddy"

// Version is the plugin's release version.
const Version = "0.1.0"

// ContentType is the content type of the rendered configuration.
const ContentType = "application/json"

// TLS modes, the values of tls.
const (
	// TLSACME is Caddy's automatic HTTPS with ACME certificates.
	TLSACME = "acme"
	// TLSInternal is automatic HTTPS with certificates from Caddy's local CA.
	TLSInternal = "internal"
	// TLSOff is plain HTTP only.
	TLSOff = "off"
)

// Defaults of the config block.
const (
	// DefaultAdmin is the address of Caddy's admin API.
	DefaultAdmin = "http://127.0.0.1:2019"
	// DefaultTLS is the TLS mode.
	DefaultTLS = TLSACME
	// DefaultHTTPListen is the address of the HTTP listener.
	DefaultHTTPListen = ":80"
	// DefaultHTTPSListen is the address of the HTTPS listener.
	DefaultHTTPSListen = ":443"
)

// Config is the plugin's decoded config block.
type Config struct {
	// Admin is the URL of Caddy's admin API, http://<ip>:<port>; ""
	// means DefaultAdmin.
	Admin string `json:"admin"`
	// TLS is the TLS mode: TLSACME, TLSInternal or TLSOff; "" means
	// DefaultTLS.
	TLS string `json:"tls"`
	// Email is the ACME account's email address; "" for none.
	Email string `json:"email"`
	// HTTPListen is the HTTP listener, [ip]:port; "" means
	// DefaultHTTPListen.
	HTTPListen string `json:"http_listen"`
	// HTTPSListen is the HTTPS listener, [ip]:port; "" means
	// DefaultHTTPSListen.
	HTTPSListen string `json:"https_listen"`
	// OnDemandAsk is the URL Caddy asks before obtaining a certificate on
	// demand; "" obtains certificates up front.
	OnDemandAsk string `json:"on_demand_ask"`
}

// Spec returns the schema of the plugin's config block.
func Spec() *pluginv1.Spec {
	str := func(name, def, doc string) *pluginv1.Spec {
		return hclspec.Default(hclspec.Attr(name, "string", false, doc), hclspec.Literal(strconv.Quote(def)))
	}
	return hclspec.Object(map[string]*pluginv1.Spec{
		"admin": str("admin", DefaultAdmin,
			"URL of Caddy's admin API, http://<ip>:<port> with a loopback or private IP address; the configuration keeps the admin API there."),
		"tls": str("tls", DefaultTLS,
			`TLS mode: "acme" (automatic HTTPS with ACME certificates), "internal" (Caddy's local CA) or "off" (plain HTTP only).`),
		"email": str("email", "",
			`Email address of the ACME account (tls = "acme" only); "" for none.`),
		"http_listen": str("http_listen", DefaultHTTPListen,
			"Address of the HTTP listener, [ip]:port; its port is Caddy's http_port."),
		"https_listen": str("https_listen", DefaultHTTPSListen,
			`Address of the HTTPS listener, [ip]:port, with the same IP address as http_listen; its port is Caddy's https_port. Unused with tls = "off".`),
		"on_demand_ask": str("on_demand_ask", "",
			`URL Caddy asks (with ?domain=<host>) before obtaining a certificate at the first TLS handshake for a host; "" obtains certificates for every routed host up front.`),
	})
}

// settings are the validated config Render and Apply use.
type settings struct {
	admin       string // host:port of the admin API
	tls         string
	email       string
	httpListen  string
	httpsListen string
	httpPort    int
	httpsPort   int
	onDemandAsk string
}

// defaultSettings are the settings of an empty config block.
func defaultSettings() *settings {
	return &settings{
		admin: strings.TrimPrefix(DefaultAdmin, "http://"), tls: DefaultTLS,
		httpListen: DefaultHTTPListen, httpsListen: DefaultHTTPSListen, httpPort: 80, httpsPort: 443,
	}
}

// Plugin is the Caddy proxy emitter. Create it with New.
type Plugin struct {
	sdk.Base

	cfg      Config
	settings atomic.Pointer[settings]
	log      hclog.Logger

	client   *http.Client
	applying chan struct{} // a one-slot semaphore: one POST /load at a time
}

var (
	_ sdk.Proxy        = (*Plugin)(nil)
	_ sdk.ProxyApplier = (*Plugin)(nil)
)

// New returns the plugin with the default settings, logging through
// sdk.Logger.
func New() *Plugin { return newWithLogger(sdk.Logger()) }

func newWithLogger(l hclog.Logger) *Plugin {
	p := &Plugin{
		Base: sdk.Base{
			Kind:         sdk.KindProxy,
			Name:         Name,
			Version:      Version,
			Description:  "Renders the route table as Caddy JSON configuration and loads it through Caddy's admin API.",
			Capabilities: []string{sdk.CapabilityProxyApply},
			Spec:         Spec(),
		},
		log:      l,
		client:   newClient(),
		applying: make(chan struct{}, 1),
	}
	p.Config = &p.cfg
	p.Validate = p.validate
	p.settings.Store(defaultSettings())
	return p
}

func (p *Plugin) validate() error {
	s := defaultSettings()
	c := p.cfg
	if c.Admin != "" {
		admin, err := parseAdmin(c.Admin)
		if err != nil {
			return fmt.Errorf("admin = %q: %w", c.Admin, err)
		}
		s.admin = admin
	}
	if c.TLS != "" {
		s.tls = c.TLS
	}
	if s.tls != TLSACME && s.tls != TLSInternal && s.tls != TLSOff {
		return fmt.Errorf("tls = %q: the TLS mode is %q, %q or %q", c.TLS, TLSACME, TLSInternal, TLSOff)
	}
	if c.HTTPListen != "" {
		s.httpListen = c.HTTPListen
	}
	if c.HTTPSListen != "" {
		s.httpsListen = c.HTTPSListen
	}
	httpHost, httpPort, err := parseListen(s.httpListen)
	if err != nil {
		return fmt.Errorf("http_listen = %q: %w", s.httpListen, err)
	}
	s.httpPort = httpPort
	adminHost, adminPort, _ := net.SplitHostPort(s.admin)
	if overlap(adminHost, adminPort, httpHost, strconv.Itoa(httpPort)) {
		return fmt.Errorf("http_listen = %q: Caddy's admin API (admin) listens there", s.httpListen)
	}
	if s.tls == TLSOff {
		s.httpsListen, s.httpsPort = "", 0
	} else {
		httpsHost, httpsPort, err := parseListen(s.httpsListen)
		if err != nil {
			return fmt.Errorf("https_listen = %q: %w", s.httpsListen, err)
		}
		s.httpsPort = httpsPort
		if httpsPort == httpPort {
			return fmt.Errorf("https_listen = %q: the HTTP and HTTPS listeners need different ports", s.httpsListen)
		}
		if httpsHost != httpHost {
			return fmt.Errorf("https_listen = %q and http_listen = %q: with TLS on, both listeners need the same IP address (or none), where Caddy serves its HTTP->HTTPS redirects", s.httpsListen, s.httpListen)
		}
		if overlap(adminHost, adminPort, httpsHost, strconv.Itoa(httpsPort)) {
			return fmt.Errorf("https_listen = %q: Caddy's admin API (admin) listens there", s.httpsListen)
		}
	}
	if c.Email != "" {
		if s.tls != TLSACME {
			return fmt.Errorf("email = %q: an ACME account email needs tls = %q, not %q", c.Email, TLSACME, s.tls)
		}
		if err := checkEmail(c.Email); err != nil {
			return fmt.Errorf("email = %q: %w", c.Email, err)
		}
		s.email = c.Email
	}
	if c.OnDemandAsk != "" {
		if s.tls == TLSOff {
			return fmt.Errorf("on_demand_ask = %q: on-demand TLS needs tls = %q or %q, not %q", c.OnDemandAsk, TLSACME, TLSInternal, TLSOff)
		}
		if err := checkAsk(c.OnDemandAsk); err != nil {
			return fmt.Errorf("on_demand_ask = %q: %w", c.OnDemandAsk, err)
		}
		s.onDemandAsk = c.OnDemandAsk
	}
	p.settings.Store(s)
	return nil
}

// parseAdmin accepts exactly http://<ip>:<port>, the IP address a loopback
// or private one (IPv6 in brackets), and an optional trailing "/". It
// returns the address as host:port.
func parseAdmin(raw string) (string, error) {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		return "", fmt.Errorf(`Caddy's admin API is reached over plain HTTP: the URL must be "http://<ip>:<port>", e.g. %q`, DefaultAdmin)
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.ContainsAny(rest, "/?#@") {
		return "", fmt.Errorf(`the URL must be "http://<ip>:<port>" without user info, path, query or fragment, e.g. %q`, DefaultAdmin)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil || host == "" {
		return "", fmt.Errorf(`the URL must be "http://<ip>:<port>", e.g. %q`, DefaultAdmin)
	}
	if _, err := parsePort(port); err != nil {
		return "", err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		return "", fmt.Errorf("the host must be an IP address, not a name (Caddy's admin API listens on exactly this address); use 127.0.0.1 for a local Caddy")
	}
	if !addr.IsLoopback() && !addr.IsPrivate() {
		return "", fmt.Errorf("the admin API controls Caddy and must not be public: use a loopback or private address")
	}
	if rest != net.JoinHostPort(host, port) {
		return "", fmt.Errorf(`the URL must be "http://<ip>:<port>" (IPv6 in brackets), e.g. %q`, DefaultAdmin)
	}
	return rest, nil
}

// parseListen accepts a listener address [ip]:port: no IP address (every
// interface) or one without a zone (IPv6 in brackets), and a port.
func parseListen(raw string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(raw)
	if err != nil {
		return "", 0, fmt.Errorf(`a listener address is "[ip]:port", e.g. ":443" or "127.0.0.1:8443"`)
	}
	if port, err = parsePort(p); err != nil {
		return "", 0, err
	}
	if h != "" {
		addr, err := netip.ParseAddr(h)
		if err != nil || addr.Zone() != "" || addr.IsMulticast() {
			return "", 0, fmt.Errorf(`the host of a listener address is empty (every interface) or an IP address, e.g. ":443" or "127.0.0.1:8443"`)
		}
	}
	if raw != net.JoinHostPort(h, p) {
		return "", 0, fmt.Errorf(`a listener address is "[ip]:port" (IPv6 in brackets), e.g. ":443" or "[::1]:8443"`)
	}
	return h, port, nil
}

// parsePort accepts 1 to 65535 without leading zeros.
func parsePort(p string) (int, error) {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
		return 0, fmt.Errorf("the port is not a number from 1 to 65535")
	}
	return n, nil
}

// overlap reports whether two listeners on (host, port) would collide: the
// same port, and the same address or either on every interface.
func overlap(host1, port1, host2, port2 string) bool {
	if port1 != port2 {
		return false
	}
	every := func(h string) bool {
		a, err := netip.ParseAddr(h)
		return h == "" || err == nil && a.IsUnspecified()
	}
	return host1 == host2 || every(host1) || every(host2)
}

// checkEmail accepts a bare email address.
func checkEmail(e string) error {
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > 254 || strings.ContainsAny(e, " \"\\") {
		return fmt.Errorf(`not a plain email address such as "ops@example.com"`)
	}
	return nil
}

// checkAsk accepts an http or https URL with a host and without user info
// or fragment.
func checkAsk(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf(`not an http:// or https:// URL, e.g. "http://127.0.0.1:8443/v1/proxy/tls/ask"`)
	}
	if u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("the URL must not have user info or a fragment")
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("the URL must not contain spaces or control characters")
	}
	return nil
}

// Render implements sdk.Proxy. The generation is not part of the output:
// equal route tables render to equal bytes.
func (p *Plugin) Render(_ context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error) {
	body, _, err := p.build(req.GetRoutes(), req.GetGeneration())
	if err != nil {
		return nil, fmt.Errorf("caddy: render: %w", err)
	}
	return &pluginv1.RenderResponse{Body: body, ContentType: ContentType}, nil
}

// build renders routes with the current settings and logs what it left
// out. It returns the configuration and the settings it used.
func (p *Plugin) build(routes []*pluginv1.Route, generation uint64) ([]byte, *settings, error) {
	s := p.settings.Load()
	checked, skipped := route.Prepare(routes)
	route.LogSkipped(p.log, "Caddy", skipped, len(routes), generation)
	body, err := render(s, checked)
	return body, s, err
}

// The JSON shape of the Caddy configuration render writes: the subset of
// Caddy's config structure the plugin uses, fields in Caddy's own order.
type (
	config struct {
		Admin adminConfig `json:"admin"`
		Apps  apps        `json:"apps"`
	}
	adminConfig struct {
		Listen string `json:"listen"`
	}
	apps struct {
		HTTP httpApp `json:"http"`
		PKI  *pkiApp `json:"pki,omitempty"`
		TLS  *tlsApp `json:"tls,omitempty"`
	}
	httpApp struct {
		HTTPPort  int     `json:"http_port"`
		HTTPSPort int     `json:"https_port,omitempty"`
		Servers   servers `json:"servers"`
	}
	servers struct {
		HTTP  *server `json:"http,omitempty"`
		HTTPS *server `json:"https,omitempty"`
	}
	server struct {
		Listen         []string        `json:"listen"`
		Routes         []caddyRoute    `json:"routes"`
		AutomaticHTTPS *automaticHTTPS `json:"automatic_https,omitempty"`
	}
	automaticHTTPS struct {
		Disable bool `json:"disable"`
	}
	caddyRoute struct {
		Match    []matcher `json:"match,omitempty"`
		Handle   []handler `json:"handle"`
		Terminal bool      `json:"terminal,omitempty"`
	}
	matcher struct {
		Host []string `json:"host"`
	}
	handler struct {
		Handler string `json:"handler"`
		// map
		Source       string    `json:"source,omitempty"`
		Destinations []string  `json:"destinations,omitempty"`
		Mappings     []mapping `json:"mappings,omitempty"`
		// reverse_proxy
		Upstreams []upstream `json:"upstreams,omitempty"`
		// static_response
		StatusCode int `json:"status_code,omitempty"`
	}
	mapping struct {
		Input   string   `json:"input"`
		Outputs []string `json:"outputs"`
	}
	upstream struct {
		Dial string `json:"dial"`
	}
	pkiApp struct {
		CertificateAuthorities struct {
			Local struct {
				InstallTrust bool `json:"install_trust"`
			} `json:"local"`
		} `json:"certificate_authorities"`
	}
	tlsApp struct {
		Automation automation `json:"automation"`
	}
	automation struct {
		Policies []policy  `json:"policies"`
		OnDemand *onDemand `json:"on_demand,omitempty"`
	}
	policy struct {
		Issuers  []issuer `json:"issuers,omitempty"`
		OnDemand bool     `json:"on_demand,omitempty"`
	}
	issuer struct {
		Module string `json:"module"`
		Email  string `json:"email,omitempty"`
	}
	onDemand struct {
		Ask string `json:"ask"`
	}
)

// notFound is the last route of every server: hosts no route matches get
// a 404 rather than Caddy's empty 200.
var notFound = caddyRoute{Handle: []handler{{Handler: "static_response", StatusCode: http.StatusNotFound}}}

// upstreamPlaceholder is the placeholder the map handler sets to the
// request's upstream and reverse_proxy dials.
const upstreamPlaceholder = "{wisehosting_upstream}"

// render builds the configuration of routes, which passed route.Prepare
// (sorted by name, every value safe, every host owned by one route), with
// settings s.
//
// Every app shares one Caddy route: a host matcher listing every host (Caddy
// sorts a list that long and binary-searches it), a map handler from the
// request's host to its upstream, and one reverse_proxy dialling what the
// map set. One route per app would make Caddy try the apps' matchers one
// by one on every request (about 2 ms per request for the last of 10,000
// apps, measured) and provision a reverse_proxy, with its own transport,
// per app (about 0.7 s of a 10,000-app load, against 0.3 to 0.45 s this
// way). Automatic HTTPS reads the hosts from the matcher as before.
func render(s *settings, routes []route.Checked) ([]byte, error) {
	rs := make([]caddyRoute, 0, 2)
	if len(routes) > 0 {
		n := 0
		for _, r := range routes {
			n += len(r.Hosts)
		}
		hosts := make([]string, 0, n)
		maps := make([]mapping, 0, n)
		for _, r := range routes {
			dial := []string{r.Dial()}
			for _, h := range r.Hosts {
				hosts = append(hosts, h)
				maps = append(maps, mapping{Input: h, Outputs: dial})
			}
		}
		rs = append(rs, caddyRoute{
			Match: []matcher{{Host: hosts}},
			Handle: []handler{
				{Handler: "map", Source: "{http.request.host}", Destinations: []string{upstreamPlaceholder}, Mappings: maps},
				{Handler: "reverse_proxy", Upstreams: []upstream{{Dial: upstreamPlaceholder}}},
			},
			Terminal: true,
		})
	}
	rs = append(rs, notFound)

	cfg := config{Admin: adminConfig{Listen: s.admin}}
	h := &cfg.Apps.HTTP
	h.HTTPPort = s.httpPort
	if s.tls == TLSOff {
		h.Servers.HTTP = &server{Listen: []string{s.httpListen}, Routes: rs, AutomaticHTTPS: &automaticHTTPS{Disable: true}}
	} else {
		h.HTTPSPort = s.httpsPort
		// Caddy's automatic HTTPS inserts its redirects for the hosts of
		// the HTTPS server ahead of this catch-all.
		h.Servers.HTTP = &server{Listen: []string{s.httpListen}, Routes: []caddyRoute{notFound}}
		h.Servers.HTTPS = &server{Listen: []string{s.httpsListen}, Routes: rs}
		cfg.Apps.PKI = &pkiApp{} // install_trust: false

		var pol policy
		switch s.tls {
		case TLSInternal:
			pol.Issuers = []issuer{{Module: "internal"}}
		case TLSACME:
			if s.email != "" {
				// What Caddy's own Caddyfile adapter makes of a global
				// email: its two default issuers, with the address.
				pol.Issuers = []issuer{{Module: "acme", Email: s.email}, {Module: "zerossl", Email: s.email}}
			}
		}
		var auto automation
		if s.onDemandAsk != "" {
			pol.OnDemand = true
			auto.OnDemand = &onDemand{Ask: s.onDemandAsk}
		}
		if len(pol.Issuers) > 0 || pol.OnDemand {
			// One policy without subjects: it applies to every host.
			auto.Policies = []policy{pol}
			cfg.Apps.TLS = &tlsApp{Automation: auto}
		}
	}

	var buf bytes.Buffer
	buf.Grow(512 + 200*len(routes))
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(cfg); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
