package secrets

import (
	"math/bits"
	"regexp"
	"strings"
	"testing"
)

var apiKeyRE = regexp.MustCompile(`^whk_[A-Za-z0-9_-]{43}$`)

func TestGenerateAPIKeyFormat(t *testing.T) {
	for range 100 {
		k, err := GenerateAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if !apiKeyRE.MatchString(k) {
			t.Fatalf("key %q does not match %s", k, apiKeyRE)
		}
		raw, err := decodeB64(strings.TrimPrefix(k, APIKeyPrefix))
		if err != nil || len(raw) != 32 {
			t.Fatalf("key body decodes to %d bytes, %v; want 32", len(raw), err)
		}
		if strings.Contains(k, ".") {
			t.Fatal("key contains '.', it could be taken for a JWT")
		}
	}
}

// Uniqueness and a coarse bit-balance check: the keys come from crypto/rand,
// this only catches gross mistakes (a constant, a truncated buffer).
func TestGenerateAPIKeyEntropy(t *testing.T) {
	const n = 2000
	seen := make(map[string]bool, n)
	ones := 0
	for range n {
		k, err := GenerateAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if seen[k] {
			t.Fatal("duplicate API key")
		}
		seen[k] = true
		raw, _ := decodeB64(strings.TrimPrefix(k, APIKeyPrefix))
		for _, b := range raw {
			ones += bits.OnesCount8(b)
		}
	}
	total := n * 32 * 8
	if frac := float64(ones) / float64(total); frac < 0.49 || frac > 0.51 {
		t.Fatalf("fraction of one bits = %.4f, want about 0.5", frac)
	}
}

func TestHashAPIKey(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"whk_test-key-0000000000000000000000000000000000", "697e8a287133e3e96730c9011aafff3f63c86c4180ee9d64a86733a6757152d9"},
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	for _, tt := range tests {
		if got := HashAPIKey(tt.raw); got != tt.want {
			t.Errorf("HashAPIKey(%q) = %s, want %s", tt.raw, got, tt.want)
		}
	}
	k, _ := GenerateAPIKey()
	if h := HashAPIKey(k); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(h) || strings.Contains(h, k) {
		t.Fatalf("HashAPIKey = %q, want 64 lowercase hex", h)
	}
}

func TestNewKeyID(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)
	seen := map[string]bool{}
	for range 1000 {
		id, err := NewKeyID()
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(id) {
			t.Fatalf("key id %q does not match %s", id, re)
		}
		if raw, err := decodeB64(id); err != nil || len(raw) < 12 {
			t.Fatalf("key id decodes to %d bytes, want >= 12 (96 bits)", len(raw))
		}
		if seen[id] {
			t.Fatal("duplicate key id")
		}
		seen[id] = true
	}
}
