package outbound

import (
	"fmt"
	"net/http"
	"reflect"
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

func TestHeaderSetting(t *testing.T) {
	check := func(name, value string) error {
		if err := CheckHeader(name, value, func(canon string) string {
			if ReservedHeader(canon) {
				return "the client sets it"
			}
			return ""
		}); err != nil {
			return fmt.Errorf("headers: %w", err)
		}
		return nil
	}
	tests := []struct {
		name    string
		in      map[string]string
		want    http.Header
		wantErr string
	}{
		{"none", nil, http.Header{}, ""},
		{"canonical names", map[string]string{"authorization": "Bearer x", "X-TEAM": "ops"},
			http.Header{"Authorization": {"Bearer x"}, "X-Team": {"ops"}}, ""},
		{"too many", map[string]string{"A": "1", "B": "2", "C": "3"}, nil, "headers: at most 2 headers, not 3"},
		{"check's error", map[string]string{"Host": "x"}, nil, `headers: "Host" is refused: the client sets it`},
		{"first by name", map[string]string{"X-B": "\n", "X-A": "\n"}, nil, `headers: the value of "X-A" holds a control character`},
		{"twice", map[string]string{"x-a": "1", "X-A": "2"}, nil, `headers: "x-a" is set twice (header names are case-insensitive)`},
	}
	for _, tt := range tests {
		got, err := HeaderSetting(tt.in, 2, check)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != tt.wantErr || tt.wantErr == "" && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, %q; want %v, %q", tt.name, got, msg, tt.want, tt.wantErr)
		}
	}
}
