package outbound

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"3599", 3599 * time.Second},
		{"3600", time.Hour},
		{"99999999999999999999999", time.Hour},
		{"-5", 0},
		{"1.5", 0},
		{"12abc", 0},
		{"soon", 0},
		{"Sun, 01 Mar 2026 12:01:30 GMT", 90 * time.Second},
		{"Sunday, 01-Mar-26 12:00:10 GMT", 10 * time.Second},
		{"Sun Mar  1 12:00:05 2026", 5 * time.Second},
		{"Sun, 01 Mar 2026 11:59:00 GMT", 0},
		{"Sun, 01 Mar 2026 12:00:00 GMT", 0},
		{"Mon, 02 Mar 2026 12:00:00 GMT", time.Hour},
	}
	for _, tt := range tests {
		if got := RetryAfter(tt.in, now); got != tt.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzRetryAfter: any Retry-After value gives a delay between 0 and
// MaxRetryAfter, and delay-seconds give whole seconds.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "99999999999999999999999", "-5", "1.5", "Sun, 01 Mar 2026 12:01:30 GMT",
		"Sunday, 01-Mar-26 12:00:10 GMT", "Sun Mar  1 12:00:05 2026"} {
		f.Add(s, int64(1772366400))
	}
	f.Fuzz(func(t *testing.T, v string, sec int64) {
		d := RetryAfter(v, time.Unix(sec, 0))
		if d < 0 || d > MaxRetryAfter {
			t.Fatalf("RetryAfter(%q) = %v", v, d)
		}
		if s := strings.TrimSpace(v); s != "" && s[0] >= '0' && s[0] <= '9' && d%time.Second != 0 {
			t.Fatalf("RetryAfter(%q) = %v, not whole seconds", v, d)
		}
	})
}

func TestReadAnswer(t *testing.T) {
	secret := "sekrit-token-123"
	long := strings.Repeat("x", MaxAnswer-4) + secret // the secret straddles the limit
	tests := []struct {
		name     string
		header   http.Header
		body     string
		wantLoc  string
		wantBody string
	}{
		{"body scrubbed", nil, "echo " + secret + "!", "", "echo [redacted]!"},
		{"location scrubbed", http.Header{"Location": {"https://x.example.com/?t=" + secret}}, "",
			"https://x.example.com/?t=[redacted]", ""},
		{"cut at MaxAnswer, before scrubbing", nil, long, "", strings.Repeat("x", MaxAnswer-4) + "sekr"},
	}
	for _, tt := range tests {
		h := tt.header
		if h == nil {
			h = http.Header{}
		}
		resp := &http.Response{StatusCode: 503, Header: h, Body: io.NopCloser(strings.NewReader(tt.body))}
		a := ReadAnswer(resp, []string{secret})
		if a.Code != 503 || a.Header.Get("Location") != tt.wantLoc || string(a.Body) != tt.wantBody {
			t.Errorf("%s: %d, Location %q, body %.40q…", tt.name, a.Code, a.Header.Get("Location"), a.Body)
		}
		if tt.header != nil && tt.header.Get("Location") == a.Header.Get("Location") {
			t.Errorf("%s: the response's own header was not scrubbed in a copy", tt.name)
		}
	}
}

func TestAnswer(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		a         Answer
		status    string
		retryable bool
		after     time.Duration
		quoted    string
		redirect  string
	}{
		{Answer{Code: 200, Header: http.Header{}, Body: []byte("ok")}, "200 OK", false, 0, `x: "ok"`, ""},
		{Answer{Code: 299}, "299", false, 0, "x", ""},
		{Answer{Code: 301, Header: http.Header{"Location": {"https://new.example.com/\x00\"hook"}}}, "301 Moved Permanently", false, 0,
			"x", `, a redirect to "https://new.example.com/ hook"`},
		{Answer{Code: 400, Body: []byte(`{"error":"bad"}`)}, "400 Bad Request", false, 0, `x: "{ error : bad }"`, ""},
		{Answer{Code: 404, Body: []byte(" \n ")}, "404 Not Found", false, 0, "x", ""},
		{Answer{Code: 408}, "408 Request Timeout", true, 0, "x", ""},
		{Answer{Code: 410}, "410 Gone", false, 0, "x", ""},
		{Answer{Code: 429, Header: http.Header{"Retry-After": {"30"}}}, "429 Too Many Requests", true, 30 * time.Second, "x", ""},
		{Answer{Code: 500, Header: http.Header{"Retry-After": {"Sun, 01 Mar 2026 12:01:30 GMT"}}, Body: []byte("boom")},
			"500 Internal Server Error", true, 90 * time.Second, `x: "boom"`, ""},
		{Answer{Code: 599}, "599", true, 0, "x", ""},
		{Answer{Code: 600}, "600", false, 0, "x", ""},
	}
	for _, tt := range tests {
		a := tt.a
		if got := a.Status(); got != tt.status {
			t.Errorf("%d: Status = %q, want %q", a.Code, got, tt.status)
		}
		if got := a.Retryable(); got != tt.retryable {
			t.Errorf("%d: Retryable = %v", a.Code, got)
		}
		if got := a.RetryAfter(now); got != tt.after {
			t.Errorf("%d: RetryAfter = %v, want %v", a.Code, got, tt.after)
		}
		if got := a.Quoted("x"); got != tt.quoted {
			t.Errorf("%d: Quoted = %q, want %q", a.Code, got, tt.quoted)
		}
		if got := a.Redirect(); got != tt.redirect {
			t.Errorf("%d: Redirect = %q, want %q", a.Code, got, tt.redirect)
		}
	}
}
