package accounts

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Token prefixes: they make a leaked credential recognisable (secret
// scanners) and tell the two kinds apart.
const (
	// SessionPrefix starts every session token (the wh_session cookie).
	SessionPrefix = "whs_"
	// APITokenPrefix starts every API token.
	APITokenPrefix = "wht_"
)

// tokenBytes is the entropy of a token; tokenChars its base64url length.
const (
	tokenBytes = 32
	tokenChars = 43
)

// ErrMalformedToken is wrapped by ParseToken's errors. They never quote the
// token.
var ErrMalformedToken = errors.New("malformed token")

// NewToken returns a fresh token with the given prefix and its hash
// (HashToken), the only form that may be stored.
func NewToken(prefix string) (token, hash string, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("accounts: new token: %w", err)
	}
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken returns the lowercase hex sha256 of a token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ParseToken checks that s is a token NewToken(prefix) could have made:
// the prefix, then 43 characters of unpadded base64url encoding 32 bytes.
func ParseToken(prefix, s string) error {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return fmt.Errorf("accounts: %w: it does not start with %q", ErrMalformedToken, prefix)
	}
	if len(rest) != tokenChars {
		return fmt.Errorf("accounts: %w: want %d characters after the prefix, not %d", ErrMalformedToken, tokenChars, len(rest))
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != tokenBytes {
		return fmt.Errorf("accounts: %w: not unpadded base64url of %d bytes", ErrMalformedToken, tokenBytes)
	}
	return nil
}

// displayPrefix is what lists show of an API token: its prefix and first
// four random characters (24 bits: enough to tell tokens apart, far too
// few to matter).
func displayPrefix(token string) string {
	return token[:len(APITokenPrefix)+4]
}
