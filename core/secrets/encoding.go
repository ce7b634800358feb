package secrets

import (
	"encoding/base64"
	"errors"
)

// b64 is the one text encoding of this package: base64url without padding.
// Decoding is strict (zero trailing bits) and, through decodeB64, rejects
// every byte outside the alphabet, including the CR/LF the standard decoder
// would skip, so each value has exactly one accepted spelling.
var b64 = base64.RawURLEncoding.Strict()

var errNotB64 = errors.New("not canonical base64url")

func encodeB64(b []byte) string { return b64.EncodeToString(b) }

func decodeB64(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, errNotB64
		}
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		// The decoder's error names an input offset only; still, keep
		// our errors free of anything derived from the input.
		return nil, errNotB64
	}
	return b, nil
}
