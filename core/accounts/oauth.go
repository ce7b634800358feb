package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bunrouter"
	"golang.org/x/oauth2"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
)

// OAuth constants.
const (
	// OAuthCookie carries the nonce that binds an OAuth flow to the browser
	// that started it (HttpOnly, SameSite=Lax, Path=/api/v1/auth/).
	OAuthCookie = "wh_oauth"
	// OAuthStateTTL is how long a started OAuth flow may take.
	OAuthStateTTL = 10 * time.Minute
	// MinOAuthStateKeySize is the shortest accepted Options.OAuthStateKey.
	MinOAuthStateKeySize = 32
	// oauthCookiePath scopes the nonce cookie to the OAuth endpoints.
	oauthCookiePath = "/api/v1/auth/"
	// oauthTimeout bounds the token exchange and the identity requests.
	oauthTimeout = 15 * time.Second
	// maxReturnPath is the longest accepted return path.
	maxReturnPath = 512
	// maxProviderBody bounds a provider API answer.
	maxProviderBody = 1 << 20
)

// OAuth flow modes (the login endpoint's mode parameter).
const (
	modeLogin = "login"
	modeLink  = "link"
)

// OAuthClient is one configured OAuth provider (an `oauth "<provider>"`
// block). Empty URLs and scopes take the provider's defaults.
type OAuthClient struct {
	// Provider is google, github, gitlab, bitbucket or codeberg.
	Provider string
	// ClientID and ClientSecret are the OAuth application's credentials.
	ClientID, ClientSecret string
	// AuthURL, TokenURL and APIURL override the provider's endpoints.
	AuthURL, TokenURL, APIURL string
	// Scopes, when set, replace the default scopes of both modes.
	Scopes []string
}

// providerDefaults are a provider's public endpoints, scopes and API.
type providerDefaults struct {
	authURL, tokenURL, apiURL string
	authStyle                 oauth2.AuthStyle
	loginScopes, linkScopes   []string
	// git providers can be linked (their token is kept for cloning).
	git      bool
	identity func(ctx context.Context, c *http.Client, apiURL, token string) (*oauthIdentity, error)
}

var providers = map[string]providerDefaults{
	"google": {
		authURL: "https://accounts.google.com/o/oauth2/v2/auth", tokenURL: "https://oauth2.googleapis.com/token",
		apiURL: "https://openidconnect.googleapis.com/v1", authStyle: oauth2.AuthStyleInParams,
		loginScopes: []string{"openid", "email", "profile"}, identity: googleIdentity,
	},
	"github": {
		authURL: "https://github.com/login/oauth/authorize", tokenURL: "https://github.com/login/oauth/access_token",
		apiURL: "https://api.github.com", authStyle: oauth2.AuthStyleInParams,
		loginScopes: []string{"read:user", "user:email"}, linkScopes: []string{"read:user", "user:email", "repo"},
		git: true, identity: githubIdentity,
	},
	"gitlab": {
		authURL: "https://gitlab.com/oauth/authorize", tokenURL: "https://gitlab.com/oauth/token",
		apiURL: "https://gitlab.com/api/v4", authStyle: oauth2.AuthStyleInParams,
		loginScopes: []string{"read_user"}, linkScopes: []string{"read_user", "read_repository", "api"}, // api: push webhooks
		git: true, identity: gitlabIdentity,
	},
	"bitbucket": {
		authURL: "https://bitbucket.org/site/oauth2/authorize", tokenURL: "https://bitbucket.org/site/oauth2/access_token",
		apiURL: "https://api.bitbucket.org/2.0", authStyle: oauth2.AuthStyleInHeader,
		loginScopes: []string{"account", "email"}, linkScopes: []string{"account", "email", "repository", "webhook"},
		git: true, identity: bitbucketIdentity,
	},
	"codeberg": {
		authURL: "https://codeberg.org/login/oauth/authorize", tokenURL: "https://codeberg.org/login/oauth/access_token",
		apiURL: "https://codeberg.org/api/v1", authStyle: oauth2.AuthStyleInParams,
		loginScopes: []string{"read:user"}, linkScopes: []string{"read:user", "read:repository", "write:repository"}, // write: push webhooks
		git: true, identity: giteaIdentity,
	},
}

// oauthProvider is a configured provider, ready to use.
type oauthProvider struct {
	name                    string
	endpoint                oauth2.Endpoint
	clientID, secret        string
	apiURL                  string
	loginScopes, linkScopes []string
	git                     bool
	identity                func(ctx context.Context, c *http.Client, apiURL, token string) (*oauthIdentity, error)
}

// initOAuth checks and indexes the configured providers.
func (s *Service) initOAuth() error {
	s.oauth = map[string]*oauthProvider{}
	if len(s.o.OAuth) > 0 && len(s.o.OAuthStateKey) < MinOAuthStateKeySize {
		return fmt.Errorf("accounts: the OAuth state key must be at least %d bytes", MinOAuthStateKeySize)
	}
	if s.o.OAuthHTTPClient == nil {
		s.o.OAuthHTTPClient = &http.Client{Timeout: oauthTimeout}
	}
	for _, c := range s.o.OAuth {
		d, ok := providers[c.Provider]
		if !ok {
			return fmt.Errorf("accounts: unknown OAuth provider %q", c.Provider)
		}
		if _, dup := s.oauth[c.Provider]; dup {
			return fmt.Errorf("accounts: OAuth provider %q configured twice", c.Provider)
		}
		if c.ClientID == "" || c.ClientSecret == "" {
			return fmt.Errorf("accounts: OAuth provider %q needs a client id and secret", c.Provider)
		}
		p := &oauthProvider{name: c.Provider, clientID: c.ClientID, secret: c.ClientSecret,
			endpoint:    oauth2.Endpoint{AuthURL: or(c.AuthURL, d.authURL), TokenURL: or(c.TokenURL, d.tokenURL), AuthStyle: d.authStyle},
			apiURL:      strings.TrimRight(or(c.APIURL, d.apiURL), "/"),
			loginScopes: d.loginScopes, linkScopes: d.linkScopes, git: d.git, identity: d.identity}
		if len(c.Scopes) > 0 {
			p.loginScopes, p.linkScopes = c.Scopes, c.Scopes
		}
		for _, u := range []string{p.endpoint.AuthURL, p.endpoint.TokenURL, p.apiURL} {
			if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				return fmt.Errorf("accounts: OAuth provider %q: %q is not an absolute http(s) URL", c.Provider, u)
			}
		}
		s.oauth[c.Provider] = p
	}
	return nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// config returns the oauth2 configuration of one flow.
func (p *oauthProvider) config(redirect, mode string) *oauth2.Config {
	scopes := p.loginScopes
	if mode == modeLink {
		scopes = p.linkScopes
	}
	return &oauth2.Config{ClientID: p.clientID, ClientSecret: p.secret, Endpoint: p.endpoint,
		RedirectURL: redirect, Scopes: slices.Clone(scopes)}
}

// errNoProvider answers an unknown or unconfigured provider alike.
var errNoProvider = api.Errorf(http.StatusNotFound, "not_found", "no such OAuth provider is configured")

func (s *Service) provider(req bunrouter.Request) (*oauthProvider, error) {
	p, ok := s.oauth[req.Param("provider")]
	if !ok {
		return nil, errNoProvider
	}
	return p, nil
}

// redirectURI is where the provider sends the browser back: server.base_url
// (or the request's own origin without one) + the callback path.
func (s *Service) redirectURI(r *http.Request, provider string) string {
	origin := s.origin
	if origin == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		origin = scheme + "://" + r.Host
	}
	return origin + "/api/v1/auth/" + provider + "/callback"
}

// oauthLogin starts a flow: GET /api/v1/auth/:provider/login?mode=&return=.
func (s *Service) oauthLogin(w http.ResponseWriter, req bunrouter.Request) error {
	p, err := s.provider(req)
	if err != nil {
		return err
	}
	q := req.URL.Query()
	st := oauthState{Provider: p.name, Mode: or(q.Get("mode"), modeLogin), Expires: s.o.Now().Add(OAuthStateTTL).Unix()}
	switch st.Mode {
	case modeLogin:
	case modeLink:
		c := CallerFrom(req.Context())
		if c == nil {
			return api.ErrUnauthorized
		}
		if !p.git {
			return api.Errorf(http.StatusBadRequest, "not_linkable", "%s is not a git provider and cannot be linked", p.name)
		}
		st.UserID = c.User.ID
	default:
		return api.Errorf(http.StatusBadRequest, "bad_mode", "mode must be %q or %q", modeLogin, modeLink)
	}
	if ret := q.Get("return"); ret != "" {
		if st.Return, err = SafeReturnPath(ret); err != nil {
			return api.Errorf(http.StatusBadRequest, "bad_return", "return must be a path on this site starting with a single /")
		}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("accounts: oauth nonce: %w", err)
	}
	nonce := base64.RawURLEncoding.EncodeToString(raw[:])
	st.NonceHash = nonceHash(nonce)
	state := signState(s.o.OAuthStateKey, st)
	http.SetCookie(w, &http.Cookie{Name: OAuthCookie, Value: nonce, Path: oauthCookiePath, MaxAge: int(OAuthStateTTL.Seconds()),
		HttpOnly: true, Secure: s.o.SecureCookies, SameSite: http.SameSiteLaxMode})
	verifier := pkceVerifier(s.o.OAuthStateKey, nonce)
	u := p.config(s.redirectURI(req.Request, p.name), st.Mode).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, req.Request, u, http.StatusFound)
	return nil
}

// Callback failure codes, sent as /?error=<code>.
const (
	cbDenied     = "oauth_denied"
	cbBadState   = "invalid_state"
	cbExpired    = "state_expired"
	cbBadRequest = "invalid_request"
	cbExchange   = "exchange_failed"
	cbProvider   = "provider_error"
	cbUnverified = "email_unverified"
	cbNotSigned  = "not_signed_in"
	cbServer     = "server_error"
)

// callbackError is a failed callback: the code the browser is sent back
// with and, for the log, the cause (never containing a secret).
type callbackError struct {
	code  string
	cause error
}

func (e *callbackError) Error() string { return e.code + ": " + fmt.Sprint(e.cause) }

func cbErr(code string, cause error) error { return &callbackError{code: code, cause: cause} }

// oauthCallback finishes a flow: GET /api/v1/auth/:provider/callback. An
// unknown provider is a JSON 404; every other failure redirects to
// /?error=<code> (doc.go lists the codes).
func (s *Service) oauthCallback(w http.ResponseWriter, req bunrouter.Request) error {
	p, err := s.provider(req)
	if err != nil {
		return err
	}
	// The nonce is single-use: whatever happens, it is gone.
	http.SetCookie(w, &http.Cookie{Name: OAuthCookie, Value: "", Path: oauthCookiePath, MaxAge: -1,
		HttpOnly: true, Secure: s.o.SecureCookies, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	loc, err := s.callback(w, req.Request, p)
	if err != nil {
		var ce *callbackError
		if !errors.As(err, &ce) {
			ce = &callbackError{code: cbServer, cause: err}
		}
		lvl := s.log.Info
		if ce.code == cbServer || ce.code == cbExchange || ce.code == cbProvider {
			lvl = s.log.Warn
		}
		lvl("OAuth callback failed", "provider", p.name, "ip", ClientIP(req.Request), "code", ce.code, "error", ce.cause)
		loc = "/?error=" + ce.code
	}
	http.Redirect(w, req.Request, loc, http.StatusSeeOther)
	return nil
}

// callback does the work of oauthCallback and returns where to go.
func (s *Service) callback(w http.ResponseWriter, r *http.Request, p *oauthProvider) (string, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return "", cbErr(cbDenied, fmt.Errorf("the provider answered %q", clip(e, 64)))
	}
	st, err := parseState(s.o.OAuthStateKey, q.Get("state"))
	if err != nil {
		return "", cbErr(cbBadState, err)
	}
	ck, err := r.Cookie(OAuthCookie)
	if err != nil || !hmac.Equal([]byte(nonceHash(ck.Value)), []byte(st.NonceHash)) {
		return "", cbErr(cbBadState, errors.New("the state belongs to another browser (nonce cookie missing or different)"))
	}
	if st.Provider != p.name {
		return "", cbErr(cbBadState, fmt.Errorf("the state was issued for %q", st.Provider))
	}
	now := s.o.Now()
	if now.Unix() > st.Expires {
		return "", cbErr(cbExpired, errors.New("the state has expired"))
	}
	if st.Expires > now.Add(OAuthStateTTL+time.Minute).Unix() {
		return "", cbErr(cbBadState, errors.New("the state expires too late"))
	}
	code := q.Get("code")
	if code == "" {
		return "", cbErr(cbBadRequest, errors.New("no code"))
	}
	ctx, cancel := context.WithTimeout(r.Context(), oauthTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.o.OAuthHTTPClient)
	tok, err := p.config(s.redirectURI(r, p.name), st.Mode).Exchange(ctx, code,
		oauth2.VerifierOption(pkceVerifier(s.o.OAuthStateKey, ck.Value)))
	if err != nil {
		return "", cbErr(cbExchange, scrubExchangeError(err))
	}
	id, err := p.identity(ctx, s.o.OAuthHTTPClient, p.apiURL, tok.AccessToken)
	if err != nil {
		return "", cbErr(cbProvider, err)
	}
	ret := or(st.Return, "/")
	if st.Mode == modeLink {
		return ret, s.link(r, st, p, id, tok.AccessToken)
	}
	if id.Email == "" || !id.EmailVerified {
		return "", cbErr(cbUnverified, fmt.Errorf("%s account %q has no verified email", p.name, id.Subject))
	}
	var u *store.User
	if p.name == "google" {
		u, err = s.o.Store.UpsertGoogleUser(r.Context(), id.Subject, id.Email, id.Name, id.Avatar)
	} else {
		u, _, err = s.o.Store.UpsertUserByEmail(r.Context(), id.Email, id.Name, id.Avatar)
	}
	if err != nil {
		return "", fmt.Errorf("accounts: oauth user: %w", err)
	}
	pending, err := s.finishLogin(r.Context(), w, r, u.ID, p.name)
	if err != nil {
		return "", err
	}
	if pending {
		return ret + sep(ret) + "two_factor=required", nil
	}
	return ret, nil
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}

// link stores the provider's token for the signed-in user who started the
// flow, and audits it.
func (s *Service) link(r *http.Request, st *oauthState, p *oauthProvider, id *oauthIdentity, token string) error {
	c := CallerFrom(r.Context())
	if c == nil || c.User.ID != st.UserID {
		return cbErr(cbNotSigned, errors.New("linking needs the user who started it to be signed in"))
	}
	if token == "" {
		return cbErr(cbExchange, errors.New("the provider returned no access token"))
	}
	if err := s.o.Store.UpsertGitToken(r.Context(), c.User.ID, p.name, id.Username, token); err != nil {
		return fmt.Errorf("accounts: link %s: %w", p.name, err)
	}
	details, _ := json.Marshal(map[string]string{"provider": p.name, "username": id.Username})
	if err := s.o.Store.RecordAuditEvent(r.Context(), store.NewAuditEvent{UserID: c.User.ID, Kind: store.AuditGitTokenLink,
		IP: ClientIP(r), UserAgent: clip(r.UserAgent(), maxUserAgent), Details: details}); err != nil {
		return fmt.Errorf("accounts: link %s: %w", p.name, err)
	}
	return nil
}

// scrubExchangeError keeps what is safe to log of a failed exchange: the
// HTTP status and OAuth error code, never the response body.
func scrubExchangeError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return fmt.Errorf("token endpoint answered %d %q", status, clip(re.ErrorCode, 64))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("token endpoint: %s: %w", ue.Op, ue.Err)
	}
	return errors.New("token exchange failed")
}

// oauthState is the signed state parameter.
type oauthState struct {
	Provider string `json:"p"`
	Mode     string `json:"m"`
	// UserID is the signed-in user a link flow is for.
	UserID int64 `json:"u,omitempty"`
	// NonceHash is sha256 of the nonce cookie, base64url.
	NonceHash string `json:"n"`
	// Expires is a Unix time.
	Expires int64  `json:"e"`
	Return  string `json:"r,omitempty"`
}

// stateMACLabel separates the state's MAC from any other use of the key.
const stateMACLabel = "wisehosting-oauth-state\x00"

// signState returns base64url(JSON) "." base64url(HMAC-SHA256).
func signState(key []byte, st oauthState) string {
	b, _ := json.Marshal(st)
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + base64.RawURLEncoding.EncodeToString(stateMAC(key, payload))
}

func stateMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(stateMACLabel))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// parseState verifies a state's signature and shape (not its expiry or
// nonce, which the caller checks).
func parseState(key []byte, s string) (*oauthState, error) {
	if len(s) > 2048 {
		return nil, errors.New("state too long")
	}
	payload, mac, ok := strings.Cut(s, ".")
	if !ok {
		return nil, errors.New("malformed state")
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, stateMAC(key, payload)) {
		return nil, errors.New("state signature mismatch")
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, errors.New("malformed state payload")
	}
	var st oauthState
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, errors.New("malformed state payload")
	}
	if st.NonceHash == "" || (st.Mode != modeLogin && st.Mode != modeLink) || (st.Mode == modeLink) != (st.UserID > 0) {
		return nil, errors.New("incomplete state")
	}
	return &st, nil
}

func nonceHash(nonce string) string {
	h := sha256.Sum256([]byte("wisehosting-oauth-nonce\x00" + nonce))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// pkceVerifier derives the flow's PKCE code verifier from the nonce cookie,
// so that it never leaves the server and the browser except as the
// cookie's secret, and needs no storage: 43 characters of base64url.
func pkceVerifier(key []byte, nonce string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("wisehosting-oauth-pkce\x00" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// SafeReturnPath checks a post-login return target: a path on this site
// (starting with exactly one "/", no backslash, no control characters or
// spaces, at most 512 bytes), with an optional query, and no fragment.
// It returns the path with its query as given.
func SafeReturnPath(s string) (string, error) {
	if s == "" || len(s) > maxReturnPath {
		return "", errors.New("accounts: return path empty or too long")
	}
	if s[0] != '/' || (len(s) > 1 && (s[1] == '/' || s[1] == '\\')) {
		return "", errors.New("accounts: return path must start with a single /")
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '\\' || r == '#' || r > 0x7e {
			return "", errors.New("accounts: return path has a forbidden character")
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") ||
		strings.HasPrefix(u.Path, "//") {
		return "", errors.New("accounts: return path is not a local path")
	}
	return s, nil
}
