// Package accounts is the people side of the core's HTTP API: browser
// sessions, API tokens, two-factor authentication, the audit log, and the
// middleware every user-facing route sits behind.
//
// # Credentials
//
// A session is an opaque token, "whs_" followed by 32 random bytes in
// unpadded base64url, carried in the wh_session cookie (HttpOnly,
// SameSite=Lax, Path=/, Secure per security.secure_cookies). An API token
// is the same with the prefix "wht_", sent as "Authorization: Bearer".
// Only sha256(token) is stored. Sessions expire after security.session_ttl
// without use (last_seen_at, bumped at most once a minute).
//
// # CSRF
//
// Cookie-authenticated requests that change state (POST, PUT, PATCH,
// DELETE) must come from the dashboard's own origin: their Origin header,
// or when there is none their Referer, must have the scheme and host of
// server.base_url (without base_url: the request's own scheme and Host).
// Browsers send Origin on every such request, so a request with neither
// header is refused too. This is OWASP's "verifying origin with standard
// headers"; together with SameSite=Lax it needs no token in pages. Requests
// authenticated with a Bearer token carry no ambient credential and are
// exempt.
//
// # Client addresses
//
// The client's IP is the request's RemoteAddr. There is no trusted-proxy
// setting yet, so X-Forwarded-For and similar headers are ignored: behind
// a reverse proxy every client has the proxy's address (rate limits and
// new-device detection are then per proxy, never spoofable).
//
// # OAuth
//
// GET /api/v1/auth/:provider/login?mode=login|link&return=/path starts a
// flow with a configured provider (google, github, gitlab, bitbucket,
// codeberg; any other, or one without an `oauth` block, is a JSON 404). It
// sets the wh_oauth cookie (32 random bytes, HttpOnly, SameSite=Lax,
// Path=/api/v1/auth/, 10 minutes) and redirects (302) to the provider with
// a state: base64url(JSON{provider, mode, user for link, sha256 of the
// cookie's nonce, expiry, return path}) "." base64url(HMAC-SHA256), keyed
// by secrets.PurposeOAuthState. A state is thus useless without the
// browser's cookie, expires after 10 minutes, and cannot be altered. PKCE
// (S256) is sent to every provider: Google, GitLab, Gitea/Forgejo and
// GitHub implement it, and a provider that does not ignores the extra
// parameters, so one rule fits all. The code verifier is an HMAC of the
// nonce, so it lives only in the cookie and on the server. The return path
// must start with a single "/" (SafeReturnPath); otherwise 400 bad_return.
// mode=link needs a signed-in caller (401) and a git provider (400
// not_linkable for Google).
//
// GET /api/v1/auth/:provider/callback clears the cookie, verifies the
// state (signature, nonce cookie, provider, expiry), exchanges the code
// with the verifier, and reads the account from the provider's API
// (Google userinfo; GitHub /user + /user/emails; GitLab /api/v4/user,
// verified when confirmed_at is set; Bitbucket /2.0/user +
// /2.0/user/emails; Codeberg /api/v1/user + /user/emails). A login needs
// the provider's primary email to be verified; Google users are matched by
// their Google id, then email (store.UpsertGoogleUser), others by email
// (store.UpsertUserByEmail, created when new). The session is then made by
// the finishLogin hook (Login without a second factor; with 2FA the
// pending step, and the redirect gets ?two_factor=required). A link
// stores the provider's token encrypted (store.UpsertGitToken), for the
// user who started the flow if still signed in, and audits
// git_token_link. Success redirects (303) to the return path, "/" by
// default. Failures redirect to /?error=<code>, one of oauth_denied,
// invalid_state, state_expired, invalid_request, exchange_failed,
// provider_error, email_unverified, not_signed_in, server_error; the log
// gets the reason, never the code, token or state.
//
// GET /api/v1/git-tokens lists the caller's linked providers (provider,
// username, scopes, times; never the token). DELETE
// /api/v1/git-tokens/:provider forgets one and audits git_token_revoke
// (the token is not revoked at the provider).
// # Two-factor authentication
//
// TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps, one step of skew; the
// totp subpackage, stdlib only). The flow, all under /api/v1/2fa:
//
//   - POST enroll (signed in): a new 160-bit secret, stored encrypted with
//     the column cipher (users.totp_secret holds the "v1:" form), returned
//     once as base32 and as an otpauth://totp/WiseHosting:<email>?secret=…
//     URI for a QR code. 2FA is not on yet; enrolling again replaces the
//     secret; with 2FA on it is 409 (disable first).
//   - POST enable {"code"}: checks a code of the enrolled secret, turns 2FA
//     on and returns 10 backup codes ("xxxx-xxxx", Crockford base32, 40
//     bits each), shown once.
//   - POST disable {"code"} or {"backup_code"}: turns 2FA off, forgetting
//     the secret, the backup codes and any pending challenge.
//   - POST backup-codes {"code"}: a new set of 10; the old ones, used or
//     not, stop working.
//   - POST verify {"code"} or {"backup_code"} (public): the second step of
//     a sign-in, below.
//
// The four management endpoints need a browser session (403
// session_required with an API token): a leaked token must not be able to
// put the account behind an authenticator its owner does not have.
// A wrong code is 403 invalid_code on the signed-in endpoints (the session
// is fine) and 401 invalid_code on verify. Enable and disable are audited
// (totp_enabled, totp_disabled, backup_codes_regenerated).
//
// Replay: users.totp_last_step holds the time step of the last accepted
// code, and a code is accepted only for a later step, recorded under the
// user's row lock, so each code works once even across concurrent
// requests. Backup codes are hashed with argon2id (PHC string form; by
// default OWASP's m=19 MiB, t=2, p=1, see Options.Argon2; each hash
// records its parameters) and consumed with UPDATE … WHERE used_at IS
// NULL. Typed backup codes are normalised: case, spaces and dashes are
// ignored, and o, i, l read as 0, 1, 1.
//
// Sign-in with 2FA on: a login path that has proven the first factor (an
// OAuth callback) calls FinishLogin, which signs the user in (Login) when
// 2FA is off and otherwise calls BeginTwoFactor: a pending challenge is
// stored as sha256 of a "whp_" token for PendingTTL (5 minutes) and the
// token goes in the wh_2fa_pending cookie (HttpOnly, SameSite=Lax, Secure
// per config, Path=/api/v1/2fa, Max-Age 300). POST /api/v1/2fa/verify
// then redeems it: it must come from this site's origin (as above), and
// the challenge row is deleted (DELETE … RETURNING) in the transaction
// that checks the code, so one challenge yields one session; a wrong code
// rolls the deletion back, leaving the challenge for another try until it
// expires. On success it calls Login with twoFactor set and clears the
// cookie (if Login then fails, the challenge is spent and the user signs
// in again). Expired challenges are pruned with the sessions.
//
// # Rate limits
//
// The endpoints an attacker would hammer (token creation, the revoke link,
// the OAuth login and callback, later 2FA) take a token from an in-process bucket per client
// IP (and per user when signed in) and answer 429 with Retry-After when it
// is empty. The buckets live in a bounded LRU map.
// the 2FA endpoints, later login) take a token from an in-process bucket
// per client IP (and per user when signed in) and answer 429 with
// Retry-After when it is empty. /api/v1/2fa/verify also takes one from the
// bucket of the challenge's user, so guessing codes from many addresses is
// limited as well. The buckets live in a bounded LRU map.
package accounts
