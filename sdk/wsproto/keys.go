package wsproto

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
)

const (
	// EnvelopePurpose is the HKDF info label of the envelope key. It is
	// distinct from every label the core derives from server.secret, and
	// versioned so a change of derivation gets a new label.
	EnvelopePurpose = "wisehosting-envelope-v1"

	// EnvelopeKeySize is the length in bytes of an envelope key.
	EnvelopeKeySize = 32

	// MACSize is the length in bytes of an envelope MAC (HMAC-SHA256).
	MACSize = sha256.Size
)

// EnvelopeKey derives the envelope HMAC key from a worker's raw API key:
// HKDF-SHA256 with the raw key as input keying material, no salt, and
// [EnvelopePurpose] as info; 32 bytes.
//
// It returns nil for an empty key, and in the one case the standard library
// refuses the derivation (FIPS 140-only mode with a key shorter than 112
// bits). A nil key never signs nor verifies anything, see [Sign] and [Verify].
func EnvelopeKey(rawAPIKey string) []byte {
	if rawAPIKey == "" {
		return nil
	}
	key, err := hkdf.Key(sha256.New, []byte(rawAPIKey), nil, EnvelopePurpose, EnvelopeKeySize)
	if err != nil {
		return nil
	}
	return key
}

// Sign returns HMAC-SHA256(key, msg). It returns nil for an empty key, so a
// missing key can never produce a MAC that anyone could recompute.
func Sign(key, msg []byte) []byte {
	if len(key) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// Verify reports whether mac is HMAC-SHA256(key, msg), comparing in constant
// time. It is false for an empty key and for a mac of the wrong length.
func Verify(key, msg, mac []byte) bool {
	if len(key) == 0 || len(mac) != MACSize {
		return false
	}
	return hmac.Equal(Sign(key, msg), mac)
}
