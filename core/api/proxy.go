package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/proxy"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/workerauth"
)

// ProxyStates gives the current route table and renderings
// (proxy.Manager.State); nil before the first table was read.
type ProxyStates interface {
	State() *proxy.State
}

// WorkerBearerAuthenticator resolves a worker's bearer: a JWT or its raw
// API key (workerauth.Authenticator.Authenticate).
type WorkerBearerAuthenticator interface {
	Authenticate(ctx context.Context, bearer string) (*workerauth.Identity, error)
}

// WorkerRoutesStore lists a worker's apps for its own proxy
// (store.Store.ListWorkerRoutes).
type WorkerRoutesStore interface {
	ListWorkerRoutes(ctx context.Context, workerID int64) ([]store.WorkerRouteRow, error)
}

// DefaultTraefikProxy is the proxy plugin GET /v1/traefik/proxy-config
// serves: plugin "proxy" "traefik".
const DefaultTraefikProxy = "traefik"

// ProxyRoutes serves the edge proxies:
//
//   - GET /v1/traefik/proxy-config: the Traefik plugin's configuration for
//     Traefik's HTTP provider;
//   - GET /v1/proxy/{name}/config: any proxy plugin's configuration;
//   - GET /v1/proxy/tls/ask?domain=<host>: Caddy's on-demand TLS permission
//     check: 200 for a host the table routes, 404 otherwise (no token:
//     Caddy sends none, and the answer only says whether a public name is
//     served here);
//   - GET /v1/traefik/config: the legacy per-worker configuration, for the
//     worker's own Traefik (worker JWT or raw API key).
//
// The first two take the static proxy token (proxy.token) as Bearer,
// compared in constant time, and answer from the rendering of the current
// generation — never rendered per request — with a strong ETag derived from
// the bytes: a matching If-None-Match gets 304 Not Modified.
type ProxyRoutes struct {
	// Token is proxy.token; empty refuses every pull.
	Token string
	// States gives the current renderings.
	States ProxyStates
	// Traefik is the plugin served at /v1/traefik/proxy-config; empty
	// means DefaultTraefikProxy.
	Traefik string
	// Auth and Store serve the legacy per-worker endpoint.
	Auth  WorkerBearerAuthenticator
	Store WorkerRoutesStore
}

// Register mounts the proxy endpoints.
func (pr *ProxyRoutes) Register(m Mux) {
	m.Handle(http.MethodGet, "/v1/traefik/proxy-config", func(w http.ResponseWriter, req bunrouter.Request) error {
		name := pr.Traefik
		if name == "" {
			name = DefaultTraefikProxy
		}
		return pr.serve(w, req, name)
	})
	m.Handle(http.MethodGet, "/v1/proxy/:name/config", func(w http.ResponseWriter, req bunrouter.Request) error {
		return pr.serve(w, req, req.Param("name"))
	})
	m.Handle(http.MethodGet, "/v1/proxy/tls/ask", pr.ask)
	m.Handle(http.MethodGet, "/v1/traefik/config", pr.workerConfig)
}

// errNotReady is answered before the first rendering exists.
var errNotReady = Errorf(http.StatusServiceUnavailable, "not_ready", "the route table has not been rendered yet; retry shortly")

func (pr *ProxyRoutes) serve(w http.ResponseWriter, req bunrouter.Request, name string) error {
	if pr.Token == "" || !BearerMatches(req.Request, pr.Token) {
		return ErrUnauthorized
	}
	st := pr.States.State()
	if st == nil {
		w.Header().Set("Retry-After", "1")
		return errNotReady
	}
	out, ok := st.Output(name)
	if !ok {
		if !st.HasTarget(name) {
			return Errorf(http.StatusNotFound, "not_found", "no proxy plugin %q is declared (plugin \"proxy\" %q {} in the config)", name, name)
		}
		w.Header().Set("Retry-After", "1")
		return Errorf(http.StatusServiceUnavailable, "not_ready", "proxy plugin %q has not rendered a configuration yet; retry shortly", name)
	}
	h := w.Header()
	body, etag := out.Body, out.ETag
	if out.Gzip != nil {
		h.Set("Vary", "Accept-Encoding")
		if acceptsGzip(req.Header.Values("Accept-Encoding")) {
			body, etag = out.Gzip, out.GzipETag
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Wisehosting-Generation", strconv.FormatUint(out.Generation, 10))
	// Either representation's tag names this rendering.
	if inm := req.Header.Get("If-None-Match"); etagMatches(inm, out.ETag) || out.Gzip != nil && etagMatches(inm, out.GzipETag) {
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", out.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}

// acceptsGzip reports whether Accept-Encoding header values accept gzip:
// a gzip (or x-gzip) coding, or "*", without q=0.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "x-gzip" && coding != "*" {
				continue
			}
			q := strings.ReplaceAll(strings.ToLower(params), " ", "")
			if q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000" {
				continue
			}
			return true
		}
	}
	return false
}

// etagMatches reports whether an If-None-Match header value matches etag,
// by weak comparison (RFC 9110 §13.1.2): "*", or a listed tag equal to
// etag once any W/ prefix is dropped.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
}

func (pr *ProxyRoutes) ask(w http.ResponseWriter, req bunrouter.Request) error {
	host := req.URL.Query().Get("domain")
	if host == "" {
		return Errorf(http.StatusBadRequest, "bad_request", "the domain query parameter is required")
	}
	st := pr.States.State()
	if st == nil {
		w.Header().Set("Retry-After", "1")
		return errNotReady
	}
	if !st.Routed(host) {
		return Errorf(http.StatusNotFound, "not_found", "this host is not routed here")
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (pr *ProxyRoutes) workerConfig(w http.ResponseWriter, req bunrouter.Request) error {
	id, err := pr.Auth.Authenticate(req.Context(), Bearer(req.Request))
	switch {
	case err == nil:
	case workerauth.IsFailure(err):
		return ErrUnauthorized
	default:
		return ErrInternal.WithCause(err)
	}
	rows, err := pr.Store.ListWorkerRoutes(req.Context(), id.Worker.ID)
	if err != nil {
		return ErrInternal.WithCause(err)
	}
	body := proxy.WorkerConfig(rows)
	etag := proxy.ETag(body)
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if etagMatches(req.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body)
	return err
}
