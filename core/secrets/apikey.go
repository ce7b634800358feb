package secrets

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

const (
	// APIKeyPrefix starts every worker API key. It makes keys recognisable
	// to secret scanners and lets a reader tell a raw key from a JWT.
	APIKeyPrefix = "whk_"

	// apiKeyBytes is the entropy of an API key: 256 bits.
	apiKeyBytes = 32

	// keyIDBytes is the entropy of a key id: 128 bits.
	keyIDBytes = 16
)

// GenerateAPIKey returns a new worker API key: [APIKeyPrefix] followed by 32
// random bytes in base64url without padding (47 characters in all). It is
// shown to the operator once; the core keeps only [HashAPIKey] of it.
func GenerateAPIKey() (string, error) {
	b, err := randomBytes(apiKeyBytes)
	if err != nil {
		return "", fmt.Errorf("secrets: generate api key: %w", err)
	}
	return APIKeyPrefix + encodeB64(b), nil
}

// HashAPIKey returns the lookup hash of a raw API key: lowercase hex of its
// SHA-256. The core stores and indexes this (workers.api_key_hash); compare
// hashes with [Equal]. The hash is not a signing key of any kind.
func HashAPIKey(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// NewKeyID returns a new random key id (128 bits, base64url without padding,
// 22 characters). A key id is minted with each API key and carried in the
// worker's JWTs as kid; it is independent of the key, so it reveals nothing
// about it, and it changes whenever the key is rotated.
func NewKeyID() (string, error) {
	b, err := randomBytes(keyIDBytes)
	if err != nil {
		return "", fmt.Errorf("secrets: new key id: %w", err)
	}
	return encodeB64(b), nil
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("read random: %w", err)
	}
	return b, nil
}
