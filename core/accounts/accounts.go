package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/core/mail"
	"github.com/wisehosting/wisehosting/core/store"
)

// Cookie names.
const (
	// SessionCookie carries the session token.
	SessionCookie = "wh_session"
	// PendingCookie carries a sign-in's pending 2FA challenge.
	PendingCookie = "wh_2fa_pending"
)

// Defaults of Options.
const (
	DefaultSessionTTL = 720 * time.Hour
	DefaultRateWindow = time.Minute
	// DefaultRateBurst is how many rate-limited requests a client (IP or
	// user) may make per window.
	DefaultRateBurst = 10
	// DefaultRateKeys bounds the buckets of each limiter.
	DefaultRateKeys = 10_000
)

// Options configure a Service.
type Options struct {
	// Store is the database. Required.
	Store *store.Store
	// Mailer sends the new-device alert; nil or disabled sends none.
	Mailer *mail.Mailer
	// RevokeKey verifies the revoke links of new-device mail (the key the
	// Mailer signs with: secrets.PurposeRevokeToken). Required.
	RevokeKey []byte
	// BaseURL is server.base_url: the origin CSRF checks accept and the
	// base of links in mail. Empty: the request's own origin, and no
	// new-device mail (it would have no link).
	BaseURL string
	// SessionTTL is security.session_ttl, the idle lifetime of a session.
	SessionTTL time.Duration
	// SecureCookies is security.secure_cookies.
	SecureCookies bool
	// RateWindow (security.api_rate_window) and RateBurst size the
	// buckets of rate-limited endpoints: RateBurst requests per window
	// per IP and per user.
	RateWindow time.Duration
	RateBurst  int
	// RateKeys bounds each limiter's buckets.
	RateKeys int
	// OAuth are the configured OAuth providers (oauth.go).
	OAuth []OAuthClient
	// OAuthStateKey signs the OAuth state (secrets.PurposeOAuthState);
	// required with OAuth.
	OAuthStateKey []byte
	// OAuthHTTPClient talks to the providers; nil: a client with a 15 s
	// timeout.
	OAuthHTTPClient *http.Client
	// Argon2 hashes backup codes; zero: DefaultArgon2 (tests lower it).
	Argon2 Argon2Params
	// Logger gets the service's logs; nil: none.
	Logger hclog.Logger
	// Now is the clock of rate limits and revoke links (tests).
	Now func() time.Time
}

// Service serves sessions, API tokens and the audit log. Create it with
// New.
type Service struct {
	o       Options
	origin  string // scheme://host of BaseURL, "" without one
	log     hclog.Logger
	limiter *Limiter
	mails   sync.WaitGroup
	oauth   map[string]*oauthProvider
	// finishLogin ends an OAuth login (oauth.go).
	finishLogin func(ctx context.Context, w http.ResponseWriter, r *http.Request, userID int64, provider string) (twoFactorPending bool, err error)
}

// New checks opts and returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("accounts: a store is required")
	}
	if len(opts.RevokeKey) < mail.MinSecretSize {
		return nil, fmt.Errorf("accounts: the revoke key must be at least %d bytes", mail.MinSecretSize)
	}
	s := &Service{o: opts, log: opts.Logger}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.o.Now == nil {
		s.o.Now = time.Now
	}
	if s.o.SessionTTL <= 0 {
		s.o.SessionTTL = DefaultSessionTTL
	}
	if s.o.RateWindow <= 0 {
		s.o.RateWindow = DefaultRateWindow
	}
	if s.o.RateBurst <= 0 {
		s.o.RateBurst = DefaultRateBurst
	}
	if s.o.RateKeys <= 0 {
		s.o.RateKeys = DefaultRateKeys
	}
	if s.o.Argon2 == (Argon2Params{}) {
		s.o.Argon2 = DefaultArgon2
	}
	if s.o.Argon2.Time == 0 || s.o.Argon2.Threads == 0 || s.o.Argon2.MemoryKiB < 8*uint32(s.o.Argon2.Threads) ||
		s.o.Argon2.MemoryKiB > maxArgonMemoryKiB || s.o.Argon2.Time > maxArgonTime {
		return nil, fmt.Errorf("accounts: argon2 parameters %+v are out of range", s.o.Argon2)
	}
	if opts.BaseURL != "" {
		u, err := url.Parse(opts.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("accounts: base URL %q is not an absolute http(s) URL", opts.BaseURL)
		}
		s.origin = u.Scheme + "://" + u.Host
	}
	if err := s.initOAuth(); err != nil {
		return nil, err
	}
	s.finishLogin = s.FinishLogin // a user with TOTP on goes through the pending 2FA step
	s.limiter = NewLimiter(s.o.RateBurst, s.o.RateWindow, s.o.RateKeys, s.o.Now)
	return s, nil
}

// Wait waits for the new-device mails being sent (call it on shutdown).
func (s *Service) Wait() { s.mails.Wait() }
