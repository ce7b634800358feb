package accounts

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	tok, hash, err := NewToken(APITokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(hash) != 64 || hash != HashToken(tok) || strings.Contains(hash, tok[4:]) {
		t.Fatalf("hash %q of %q", hash, tok)
	}
	tok2, _, _ := NewToken(APITokenPrefix)
	if tok == tok2 {
		t.Fatal("two tokens are equal")
	}
	for _, tt := range []struct {
		prefix, s string
		ok        bool
	}{
		{APITokenPrefix, tok, true},
		{SessionPrefix, tok, false},
		{APITokenPrefix, tok + "A", false},
		{APITokenPrefix, tok[:len(tok)-1], false},
		{APITokenPrefix, tok[:len(tok)-1] + "=", false},
		{APITokenPrefix, tok[:len(tok)-1] + "+", false},
		{APITokenPrefix, "", false},
		{APITokenPrefix, "wht_" + strings.Repeat("A", 42) + "B", false}, // non-canonical last character
		{APITokenPrefix, "wht_" + strings.Repeat("A", 43), true},
	} {
		err := ParseToken(tt.prefix, tt.s)
		if (err == nil) != tt.ok {
			t.Errorf("ParseToken(%q, %q) = %v, want ok=%v", tt.prefix, tt.s, err, tt.ok)
		}
		if err != nil && tt.s != "" && strings.Contains(err.Error(), tt.s) {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
	if p := displayPrefix(tok); p != tok[:8] {
		t.Fatalf("display prefix %q", p)
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add("wht_" + strings.Repeat("A", 43))
	f.Add("whs_abc")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		err := ParseToken(APITokenPrefix, s)
		if err == nil && (len(s) != 47 || !strings.HasPrefix(s, APITokenPrefix)) {
			t.Fatalf("accepted %q", s)
		}
		if err != nil && len(s) > 4 && strings.Contains(err.Error(), s) {
			t.Fatalf("error quotes the input: %v", err)
		}
	})
}

func TestParseUserAgent(t *testing.T) {
	for _, tt := range []struct {
		ua   string
		want Client
	}{
		{"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", Client{"Desktop", "Firefox", "Linux"}},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0", Client{"Desktop", "Edge", "Windows"}},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", Client{"Desktop", "Safari", "macOS"}},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1", Client{"Mobile", "Chrome", "iOS"}},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36", Client{"Mobile", "Chrome", "Android"}},
		{"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Safari/604.1", Client{"Tablet", "Safari", "iOS"}},
		{"curl/8.5.0", Client{"", "curl", ""}},
		{"Googlebot/2.1 (+http://www.google.com/bot.html)", Client{"Bot", "", ""}},
		{"", Client{}},
	} {
		if got := ParseUserAgent(tt.ua); got != tt.want {
			t.Errorf("ParseUserAgent(%q) = %+v, want %+v", tt.ua, got, tt.want)
		}
	}
}

func FuzzParseUserAgent(f *testing.F) {
	f.Add("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
	f.Add(strings.Repeat("é", 600))
	f.Fuzz(func(t *testing.T, ua string) {
		c := ParseUserAgent(ua)
		for _, v := range []string{c.Device, c.Browser, c.OS} {
			if len(v) > 20 {
				t.Fatalf("field %q", v)
			}
		}
		if got := clip(ua, 17); len(got) > 17 || !strings.HasPrefix(ua, got) {
			t.Fatalf("clip(%q) = %q", ua, got)
		}
	})
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(2, time.Minute, 3, func() time.Time { return now })
	for i := range 2 {
		if ok, _ := l.Allow("ip:a", "user:1"); !ok {
			t.Fatalf("request %d refused", i)
		}
	}
	ok, wait := l.Allow("ip:a", "user:1")
	if ok || wait <= 0 || wait > 30*time.Second {
		t.Fatalf("third request: %v, %v", ok, wait)
	}
	// A refused request takes no token from the other keys.
	if ok, _ := l.Allow("ip:b", "user:1"); ok {
		t.Fatal("user 1's empty bucket let a request through from another IP")
	}
	if ok, _ := l.Allow("ip:b"); !ok {
		t.Fatal("ip:b lost a token to a refused request")
	}
	now = now.Add(wait)
	if ok, _ := l.Allow("ip:a"); !ok {
		t.Fatal("the bucket did not refill")
	}
	// The map is bounded: the least recently used key goes.
	for _, k := range []string{"k1", "k2", "k3", "k4"} {
		l.Allow(k)
	}
	if n := l.Len(); n != 3 {
		t.Fatalf("%d buckets, want at most 3", n)
	}
}

func TestClientIP(t *testing.T) {
	for _, tt := range []struct{ remote, xff, want string }{
		{"127.0.0.1:5555", "", "127.0.0.1"},
		{"[::1]:5555", "", "::1"},
		{"[::ffff:192.0.2.1]:80", "", "192.0.2.1"},
		{"[fe80::1%eth0]:80", "", "fe80::1"},
		{"192.0.2.7:1", "203.0.113.9", "192.0.2.7"}, // forwarding headers are not trusted
		{"garbage", "", "garbage"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := ClientIP(r); got != tt.want {
			t.Errorf("ClientIP(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}

func TestSameOriginWithoutBaseURL(t *testing.T) {
	s := &Service{}
	for _, tt := range []struct {
		origin string
		ok     bool
	}{
		{"http://example.test", true},
		{"HTTP://EXAMPLE.TEST", true},
		{"https://example.test", false},
		{"http://example.test.evil", false},
		{"http://user@example.test", true},
		{"::", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "http://example.test/api/v1/logout", nil)
		r.Header.Set("Origin", tt.origin)
		if got := s.sameOrigin(r); got != tt.ok {
			t.Errorf("origin %q: %v, want %v", tt.origin, got, tt.ok)
		}
	}
}
