// Package accounts is the people side of the core's HTTP API: browser
// sessions, API tokens, the audit log, and the middleware every user-facing
// route sits behind.
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
// # Rate limits
//
// The endpoints an attacker would hammer (token creation, the revoke link,
// later login and 2FA) take a token from an in-process bucket per client
// IP (and per user when signed in) and answer 429 with Retry-After when it
// is empty. The buckets live in a bounded LRU map.
package accounts
