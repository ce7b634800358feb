package mail

import (
	"bytes"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	testSecret  = bytes.Repeat([]byte{0x42}, 32)
	otherSecret = bytes.Repeat([]byte{0x43}, 32)
	signedAt    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func testMailer(t testing.TB, secret []byte) *Mailer {
	t.Helper()
	m, err := New(nil, secret)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRevokeTokenRoundTrip(t *testing.T) {
	m := testMailer(t, testSecret)
	token := m.SignRevokeToken(7, 4242, signedAt)
	if !strings.HasPrefix(token, "7:4242:"+strconv.FormatInt(signedAt.Unix(), 10)+":") {
		t.Fatalf("token %q", token)
	}
	if url.QueryEscape(token) != strings.ReplaceAll(token, ":", "%3A") {
		t.Fatalf("token %q has characters that need escaping beyond ':'", token)
	}
	for _, now := range []time.Time{signedAt, signedAt.Add(RevokeTokenTTL), signedAt.Add(-RevokeTokenSkew)} {
		u, s, err := VerifyRevokeToken(token, testSecret, now)
		if err != nil || u != 7 || s != 4242 {
			t.Fatalf("at %v: %d, %d, %v", now, u, s, err)
		}
	}
	if m.SignRevokeToken(7, 4242, signedAt) != token {
		t.Fatal("signing is not deterministic")
	}
	if m.SignRevokeToken(7, 4243, signedAt) == token || m.SignRevokeToken(8, 4242, signedAt) == token {
		t.Fatal("different sessions share a token")
	}
}

func TestVerifyRevokeTokenRefusals(t *testing.T) {
	m := testMailer(t, testSecret)
	good := m.SignRevokeToken(7, 4242, signedAt)
	parts := strings.Split(good, ":")
	sig := parts[3]
	forged := func(user, session, ts string) string {
		return user + ":" + session + ":" + ts + ":" + sign(testSecret, user+":"+session+":"+ts)
	}
	ts := strconv.FormatInt(signedAt.Unix(), 10)
	flip := []byte(sig) // another valid first character
	if flip[0] == 'A' {
		flip[0] = 'B'
	} else {
		flip[0] = 'A'
	}
	tests := []struct {
		name   string
		token  string
		secret []byte
		now    time.Time
		want   error
	}{
		{"empty", "", testSecret, signedAt, ErrMalformedToken},
		{"three parts", "7:4242:" + sig, testSecret, signedAt, ErrMalformedToken},
		{"five parts", good + ":x", testSecret, signedAt, ErrMalformedToken},
		{"user zero", forged("0", "4242", ts), testSecret, signedAt, ErrMalformedToken},
		{"negative user", forged("-7", "4242", ts), testSecret, signedAt, ErrMalformedToken},
		{"plus sign", forged("+7", "4242", ts), testSecret, signedAt, ErrMalformedToken},
		{"leading zero", forged("07", "4242", ts), testSecret, signedAt, ErrMalformedToken},
		{"session not a number", forged("7", "x", ts), testSecret, signedAt, ErrMalformedToken},
		{"time zero", forged("7", "4242", "0"), testSecret, signedAt, ErrMalformedToken},
		{"overflow", forged("9223372036854775808", "1", ts), testSecret, signedAt, ErrMalformedToken},
		{"padded signature", good + "=", testSecret, signedAt, ErrMalformedToken},
		{"std base64 signature", "7:4242:" + ts + ":" + strings.NewReplacer("-", "+", "_", "/").Replace(sig) + "+", testSecret, signedAt, ErrMalformedToken},
		{"short signature", "7:4242:" + ts + ":" + sig[:20], testSecret, signedAt, ErrMalformedToken},
		{"too long", strings.Repeat("1", 200), testSecret, signedAt, ErrMalformedToken},
		{"other secret", good, otherSecret, signedAt, ErrBadSignature},
		{"flipped signature", "7:4242:" + ts + ":" + string(flip), testSecret, signedAt, ErrBadSignature},
		{"other session, same signature", "7:4243:" + ts + ":" + sig, testSecret, signedAt, ErrBadSignature},
		{"other user, same signature", "8:4242:" + ts + ":" + sig, testSecret, signedAt, ErrBadSignature},
		{"expired", good, testSecret, signedAt.Add(RevokeTokenTTL + time.Second), ErrTokenExpired},
		{"from the future", good, testSecret, signedAt.Add(-RevokeTokenSkew - time.Second), ErrTokenFromFuture},
		// A forged token never learns whether its time would be valid.
		{"forged and expired", "7:4242:1:" + sig, testSecret, signedAt, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, s, err := VerifyRevokeToken(tt.token, tt.secret, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyRevokeToken = %d, %d, %v; want %v", u, s, err, tt.want)
			}
			if u != 0 || s != 0 {
				t.Fatalf("a refused token gave user %d session %d", u, s)
			}
			if len(tt.token) > 8 && strings.Contains(err.Error(), tt.token) {
				t.Fatalf("the error quotes the token: %v", err)
			}
		})
	}
	for _, secret := range [][]byte{nil, []byte("short")} {
		if _, _, err := VerifyRevokeToken(good, secret, signedAt); err == nil || !strings.Contains(err.Error(), "secret is shorter") {
			t.Errorf("secret %q: %v", secret, err)
		}
	}
}

// FuzzVerifyRevokeToken checks that no input but a token signed with the
// secret is accepted, and that what is accepted round-trips.
func FuzzVerifyRevokeToken(f *testing.F) {
	m := testMailer(f, testSecret)
	now := signedAt
	f.Add(m.SignRevokeToken(7, 4242, now))
	f.Add(m.SignRevokeToken(1, 1, now.Add(-time.Hour)))
	f.Add("7:4242:1772366400:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("::::")
	f.Add("9223372036854775807:9223372036854775807:9223372036854775807:x")
	f.Fuzz(func(t *testing.T, token string) {
		u, s, err := VerifyRevokeToken(token, testSecret, now)
		if err != nil {
			if u != 0 || s != 0 {
				t.Fatalf("%q refused but gave %d, %d", token, u, s)
			}
			return
		}
		if u <= 0 || s <= 0 {
			t.Fatalf("%q accepted with user %d session %d", token, u, s)
		}
		// Only a token the Mailer itself would make verifies.
		ts, _ := strconv.ParseInt(strings.Split(token, ":")[2], 10, 64)
		if want := m.SignRevokeToken(u, s, time.Unix(ts, 0)); want != token {
			t.Fatalf("%q accepted, but the Mailer signs %q", token, want)
		}
		if _, _, err := VerifyRevokeToken(token, otherSecret, now); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%q verifies under another secret: %v", token, err)
		}
	})
}
