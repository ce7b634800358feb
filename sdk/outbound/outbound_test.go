package outbound

import (
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"", 10, ""},
		{"ok", 10, "ok"},
		{"  a\r\n\tb  ", 10, "a b"},
		{`{"error":"x"}`, 0, `{"error":"x"}`},
		{"\x1b[2J\x00bell\x07", 0, "[2J bell"},
		{"c1\u0085\u009bnext", 0, "c1 next"},
		{"bad \xff utf8", 0, "bad \uFFFD utf8"},
		{"line\u2028sep\u2029nbsp\u00a0end", 0, "line sep nbsp end"},
		{"abcdef", 3, "abc…"},
		{"abc", 3, "abc"},
		{"ab  \n  c", 4, "ab c"}, // collapsed before it is cut
		{strings.Repeat("é", 3), 3, "é…"},
		{strings.Repeat("x", 500), -1, strings.Repeat("x", 500)},
	}
	for _, tt := range tests {
		if got := Clean(tt.in, tt.limit); got != tt.want {
			t.Errorf("Clean(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
		}
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"ok", "ok"},
		{"  a\r\n\tb  ", "a b"},
		{`{"error":"x"}`, "{ error : x }"},
		{"\x1b[2J\x00bell\x07", "[2J bell"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"line\u2028sep\u0085", "line sep"},
		{strings.Repeat("é", 200), strings.Repeat("é", 128) + "…"},
		{strings.Repeat("x", MaxQuote), strings.Repeat("x", MaxQuote)},
		{strings.Repeat("x", MaxQuote+1), strings.Repeat("x", MaxQuote) + "…"},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScrub(t *testing.T) {
	tests := []struct {
		name, msg string
		redact    []string
		want      string
	}{
		{"none", "nothing to hide", nil, "nothing to hide"},
		{"every occurrence", "tok and tok", []string{"tok"}, "[redacted] and [redacted]"},
		{"empty strings are skipped", "abc", []string{"", "b"}, "a[redacted]c"},
		{"longer first, whatever the order", "tok-en and tok", []string{"tok", "tok-en"}, "[redacted] and [redacted]"},
		{"sorted already", "tok-en and tok", []string{"tok-en", "tok"}, "[redacted] and [redacted]"},
		{"not found", "abc", []string{"xyz"}, "abc"},
	}
	for _, tt := range tests {
		before := append([]string(nil), tt.redact...)
		if got := Scrub(tt.msg, tt.redact); got != tt.want {
			t.Errorf("%s: Scrub(%q, %q) = %q, want %q", tt.name, tt.msg, tt.redact, got, tt.want)
		}
		if strings.Join(before, "|") != strings.Join(tt.redact, "|") {
			t.Errorf("%s: Scrub reordered the caller's slice: %q", tt.name, tt.redact)
		}
	}
}
