// Package traefik is the built-in "traefik" proxy plugin: it renders the
// route table as the dynamic configuration Traefik's HTTP provider polls
// (the core serves it at GET /v1/traefik/proxy-config and
// /v1/proxy/<instance>/config). For each route it emits one router and one
// service, both named after the route:
//
//	{"http":{
//	  "routers":{"shop":{"entryPoints":["web","websecure"],"rule":"Host(`shop.apps.example.com`) || Host(`shop.example.org`)",
//	                     "service":"shop","tls":{"certResolver":"letsencrypt"}}},
//	  "services":{"shop":{"loadBalancer":{"servers":[{"url":"http://10.8.0.2:8080"}]}}}}}
//
// Equal route tables give byte-equal output whatever their order, so the
// core's ETag stays put until something changes. Routes are checked again
// here, whatever the core did: a route whose name, any host or upstream is
// not safe to write into a Traefik rule is left out and logged (by name).
//
// Configuration (all optional; the values shown are the defaults):
//
//	plugin "proxy" "traefik" {
//	  config {
//	    entry_points  = ["web", "websecure"]   # [] attaches routers to every entry point
//	    cert_resolver = "letsencrypt"          # "" renders routers without a tls section
//	  }
//	}
package traefik

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/hostname"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Name is the plugin's name: plugin "proxy" "traefik".
const Name = "traefik"

// Version is the plugin's release version.
const Version = "0.1.0"

// ContentType is the content type of the rendered configuration.
const ContentType = "application/json"

// Defaults of the config block.
var (
	// DefaultEntryPoints are the entry points routers attach to.
	DefaultEntryPoints = []string{"web", "websecure"}
	// DefaultCertResolver is the ACME resolver routers get certificates from.
	DefaultCertResolver = "letsencrypt"
)

// maxLoggedSkips bounds the warnings one Render logs route by route; the
// rest are only counted in the summary line.
const maxLoggedSkips = 20

// identPattern is what an entry point or resolver name looks like.
var identPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Config is the plugin's decoded config block.
type Config struct {
	// EntryPoints routers attach to; nil means DefaultEntryPoints, empty
	// means Traefik's default (every entry point).
	EntryPoints []string `json:"entry_points"`
	// CertResolver for the routers' TLS; nil means DefaultCertResolver,
	// "" means no tls section.
	CertResolver *string `json:"cert_resolver"`
}

// Spec returns the schema of the plugin's config block.
func Spec() *pluginv1.Spec {
	eps, _ := json.Marshal(DefaultEntryPoints) // a JSON list of strings is an HCL tuple literal
	return hclspec.Object(map[string]*pluginv1.Spec{
		"entry_points": hclspec.Default(
			hclspec.Attr("entry_points", "list(string)", false,
				"Traefik entry points the routers attach to; [] for all of them."),
			hclspec.Literal(string(eps))),
		"cert_resolver": hclspec.Default(
			hclspec.Attr("cert_resolver", "string", false,
				`Certificate resolver of the routers' TLS section; "" renders plain routers without TLS.`),
			hclspec.Literal(strconv.Quote(DefaultCertResolver))),
	})
}

// settings are the validated config Render uses.
type settings struct {
	entryPoints  []string
	certResolver string
}

// Plugin is the Traefik proxy emitter. Create it with New.
type Plugin struct {
	sdk.Base

	mu       sync.Mutex // serialises Configure (decoding into cfg)
	cfg      Config
	settings atomic.Pointer[settings]
	log      hclog.Logger
}

var _ sdk.Proxy = (*Plugin)(nil)

// New returns the plugin with the default settings, logging through
// sdk.Logger.
func New() *Plugin { return newWithLogger(sdk.Logger()) }

func newWithLogger(l hclog.Logger) *Plugin {
	p := &Plugin{
		Base: sdk.Base{
			Kind:        sdk.KindProxy,
			Name:        Name,
			Version:     Version,
			Description: "Renders the route table as Traefik HTTP-provider dynamic configuration (JSON).",
			Spec:        Spec(),
		},
		log: l,
	}
	p.Config = &p.cfg
	p.Validate = p.validate
	p.settings.Store(&settings{entryPoints: DefaultEntryPoints, certResolver: DefaultCertResolver})
	return p
}

// Configure implements sdk.Plugin. A rejected config leaves the previous
// settings in force.
func (p *Plugin) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = Config{}
	return p.Base.Configure(ctx, req)
}

func (p *Plugin) validate() error {
	s := &settings{entryPoints: slices.Clone(DefaultEntryPoints), certResolver: DefaultCertResolver}
	if p.cfg.EntryPoints != nil {
		s.entryPoints = slices.Clone(p.cfg.EntryPoints)
	}
	if p.cfg.CertResolver != nil {
		s.certResolver = *p.cfg.CertResolver
	}
	for i, ep := range s.entryPoints {
		if !identPattern.MatchString(ep) {
			return fmt.Errorf("entry_points[%d] = %q: an entry point name is 1 to 64 characters A-Z, a-z, 0-9, '_' and '-'", i, ep)
		}
		if slices.Contains(s.entryPoints[:i], ep) {
			return fmt.Errorf("entry_points: %q is listed twice", ep)
		}
	}
	if s.certResolver != "" && !identPattern.MatchString(s.certResolver) {
		return fmt.Errorf("cert_resolver = %q: a resolver name is 1 to 64 characters A-Z, a-z, 0-9, '_' and '-' (or \"\" for no TLS)", s.certResolver)
	}
	p.settings.Store(s)
	return nil
}

// Render implements sdk.Proxy. The generation is not part of the output:
// equal route tables render to equal bytes.
func (p *Plugin) Render(_ context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error) {
	body, skipped := render(p.settings.Load(), req.GetRoutes())
	if len(skipped) > 0 {
		for i, s := range skipped {
			if i == maxLoggedSkips {
				break
			}
			p.log.Warn("route left out of the Traefik configuration", "route", logName(s.route.GetName()),
				"app_id", s.route.GetAppId(), "reason", s.reason)
		}
		p.log.Warn("routes left out of the Traefik configuration", "skipped", len(skipped),
			"rendered", len(req.GetRoutes())-len(skipped), "generation", req.GetGeneration())
	}
	return &pluginv1.RenderResponse{Body: body, ContentType: ContentType}, nil
}

// logName quotes a route name for the log, cut short: a name that failed
// validation may be anything.
func logName(n string) string {
	if len(n) > 64 {
		n = n[:64] + "…"
	}
	return strconv.Quote(n)
}

// skip is a route left out, and why (the reason never quotes route data).
type skip struct {
	route  *pluginv1.Route
	reason string
}

// render builds the configuration for routes: the bytes and the routes it
// left out.
//
// The output is what encoding/json makes of Traefik's dynamic-configuration
// structs with map-keyed routers and services (keys sorted, no HTML
// escaping; the tests hold the two equal), written directly: routes are
// sorted by name anyway, and reflection over 20,000 map entries costs
// several times more than the rest of the render.
//
//	{"http":{"routers":{"<name>":{"entryPoints":[…],"rule":"…","service":"<name>","tls":{"certResolver":"…"}},…},
//	         "services":{"<name>":{"loadBalancer":{"servers":[{"url":"<upstream>"}]}},…}}}
func render(s *settings, routes []*pluginv1.Route) ([]byte, []skip) {
	var skipped []skip
	type good struct {
		r     *pluginv1.Route
		hosts []string
	}
	ok := make([]good, 0, len(routes))
	for _, r := range routes {
		hosts, reason := check(r)
		if reason != "" {
			skipped = append(skipped, skip{r, reason})
			continue
		}
		ok = append(ok, good{r, hosts})
	}
	// Sort by name (the order of the JSON objects' keys); among routes
	// sharing a name, which one is kept does not depend on the input order.
	slices.SortFunc(ok, func(a, b good) int {
		return cmp.Or(
			strings.Compare(a.r.GetName(), b.r.GetName()),
			cmp.Compare(a.r.GetAppId(), b.r.GetAppId()),
			strings.Compare(a.r.GetUpstream(), b.r.GetUpstream()),
			slices.Compare(a.hosts, b.hosts),
		)
	})
	kept := ok[:0]
	for i, g := range ok {
		if i > 0 && ok[i-1].r.GetName() == g.r.GetName() {
			skipped = append(skipped, skip{g.r, "another route has the same name"})
			continue
		}
		kept = append(kept, g)
	}

	// The part of a router after its rule, the same for every router.
	var tail []byte
	tail = append(tail, `,"service":`...)
	var head []byte
	head = append(head, '{')
	if len(s.entryPoints) > 0 {
		head = append(head, `"entryPoints":[`...)
		for i, ep := range s.entryPoints {
			if i > 0 {
				head = append(head, ',')
			}
			head = appendString(head, ep)
		}
		head = append(head, "],"...)
	}
	head = append(head, `"rule":"`...)
	var tls []byte
	if s.certResolver != "" {
		tls = appendString(append(tls, `,"tls":{"certResolver":`...), s.certResolver)
		tls = append(tls, '}')
	}

	size := 64
	for _, g := range kept {
		size += 2*len(g.r.GetName()) + len(head) + len(tail) + len(tls) + len(g.r.GetName()) + len(g.r.GetUpstream()) + 64
		for _, h := range g.hosts {
			size += len(h) + 12
		}
	}
	b := make([]byte, 0, size)
	b = append(b, `{"http":{"routers":{`...)
	for i, g := range kept {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, g.r.GetName())
		b = append(b, ':')
		b = append(b, head...)
		for j, h := range g.hosts {
			if j > 0 {
				b = append(b, " || "...)
			}
			// Hosts passed hostname.Valid: a-z, 0-9, '-' and '.' only,
			// nothing to escape.
			b = append(b, "Host(`"...)
			b = append(b, h...)
			b = append(b, "`)"...)
		}
		b = append(b, '"')
		b = append(b, tail...)
		b = appendString(b, g.r.GetName())
		b = append(b, tls...)
		b = append(b, '}')
	}
	b = append(b, `},"services":{`...)
	for i, g := range kept {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, g.r.GetName())
		b = append(b, `:{"loadBalancer":{"servers":[{"url":`...)
		b = appendString(b, g.r.GetUpstream())
		b = append(b, "}]}}"...)
	}
	b = append(b, "}}}\n"...)
	return b, skipped
}

// appendString appends s as a JSON string. Everything render writes was
// validated to printable ASCII without quotes or backslashes, for which this
// is exactly what encoding/json writes; the escapes are a second line of
// defence (control and non-ASCII bytes become \u00XX).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// check validates a route: its name, every host and the upstream. It
// returns the hosts without duplicates (first occurrence kept), or why the
// route cannot be rendered.
func check(r *pluginv1.Route) ([]string, string) {
	if !validName(r.GetName()) {
		return nil, "the name is not 1 to 63 characters a-z, 0-9 and '-' starting with a letter or digit"
	}
	if len(r.GetHosts()) == 0 {
		return nil, "no hosts"
	}
	hosts := r.GetHosts()
	for i, h := range hosts {
		if err := hostname.Valid(h); err != nil {
			reason := "invalid host"
			var he *hostname.Error
			if errors.As(err, &he) {
				reason = he.Reason // never quotes the input
			}
			return nil, fmt.Sprintf("host %d: %s", i+1, reason)
		}
		if slices.Contains(hosts[:i], h) {
			hosts = dedupe(hosts)
		}
	}
	if reason := checkUpstream(r.GetUpstream()); reason != "" {
		return nil, "upstream: " + reason
	}
	return hosts, ""
}

// dedupe returns hosts without repeats, first occurrences in order, as a
// new slice once a repeat is found.
func dedupe(hosts []string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// validName reports whether n matches ^[a-z0-9][a-z0-9-]{0,62}$.
func validName(n string) bool {
	if len(n) == 0 || len(n) > 63 || n[0] == '-' {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// checkUpstream accepts exactly http://<host>:<port>: host a valid host
// name or an IP address (IPv6 in brackets), port 1-65535 without leading
// zeros, nothing else (no user info, path, query or fragment).
func checkUpstream(raw string) string {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		return "it does not start with http://"
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil || host == "" || port == "" {
		return `it is not of the form "http://host:port"`
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "the port is not a number from 1 to 65535"
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Zone() != "" || addr.IsUnspecified() || addr.IsMulticast() {
			return "the address cannot be dialled"
		}
	} else if hostname.Valid(host) != nil {
		return "the host is not a valid host name or IP address"
	}
	// One spelling only: brackets exactly around an IPv6 address.
	if rest != net.JoinHostPort(host, port) {
		return `it is not of the form "http://host:port"`
	}
	return ""
}
