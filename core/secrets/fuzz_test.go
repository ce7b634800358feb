package secrets

import (
	"strings"
	"testing"
	"time"
)

// FuzzVerifyJWT: arbitrary strings never panic, and nothing verifies except
// the exact tokens Sign produced (the seeds). Because every segment must be canonical,
// a verified string that is not byte-identical to a signed one would be a
// forgery or a malleability bug.
func FuzzVerifyJWT(f *testing.F) {
	c := &clock{t0}
	j, err := NewJWTIssuer(testSecret, c.now)
	if err != nil {
		f.Fatal(err)
	}
	signed := map[string]bool{}
	for i, kid := range []string{"k", "kid-abcdefghijklmnopqr", strings.Repeat("z", MaxKidLength)} {
		// Sign's own path with a fixed jti, so that every fuzzing
		// process builds the same set.
		tok, _, err := j.sign(int64(i+1), kid, encodeB64([]byte{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}))
		if err != nil {
			f.Fatal(err)
		}
		signed[tok] = true
		f.Add(tok)
		segs := strings.Split(tok, ".")
		f.Add(segs[0] + "." + segs[1] + ".")
		f.Add(encodeB64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + segs[1] + ".")
		f.Add(encodeB64([]byte(`{"alg":"HS512","typ":"JWT"}`)) + "." + segs[1] + "." + segs[2])
		f.Add(tok + "=")
		f.Add(segs[0] + "." + segs[1] + "." + segs[2][:len(segs[2])-1] + "B")
	}
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Add("whk_AAAA")

	f.Fuzz(func(t *testing.T, token string) {
		for _, at := range []time.Duration{0, JWTTTL / 2} {
			// Verify runs on the fuzzer's goroutine only; the clock
			// is not shared with other goroutines.
			c.t = t0.Add(at)
			claims, err := j.Verify(token)
			if err == nil && !signed[token] {
				t.Fatalf("unsigned token verified: %q -> %+v", token, claims)
			}
			if err != nil && claims != nil {
				t.Fatal("claims returned with an error")
			}
		}
	})
}

// FuzzDecrypt: arbitrary stored values never panic; a v1 value decrypts only
// if Encrypt produced it; anything else passes through unchanged; and any
// input round-trips through Encrypt and Decrypt.
func FuzzDecrypt(f *testing.F) {
	ciph, err := NewCipher(testSecret)
	if err != nil {
		f.Fatal(err)
	}
	// rotated has moved on from testSecret, which it keeps as previous.
	rotated, err := NewCipher(testSecret+"-rotated", "unrelated-secret-0123", testSecret)
	if err != nil {
		f.Fatal(err)
	}
	// Encrypt's nonces are random, so the seeds are the pinned values
	// Encrypt produced once: every fuzzing process knows the same set.
	for enc := range pinnedCiphertexts {
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
		f.Add(enc + "A")
	}
	f.Add("")
	f.Add("v1:")
	f.Add("v1:AAAA")
	f.Add("plain")
	f.Add("v1:\n\r==")

	f.Fuzz(func(t *testing.T, stored string) {
		got, err := ciph.Decrypt(stored)
		switch {
		case !IsEncrypted(stored):
			if err != nil || got != stored {
				t.Fatalf("unprefixed value not passed through: %q -> %q, %v", stored, got, err)
			}
		case err == nil:
			want, ok := pinnedCiphertexts[stored]
			if !ok || got != want {
				t.Fatalf("value not produced by Encrypt decrypted: %q -> %q", stored, got)
			}
		case got != "":
			t.Fatal("plaintext returned with an error")
		}

		// The rotated keyring opens exactly what the old key opens, and
		// flags for re-encryption exactly the values only the old key opens.
		rgot, rerr := rotated.Decrypt(stored)
		if rgot != got || (rerr == nil) != (err == nil) {
			t.Fatalf("rotated Decrypt(%q) = %q, %v; the old key gives %q, %v", stored, rgot, rerr, got, err)
		}
		if want := IsEncrypted(stored) && err == nil; rotated.NeedsReencrypt(stored) != want {
			t.Fatalf("rotated NeedsReencrypt(%q) = %v, want %v", stored, !want, want)
		}

		enc, err := ciph.Encrypt(stored)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ciph.Decrypt(enc)
		if err != nil || back != stored {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}
