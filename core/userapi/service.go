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
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/domains"
	"github.com/wisehosting/wisehosting/core/gitprovider"
	"github.com/wisehosting/wisehosting/core/hub"
	"github.com/wisehosting/wisehosting/core/plans"
	"github.com/wisehosting/wisehosting/core/scheduler"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
)

// Authenticator is what the routes need from accounts: caller resolution
// and the rate limit.
type Authenticator interface {
	Authenticate(next bunrouter.HandlerFunc) bunrouter.HandlerFunc
	Limit(next bunrouter.HandlerFunc) bunrouter.HandlerFunc
	// SameOrigin applies the CSRF origin rule to a request.
	SameOrigin(r *http.Request) bool
}

// Options configure a Service.
type Options struct {
	Store *store.Store
	Auth  Authenticator
	// Plans gives each user's plan: max_apps and the limits deploy jobs
	// carry.
	Plans *plans.Catalogue
	// Jobs creates deployments and jobs and pushes pinned ones.
	Jobs *scheduler.Jobs
	// Stats are the live app statistics this core holds (the hub); nil:
	// none shown.
	Stats Stats
	// Logs is where live runtime log lines come from (the hub); nil: no
	// log streams.
	Logs LogSource
	// Listener, when set, carries app changes from every core
	// (store.ChannelApps) into the app cache. Register before it runs.
	Listener *store.Listener
	// PlatformDomain is platform.domain: apps live at
	// https://<subdomain>.<PlatformDomain>, and custom domains may be
	// neither it nor under it.
	PlatformDomain string
	// AllowLocalRepos lets apps name a local git repository (an absolute
	// path or file:// URL on the worker): single-machine setups only
	// (security.allow_local_repos).
	AllowLocalRepos bool
	// Git manages push webhooks at git providers; nil: no push
	// auto-deploy.
	Git *gitprovider.Client
	// HookKey derives each app's push webhook secret
	// (secrets.PurposeGitHook).
	HookKey []byte
	// BaseURL is server.base_url, where git providers deliver pushes.
	BaseURL string
	// Logger gets the service's logs; nil: none.
	Logger hclog.Logger
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
	// Cipher is the column cipher (the store's): users' webhook secrets
	// are stored encrypted with it. Required.
	Cipher *secrets.Cipher
	// AllowPrivateTargets mirrors security.allow_private_targets: users'
	// webhooks may then be http:// and reach loopback and private
	// addresses (development); otherwise https:// and public addresses
	// only.
	AllowPrivateTargets bool
	// WebhookTimeout bounds a webhook test send (events.webhook_timeout);
	// 0 means stdwebhook.DefaultTimeout.
	WebhookTimeout time.Duration
	// Domains checks custom domains' TXT records; nil: verification
	// answers 503.
	Domains *domains.Verifier
}

// Service serves the routes. Create it with New.
type Service struct {
	o     Options
	log   hclog.Logger
	cache *appCache
	// stopping is closed when Run ends: open log streams close.
	stopping chan struct{}
}

// Stats is where live app statistics come from (the hub).
type Stats interface {
	AppStatsLive(appID int64) (hub.AppStats, bool)
}

// New checks opts and returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("userapi: a store is required")
	}
	if opts.Auth == nil {
		return nil, errors.New("userapi: an authenticator is required")
	}
	if opts.Plans == nil || opts.Jobs == nil {
		return nil, errors.New("userapi: plans and jobs are required")
	}
	if opts.Cipher == nil {
		return nil, errors.New("userapi: a column cipher is required (webhook secrets)")
	}
	s := &Service{o: opts, log: opts.Logger, stopping: make(chan struct{})}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.o.Now == nil {
		s.o.Now = time.Now
	}
	s.cache = newAppCache(appCacheTTL, s.o.Now)
	if l := s.o.Listener; l != nil {
		l.Handle(store.ChannelApps, func(payload string) {
			if id, err := strconv.ParseInt(payload, 10, 64); err == nil {
				s.cache.invalidate(id)
				return
			}
			s.cache.flush()
		})
		l.OnConnect(s.cache.flush)
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
	rs = append(rs, s.autoDeployRoutes()...)
	rs = append(rs, s.logRoutes()...)
	rs = append(rs, s.webhookRoutes()...)
	rs = append(rs, s.alertRoutes()...)
	rs = append(rs, s.usageRoutes()...)
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
	case errors.Is(err, store.ErrCapacity):
		return api.Errorf(http.StatusConflict, "no_capacity",
			"the worker running the %s has no room for its plan's resources: stop it and start it again to place it elsewhere", what).WithCause(err)
	case errors.Is(err, store.ErrRetry):
		return api.Errorf(http.StatusServiceUnavailable, "retry", "a concurrent change got in the way: try again").WithCause(err)
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

// purgeEvery is how often Run purges hard-deleted apps whose worker has
// confirmed their removal.
const purgeEvery = time.Minute

// Run purges hard-deleted apps once nothing runs them (every core may; the
// purge is one idempotent statement) until ctx ends, then ends the log
// streams still open.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(purgeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			close(s.stopping)
			return
		case <-t.C:
			ids, err := s.o.Store.PurgeApps(ctx, nil)
			if err != nil && ctx.Err() == nil {
				s.log.Error("purge hard-deleted apps", "error", err)
			}
			if len(ids) > 0 {
				s.log.Info("hard-deleted apps purged", "count", len(ids))
			}
		}
	}
}
