package secrets

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

const testSecret = "test-server-secret"

// Pinned derivations, cross-checked against an independent RFC 5869
// implementation (Python hmac/hashlib). A change of hash, salt or label
// changes them, and with them every key stored under the old derivation.
func TestDeriveKeyVectors(t *testing.T) {
	tests := []struct {
		purpose string
		want    string
	}{
		{PurposeAES, "67edb76e840c194bb3e55f57fc8235ab971119aa0cac007f0294a3783f9c944f"},
		{PurposeWorkerJWT, "29c181f5328f95cc20e8fac0ef15886a2c15b67e42d68dd2d7094ce9312822e2"},
	}
	for _, tt := range tests {
		t.Run(tt.purpose, func(t *testing.T) {
			got, err := DeriveKey([]byte(testSecret), tt.purpose, KeySize)
			if err != nil {
				t.Fatal(err)
			}
			if h := hex.EncodeToString(got); h != tt.want {
				t.Fatalf("DeriveKey = %s, want %s", h, tt.want)
			}
		})
	}
}

func TestDeriveKeyDistinct(t *testing.T) {
	purposes := []string{PurposeAES, PurposeWorkerJWT, PurposeOAuthState, PurposeRevokeToken, wsproto.EnvelopePurpose}
	secrets := []string{testSecret, testSecret + "x", "another-secret"}
	seen := map[string]string{}
	for _, s := range secrets {
		for _, p := range purposes {
			k, err := DeriveKey([]byte(s), p, KeySize)
			if err != nil {
				t.Fatal(err)
			}
			again, err := DeriveKey([]byte(s), p, KeySize)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k, again) {
				t.Fatalf("DeriveKey(%q, %q) not deterministic", s, p)
			}
			if prev, dup := seen[string(k)]; dup {
				t.Fatalf("DeriveKey(%q, %q) collides with %s", s, p, prev)
			}
			seen[string(k)] = s + "/" + p
		}
	}
}

func TestDeriveKeyLengths(t *testing.T) {
	for _, n := range []int{1, 16, 32, 64, 255 * 32} {
		k, err := DeriveKey([]byte(testSecret), PurposeAES, n)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if len(k) != n {
			t.Fatalf("n=%d: got %d bytes", n, len(k))
		}
	}
	// A shorter output is a prefix of a longer one (HKDF-Expand); the
	// purpose label, not the length, is what separates uses.
	k16, _ := DeriveKey([]byte(testSecret), PurposeAES, 16)
	k32, _ := DeriveKey([]byte(testSecret), PurposeAES, 32)
	if !bytes.Equal(k16, k32[:16]) {
		t.Fatal("HKDF prefix property does not hold")
	}
}

func TestDeriveKeyErrors(t *testing.T) {
	tests := []struct {
		name    string
		secret  []byte
		purpose string
		n       int
		is      error
	}{
		{"nil secret", nil, PurposeAES, 32, ErrEmptySecret},
		{"empty secret", []byte{}, PurposeAES, 32, ErrEmptySecret},
		{"empty purpose", []byte(testSecret), "", 32, nil},
		{"zero length", []byte(testSecret), PurposeAES, 0, nil},
		{"negative length", []byte(testSecret), PurposeAES, -1, nil},
		{"too long", []byte(testSecret), PurposeAES, 255*32 + 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := DeriveKey(tt.secret, tt.purpose, tt.n)
			if err == nil || k != nil {
				t.Fatalf("DeriveKey = %x, %v; want error", k, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
		})
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"", "a", false},
		{HashAPIKey("x"), HashAPIKey("x"), true},
		{HashAPIKey("x"), HashAPIKey("y"), false},
	}
	for _, tt := range tests {
		if got := Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
