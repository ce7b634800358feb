package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// TestJWTCannotSignEnvelopes proves the fix of the seed, whose JWT carried
// the API key's hash and used that same hash as the envelope HMAC key: here
// nothing in a JWT, and not the stored lookup hash either, lets its holder
// compute the envelope key or a valid envelope MAC.
func TestJWTCannotSignEnvelopes(t *testing.T) {
	cph := newTestCipher(t, testSecret)
	creds, err := cph.NewWorkerCredentials()
	if err != nil {
		t.Fatal(err)
	}
	K := creds.APIKey
	envKey := wsproto.EnvelopeKey(K)
	if len(envKey) != wsproto.EnvelopeKeySize {
		t.Fatalf("envelope key length %d", len(envKey))
	}

	// The core's sealed copy is the same key the worker derives.
	opened, err := cph.OpenEnvelopeKey(creds.SealedEnvelopeKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(opened, envKey) {
		t.Fatal("core's envelope key differs from the worker's")
	}

	j := newTestIssuer(t, testSecret, &clock{t0})
	tok, _, err := j.Sign(42, creds.Kid)
	if err != nil {
		t.Fatal(err)
	}
	segs := strings.Split(tok, ".")

	// The claims set is exactly {sub, kid, iat, exp, jti}.
	payload, err := decodeB64(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(claims)), []string{"exp", "iat", "jti", "kid", "sub"}; !slices.Equal(got, want) {
		t.Fatalf("claims = %v, want exactly %v", got, want)
	}

	// Everything a JWT holder (or a reader of the workers table) has:
	// the token, its segments (encoded and decoded), each claim value, the
	// lookup hash and the key id, and then sha256 (raw and hex) of each.
	candidates := map[string][]byte{
		"token":       []byte(tok),
		"lookup hash": []byte(creds.KeyHash),
		"kid":         []byte(creds.Kid),
		"sealed":      []byte(creds.SealedEnvelopeKey),
	}
	for i, s := range segs {
		candidates[fmt.Sprintf("segment %d", i)] = []byte(s)
		raw, err := decodeB64(s)
		if err != nil {
			t.Fatal(err)
		}
		candidates[fmt.Sprintf("segment %d decoded", i)] = raw
	}
	if raw, err := hex.DecodeString(creds.KeyHash); err == nil {
		candidates["lookup hash bytes"] = raw
	}
	for name, v := range claims {
		candidates["claim "+name+" json"] = []byte(v)
		var s string
		if json.Unmarshal(v, &s) == nil {
			candidates["claim "+name] = []byte(s)
			if raw, err := decodeB64(s); err == nil {
				candidates["claim "+name+" decoded"] = raw
			}
		}
	}
	for name, v := range maps.Clone(candidates) {
		sum := sha256.Sum256(v)
		candidates["sha256("+name+")"] = sum[:]
		candidates["sha256hex("+name+")"] = []byte(hex.EncodeToString(sum[:]))
	}

	msg := []byte(`{"type":"job_result","seq":1,"ts":1772366400,"payload":{}}`)
	signsEnvelope := func(key []byte) bool {
		return bytes.Equal(key, envKey) || wsproto.Verify(envKey, msg, wsproto.Sign(key, msg))
	}
	// Controls: the check does detect the real key, and the raw API key.
	if !signsEnvelope(envKey) || !signsEnvelope(wsproto.EnvelopeKey(K)) {
		t.Fatal("control failed: the check does not recognise the envelope key")
	}
	for name, c := range candidates {
		for how, key := range map[string][]byte{"as key": c, "EnvelopeKey(it)": wsproto.EnvelopeKey(string(c))} {
			if signsEnvelope(key) {
				t.Errorf("%s %s signs a valid envelope", name, how)
			}
		}
		if bytes.Contains(c, []byte(K)) || bytes.Contains(c, []byte(strings.TrimPrefix(K, APIKeyPrefix))) {
			t.Errorf("%s contains the raw API key", name)
		}
	}

	// The lookup hash stored in the clear is not the envelope key.
	if h := HashAPIKey(K); h != creds.KeyHash || bytes.Equal([]byte(h), envKey) || hex.EncodeToString(envKey) == h {
		t.Fatal("lookup hash is (or mismatches) the envelope key")
	}
	// And the JWT does not carry the lookup hash (the seed's key_hash claim).
	if bytes.Contains(payload, []byte(creds.KeyHash)) {
		t.Fatal("JWT carries the lookup hash")
	}
}

func TestWorkerCredentials(t *testing.T) {
	c := newTestCipher(t, testSecret)
	w, err := c.NewWorkerCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if !apiKeyRE.MatchString(w.APIKey) || w.KeyHash != HashAPIKey(w.APIKey) || w.Kid == "" || !IsEncrypted(w.SealedEnvelopeKey) {
		t.Fatalf("credentials malformed: %v", w)
	}
	if strings.Contains(w.SealedEnvelopeKey, hex.EncodeToString(wsproto.EnvelopeKey(w.APIKey))) ||
		strings.Contains(w.SealedEnvelopeKey, encodeB64(wsproto.EnvelopeKey(w.APIKey))) {
		t.Fatal("sealed value contains the envelope key")
	}
	w2, err := c.NewWorkerCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if w2.APIKey == w.APIKey || w2.Kid == w.Kid {
		t.Fatal("rotation reused the key or kid")
	}

	// Printing the struct never shows the raw key.
	for _, f := range []string{"%v", "%+v", "%s", "%#v"} {
		for _, v := range []any{w, *w} {
			if out := fmt.Sprintf(f, v); strings.Contains(out, w.APIKey) || strings.Contains(out, strings.TrimPrefix(w.APIKey, APIKeyPrefix)) {
				t.Fatalf("%s leaks the API key: %s", f, out)
			}
		}
	}

	// Opening needs the same cipher and a sealed value.
	other := newTestCipher(t, testSecret+"-other")
	if _, err := other.OpenEnvelopeKey(w.SealedEnvelopeKey); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("open with other cipher = %v, want ErrDecrypt", err)
	}
	plain := encodeB64(wsproto.EnvelopeKey(w.APIKey))
	for _, bad := range []string{"", plain, "v1:", mustEncrypt(t, c, "short"), mustEncrypt(t, c, "!!!!")} {
		if k, err := c.OpenEnvelopeKey(bad); !errors.Is(err, ErrDecrypt) || k != nil {
			t.Errorf("OpenEnvelopeKey(%.12q) = %x, %v; want ErrDecrypt", bad, k, err)
		}
	}
}

func mustEncrypt(t *testing.T, c *Cipher, s string) string {
	t.Helper()
	enc, err := c.Encrypt(s)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}
