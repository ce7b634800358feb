package secrets

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// HKDF purpose labels (the info parameter) for keys derived from
// server.secret. Each use has its own label so no two uses share a key; the
// version suffix lets a use change its derivation without colliding with the
// old one. Never reuse a label for a different use.
const (
	// PurposeAES derives the AES-256-GCM key of the column cipher that
	// encrypts secrets at rest (app env vars, git provider tokens, TOTP
	// secrets, sealed envelope keys). See [NewCipher].
	PurposeAES = "wisehosting-aes-v1"

	// PurposeWorkerJWT derives the HS256 key of worker JWTs. See
	// [NewJWTIssuer].
	PurposeWorkerJWT = "wisehosting-worker-jwt-v1"

	// PurposeOAuthState derives the HMAC key that signs the state parameter
	// of the git provider OAuth flow, binding a callback to the user and
	// session that started it.
	PurposeOAuthState = "wisehosting-oauth-state-v1"

	// PurposeRevokeToken derives the HMAC key that signs the one-click
	// "revoke this session" links sent in new-device login emails; the
	// signature is the only proof of authorization of that endpoint.
	PurposeRevokeToken = "wisehosting-revoke-token-v1"

	// PurposeGitHook derives the key from which each app's push webhook
	// secret is computed (HMAC of the app's UUID), so every core verifies
	// git providers' deliveries without storing a secret per app.
	PurposeGitHook = "wisehosting-git-hook-v1"
)

// KeySize is the length in bytes of the keys this package derives for its own
// use (AES-256 and HS256 keys).
const KeySize = 32

// maxDeriveLen is HKDF-SHA256's output limit, 255 hash blocks.
const maxDeriveLen = 255 * sha256.Size

// ErrEmptySecret is returned when a key would be derived from an empty secret.
var ErrEmptySecret = errors.New("empty secret")

// DeriveKey derives n bytes for purpose from secret with HKDF-SHA256 and no
// salt (info = purpose). It is deterministic: the same secret and purpose
// always give the same key, and different purposes give independent keys. It
// fails on an empty secret, an empty purpose, or n outside 1..8160.
func DeriveKey(secret []byte, purpose string, n int) ([]byte, error) {
	if len(secret) == 0 {
		return nil, fmt.Errorf("secrets: derive key: %w", ErrEmptySecret)
	}
	if purpose == "" {
		return nil, errors.New("secrets: derive key: empty purpose")
	}
	if n < 1 || n > maxDeriveLen {
		return nil, fmt.Errorf("secrets: derive key: length %d outside 1..%d", n, maxDeriveLen)
	}
	key, err := hkdf.Key(sha256.New, secret, nil, purpose, n)
	if err != nil {
		return nil, fmt.Errorf("secrets: derive key: %w", err)
	}
	return key, nil
}

// Equal reports whether the secrets a and b are equal, in time that depends
// only on their lengths (never on their contents). Use it for every
// comparison involving a secret, a key, a hash of one, a MAC or a key id.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
