package wsproto

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// The vectors below pin the derivation: a change of hash, salt, info label or
// length changes them. They were cross-checked against an independent
// RFC 5869 implementation (Python hmac/hashlib).
func TestEnvelopeKeyVectors(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"api key", "whk_test-key-0000000000000000000000000000000000", "9d76fcb8985ea6c846195eb0c748d469c5580e75c32287045fa4480ecf58eebd"},
		{"all A", "whk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "4c11851f029cc1caca0db666d5a43809ec2a0d27b7b93d9f70d53adfb51c169a"},
		{"one byte", "a", "b9aad840a7cd6ca73f86870644c1d36249943d864a58656f2d3362305d2be21d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EnvelopeKey(tt.raw)
			if len(got) != EnvelopeKeySize {
				t.Fatalf("len = %d, want %d", len(got), EnvelopeKeySize)
			}
			if h := hex.EncodeToString(got); h != tt.want {
				t.Fatalf("EnvelopeKey = %s, want %s", h, tt.want)
			}
			if !bytes.Equal(got, EnvelopeKey(tt.raw)) {
				t.Fatal("EnvelopeKey is not deterministic")
			}
		})
	}
}

func TestEnvelopeKeyEmpty(t *testing.T) {
	if k := EnvelopeKey(""); k != nil {
		t.Fatalf("EnvelopeKey(\"\") = %x, want nil", k)
	}
}

func TestEnvelopeKeyDistinct(t *testing.T) {
	a := EnvelopeKey("whk_a")
	b := EnvelopeKey("whk_b")
	if bytes.Equal(a, b) {
		t.Fatal("different API keys gave the same envelope key")
	}
}

func TestSignVectors(t *testing.T) {
	key := EnvelopeKey("whk_test-key-0000000000000000000000000000000000")
	tests := []struct {
		name string
		msg  []byte
		want string
	}{
		{"heartbeat", []byte(`{"type":"heartbeat","seq":1}`), "49a20e2fa200dfb57927813547949a5ddffec7450a9ae25cc113b3ffe2243acd"},
		{"empty message", nil, "1cb9673c43d5c23dc6872eae979755b732a79af2cd9b6df684a4dee68af26f30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mac := Sign(key, tt.msg)
			if h := hex.EncodeToString(mac); h != tt.want {
				t.Fatalf("Sign = %s, want %s", h, tt.want)
			}
			if !Verify(key, tt.msg, mac) {
				t.Fatal("Verify rejected its own MAC")
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	key := EnvelopeKey("whk_test-key-0000000000000000000000000000000000")
	other := EnvelopeKey("whk_other")
	msg := []byte(`{"type":"job_status","seq":7}`)
	mac := Sign(key, msg)

	flipped := func(i int) []byte {
		m := bytes.Clone(mac)
		m[i] ^= 0x01
		return m
	}
	tests := []struct {
		name string
		key  []byte
		msg  []byte
		mac  []byte
	}{
		{"wrong key", other, msg, mac},
		{"nil key", nil, msg, mac},
		{"empty key", []byte{}, msg, mac},
		{"changed message", key, []byte(`{"type":"job_status","seq":8}`), mac},
		{"nil mac", key, msg, nil},
		{"short mac", key, msg, mac[:MACSize-1]},
		{"long mac", key, msg, append(bytes.Clone(mac), 0)},
		{"first byte flipped", key, msg, flipped(0)},
		{"last byte flipped", key, msg, flipped(MACSize - 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if Verify(tt.key, tt.msg, tt.mac) {
				t.Fatal("Verify accepted")
			}
		})
	}
}

func TestSignEmptyKey(t *testing.T) {
	if mac := Sign(nil, []byte("x")); mac != nil {
		t.Fatalf("Sign(nil) = %x, want nil", mac)
	}
	// A nil key derived from an empty API key must not verify a MAC made
	// with HMAC's zero-length key either.
	if Verify(EnvelopeKey(""), []byte("x"), Sign([]byte{0}, []byte("x"))) {
		t.Fatal("nil key verified a MAC")
	}
}

func BenchmarkSign(b *testing.B) {
	key := EnvelopeKey("whk_bench")
	msg := bytes.Repeat([]byte("x"), 512)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		Sign(key, msg)
	}
}

func BenchmarkVerify(b *testing.B) {
	key := EnvelopeKey("whk_bench")
	msg := bytes.Repeat([]byte("x"), 512)
	mac := Sign(key, msg)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if !Verify(key, msg, mac) {
			b.Fatal("verify failed")
		}
	}
}
