package secrets

import (
	"fmt"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// WorkerCredentials is everything minting (or rotating) a worker's API key
// produces. APIKey goes to the operator once and is never stored; the other
// fields are what the core stores. String and GoString redact APIKey, so
// printing the struct by mistake does not leak it.
type WorkerCredentials struct {
	// APIKey is the raw key, shown once to the operator.
	APIKey string
	// KeyHash is HashAPIKey(APIKey), the lookup hash (workers.api_key_hash).
	KeyHash string
	// Kid is the key id carried in the worker's JWTs.
	Kid string
	// SealedEnvelopeKey is wsproto.EnvelopeKey(APIKey) encrypted with the
	// column cipher; open it with [Cipher.OpenEnvelopeKey].
	SealedEnvelopeKey string
}

// String implements fmt.Stringer without the raw API key.
func (w WorkerCredentials) String() string {
	return fmt.Sprintf("{APIKey:[redacted] KeyHash:%s Kid:%s SealedEnvelopeKey:%s}", w.KeyHash, w.Kid, w.SealedEnvelopeKey)
}

// GoString implements fmt.GoStringer without the raw API key.
func (w WorkerCredentials) GoString() string {
	return fmt.Sprintf("secrets.WorkerCredentials{APIKey:\"[redacted]\", KeyHash:%q, Kid:%q, SealedEnvelopeKey:%q}", w.KeyHash, w.Kid, w.SealedEnvelopeKey)
}

// NewWorkerCredentials mints a worker API key with its lookup hash, a fresh
// key id, and the worker's envelope key sealed with c.
func (c *Cipher) NewWorkerCredentials() (*WorkerCredentials, error) {
	key, err := GenerateAPIKey()
	if err != nil {
		return nil, fmt.Errorf("secrets: new worker credentials: %w", err)
	}
	kid, err := NewKeyID()
	if err != nil {
		return nil, fmt.Errorf("secrets: new worker credentials: %w", err)
	}
	sealed, err := c.sealEnvelopeKey(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: new worker credentials: %w", err)
	}
	return &WorkerCredentials{APIKey: key, KeyHash: HashAPIKey(key), Kid: kid, SealedEnvelopeKey: sealed}, nil
}

// sealEnvelopeKey derives the envelope key of a raw worker API key
// (wsproto.EnvelopeKey) and returns it encrypted with c, ready to store.
func (c *Cipher) sealEnvelopeKey(rawAPIKey string) (string, error) {
	key := wsproto.EnvelopeKey(rawAPIKey)
	if key == nil {
		return "", fmt.Errorf("secrets: seal envelope key: %w", ErrEmptySecret)
	}
	sealed, err := c.Encrypt(encodeB64(key))
	if err != nil {
		return "", fmt.Errorf("secrets: seal envelope key: %w", err)
	}
	return sealed, nil
}

// OpenEnvelopeKey decrypts a value made by [Cipher.NewWorkerCredentials]. Unlike
// [Cipher.Decrypt] it does not pass unencrypted values through: an envelope
// key is never stored in the clear, so such a value is an error wrapping
// [ErrDecrypt].
func (c *Cipher) OpenEnvelopeKey(sealed string) ([]byte, error) {
	if !IsEncrypted(sealed) {
		return nil, fmt.Errorf("secrets: open envelope key: %w: not sealed", ErrDecrypt)
	}
	enc, err := c.Decrypt(sealed)
	if err != nil {
		return nil, fmt.Errorf("secrets: open envelope key: %w", err)
	}
	key, err := decodeB64(enc)
	if err != nil || len(key) != wsproto.EnvelopeKeySize {
		return nil, fmt.Errorf("secrets: open envelope key: %w: bad key encoding", ErrDecrypt)
	}
	return key, nil
}
