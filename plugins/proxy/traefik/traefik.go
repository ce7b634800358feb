// Package traefik is the built-in "traefik" proxy plugin: it renders the
// route table as the dynamic configuration Traefik's HTTP provider polls
// (the core serves it at GET /v1/traefik/proxy-config and
// /v1/proxy/<instance>/config). For each route it emits one router and one
// service, both named after the route, in the seed's shape:
//
//	{"http":{
//	  "routers":{"shop":{"entryPoints":["web","websecure"],"rule":"Host(`shop.apps.example.com`) || Host(`shop.example.org`)",
//	                     "service":"shop","tls":{"certResolver":"letsencrypt"}}},
//	  "services":{"shop":{"loadBalancer":{"servers":[{"url":"http://10.8.0.2:8080"}]}}}}}
//
// A Traefik router with a tls section matches only TLS requests, so while
// routers have TLS each route also gets a plain-HTTP router, "<name>_http",
// on the http_entry_points: by default it redirects to HTTPS (a shared
// redirectScheme middleware); "serve" sends plain HTTP to the app as well;
// "none" leaves plain HTTP unrouted (Traefik answers 404).
//
// Equal route tables give byte-equal output whatever their order, so the
// core's ETag stays put until something changes. Routes are checked again
// here (sdk/route), whatever the core did: a route whose name, any host or
// upstream is not safe to write into a Traefik rule is left out and logged
// (by name).
//
// Configuration (all optional; the values shown are the defaults):
//
//	plugin "proxy" "traefik" {
//	  config {
//	    entry_points      = ["web", "websecure"]  # [] attaches routers to every entry point
//	    cert_resolver     = "letsencrypt"         # "" renders routers without a tls section
//	    http              = "redirect"            # or "serve", "none": plain HTTP while routers have TLS
//	    http_entry_points = ["web"]               # where the plain-HTTP routers listen
//	  }
//	}
package traefik

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route"
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
	// DefaultHTTPEntryPoints are the plain-HTTP entry points of the second
	// router each app gets while its main router has TLS.
	DefaultHTTPEntryPoints = []string{"web"}
)

// identPattern is what an entry point or resolver name looks like.
var identPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// HTTP modes: what the plain-HTTP router of an app does.
const (
	// HTTPRedirect answers plain-HTTP requests with a permanent redirect to
	// HTTPS (the default while routers have TLS).
	HTTPRedirect = "redirect"
	// HTTPServe serves the app over plain HTTP as well.
	HTTPServe = "serve"
	// HTTPNone adds no plain-HTTP router: plain HTTP gets Traefik's 404.
	HTTPNone = "none"
)

// RedirectMiddleware is the name of the redirect-to-HTTPS middleware the
// plain-HTTP routers use in HTTPRedirect mode.
const RedirectMiddleware = "wisehosting-redirect-https"

// HTTPRouterSuffix is appended to a route's name to name its plain-HTTP
// router. Route names hold only a-z, 0-9 and '-', so no route's own router
// can be called the same.
const HTTPRouterSuffix = "_http"

// Config is the plugin's decoded config block.
type Config struct {
	// EntryPoints routers attach to; nil means DefaultEntryPoints, empty
	// means Traefik's default (every entry point).
	EntryPoints []string `json:"entry_points"`
	// CertResolver for the routers' TLS; nil means DefaultCertResolver,
	// "" means no tls section.
	CertResolver *string `json:"cert_resolver"`
	// HTTP is HTTPRedirect, HTTPServe or HTTPNone; nil means HTTPRedirect.
	HTTP *string `json:"http"`
	// HTTPEntryPoints are the plain-HTTP entry points the second router of
	// each app attaches to; nil means DefaultHTTPEntryPoints.
	HTTPEntryPoints []string `json:"http_entry_points"`
}

// Spec returns the schema of the plugin's config block.
func Spec() *pluginv1.Spec {
	eps, _ := json.Marshal(DefaultEntryPoints) // a JSON list of strings is an HCL tuple literal
	heps, _ := json.Marshal(DefaultHTTPEntryPoints)
	return hclspec.Object(map[string]*pluginv1.Spec{
		"entry_points": hclspec.Default(
			hclspec.Attr("entry_points", "list(string)", false,
				"Traefik entry points the routers attach to; [] for all of them."),
			hclspec.Literal(string(eps))),
		"cert_resolver": hclspec.Default(
			hclspec.Attr("cert_resolver", "string", false,
				`Certificate resolver of the routers' TLS section; "" renders plain routers without TLS.`),
			hclspec.Literal(strconv.Quote(DefaultCertResolver))),
		"http": hclspec.Default(
			hclspec.Attr("http", "string", false,
				`What plain HTTP does while routers have TLS (a TLS router matches only TLS requests): "redirect" to HTTPS, "serve" the app, or "none".`),
			hclspec.Literal(strconv.Quote(HTTPRedirect))),
		"http_entry_points": hclspec.Default(
			hclspec.Attr("http_entry_points", "list(string)", false,
				"Plain-HTTP entry points the second router of each app attaches to (only while routers have TLS)."),
			hclspec.Literal(string(heps))),
	})
}

// settings are the validated config Render uses.
type settings struct {
	entryPoints     []string
	certResolver    string
	http            string
	httpEntryPoints []string
}

// Plugin is the Traefik proxy emitter. Create it with New.
type Plugin struct {
	sdk.Base

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
	p.settings.Store(defaultSettings())
	return p
}

// defaultSettings are the settings of an empty config block.
func defaultSettings() *settings {
	return &settings{
		entryPoints:     slices.Clone(DefaultEntryPoints),
		certResolver:    DefaultCertResolver,
		http:            HTTPRedirect,
		httpEntryPoints: slices.Clone(DefaultHTTPEntryPoints),
	}
}

func (p *Plugin) validate() error {
	s := defaultSettings()
	if p.cfg.EntryPoints != nil {
		s.entryPoints = slices.Clone(p.cfg.EntryPoints)
	}
	if p.cfg.CertResolver != nil {
		s.certResolver = *p.cfg.CertResolver
	}
	if p.cfg.HTTP != nil {
		s.http = *p.cfg.HTTP
	}
	if p.cfg.HTTPEntryPoints != nil {
		s.httpEntryPoints = slices.Clone(p.cfg.HTTPEntryPoints)
	}
	if err := checkEntryPoints("entry_points", s.entryPoints); err != nil {
		return err
	}
	if err := checkEntryPoints("http_entry_points", s.httpEntryPoints); err != nil {
		return err
	}
	if s.certResolver != "" && !identPattern.MatchString(s.certResolver) {
		return fmt.Errorf("cert_resolver = %q: a resolver name is 1 to 64 characters A-Z, a-z, 0-9, '_' and '-' (or \"\" for no TLS)", s.certResolver)
	}
	switch s.http {
	case HTTPRedirect, HTTPServe:
		if s.certResolver != "" && len(s.httpEntryPoints) == 0 {
			return fmt.Errorf("http = %q needs at least one of http_entry_points (or http = %q)", s.http, HTTPNone)
		}
	case HTTPNone:
	default:
		return fmt.Errorf("http = %q: must be %q, %q or %q", s.http, HTTPRedirect, HTTPServe, HTTPNone)
	}
	p.settings.Store(s)
	return nil
}

// checkEntryPoints validates the entry point names of attribute attr.
func checkEntryPoints(attr string, eps []string) error {
	for i, ep := range eps {
		if !identPattern.MatchString(ep) {
			return fmt.Errorf("%s[%d] = %q: an entry point name is 1 to 64 characters A-Z, a-z, 0-9, '_' and '-'", attr, i, ep)
		}
		if slices.Contains(eps[:i], ep) {
			return fmt.Errorf("%s: %q is listed twice", attr, ep)
		}
	}
	return nil
}

// Render implements sdk.Proxy. The generation is not part of the output:
// equal route tables render to equal bytes.
func (p *Plugin) Render(_ context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error) {
	routes, skipped := route.Prepare(req.GetRoutes())
	route.LogSkipped(p.log, "Traefik", skipped, len(req.GetRoutes()), req.GetGeneration())
	return &pluginv1.RenderResponse{Body: render(p.settings.Load(), routes), ContentType: ContentType}, nil
}

// routerKind tells render which router of a route it writes.
type routerKind uint8

const (
	mainRouter routerKind = iota // the route's own router (TLS when a resolver is set)
	httpRouter                   // its plain-HTTP router (redirect or serve)
)

// router is one router render writes: its key (the JSON object's key) and
// the route it belongs to.
type router struct {
	key  string
	kind routerKind
	r    *route.Checked
}

// render builds the configuration for routes (as route.Prepare returns
// them: checked and sorted by name).
//
// The output is what encoding/json makes of Traefik's dynamic-configuration
// structs with map-keyed routers, services and middlewares (keys sorted, no
// HTML escaping; the tests hold the two equal), written directly:
// reflection over tens of thousands of map entries costs several times more
// than the rest of the render.
//
//	{"http":{"middlewares":{…},   (only for plain-HTTP redirects)
//	         "routers":{"<name>":{"entryPoints":[…],"rule":"…","service":"<name>","tls":{"certResolver":"…"}},
//	                    "<name>_http":{"entryPoints":["web"],"middlewares":["wisehosting-redirect-https"],"rule":"…","service":"<name>"},…},
//	         "services":{"<name>":{"loadBalancer":{"servers":[{"url":"<upstream>"}]}},…}}}
func render(s *settings, routes []route.Checked) []byte {
	tls := s.certResolver != ""
	second := tls && s.http != HTTPNone && len(routes) > 0
	routers := make([]router, 0, 2*len(routes))
	for i := range routes {
		r := &routes[i]
		routers = append(routers, router{key: r.Name, kind: mainRouter, r: r})
		if second {
			routers = append(routers, router{key: r.Name + HTTPRouterSuffix, kind: httpRouter, r: r})
		}
	}
	if second {
		// "<name>_http" does not always sort right after "<name>": '_'
		// follows '-' and the digits but precedes the letters.
		slices.SortFunc(routers, func(a, b router) int { return strings.Compare(a.key, b.key) })
	}

	// The parts of a router around its rule, the same for every router.
	mainHead := routerHead(s.entryPoints, nil)
	var mainTail []byte
	if tls {
		mainTail = appendString(append(mainTail, `,"tls":{"certResolver":`...), s.certResolver)
		mainTail = append(mainTail, '}')
	}
	var httpHead []byte
	if second {
		var mws []string
		if s.http == HTTPRedirect {
			mws = []string{RedirectMiddleware}
		}
		httpHead = routerHead(s.httpEntryPoints, mws)
	}

	// The size (to a few bytes) when nothing needs escaping (validated names, hosts
	// and upstreams never do): one allocation, no growth.
	size := len(`{"http":{"middlewares":{`) + len(RedirectMiddleware) + len(`"":{"redirectScheme":{"permanent":true,"scheme":"https"}}},`) +
		len(`"routers":{},"services":{}}}`) + 1
	for _, r := range routers {
		// Each host but the first carries its " || ".
		size += len(r.key) + 4 + len(`","service":`) + len(r.r.Name) + 3 + len(mainHead) + len(mainTail) - len(" || ")
		if r.kind == httpRouter {
			size += len(httpHead) - len(mainHead) - len(mainTail)
		}
		for _, h := range r.r.Hosts {
			size += len(h) + len("Host(``) || ")
		}
	}
	for i := range routes {
		size += len(routes[i].Name) + len(routes[i].Upstream) + len(`"":{"loadBalancer":{"servers":[{"url":""}]}},`)
	}
	b := make([]byte, 0, size)
	b = append(b, `{"http":{`...)
	if second && s.http == HTTPRedirect {
		b = append(b, `"middlewares":{`...)
		b = appendString(b, RedirectMiddleware)
		b = append(b, `:{"redirectScheme":{"permanent":true,"scheme":"https"}}},`...)
	}
	b = append(b, `"routers":{`...)
	for i, r := range routers {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, r.key)
		b = append(b, ':')
		if r.kind == httpRouter {
			b = append(b, httpHead...)
		} else {
			b = append(b, mainHead...)
		}
		for j, h := range r.r.Hosts {
			if j > 0 {
				b = append(b, " || "...)
			}
			// Hosts passed hostname.Valid: a-z, 0-9, '-' and '.' only,
			// nothing to escape.
			b = append(b, "Host(`"...)
			b = append(b, h...)
			b = append(b, "`)"...)
		}
		b = append(b, `","service":`...)
		b = appendString(b, r.r.Name)
		if r.kind == mainRouter {
			b = append(b, mainTail...)
		}
		b = append(b, '}')
	}
	b = append(b, `},"services":{`...)
	for i := range routes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, routes[i].Name)
		b = append(b, `:{"loadBalancer":{"servers":[{"url":`...)
		b = appendString(b, routes[i].Upstream)
		b = append(b, "}]}}"...)
	}
	b = append(b, "}}}\n"...)
	return b
}

// routerHead is a router's JSON up to the opening quote of its rule:
// entry points (if any), then middlewares (if any).
func routerHead(entryPoints, middlewares []string) []byte {
	head := []byte{'{'}
	list := func(key string, items []string) {
		if len(items) == 0 {
			return
		}
		head = append(head, `"`+key+`":[`...)
		for i, it := range items {
			if i > 0 {
				head = append(head, ',')
			}
			head = appendString(head, it)
		}
		head = append(head, "],"...)
	}
	list("entryPoints", entryPoints)
	list("middlewares", middlewares)
	return append(head, `"rule":"`...)
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
