// Package api is the core's HTTP layer: a bunrouter router with the
// uniform JSON error format, request metrics and logging, /health, /ready,
// /metrics and the OpenAPI document (/openapi.json). Subsystems add their
// routes through Server.Handle, which records them.
package api

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/metrics"
)

// Options configure a Server.
type Options struct {
	Logger hclog.Logger
	// Registry receives the HTTP metrics and is served at /metrics.
	Registry *prometheus.Registry
	// MetricsToken, when set, is required as a Bearer token on /metrics.
	MetricsToken string
	// QuietPaths are not request-logged (health checks, the worker socket).
	QuietPaths []string
	// Ready is the readiness check behind GET /ready (the daemon pings the
	// database); it gets a context bounded by ReadyTimeout. Nil means always
	// ready. GET /health stays a liveness probe that checks nothing.
	Ready func(ctx context.Context) error
	// Now is the clock (tests); defaults to time.Now.
	Now func() time.Time
}

// ReadyTimeout bounds the readiness check of GET /ready.
const ReadyTimeout = 2 * time.Second

// Server is the core's HTTP router.
type Server struct {
	router *bunrouter.Router
	root   *bunrouter.Group
	log    hclog.Logger
	now    func() time.Time
	quiet  map[string]bool

	readyCheck   func(context.Context) error
	readyTimeout time.Duration

	mu     sync.Mutex
	routes []Route

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New builds the router with its middleware, /health, /ready, /metrics and
// /openapi.json.
func New(opts Options) (*Server, error) {
	s := &Server{
		log:          opts.Logger,
		now:          opts.Now,
		quiet:        map[string]bool{},
		readyCheck:   opts.Ready,
		readyTimeout: ReadyTimeout,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP request latency by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, p := range opts.QuietPaths {
		s.quiet[p] = true
	}
	reg := opts.Registry
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	if err := reg.Register(s.requests); err != nil {
		return nil, fmt.Errorf("api: register metrics: %w", err)
	}
	if err := reg.Register(s.duration); err != nil {
		return nil, fmt.Errorf("api: register metrics: %w", err)
	}
	// Use must come first: the not-found handler is wrapped with the
	// middleware present when its option is applied.
	s.router = bunrouter.New(
		bunrouter.Use(s.middleware),
		bunrouter.WithNotFoundHandler(func(w http.ResponseWriter, req bunrouter.Request) error {
			return Errorf(http.StatusNotFound, "not_found", "no route for %s %s", req.Method, req.URL.Path)
		}),
		bunrouter.WithMethodNotAllowedHandler(func(w http.ResponseWriter, req bunrouter.Request) error {
			return Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s", req.Method, req.URL.Path)
		}),
	)
	s.root = s.router.NewGroup("")

	s.Handle(http.MethodGet, "/health", s.health)
	s.Handle(http.MethodGet, "/ready", s.ready)
	s.Handle(http.MethodGet, OpenAPIPath, openAPI)
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil})
	s.Handle(http.MethodGet, "/metrics", func(w http.ResponseWriter, req bunrouter.Request) error {
		if opts.MetricsToken != "" && !BearerMatches(req.Request, opts.MetricsToken) {
			return ErrUnauthorized
		}
		metricsHandler.ServeHTTP(w, req.Request)
		return nil
	})
	return s, nil
}

// Group returns the root route group. Routes mounted on it directly are not
// recorded; subsystems mount theirs through Handle.
func (s *Server) Group() *bunrouter.Group { return s.root }

// Mux is where subsystems mount their routes (the Server, which records
// them, or a bare *bunrouter.Group in tests).
type Mux interface {
	Handle(method, path string, h bunrouter.HandlerFunc)
}

// Route is a mounted route: its method and bunrouter path pattern.
type Route struct{ Method, Path string }

// Handle mounts a route on the root group and records it (Routes).
func (s *Server) Handle(method, path string, h bunrouter.HandlerFunc) {
	s.mu.Lock()
	s.routes = append(s.routes, Route{Method: method, Path: path})
	s.mu.Unlock()
	s.root.Handle(method, path, h)
}

// Routes returns every route mounted through Handle, in order: what the
// OpenAPI document must describe.
func (s *Server) Routes() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Route(nil), s.routes...)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

func (s *Server) health(w http.ResponseWriter, _ bunrouter.Request) error {
	return WriteJSON(w, http.StatusOK, map[string]string{
		"status": "ok",
		"time":   s.now().UTC().Format(time.RFC3339Nano),
	})
}

// ready answers 200 {"status":"ready"} when the readiness check passes
// within readyTimeout, else 503 not_ready (the cause is logged, not sent).
func (s *Server) ready(w http.ResponseWriter, req bunrouter.Request) error {
	if s.readyCheck != nil {
		ctx, cancel := context.WithTimeout(req.Context(), s.readyTimeout)
		defer cancel()
		if err := s.readyCheck(ctx); err != nil {
			return Errorf(http.StatusServiceUnavailable, "not_ready", "not ready to serve requests").
				WithCause(fmt.Errorf("api: readiness check: %w", err))
		}
	}
	return WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// statusWriter records the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (hijack
// for WebSocket upgrades, flush for streams).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware recovers panics, turns returned errors into JSON, records
// metrics and logs the request.
func (s *Server) middleware(next bunrouter.HandlerFunc) bunrouter.HandlerFunc {
	return func(w http.ResponseWriter, req bunrouter.Request) (err error) {
		start := s.now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panicked", "method", req.Method, "path", req.URL.Path, "panic", v)
				WriteError(sw, ErrInternal)
			}
			if err != nil {
				var apiErr *Error
				if !errors.As(err, &apiErr) || apiErr.Status >= 500 {
					s.log.Error("request failed", "method", req.Method, "path", req.URL.Path, "error", err)
				}
				if sw.status == 0 {
					WriteError(sw, err)
				}
				err = nil
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			route := req.Route()
			if route == "" {
				route = "unmatched"
			}
			elapsed := s.now().Sub(start)
			s.requests.WithLabelValues(req.Method, route, strconv.Itoa(sw.status)).Inc()
			s.duration.WithLabelValues(req.Method, route).Observe(elapsed.Seconds())
			if !s.quiet[req.URL.Path] {
				s.log.Debug("request", "method", req.Method, "path", req.URL.Path, "status", sw.status,
					"duration", elapsed, "remote", req.RemoteAddr)
			}
		}()
		return next(sw, req)
	}
}

// Bearer returns the token of an "Authorization: Bearer <token>" header, or "".
func Bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) {
		return strings.TrimSpace(h[len(prefix):])
	}
	return ""
}

// BearerMatches compares the request's bearer token with want in constant time.
func BearerMatches(r *http.Request, want string) bool {
	got := Bearer(r)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// TLSConfig loads a certificate and key for a TLS 1.3-only listener.
func TLSConfig(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("api: load TLS certificate: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}, nil
}

// HTTPServer wraps the handler in an http.Server with sane timeouts. Long
// streams (WebSocket) hijack the connection and are not bound by them.
func HTTPServer(h http.Handler, tlsCfg *tls.Config, log hclog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		BaseContext:       nil,
	}
}

// Shutdown stops srv gracefully within ctx, letting in-flight requests finish.
func Shutdown(ctx context.Context, srv *http.Server) error {
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}
