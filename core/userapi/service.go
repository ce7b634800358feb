// Package userapi is the user-facing REST API under /api/v1 for what people
// host: apps and their spec, env vars, deployments and logs (runtime logs
// streamed over WebSocket), custom domains, git push auto-deploy, their own
// webhooks, alerts and usage. Every route sits behind accounts'
// Authenticate and answers only for the caller's own resources: another
// user's app, domain, webhook or alert is a 404, exactly as a missing one.
package userapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/domains"
	"github.com/wisehosting/wisehosting/core/store"
)

// Authenticator is what the routes need from accounts: caller resolution
// and the rate limit.
type Authenticator interface {
	Authenticate(next bunrouter.HandlerFunc) bunrouter.HandlerFunc
	Limit(next bunrouter.HandlerFunc) bunrouter.HandlerFunc
}

// Options configure a Service.
type Options struct {
	Store *store.Store
	Auth  Authenticator
	// Logger gets the service's logs; nil: none.
	Logger hclog.Logger
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
	// Domains checks custom domains' TXT records; nil: verification
	// answers 503.
	Domains *domains.Verifier
	// PlatformDomain is platform.domain: custom domains may be neither it
	// nor under it.
	PlatformDomain string
}

// Service serves the routes. Create it with New.
type Service struct {
	o   Options
	log hclog.Logger
}

// New checks opts and returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("userapi: a store is required")
	}
	if opts.Auth == nil {
		return nil, errors.New("userapi: an authenticator is required")
	}
	s := &Service{o: opts, log: opts.Logger}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.o.Now == nil {
		s.o.Now = time.Now
	}
	return s, nil
}

// Route is one endpoint of the package.
type Route struct {
	Method, Path string
	// Public routes need no caller (they authenticate otherwise, e.g. a
	// git provider's signed push); every other route answers 401 to an
	// unauthenticated request.
	Public bool
	// Limited routes take a rate-limit token per request.
	Limited bool
	handler bunrouter.HandlerFunc
}

// Mux is where routes are mounted (a *bunrouter.Group or the core's
// recording router).
type Mux interface {
	Handle(method, path string, h bunrouter.HandlerFunc)
}

// Routes returns every endpoint Register mounts, in one table (the route
// table and ownership tests walk it).
func (s *Service) Routes() []Route {
	var rs []Route
	rs = append(rs, s.appRoutes()...)
	rs = append(rs, s.domainRoutes()...)
	return rs
}

// Register mounts Routes on m, each behind Authenticate, RequireUser
// unless public, and the rate limit when limited.
func (s *Service) Register(m Mux) {
	for _, rt := range s.Routes() {
		h := rt.handler
		if rt.Limited {
			h = s.o.Auth.Limit(h)
		}
		if !rt.Public {
			h = accounts.RequireUser(h)
		}
		m.Handle(rt.Method, rt.Path, s.o.Auth.Authenticate(h))
	}
}

// userOf returns the authenticated caller's user (RequireUser guarantees
// one on non-public routes).
func userOf(ctx context.Context) *store.User {
	if c := accounts.CallerFrom(ctx); c != nil {
		return c.User
	}
	return nil
}

// storeErr turns a store error into the API error a client sees: what is
// missing (or someone else's) is a 404 naming what, a conflict a 409, a
// plan limit a 403, anything else a logged 500.
func storeErr(err error, what string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return api.Errorf(http.StatusNotFound, "not_found", "no such %s", what)
	case errors.Is(err, store.ErrConflict):
		return api.Errorf(http.StatusConflict, "conflict", "%s already exists", what).WithCause(err)
	case errors.Is(err, store.ErrQuota):
		return api.Errorf(http.StatusForbidden, "plan_limit", "%s", quotaMessage(err)).WithCause(err)
	case errors.Is(err, store.ErrInvalid):
		return api.Errorf(http.StatusBadRequest, "invalid", "invalid %s", what).WithCause(err)
	}
	return err
}

func quotaMessage(err error) string {
	msg := err.Error()
	const prefix = "store: "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		msg = msg[len(prefix):]
	}
	return msg
}

// decode reads a JSON body of at most maxBody bytes into v.
func decode(req bunrouter.Request, v any) error {
	return api.DecodeJSON(req.Request, maxBody, v)
}

// maxBody bounds every JSON request body.
const maxBody = 64 << 10

// badRequest is a 400 with code "invalid".
func badRequest(format string, args ...any) error {
	return api.Errorf(http.StatusBadRequest, "invalid", format, args...)
}
