// Package totp implements time-based one-time passwords (RFC 6238 over
// RFC 4226's HOTP) as authenticator apps use them: HMAC-SHA-1, 6 digits, a
// 30-second step, and one step of clock skew either way. It uses only the
// standard library.
//
// Codes are checked against a caller-kept "last used step" so that a code
// (its step) is accepted at most once: Verify returns the step it matched,
// which the caller stores atomically before trusting the code.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Parameters of the codes (the authenticator-app defaults).
const (
	// Digits is the length of a code.
	Digits = 6
	// Period is the length of a time step.
	Period = 30 * time.Second
	// Skew is how many steps before and after the current one a code may
	// come from (clock drift, the time it takes to type).
	Skew = 1
	// SecretSize is the size of a new secret in bytes (RFC 4226 §4
	// recommends 160 bits).
	SecretSize = 20
	// maxSecretSize bounds what DecodeSecret accepts.
	maxSecretSize = 128
)

// ErrBadSecret is wrapped by DecodeSecret's errors; they never quote the
// input.
var ErrBadSecret = errors.New("not a base32 TOTP secret")

// b32 is RFC 4648 base32 without padding, as otpauth URIs carry it.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns SecretSize random bytes.
func NewSecret() ([]byte, error) {
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("totp: new secret: %w", err)
	}
	return b, nil
}

// EncodeSecret returns the secret in upper-case unpadded base32, the form
// authenticator apps take.
func EncodeSecret(secret []byte) string { return b32.EncodeToString(secret) }

// DecodeSecret parses a base32 secret, ignoring case, spaces, dashes and
// trailing padding. It accepts 10 to 128 bytes.
func DecodeSecret(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-':
			return -1
		}
		return r
	}, strings.ToUpper(s))
	s = strings.TrimRight(s, "=")
	if len(s) > maxSecretSize*8/5+1 {
		return nil, fmt.Errorf("totp: %w: longer than %d bytes", ErrBadSecret, maxSecretSize)
	}
	b, err := b32.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("totp: %w: not base32", ErrBadSecret)
	}
	if len(b) < 10 || len(b) > maxSecretSize {
		return nil, fmt.Errorf("totp: %w: %d bytes, want 10..%d", ErrBadSecret, len(b), maxSecretSize)
	}
	return b, nil
}

// Step returns the time step t falls in.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// hotp is RFC 4226's HOTP with SHA-1 and the given number of digits.
func hotp(secret []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}

// CodeAt returns the code of a time step.
func CodeAt(secret []byte, step int64) string { return hotp(secret, uint64(step), Digits) }

// Code returns the code for time t.
func Code(secret []byte, t time.Time) string { return CodeAt(secret, Step(t)) }

// NormalizeCode returns a typed code without spaces, and whether it is
// Digits decimal digits.
func NormalizeCode(s string) (string, bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if len(s) != Digits {
		return "", false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	return s, true
}

// Verify checks code against the steps around t (Skew either way) that
// are later than lastStep, comparing in constant time, and returns the
// step that matched. The caller must record that step (only if it is still
// later than the stored one) before accepting the code.
func Verify(secret []byte, code string, t time.Time, lastStep int64) (step int64, ok bool) {
	code, valid := NormalizeCode(code)
	if !valid || len(secret) == 0 {
		return 0, false
	}
	now := Step(t)
	for s := now - Skew; s <= now+Skew; s++ {
		if s <= lastStep {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(CodeAt(secret, s)), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// URI returns the otpauth:// URI of a secret for QR codes
// (github.com/google/google-authenticator/wiki/Key-Uri-Format):
// otpauth://totp/Issuer:account?secret=…&issuer=Issuer&algorithm=SHA1&digits=6&period=30.
func URI(issuer, account string, secret []byte) string {
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	q := "secret=" + EncodeSecret(secret) + "&issuer=" + url.QueryEscape(issuer) +
		fmt.Sprintf("&algorithm=SHA1&digits=%d&period=%d", Digits, int(Period/time.Second))
	return "otpauth://totp/" + label + "?" + q
}
