package secrets

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// Rotating server.secret keeps every stored value readable as long as the
// old secret is listed as previous; new values use the new secret only.
func TestCipherRotation(t *testing.T) {
	const secretA, secretB, secretC = "secret-A-0123456789", "secret-B-0123456789", "secret-C-0123456789"
	a := newTestCipher(t, secretA)
	encA := mustEncrypt(t, a, "value under A")

	tests := []struct {
		name     string
		current  string
		previous []string
		wantOK   bool // Decrypt(encA) succeeds
		reencr   bool // NeedsReencrypt(encA)
	}{
		{"same key", secretA, nil, true, false},
		{"same key, previous listed too", secretA, []string{secretB}, true, false},
		{"rotated, A previous", secretB, []string{secretA}, true, true},
		{"rotated twice, A second previous", secretC, []string{secretB, secretA}, true, true},
		{"rotated without A", secretB, nil, false, false},
		{"rotated, other previous", secretC, []string{secretB}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCipher(tt.current, tt.previous...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Decrypt(encA)
			switch {
			case tt.wantOK && (err != nil || got != "value under A"):
				t.Fatalf("Decrypt = %q, %v; want the plaintext", got, err)
			case !tt.wantOK && (!errors.Is(err, ErrDecrypt) || got != ""):
				t.Fatalf("Decrypt = %q, %v; want ErrDecrypt", got, err)
			}
			if r := c.NeedsReencrypt(encA); r != tt.reencr {
				t.Errorf("NeedsReencrypt = %v, want %v", r, tt.reencr)
			}

			// New values always use the current key: a cipher holding only
			// the current secret opens them, one holding only a previous
			// secret does not.
			enc := mustEncrypt(t, c, "new value")
			if c.NeedsReencrypt(enc) {
				t.Error("NeedsReencrypt is true for a value just encrypted")
			}
			if got, err := newTestCipher(t, tt.current).Decrypt(enc); err != nil || got != "new value" {
				t.Errorf("current-only cipher: Decrypt = %q, %v", got, err)
			}
			for _, p := range tt.previous {
				if p == tt.current {
					continue
				}
				if _, err := newTestCipher(t, p).Decrypt(enc); !errors.Is(err, ErrDecrypt) {
					t.Errorf("a new value opens with a previous secret: %v", err)
				}
			}
		})
	}
}

func TestNeedsReencrypt(t *testing.T) {
	rotated, err := NewCipher("secret-B-0123456789", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	for stored := range pinnedCiphertexts { // made under testSecret
		if !rotated.NeedsReencrypt(stored) {
			t.Errorf("NeedsReencrypt(%.20s…) = false after rotation", stored)
		}
		if newTestCipher(t, testSecret).NeedsReencrypt(stored) {
			t.Errorf("NeedsReencrypt(%.20s…) = true under its own key", stored)
		}
	}
	for _, s := range []string{"", "plain", "v1:", "v1:AAAA", "v1:!!", mustEncrypt(t, newTestCipher(t, "unrelated-secret-0123"), "x")} {
		if rotated.NeedsReencrypt(s) {
			t.Errorf("NeedsReencrypt(%q) = true; want false for values no key opens or passed through", s)
		}
	}
}

func TestNewCipherPreviousErrors(t *testing.T) {
	_, err := NewCipher("secret-B-0123456789", "secret-A-0123456789", "")
	if !errors.Is(err, ErrEmptySecret) || !strings.Contains(err.Error(), "previous secret 2") {
		t.Fatalf("NewCipher with an empty previous secret = %v; want ErrEmptySecret naming entry 2", err)
	}
	if strings.Contains(err.Error(), "secret-A") || strings.Contains(err.Error(), "secret-B") {
		t.Fatalf("error names a secret: %v", err)
	}
}

// Sealed envelope keys survive a rotation too, so workers keep working.
func TestOpenEnvelopeKeyAfterRotation(t *testing.T) {
	a := newTestCipher(t, testSecret)
	w, err := a.NewWorkerCredentials()
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := NewCipher("secret-B-0123456789", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	key, err := rotated.OpenEnvelopeKey(w.SealedEnvelopeKey)
	if err != nil || !bytes.Equal(key, wsproto.EnvelopeKey(w.APIKey)) {
		t.Fatalf("OpenEnvelopeKey after rotation = %x, %v", key, err)
	}
	if !rotated.NeedsReencrypt(w.SealedEnvelopeKey) {
		t.Error("a sealed envelope key under the previous secret should need re-encryption")
	}
	if _, err := newTestCipher(t, "secret-B-0123456789").OpenEnvelopeKey(w.SealedEnvelopeKey); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("OpenEnvelopeKey without the previous secret = %v; want ErrDecrypt", err)
	}
}
