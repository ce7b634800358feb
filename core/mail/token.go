package mail

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Revoke tokens: how long they are good for, and how far in the future
// their time may be (clocks of several core replicas drift).
const (
	RevokeTokenTTL  = 72 * time.Hour
	RevokeTokenSkew = 5 * time.Minute
)

// MinSecretSize is the least length of the HMAC key of revoke tokens.
const MinSecretSize = 32

// maxToken bounds a token's length: three int64s, three colons and a
// 43-character signature fit in 106 bytes.
const maxToken = 128

// Reasons a revoke token is refused. VerifyRevokeToken's errors wrap one
// of them (find it with errors.Is); none quotes the token.
var (
	// ErrMalformedToken: not "userID:sessionID:unix:signature" with
	// positive decimal ids and time and a base64url HMAC-SHA256.
	ErrMalformedToken = errors.New("malformed revoke token")
	// ErrBadSignature: the signature is not the key's for the rest.
	ErrBadSignature = errors.New("revoke token signature does not match")
	// ErrTokenExpired: older than RevokeTokenTTL.
	ErrTokenExpired = errors.New("revoke token expired")
	// ErrTokenFromFuture: made more than RevokeTokenSkew from now on.
	ErrTokenFromFuture = errors.New("revoke token is from the future")
)

// SignRevokeToken returns the token of a one-click "revoke this session"
// link: "userID:sessionID:unix:signature", where signature is the
// base64url (no padding) HMAC-SHA256, under the Mailer's secret, of
// "userID:sessionID:unix" and unix is now in seconds. The token is
// URL-safe. It works on a disabled Mailer too.
func (m *Mailer) SignRevokeToken(userID, sessionID int64, now time.Time) string {
	payload := strconv.FormatInt(userID, 10) + ":" + strconv.FormatInt(sessionID, 10) + ":" + strconv.FormatInt(now.Unix(), 10)
	return payload + ":" + sign(m.secret, payload)
}

func sign(secret []byte, payload string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// VerifyRevokeToken checks a token SignRevokeToken made with secret and
// returns its user and session. It refuses a malformed token, a wrong
// signature (compared in constant time), a token older than
// RevokeTokenTTL and one more than RevokeTokenSkew in the future of now,
// in that order: the age of a forged token is never revealed.
func VerifyRevokeToken(token string, secret []byte, now time.Time) (userID, sessionID int64, err error) {
	if len(secret) < MinSecretSize {
		return 0, 0, fmt.Errorf("mail: verifying a revoke token: the secret is shorter than %d bytes", MinSecretSize)
	}
	if len(token) > maxToken {
		return 0, 0, fmt.Errorf("mail: %w: longer than %d bytes", ErrMalformedToken, maxToken)
	}
	parts := strings.Split(token, ":")
	if len(parts) != 4 {
		return 0, 0, fmt.Errorf("mail: %w: want 4 parts separated by colons, not %d", ErrMalformedToken, len(parts))
	}
	var nums [3]int64
	for i, name := range []string{"user id", "session id", "time"} {
		n, ok := positive(parts[i])
		if !ok {
			return 0, 0, fmt.Errorf("mail: %w: the %s is not a positive decimal number", ErrMalformedToken, name)
		}
		nums[i] = n
	}
	// The decoder skips CR and LF: a token must be exactly the 43
	// characters the Mailer writes, so that one token has one spelling.
	sig := parts[3]
	if len(sig) != base64.RawURLEncoding.EncodedLen(sha256.Size) || strings.ContainsAny(sig, "\r\n") {
		return 0, 0, fmt.Errorf("mail: %w: the signature is not %d bytes of unpadded base64url", ErrMalformedToken, sha256.Size)
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return 0, 0, fmt.Errorf("mail: %w: the signature is not %d bytes of unpadded base64url", ErrMalformedToken, sha256.Size)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(token[:len(token)-len(parts[3])-1]))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return 0, 0, fmt.Errorf("mail: %w", ErrBadSignature)
	}
	made := time.Unix(nums[2], 0)
	switch {
	case made.After(now.Add(RevokeTokenSkew)):
		return 0, 0, fmt.Errorf("mail: %w", ErrTokenFromFuture)
	case now.Sub(made) > RevokeTokenTTL:
		return 0, 0, fmt.Errorf("mail: %w: made %s ago, good for %v", ErrTokenExpired, now.Sub(made).Round(time.Minute), RevokeTokenTTL)
	}
	return nums[0], nums[1], nil
}

// positive parses a positive int64 written canonically: decimal digits
// without sign or leading zero.
func positive(s string) (int64, bool) {
	if s == "" || len(s) > 19 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}
