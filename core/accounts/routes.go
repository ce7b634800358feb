package accounts

import (
	"net/http"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/mail"
)

// Route is one endpoint of the package.
type Route struct {
	Method, Path string
	// Public routes need no caller; every other route answers 401 to an
	// unauthenticated request.
	Public bool
	// Limited routes take a rate-limit token per request.
	Limited bool
	handler bunrouter.HandlerFunc
}

// Routes returns every endpoint Register mounts, in one table (the route
// table test walks it).
func (s *Service) Routes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/me", handler: s.me},
		{Method: http.MethodGet, Path: "/api/v1/sessions", handler: s.listSessions},
		{Method: http.MethodDelete, Path: "/api/v1/sessions/:id", handler: s.revokeSession},
		{Method: http.MethodPost, Path: "/api/v1/sessions/revoke-others", handler: s.revokeOthers},
		{Method: http.MethodPost, Path: "/api/v1/logout", handler: s.logout},
		{Method: http.MethodGet, Path: "/api/v1/tokens", handler: s.listTokens},
		{Method: http.MethodPost, Path: "/api/v1/tokens", Limited: true, handler: s.createToken},
		{Method: http.MethodDelete, Path: "/api/v1/tokens/:id", handler: s.revokeToken},
		{Method: http.MethodGet, Path: "/api/v1/audit", handler: s.listAudit},
		{Method: http.MethodGet, Path: mail.RevokePath, Public: true, Limited: true, handler: s.revokeByLink},
		{Method: http.MethodGet, Path: "/api/v1/auth/:provider/login", Public: true, Limited: true, handler: s.oauthLogin},
		{Method: http.MethodGet, Path: "/api/v1/auth/:provider/callback", Public: true, Limited: true, handler: s.oauthCallback},
		{Method: http.MethodGet, Path: "/api/v1/git-tokens", handler: s.listGitTokens},
		{Method: http.MethodDelete, Path: "/api/v1/git-tokens/:provider", handler: s.revokeGitToken},
		{Method: http.MethodPost, Path: "/api/v1/2fa/enroll", Limited: true, handler: s.enrollTOTP},
		{Method: http.MethodPost, Path: "/api/v1/2fa/enable", Limited: true, handler: s.enableTOTP},
		{Method: http.MethodPost, Path: "/api/v1/2fa/disable", Limited: true, handler: s.disableTOTP},
		{Method: http.MethodPost, Path: "/api/v1/2fa/backup-codes", Limited: true, handler: s.regenerateBackupCodes},
		{Method: http.MethodPost, Path: "/api/v1/2fa/verify", Public: true, Limited: true, handler: s.verifyTwoFactor},
	}
}

// Register mounts Routes on g, each behind Authenticate, RequireUser
// unless public, and the rate limit when limited.
func (s *Service) Register(g api.Mux) {
	for _, rt := range s.Routes() {
		h := rt.handler
		if rt.Limited {
			h = s.limited(h)
		}
		if !rt.Public {
			h = RequireUser(h)
		}
		g.Handle(rt.Method, rt.Path, s.Authenticate(h))
	}
}

// Limit is middleware that takes a rate-limit token per request (per client
// IP and, once authenticated, per user); other packages' routes use it.
func (s *Service) Limit(next bunrouter.HandlerFunc) bunrouter.HandlerFunc { return s.limited(next) }

func (s *Service) limited(next bunrouter.HandlerFunc) bunrouter.HandlerFunc {
	return func(w http.ResponseWriter, req bunrouter.Request) error {
		if err := s.rateLimit(w, req.Request); err != nil {
			return err
		}
		return next(w, req)
	}
}
