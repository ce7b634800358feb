package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
)

// Caller is who made a request: a user, through a session or a token.
type Caller struct {
	User *store.User
	// SessionID is the session of a cookie-authenticated request, 0
	// otherwise.
	SessionID int64
	// TokenID is the API token of a Bearer-authenticated request, 0
	// otherwise.
	TokenID int64
}

type callerKey struct{}

// CallerFrom returns the request's caller, nil when unauthenticated.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// errCSRF answers a cookie-authenticated request from another origin.
var errCSRF = api.Errorf(http.StatusForbidden, "csrf", "cross-site request refused: the Origin header does not match this site")

// errBadToken answers an Authorization header that is not a valid token.
var errBadToken = api.Errorf(http.StatusUnauthorized, "unauthorized", "invalid, expired or revoked API token")

// Authenticate is middleware that resolves the caller from an
// "Authorization: Bearer wht_…" header or else the wh_session cookie and
// puts it in the request's context (CallerFrom). A Bearer header that is
// not a live API token is refused with 401; a missing or dead cookie
// leaves the request unauthenticated (RequireUser refuses it). It applies
// the CSRF rule (package doc) and bumps the session's or token's last use,
// at most once a minute.
func (s *Service) Authenticate(next bunrouter.HandlerFunc) bunrouter.HandlerFunc {
	return func(w http.ResponseWriter, req bunrouter.Request) error {
		c, err := s.resolve(w, req.Request)
		if err != nil {
			return err
		}
		if c != nil {
			req = req.WithContext(WithCaller(req.Context(), c))
		}
		return next(w, req)
	}
}

func (s *Service) resolve(w http.ResponseWriter, r *http.Request) (*Caller, error) {
	if r.Header.Get("Authorization") != "" {
		return s.resolveToken(r)
	}
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ParseToken(SessionPrefix, ck.Value) != nil {
		return nil, nil
	}
	sess, err := s.o.Store.FindSessionByTokenHash(r.Context(), HashToken(ck.Value), s.o.SessionTTL)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: session: %w", err)
	}
	if unsafeMethod(r.Method) && !s.sameOrigin(r) {
		return nil, errCSRF
	}
	u, err := s.o.Store.FindUserByID(r.Context(), sess.UserID)
	if err != nil {
		return nil, fmt.Errorf("accounts: session's user: %w", err)
	}
	if time.Since(sess.LastSeenAt) >= store.SessionBumpInterval {
		bumped, err := s.o.Store.BumpSessionLastSeen(r.Context(), sess.ID, ClientIP(r), clip(r.UserAgent(), maxUserAgent))
		if err != nil {
			s.log.Warn("bumping a session's last use failed", "session_id", sess.ID, "error", err)
		} else if bumped {
			s.setCookie(w, ck.Value) // the cookie's lifetime rolls with the session's
		}
	}
	return &Caller{User: u, SessionID: sess.ID}, nil
}

func (s *Service) resolveToken(r *http.Request) (*Caller, error) {
	tok := api.Bearer(r)
	if ParseToken(APITokenPrefix, tok) != nil {
		return nil, errBadToken
	}
	t, err := s.o.Store.FindAPITokenByHash(r.Context(), HashToken(tok))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadToken
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: api token: %w", err)
	}
	u, err := s.o.Store.FindUserByID(r.Context(), t.UserID)
	if err != nil {
		return nil, fmt.Errorf("accounts: api token's user: %w", err)
	}
	if t.LastUsedAt == nil || time.Since(*t.LastUsedAt) >= store.SessionBumpInterval {
		if _, err := s.o.Store.TouchAPIToken(r.Context(), t.ID); err != nil {
			s.log.Warn("recording an API token's use failed", "token_id", t.ID, "error", err)
		}
	}
	return &Caller{User: u, TokenID: t.ID}, nil
}

// RequireUser is middleware that refuses unauthenticated requests with 401.
// It goes after Authenticate.
func RequireUser(next bunrouter.HandlerFunc) bunrouter.HandlerFunc {
	return func(w http.ResponseWriter, req bunrouter.Request) error {
		if CallerFrom(req.Context()) == nil {
			return api.ErrUnauthorized
		}
		return next(w, req)
	}
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// sameOrigin reports whether the request's Origin, or else Referer, is
// this site's origin (package doc).
// SameOrigin reports whether r comes from the dashboard's own origin (the
// CSRF rule above). Routes that act on a cookie-authenticated GET — a
// WebSocket upgrade, which CORS does not cover — check it themselves.
func (s *Service) SameOrigin(r *http.Request) bool { return s.sameOrigin(r) }

func (s *Service) sameOrigin(r *http.Request) bool {
	want := s.origin
	if want == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		want = scheme + "://" + r.Host
	}
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" || src == "null" {
		return false
	}
	u, err := url.Parse(src)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Scheme+"://"+u.Host, want)
}

// rateLimit takes a token for the request's IP and, when signed in, user;
// an empty bucket is a 429 with Retry-After.
func (s *Service) rateLimit(w http.ResponseWriter, r *http.Request) error {
	keys := []string{"ip:" + ClientIP(r)}
	if c := CallerFrom(r.Context()); c != nil {
		keys = append(keys, "user:"+strconv.FormatInt(c.User.ID, 10))
	}
	return s.limitKeys(w, keys...)
}

// limitKeys takes a token from each key's bucket; an empty bucket is a
// 429 with Retry-After.
func (s *Service) limitKeys(w http.ResponseWriter, keys ...string) error {
	ok, wait := s.limiter.Allow(keys...)
	if ok {
		return nil
	}
	secs := int64((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return api.Errorf(http.StatusTooManyRequests, "rate_limited", "too many requests; try again in %d seconds", secs)
}

// setCookie sets the session cookie.
func (s *Service) setCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/", MaxAge: int(s.o.SessionTTL.Seconds()),
		HttpOnly: true, Secure: s.o.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

// clearCookie deletes the session cookie.
func (s *Service) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.o.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}
