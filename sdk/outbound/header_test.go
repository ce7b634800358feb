package outbound

import (
	"strings"
	"testing"
)

func TestValidHeaderName(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "x-with_odd.chars~!#$%&'*+^`|": true, "X-1": true,
		"": false, "X Bad": false, "X-Bad:": false, "X-Ü": false, "X\tA": false, "(x)": false, `"x"`: false,
	} {
		if got := ValidHeaderName(name); got != want {
			t.Errorf("ValidHeaderName(%q) = %v", name, got)
		}
	}
}

func TestReservedHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"Content-Type": true, "content-length": true, "HOST": true, "Transfer-Encoding": true, "Connection": true,
		"keep-alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
		"TE": true, "Trailer": true, "Upgrade": true, "Expect": true,
		"Authorization": false, "User-Agent": false, "Accept": false, "X-Content-Type": false, "Content-Type-X": false,
	} {
		if got := ReservedHeader(name); got != want {
			t.Errorf("ReservedHeader(%q) = %v", name, got)
		}
	}
}

func TestCheckHeader(t *testing.T) {
	refuse := func(canon string) string {
		switch {
		case strings.HasPrefix(canon, "Webhook-"):
			return "it carries the signature"
		case ReservedHeader(canon):
			return "the client sets it"
		}
		return ""
	}
	tests := []struct {
		name, value string
		refuse      func(string) string
		wantErr     string
	}{
		{"Authorization", "Bearer abc", refuse, ""},
		{"User-Agent", "custom", refuse, ""},
		{"x-with_odd.chars~!#$%&'*+^`|", "tab\tok", refuse, ""},
		{"X-Long", strings.Repeat("v", MaxHeaderValue), refuse, ""},
		{"X-Empty", "", refuse, ""},
		{"Host", "x", nil, ""},

		{"", "x", refuse, "empty header name"},
		{"X Bad", "1", refuse, `"X Bad" is not a valid header name`},
		{"X-Ü", "1", nil, "not a valid header name"},
		{"webhook-id", "x", refuse, `"webhook-id" is refused: it carries the signature`},
		{"content-type", "text/plain", refuse, `"content-type" is refused: the client sets it`},
		{"X-Too-Long", strings.Repeat("v", MaxHeaderValue+1), refuse, `the value of "X-Too-Long" is longer than 4096 bytes`},
		{"X-A", "a\r\nX-Injected: 1", refuse, `the value of "X-A" holds a control character`},
		{"X-A", "nul\x00", nil, "control character"},
		{"X-A", "del\x7f", nil, "control character"},
	}
	for _, tt := range tests {
		err := CheckHeader(tt.name, tt.value, tt.refuse)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("CheckHeader(%q): %v", tt.name, err)
			}
			continue
		}
		if err == nil || err.Error() != tt.wantErr && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("CheckHeader(%q) = %v, want %q", tt.name, err, tt.wantErr)
			continue
		}
		if len(tt.value) > 2 && strings.Contains(err.Error(), tt.value[:3]) {
			t.Errorf("CheckHeader(%q): the error shows the value: %v", tt.name, err)
		}
	}
}
