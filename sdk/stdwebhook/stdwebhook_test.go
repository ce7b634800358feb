package stdwebhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test vector of the Standard Webhooks reference libraries (the Go and
// JavaScript test suites of github.com/standard-webhooks/standard-webhooks,
// "sign function works" / TestWebhookSign).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustSecret(t testing.TB, s string) Secret {
	t.Helper()
	k, err := ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// secretOf returns a whsec_ secret of n bytes all equal to b.
func secretOf(b byte, n int) string {
	return SecretPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, n))
}

func TestReferenceVector(t *testing.T) {
	ts := time.Unix(vectorTimestamp, 0)
	for _, s := range []string{vectorSecret, strings.TrimPrefix(vectorSecret, SecretPrefix)} {
		key := mustSecret(t, s)
		if got := Sign(vectorID, ts, []byte(vectorBody), key); got != vectorSignature {
			t.Errorf("Sign with %q = %q, want %q", s[:6], got, vectorSignature)
		}
	}
	key := mustSecret(t, vectorSecret)
	h := Headers(vectorID, ts, []byte(vectorBody), key)
	if got := h.Get(HeaderSignature); got != vectorSignature {
		t.Errorf("Headers: signature %q", got)
	}
	if got := h.Get(HeaderTimestamp); got != strconv.Itoa(vectorTimestamp) {
		t.Errorf("Headers: timestamp %q", got)
	}
	if got := h.Get(HeaderID); got != vectorID {
		t.Errorf("Headers: id %q", got)
	}
	if err := Verify(h, []byte(vectorBody), ts.Add(time.Minute), 0, key); err != nil {
		t.Errorf("Verify: %v", err)
	}
	// The vector's headers as a receiver gets them from a hand-built map
	// with the specification's lower-case names.
	raw := http.Header{
		"webhook-id":        {vectorID},
		"webhook-timestamp": {strconv.Itoa(vectorTimestamp)},
		"webhook-signature": {vectorSignature},
	}
	if err := Verify(raw, []byte(vectorBody), ts, 0, key); err != nil {
		t.Errorf("Verify with lower-case header keys: %v", err)
	}
}

func TestParseSecret(t *testing.T) {
	tests := []struct {
		name, in string
		wantLen  int
		wantErr  string
	}{
		{name: "reference", in: vectorSecret, wantLen: 24},
		{name: "without prefix", in: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", wantLen: 24},
		{name: "32 bytes padded", in: secretOf(7, 32), wantLen: 32},
		{name: "32 bytes unpadded", in: strings.TrimRight(secretOf(7, 32), "="), wantLen: 32},
		{name: "64 bytes", in: secretOf(1, 64), wantLen: 64},
		{name: "surrounding white space", in: "  " + vectorSecret + "\n", wantLen: 24},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "prefix only", in: "whsec_", wantErr: "empty"},
		{name: "23 bytes", in: secretOf(9, 23), wantErr: "23 bytes once decoded, want 24 to 64"},
		{name: "65 bytes", in: secretOf(9, 65), wantErr: "65 bytes once decoded"},
		{name: "not base64", in: "whsec_this is not base64!!!!!!!!!!!!!", wantErr: "white space"},
		{name: "bad character", in: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa$w", wantErr: "standard base64"},
		{name: "url alphabet", in: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_", wantErr: "standard base64"},
		{name: "inner newline", in: "whsec_MfKQ9r8GKYqrTwjU\nPD8ILPZIo2LaLaSw", wantErr: "white space"},
		{name: "padding where a character was", in: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS=", wantErr: "23 bytes"},
		{name: "bad padding", in: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=", wantErr: "standard base64"},
		{name: "other scheme prefix", in: "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", wantErr: "standard base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseSecret(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidSecret) {
					t.Fatalf("err = %v, want ErrInvalidSecret with %q", err, tt.wantErr)
				}
				// The error never repeats the secret or a part of it.
				body := strings.TrimPrefix(strings.TrimSpace(tt.in), SecretPrefix)
				for i := 0; i+8 <= len(body); i++ {
					if strings.Contains(err.Error(), body[i:i+8]) {
						t.Fatalf("error %q contains part of the secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(k) != tt.wantLen {
				t.Errorf("len = %d, want %d", len(k), tt.wantLen)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two new secrets are equal")
	}
	if !strings.HasPrefix(a, SecretPrefix) {
		t.Fatalf("%q lacks the prefix", a)
	}
	k := mustSecret(t, a)
	if len(k) != 32 {
		t.Fatalf("new secret has %d bytes", len(k))
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	k := mustSecret(t, vectorSecret)
	raw := string(k)
	enc := strings.TrimPrefix(vectorSecret, SecretPrefix)
	js, err := json.Marshal(struct{ K Secret }{k})
	if err != nil {
		t.Fatal(err)
	}
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%v", []Secret{k}), fmt.Sprintf("%+v", struct{ K Secret }{k}), string(js),
	}
	for _, out := range outs {
		if strings.Contains(out, raw) || strings.Contains(out, enc) || strings.Contains(out, fmt.Sprintf("%x", []byte(k))) ||
			strings.Contains(out, fmt.Sprint([]byte(k))) {
			t.Errorf("formatted secret reveals the key: %q", out)
		}
		if !strings.Contains(out, "redacted") {
			t.Errorf("formatted secret %q does not say redacted", out)
		}
	}
}

func TestSignRotation(t *testing.T) {
	cur, prev := mustSecret(t, secretOf(1, 32)), mustSecret(t, secretOf(2, 24))
	ts := time.Unix(1700000000, 0)
	body := []byte(`{"type":"app.cpu"}`)
	sig := Sign("ev-1", ts, body, cur, prev)
	parts := strings.Split(sig, " ")
	if len(parts) != 2 || parts[0] != Sign("ev-1", ts, body, cur) || parts[1] != Sign("ev-1", ts, body, prev) {
		t.Fatalf("Sign with two secrets = %q", sig)
	}
	for _, p := range parts {
		if !strings.HasPrefix(p, "v1,") || len(p) != 3+44 {
			t.Errorf("signature %q is not v1,<44 base64 chars>", p)
		}
	}
	if Sign("ev-1", ts, body) != "" {
		t.Error("Sign without secrets is not empty")
	}
	h := Headers("ev-1", ts, body)
	if _, ok := h[http.CanonicalHeaderKey(HeaderSignature)]; ok {
		t.Error("Headers without secrets sets webhook-signature")
	}
	// A receiver knowing either secret (or both) accepts.
	h = Headers("ev-1", ts, body, cur, prev)
	for _, keys := range [][]Secret{{cur}, {prev}, {prev, cur}} {
		if err := Verify(h, body, ts, 0, keys...); err != nil {
			t.Errorf("Verify with %d keys: %v", len(keys), err)
		}
	}
	if err := Verify(h, body, ts, 0, mustSecret(t, secretOf(3, 24))); !errors.Is(err, ErrNoMatchingSignature) {
		t.Errorf("Verify with an unknown key: %v", err)
	}
}

func TestVerify(t *testing.T) {
	key := mustSecret(t, secretOf(5, 32))
	other := mustSecret(t, secretOf(6, 32))
	now := time.Unix(1700000000, 500_000_000)
	body := []byte(`{"id":"ev-1","type":"deployment.failed"}`)
	good := func() http.Header { return Headers("ev-1", now, body, key) }
	tests := []struct {
		name    string
		h       func() http.Header
		body    []byte
		now     time.Time
		tol     time.Duration
		keys    []Secret
		wantErr error
	}{
		{name: "valid", h: good},
		{name: "valid, 5 minutes old", h: good, now: now.Add(5 * time.Minute)},
		{name: "valid, 5 minutes early", h: good, now: now.Add(-5 * time.Minute)},
		{name: "too old", h: good, now: now.Add(5*time.Minute + time.Second), wantErr: ErrTimestampTooOld},
		{name: "too new", h: good, now: now.Add(-5*time.Minute - time.Second), wantErr: ErrTimestampTooNew},
		{name: "custom tolerance old", h: good, now: now.Add(31 * time.Second), tol: 30 * time.Second, wantErr: ErrTimestampTooOld},
		{name: "custom tolerance ok", h: good, now: now.Add(30 * time.Second), tol: 30 * time.Second},
		{name: "clock before 1970", h: good, now: time.Unix(-100, 0), wantErr: ErrTimestampTooNew},
		{name: "year 1 clock", h: good, now: time.Time{}.Add(time.Nanosecond), wantErr: ErrTimestampTooNew},
		{name: "no secrets", h: good, keys: []Secret{}, wantErr: ErrNoSecret},
		{name: "only empty secrets", h: func() http.Header {
			h := good()
			h.Set(HeaderSignature, "v1,"+emptyKeySig("ev-1", now, body))
			return h
		}, keys: []Secret{nil, {}}, wantErr: ErrNoSecret},
		{name: "empty secret among real ones", h: func() http.Header {
			h := good()
			h.Set(HeaderSignature, "v1,"+emptyKeySig("ev-1", now, body))
			return h
		}, keys: []Secret{nil, key}, wantErr: ErrNoMatchingSignature},
		{name: "wrong secret", h: good, keys: []Secret{other}, wantErr: ErrNoMatchingSignature},
		{name: "one of two secrets", h: good, keys: []Secret{other, key}},
		{name: "tampered body", h: good, body: []byte(`{"id":"ev-1","type":"deployment.failed" }`), wantErr: ErrNoMatchingSignature},
		{name: "empty body", h: good, body: []byte{}, wantErr: ErrNoMatchingSignature},
		{name: "tampered id", h: func() http.Header { h := good(); h.Set(HeaderID, "ev-2"); return h }, wantErr: ErrNoMatchingSignature},
		{name: "tampered timestamp", h: func() http.Header {
			h := good()
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
			return h
		}, wantErr: ErrNoMatchingSignature},
		{name: "id and body shifted across the separator", h: func() http.Header {
			h := Headers("ev", now, []byte("1.x"), key)
			h.Set(HeaderID, "ev.1")
			return h
		}, body: []byte("x"), wantErr: ErrNoMatchingSignature},
		{name: "missing id", h: func() http.Header { h := good(); h.Del(HeaderID); return h }, wantErr: ErrMissingHeader},
		{name: "empty id", h: func() http.Header { h := good(); h.Set(HeaderID, ""); return h }, wantErr: ErrMissingHeader},
		{name: "missing timestamp", h: func() http.Header { h := good(); h.Del(HeaderTimestamp); return h }, wantErr: ErrMissingHeader},
		{name: "missing signature", h: func() http.Header { h := good(); h.Del(HeaderSignature); return h }, wantErr: ErrMissingHeader},
		{name: "blank signature", h: func() http.Header { h := good(); h.Set(HeaderSignature, "   "); return h }, wantErr: ErrMissingHeader},
		{name: "two different ids", h: func() http.Header { h := good(); h.Add(HeaderID, "ev-2"); return h }, wantErr: ErrInvalidHeader},
		{name: "the same id twice", h: func() http.Header { h := good(); h.Add(HeaderID, "ev-1"); return h }},
		{name: "two different timestamps", h: func() http.Header { h := good(); h.Add(HeaderTimestamp, "1"); return h }, wantErr: ErrInvalidHeader},
		{name: "timestamp not a number", h: func() http.Header { h := good(); h.Set(HeaderTimestamp, "hello"); return h }, wantErr: ErrInvalidTimestamp},
		{name: "timestamp with sign", h: func() http.Header {
			h := good()
			h.Set(HeaderTimestamp, "+"+h.Get(HeaderTimestamp))
			return h
		}, wantErr: ErrInvalidTimestamp},
		{name: "timestamp with leading zero", h: func() http.Header {
			h := good()
			h.Set(HeaderTimestamp, "0"+h.Get(HeaderTimestamp))
			return h
		}, wantErr: ErrInvalidTimestamp},
		{name: "negative timestamp", h: func() http.Header { h := good(); h.Set(HeaderTimestamp, "-1"); return h }, wantErr: ErrInvalidTimestamp},
		{name: "fractional timestamp", h: func() http.Header {
			h := good()
			h.Set(HeaderTimestamp, h.Get(HeaderTimestamp)+".5")
			return h
		}, wantErr: ErrInvalidTimestamp},
		{name: "huge timestamp", h: func() http.Header { h := good(); h.Set(HeaderTimestamp, "9223372036854775807"); return h }, wantErr: ErrTimestampTooNew},
		{name: "overflowing timestamp", h: func() http.Header { h := good(); h.Set(HeaderTimestamp, "99999999999999999999"); return h }, wantErr: ErrInvalidTimestamp},
		{name: "zero timestamp", h: func() http.Header { h := good(); h.Set(HeaderTimestamp, "0"); return h }, wantErr: ErrTimestampTooOld},
		{name: "other schemes and junk before the match", h: func() http.Header {
			h := good()
			h.Set(HeaderSignature, "v1a,AAAA v2,"+strings.TrimPrefix(h.Get(HeaderSignature), "v1,")+" junk v1, v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+h.Get(HeaderSignature))
			return h
		}},
		{name: "match only under another scheme", h: func() http.Header {
			h := good()
			h.Set(HeaderSignature, "v1a,"+strings.TrimPrefix(h.Get(HeaderSignature), "v1,"))
			return h
		}, wantErr: ErrNoMatchingSignature},
		{name: "signatures in separate header lines", h: func() http.Header {
			h := good()
			sig := h.Get(HeaderSignature)
			h.Set(HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")
			h.Add(HeaderSignature, sig)
			return h
		}},
		{name: "truncated signature", h: func() http.Header { h := good(); h.Set(HeaderSignature, h.Get(HeaderSignature)[:20]); return h }, wantErr: ErrNoMatchingSignature},
		{name: "signature with trailing data", h: func() http.Header { h := good(); h.Set(HeaderSignature, h.Get(HeaderSignature)+"x"); return h }, wantErr: ErrNoMatchingSignature},
		{name: "bare base64 signature", h: func() http.Header {
			h := good()
			h.Set(HeaderSignature, strings.TrimPrefix(h.Get(HeaderSignature), "v1,"))
			return h
		}, wantErr: ErrNoMatchingSignature},
		{name: "upper-case scheme", h: func() http.Header { h := good(); h.Set(HeaderSignature, "V1,"+h.Get(HeaderSignature)[3:]); return h }, wantErr: ErrNoMatchingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := body
			if tt.body != nil {
				b = tt.body
			}
			n := now
			if !tt.now.IsZero() {
				n = tt.now
			}
			keys := []Secret{key}
			if tt.keys != nil {
				keys = tt.keys
			}
			err := Verify(tt.h(), b, n, tt.tol, keys...)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// emptyKeySig is the signature anyone can make: HMAC under an empty key.
func emptyKeySig(id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, nil)
	fmt.Fprintf(m, "%s.%d.%s", id, ts.Unix(), body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestSignSkipsEmptySecrets(t *testing.T) {
	key := mustSecret(t, vectorSecret)
	ts := time.Unix(vectorTimestamp, 0)
	if got := Sign(vectorID, ts, []byte(vectorBody), nil, key, Secret{}); got != vectorSignature {
		t.Errorf("Sign = %q", got)
	}
	if got := Sign(vectorID, ts, []byte(vectorBody), nil); got != "" {
		t.Errorf("Sign with an empty secret = %q", got)
	}
}

func TestDistinctErrors(t *testing.T) {
	all := []error{ErrInvalidSecret, ErrNoSecret, ErrMissingHeader, ErrInvalidHeader, ErrInvalidTimestamp,
		ErrTimestampTooOld, ErrTimestampTooNew, ErrNoMatchingSignature}
	for i, a := range all {
		for j, b := range all {
			if i != j && (errors.Is(a, b) || a.Error() == b.Error()) {
				t.Errorf("%v and %v are not distinct", a, b)
			}
		}
	}
}

// FuzzVerify feeds arbitrary headers and bodies to Verify, which must never
// panic; and checks that what Sign makes verifies, and that changing any
// single byte of the body, or the id or timestamp, makes it fail.
func FuzzVerify(f *testing.F) {
	f.Add(vectorID, int64(vectorTimestamp), []byte(vectorBody), uint16(3), byte(1), vectorSignature, "1614265330", vectorID)
	f.Add("ev-1", int64(1700000000), []byte(`{"type":"app.cpu","data":{}}`), uint16(0), byte(0x80), "v1, v1a,x", "+1", "")
	f.Add("a.b", int64(0), []byte{}, uint16(9), byte(0), "v1,"+strings.Repeat("A", 44), "0001", "a")
	f.Add("", int64(-1), []byte("x"), uint16(0), byte(2), "", "", "\x00")
	secrets := []Secret{mustSecret(f, secretOf(0x42, 32)), mustSecret(f, vectorSecret)}
	f.Fuzz(func(t *testing.T, id string, sec int64, body []byte, pos uint16, flip byte, rawSig, rawStamp, rawID string) {
		// Arbitrary headers: any outcome but a panic; a match is only
		// possible with a real signature.
		h := http.Header{}
		h.Set(HeaderID, rawID)
		h.Set(HeaderTimestamp, rawStamp)
		h.Set(HeaderSignature, rawSig)
		now := time.Unix(sec, 0)
		_ = Verify(h, body, now, 0, secrets...)
		_ = Verify(h, body, now, time.Nanosecond, secrets[0])

		// What Sign makes verifies (for timestamps from 1970 to well past
		// the year 30000).
		if id == "" {
			return
		}
		sec &= 1<<40 - 1
		ts := time.Unix(sec, 0)
		h = Headers(id, ts, body, secrets...)
		for _, k := range secrets {
			if err := Verify(h, body, ts.Add(time.Minute), 0, k); err != nil {
				t.Fatalf("a signed webhook does not verify: %v (id %q, ts %d)", err, id, sec)
			}
		}
		// One byte of the body changed: no longer.
		if flip != 0 && len(body) > 0 {
			mod := bytes.Clone(body)
			mod[int(pos)%len(mod)] ^= flip
			if err := Verify(h, mod, ts, 0, secrets...); !errors.Is(err, ErrNoMatchingSignature) {
				t.Fatalf("a body with one byte changed: %v", err)
			}
		}
		// A body one byte longer or shorter: no longer.
		if err := Verify(h, append(bytes.Clone(body), flip), ts, 0, secrets...); !errors.Is(err, ErrNoMatchingSignature) {
			t.Fatalf("a body with a byte appended: %v", err)
		}
		if len(body) > 0 {
			if err := Verify(h, body[:len(body)-1], ts, 0, secrets...); !errors.Is(err, ErrNoMatchingSignature) {
				t.Fatalf("a body with its last byte removed: %v", err)
			}
		}
		// Another id or timestamp: no longer.
		if rawID != "" && rawID != id {
			h2 := h.Clone()
			h2.Set(HeaderID, rawID)
			if err := Verify(h2, body, ts, 0, secrets...); err == nil {
				t.Fatalf("id %q verifies with the signature of id %q", rawID, id)
			}
		}
		h2 := h.Clone()
		h2.Set(HeaderTimestamp, strconv.FormatInt(sec+1, 10))
		if err := Verify(h2, body, ts, 0, secrets...); !errors.Is(err, ErrNoMatchingSignature) {
			t.Fatalf("timestamp+1: %v", err)
		}
	})
}
