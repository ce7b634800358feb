package secrets

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is an adjustable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestIssuer(t testing.TB, secret string, c *clock) *JWTIssuer {
	t.Helper()
	j, err := NewJWTIssuer(secret, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

var tokenSentinels = []error{
	ErrTokenMalformed, ErrTokenTooLarge, ErrTokenAlgorithm, ErrTokenSignature,
	ErrTokenClaims, ErrTokenExpired, ErrTokenNotYetValid, ErrTokenKid,
}

// checkTokenErr asserts err wraps want and no other token sentinel, and that
// its text leaks nothing from the token.
func checkTokenErr(t *testing.T, err, want error, token string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %v", want)
	}
	for _, s := range tokenSentinels {
		if got := errors.Is(err, s); got != (s == want) {
			t.Fatalf("err = %v; errors.Is(%v) = %v", err, s, got)
		}
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 8 && strings.Contains(err.Error(), seg) {
			t.Fatalf("error %q contains a token segment", err)
		}
	}
}

// forge signs an arbitrary header and payload with j's real key, to test
// what Verify does with authentic but unexpected contents.
func forge(j *JWTIssuer, header, payload string) string {
	in := encodeB64([]byte(header)) + "." + encodeB64([]byte(payload))
	return in + "." + encodeB64(j.mac(in))
}

func TestJWTSignVerify(t *testing.T) {
	c := &clock{t0}
	j := newTestIssuer(t, testSecret, c)
	tok, exp, err := j.Sign(42, "kid-abc")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(t0.Add(JWTTTL)) {
		t.Fatalf("expires = %v, want %v", exp, t0.Add(JWTTTL))
	}
	segs := strings.Split(tok, ".")
	if len(segs) != 3 {
		t.Fatalf("token has %d segments", len(segs))
	}
	hdr, err := decodeB64(segs[0])
	if err != nil || string(hdr) != `{"alg":"HS256","typ":"JWT"}` {
		t.Fatalf("header = %s, %v", hdr, err)
	}
	if strings.ContainsAny(tok, "=+/ \n") {
		t.Fatal("token is not base64url-no-pad")
	}
	claims, err := j.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Sub != 42 || claims.Kid != "kid-abc" || claims.Iat != t0.Unix() || claims.Exp != t0.Add(JWTTTL).Unix() {
		t.Fatalf("claims = %+v", claims)
	}
	if jti, err := decodeB64(claims.Jti); err != nil || len(jti) < 12 {
		t.Fatalf("jti %q: %d bytes, %v; want >= 12 random bytes", claims.Jti, len(jti), err)
	}
	if err := claims.CheckKid("kid-abc"); err != nil {
		t.Fatalf("CheckKid(current) = %v", err)
	}
}

func TestJWTJtiUnique(t *testing.T) {
	j := newTestIssuer(t, testSecret, &clock{t0})
	seen := map[string]bool{}
	for range 500 {
		tok, _, err := j.Sign(1, "k")
		if err != nil {
			t.Fatal(err)
		}
		c, err := j.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.Jti] {
			t.Fatal("duplicate jti")
		}
		seen[c.Jti] = true
	}
}

func TestJWTClock(t *testing.T) {
	c := &clock{t0}
	j := newTestIssuer(t, testSecret, c)
	tok, _, err := j.Sign(7, "k")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		at   time.Time
		want error
	}{
		{"at issue", t0, nil},
		{"refresh time", t0.Add(JWTTTL - JWTRefreshSkew), nil},
		{"last second", t0.Add(JWTTTL - time.Second), nil},
		{"last instant", t0.Add(JWTTTL - time.Nanosecond), nil},
		{"at exp", t0.Add(JWTTTL), ErrTokenExpired},
		{"hour later", t0.Add(time.Hour), ErrTokenExpired},
		{"verifier 59s behind", t0.Add(-59 * time.Second), nil},
		{"verifier 60s behind", t0.Add(-JWTClockSkew), nil},
		{"verifier 61s behind", t0.Add(-61 * time.Second), ErrTokenNotYetValid},
		{"verifier a day behind", t0.Add(-24 * time.Hour), ErrTokenNotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = tt.at
			_, err := j.Verify(tok)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
				return
			}
			checkTokenErr(t, err, tt.want, tok)
		})
	}
}

func TestJWTRejects(t *testing.T) {
	c := &clock{t0}
	j := newTestIssuer(t, testSecret, c)
	other := newTestIssuer(t, testSecret+"-other", c)
	tok, _, err := j.Sign(42, "kid-abc")
	if err != nil {
		t.Fatal(err)
	}
	otherTok, _, err := other.Sign(42, "kid-abc")
	if err != nil {
		t.Fatal(err)
	}
	segs := strings.Split(tok, ".")
	h, p, s := segs[0], segs[1], segs[2]
	enc := func(s string) string { return encodeB64([]byte(s)) }
	goodClaims := func(extra string) string {
		return `{"sub":42,"kid":"k","jti":"abcdefghijklmnop","iat":` + strconv.FormatInt(t0.Unix(), 10) + `,"exp":` + strconv.FormatInt(t0.Add(JWTTTL).Unix(), 10) + extra + `}`
	}
	const hdr = `{"alg":"HS256","typ":"JWT"}`
	iat, exp := t0.Unix(), t0.Add(JWTTTL).Unix()
	claimsJSON := func(sub int64, kid, jti string, iat, exp int64) string {
		b, _ := json.Marshal(WorkerClaims{Sub: sub, Kid: kid, Jti: jti, Iat: iat, Exp: exp})
		return string(b)
	}
	flip := func(seg string, i int) string {
		b := []byte(seg)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	tests := []struct {
		name  string
		token string
		want  error
	}{
		// Shape and size.
		{"empty", "", ErrTokenMalformed},
		{"one segment", h, ErrTokenMalformed},
		{"two segments", h + "." + p, ErrTokenMalformed},
		{"four segments", tok + "." + s, ErrTokenMalformed},
		{"dots only", "..", ErrTokenMalformed},
		{"garbage", "not a token at all", ErrTokenMalformed},
		{"garbage 3 segments", "a.b.c", ErrTokenMalformed},
		{"binary", "\x00\xff.\x01.\x02", ErrTokenMalformed},
		{"raw api key", "whk_" + strings.Repeat("A", 43), ErrTokenMalformed},
		{"bearer prefix", "Bearer " + tok, ErrTokenMalformed},
		{"oversize", tok + strings.Repeat("A", JWTMaxLength), ErrTokenTooLarge},
		{"oversize by one", strings.Repeat("A", JWTMaxLength+1), ErrTokenTooLarge},

		// Header: only the exact HS256 header is accepted, whatever the MAC.
		{"alg none unsigned", enc(`{"alg":"none","typ":"JWT"}`) + "." + p + ".", ErrTokenAlgorithm},
		{"alg none with sig", enc(`{"alg":"none","typ":"JWT"}`) + "." + p + "." + s, ErrTokenAlgorithm},
		{"alg None", enc(`{"alg":"None","typ":"JWT"}`) + "." + p + ".", ErrTokenAlgorithm},
		{"alg NONE", enc(`{"alg":"NONE"}`) + "." + p + ".", ErrTokenAlgorithm},
		{"alg HS512", enc(`{"alg":"HS512","typ":"JWT"}`) + "." + p + "." + s, ErrTokenAlgorithm},
		{"alg hs256", enc(`{"alg":"hs256","typ":"JWT"}`) + "." + p + "." + s, ErrTokenAlgorithm},
		{"alg RS256", enc(`{"alg":"RS256","typ":"JWT"}`) + "." + p + "." + s, ErrTokenAlgorithm},
		{"alg empty", enc(`{"alg":"","typ":"JWT"}`) + "." + p + "." + s, ErrTokenAlgorithm},
		{"alg HS512 signed", forge(j, `{"alg":"HS512","typ":"JWT"}`, goodClaims("")), ErrTokenAlgorithm},
		{"no alg", forge(j, `{"typ":"JWT"}`, goodClaims("")), ErrTokenMalformed},
		{"header reordered, signed", forge(j, `{"typ":"JWT","alg":"HS256"}`, goodClaims("")), ErrTokenMalformed},
		{"header extra field, signed", forge(j, `{"alg":"HS256","typ":"JWT","kid":"x"}`, goodClaims("")), ErrTokenMalformed},
		{"header not json", enc("nope") + "." + p + "." + s, ErrTokenMalformed},
		{"header not base64", "!!!." + p + "." + s, ErrTokenMalformed},
		{"header padded", h + "=." + p + "." + s, ErrTokenMalformed},
		{"header tampered", flip(h, 3) + "." + p + "." + s, ErrTokenMalformed},

		// Signature.
		{"wrong secret", otherTok, ErrTokenSignature},
		{"payload tampered", h + "." + flip(p, 5) + "." + s, ErrTokenSignature},
		{"payload from other token", h + "." + strings.Split(otherTok, ".")[1] + "." + s, ErrTokenSignature},
		{"signature tampered", h + "." + p + "." + flip(s, 0), ErrTokenSignature},
		{"signature empty", h + "." + p + ".", ErrTokenSignature},
		{"signature truncated", h + "." + p + "." + s[:len(s)-3], ErrTokenSignature},
		{"signature bad length", h + "." + p + "." + s[:len(s)-2], ErrTokenMalformed},
		{"signature extended", h + "." + p + "." + s + "AAAA", ErrTokenSignature},
		{"signature padded", h + "." + p + "." + s + "=", ErrTokenMalformed},
		{"signature std alphabet", h + "." + p + "." + s[:len(s)-1] + "+", ErrTokenMalformed},
		{"signature with newline", h + "." + p + "." + s[:10] + "\n" + s[10:], ErrTokenMalformed},
		{"payload with newline", h + "." + p[:10] + "\n" + p[10:] + "." + s, ErrTokenSignature},

		// Authentic (signed with the real key) but invalid claims.
		{"sub zero", forge(j, hdr, claimsJSON(0, "k", "j", iat, exp)), ErrTokenClaims},
		{"sub negative", forge(j, hdr, claimsJSON(-1, "k", "j", iat, exp)), ErrTokenClaims},
		{"sub string", forge(j, hdr, strings.Replace(goodClaims(""), `"sub":42`, `"sub":"42"`, 1)), ErrTokenClaims},
		{"sub float", forge(j, hdr, strings.Replace(goodClaims(""), `"sub":42`, `"sub":42.5`, 1)), ErrTokenClaims},
		{"kid empty", forge(j, hdr, claimsJSON(1, "", "j", iat, exp)), ErrTokenClaims},
		{"jti empty", forge(j, hdr, claimsJSON(1, "k", "", iat, exp)), ErrTokenClaims},
		{"missing claims", forge(j, hdr, `{"sub":1}`), ErrTokenClaims},
		{"unknown claim", forge(j, hdr, goodClaims(`,"scope":"admin"`)), ErrTokenClaims},
		{"key_hash claim", forge(j, hdr, goodClaims(`,"key_hash":"00"`)), ErrTokenClaims},
		{"trailing data", forge(j, hdr, goodClaims("")+`{}`), ErrTokenClaims},
		{"not an object", forge(j, hdr, `[1,2,3]`), ErrTokenClaims},
		{"null", forge(j, hdr, `null`), ErrTokenClaims},
		{"not json", forge(j, hdr, `sub=1`), ErrTokenClaims},
		{"iat zero", forge(j, hdr, claimsJSON(1, "k", "j", 0, exp)), ErrTokenClaims},
		{"exp before iat", forge(j, hdr, claimsJSON(1, "k", "j", iat, iat-1)), ErrTokenClaims},
		{"exp equals iat", forge(j, hdr, claimsJSON(1, "k", "j", iat, iat)), ErrTokenClaims},
		{"lifetime too long", forge(j, hdr, claimsJSON(1, "k", "j", iat, iat+int64(JWTTTL/time.Second)+1)), ErrTokenClaims},
		{"iat far future", forge(j, hdr, claimsJSON(1, "k", "j", iat+3600, iat+3600+60)), ErrTokenNotYetValid},
		{"expired", forge(j, hdr, claimsJSON(1, "k", "j", iat-1000, iat-100)), ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := j.Verify(tt.token)
			if claims != nil {
				t.Fatalf("Verify returned claims %+v", claims)
			}
			checkTokenErr(t, err, tt.want, tt.token)
		})
	}
}

// No single-character change anywhere in a token verifies.
func TestJWTEverySubstitution(t *testing.T) {
	j := newTestIssuer(t, testSecret, &clock{t0})
	tok, _, err := j.Sign(42, "kid-abc")
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(tok) {
		for _, r := range []byte{'A', 'g', '0', '-', '_', '.', '='} {
			if tok[i] == r {
				continue
			}
			m := tok[:i] + string(r) + tok[i+1:]
			if c, err := j.Verify(m); err == nil {
				t.Fatalf("mutation at %d to %q verified: %+v", i, r, c)
			}
		}
	}
}

func TestCheckKid(t *testing.T) {
	c := &WorkerClaims{Sub: 1, Kid: "current"}
	tests := []struct {
		current string
		ok      bool
	}{
		{"current", true},
		{"rotated", false},
		{"curren", false},
		{"current ", false},
		{"", false},
	}
	for _, tt := range tests {
		err := c.CheckKid(tt.current)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrTokenKid)) {
			t.Errorf("CheckKid(%q) = %v", tt.current, err)
		}
	}
	if err := (&WorkerClaims{}).CheckKid(""); !errors.Is(err, ErrTokenKid) {
		t.Errorf("empty kid vs empty current = %v, want ErrTokenKid", err)
	}
}

func TestJWTSignArguments(t *testing.T) {
	j := newTestIssuer(t, testSecret, &clock{t0})
	tests := []struct {
		name string
		id   int64
		kid  string
	}{
		{"zero id", 0, "k"},
		{"negative id", -5, "k"},
		{"empty kid", 1, ""},
		{"long kid", 1, strings.Repeat("k", MaxKidLength+1)},
		{"invalid utf8 kid", 1, "\xff\xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, _, err := j.Sign(tt.id, tt.kid); err == nil || tok != "" {
				t.Fatalf("Sign = %q, %v; want error", tok, err)
			}
		})
	}
	// The longest accepted kid still gives a token Verify accepts.
	tok, _, err := j.Sign(1<<62, strings.Repeat("k", MaxKidLength))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Verify(tok); err != nil {
		t.Fatal(err)
	}
}

func TestNewJWTIssuer(t *testing.T) {
	if _, err := NewJWTIssuer("", nil); !errors.Is(err, ErrEmptySecret) {
		t.Fatalf("NewJWTIssuer(\"\") = %v, want ErrEmptySecret", err)
	}
	j, err := NewJWTIssuer(testSecret, nil) // real clock
	if err != nil {
		t.Fatal(err)
	}
	tok, exp, err := j.Sign(3, "k")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < JWTTTL-5*time.Second || d > JWTTTL {
		t.Fatalf("expires in %v, want about %v", d, JWTTTL)
	}
	if _, err := j.Verify(tok); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkJWTSign(b *testing.B) {
	j := newTestIssuer(b, testSecret, &clock{t0})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := j.Sign(42, "kid-abcdefghijklmnopqr"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJWTVerify(b *testing.B) {
	j := newTestIssuer(b, testSecret, &clock{t0})
	tok, _, err := j.Sign(42, "kid-abcdefghijklmnopqr")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJWTVerifyBadSignature(b *testing.B) {
	j := newTestIssuer(b, testSecret, &clock{t0})
	other := newTestIssuer(b, testSecret+"x", &clock{t0})
	tok, _, err := other.Sign(42, "kid-abcdefghijklmnopqr")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.Verify(tok); err == nil {
			b.Fatal("verified")
		}
	}
}
