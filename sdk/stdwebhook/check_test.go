package stdwebhook

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/sdk/netguard"
	"github.com/wisehosting/wisehosting/sdk/outbound"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name, in     string
		allowPrivate bool
		want         string // the URL CheckURL returns, when no error
		wantErr      string
		wantAddr     string // the *AddressError's address, when one
	}{
		{name: "https with query", in: "https://hooks.example.com/x?token=abc", want: "https://hooks.example.com/x?token=abc"},
		{name: "http with port", in: "http://hooks.example.com:8080/hook", want: "http://hooks.example.com:8080/hook"},
		{name: "localhost passes (the dial guard judges names)", in: "http://localhost:9/", want: "http://localhost:9/"},
		{name: "public literal address", in: "https://203.0.113.7:8443/", want: "https://203.0.113.7:8443/"},
		{name: "public IPv6 literal", in: "https://[2001:db8::1]/", want: "https://[2001:db8::1]/"},
		{name: "loopback allowed", in: "http://127.0.0.1:8080/hook", allowPrivate: true, want: "http://127.0.0.1:8080/hook"},
		{name: "metadata allowed", in: "http://169.254.169.254/", allowPrivate: true, want: "http://169.254.169.254/"},

		// The syntax is outbound.CheckURL's (see its tests); a few of its
		// errors, to show they come through.
		{name: "empty", in: "", wantErr: "url is required"},
		{name: "ftp", in: "ftp://hooks.example.com/", wantErr: `the scheme must be http or https, not "ftp"`},
		{name: "user info", in: "https://user:pass@hooks.example.com/", wantErr: "must not hold a user name or password"},
		{name: "fragment", in: "https://hooks.example.com/#x", wantErr: "fragment"},
		{name: "bad port", in: "https://hooks.example.com:99999/", wantErr: `port "99999"`},
		{name: "unparsable", in: "https://hooks.example.com/%zz", wantErr: "not a valid URL"},
		{name: "loopback", in: "http://127.0.0.1:8080/", wantErr: "url: 127.0.0.1 is a loopback address, which webhooks may not be sent to", wantAddr: "127.0.0.1"},
		{name: "IPv6 loopback", in: "http://[::1]/", wantErr: "loopback", wantAddr: "::1"},
		{name: "mapped loopback", in: "http://[::ffff:127.0.0.1]/", wantErr: "loopback", wantAddr: "::ffff:127.0.0.1"},
		{name: "RFC 1918", in: "http://10.1.2.3/", wantErr: "private", wantAddr: "10.1.2.3"},
		{name: "ULA", in: "http://[fd00::1]/", wantErr: "private", wantAddr: "fd00::1"},
		{name: "metadata", in: "http://169.254.169.254/latest/meta-data", wantErr: "link-local", wantAddr: "169.254.169.254"},
		{name: "IPv6 link-local with zone", in: "http://[fe80::1%25eth0]/", wantErr: "link-local", wantAddr: "fe80::1%eth0"},
		{name: "CGNAT", in: "http://100.64.1.1/", wantErr: "carrier-grade NAT", wantAddr: "100.64.1.1"},
		{name: "unspecified", in: "http://0.0.0.0:80/", wantErr: "unspecified", wantAddr: "0.0.0.0"},
		{name: "multicast", in: "http://224.0.0.1/", wantErr: "multicast", wantAddr: "224.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := CheckURL(tt.in, tt.allowPrivate)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if u.String() != tt.want {
					t.Fatalf("url %q, want %q", u, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			var ae *AddressError
			if got := errors.As(err, &ae); got != (tt.wantAddr != "") {
				t.Fatalf("an *AddressError: %v, want %v", got, tt.wantAddr != "")
			}
			if ae != nil && (ae.Addr != netip.MustParseAddr(tt.wantAddr) || ae.Why == "") {
				t.Fatalf("AddressError %+v", ae)
			}
		})
	}
}

// TestCheckURLHidesTheURL: an address error names the address, not the
// path or query (outbound's tests hold the syntax errors to the same).
func TestCheckURLHidesTheURL(t *testing.T) {
	for _, in := range []string{"http://10.0.0.1/sekrit-path?token=sekrit-query", "http://[::1]:8080/sekrit-path?t=sekrit"} {
		_, err := CheckURL(in, false)
		var ae *AddressError
		if !errors.As(err, &ae) {
			t.Fatalf("%q: %v, want an *AddressError", in, err)
		}
		if strings.Contains(err.Error(), "sekrit") {
			t.Errorf("the error for %q shows a part of the URL: %v", in, err)
		}
	}
}

// FuzzCheckURL: CheckURL accepts what outbound.CheckURL accepts, as it
// parses it, except (without allowPrivate) a literal address the guard
// refuses, which is an *AddressError naming it; an error never shows a
// query.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.example.com/x?token=abc", "http://127.0.0.1:8080/", "http://[fe80::1%25eth0]/", "http://0.0.0.0/",
		"http://[::ffff:10.0.0.1]:80/p", "http://203.0.113.7/", "http://[64:ff9b::a00:1]/", "ftp://10.0.0.1/",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, allowPrivate bool) {
		u, err := CheckURL(raw, allowPrivate)
		want, werr := outbound.CheckURL(raw)
		var ae *AddressError
		switch {
		case werr != nil:
			if err == nil || err.Error() != werr.Error() {
				t.Fatalf("%q: %v, want outbound's %v", raw, err, werr)
			}
		case errors.As(err, &ae):
			a, perr := netip.ParseAddr(want.Hostname())
			if allowPrivate || perr != nil || a != ae.Addr || netguard.Reason(a) == "" {
				t.Fatalf("%q refused: %v", raw, err)
			}
		case err != nil || u.String() != want.String():
			t.Fatalf("%q: %v, %v; want %v", raw, u, err, want)
		default:
			if a, perr := netip.ParseAddr(u.Hostname()); perr == nil && !allowPrivate && netguard.Reason(a) != "" {
				t.Fatalf("%q accepted: %s", raw, netguard.Reason(a))
			}
		}
		if strings.ContainsAny(raw, "#") {
			return // the query would be part of the fragment
		}
		const marker = "QQsekritQQ"
		if _, err := CheckURL(raw+"?t="+marker, allowPrivate); err != nil && strings.Contains(err.Error(), marker) {
			t.Fatalf("the error for %q shows the query: %v", raw, err)
		}
	})
}

func TestCheckHeader(t *testing.T) {
	tests := []struct {
		name, value string
		wantErr     string
	}{
		{"Authorization", "Bearer abc", ""},
		{"X-Team", "ops", ""},
		{"User-Agent", "custom", ""},
		{"x-with_odd.chars~!#$%&'*+^`|", "tab\tok", ""},
		{"X-Long", strings.Repeat("v", MaxHeaderValue), ""},
		{"X-Empty", "", ""},

		{"", "x", "empty header name"},
		{"X Bad", "1", "not a valid header name"},
		{"X-Bad:", "1", "not a valid header name"},
		{"X-Ü", "1", "not a valid header name"},
		{"webhook-id", "x", `"webhook-id" is refused: the webhook-* headers carry the signature`},
		{"Webhook-Signature", "v1,x", "refused"},
		{"WEBHOOK-VERSION", "2", "refused"},
		{"Host", "internal", `"Host" is refused: the sender and its HTTP client set it`},
		{"content-length", "1", "refused"},
		{"Content-Type", "text/plain", "refused"},
		{"Connection", "close", "refused"},
		{"Transfer-Encoding", "chunked", "refused"},
		{"Proxy-Authorization", "Basic x", "refused"},
		{"Te", "trailers", "refused"},
		{"Expect", "100-continue", "refused"},
		{"X-Too-Long", strings.Repeat("v", MaxHeaderValue+1), "longer than 4096 bytes"},
		{"X-A", "a\r\nX-Injected: 1", "control character"},
		{"X-A", "nul\x00", "control character"},
		{"X-A", "del\x7f", "control character"},
	}
	for _, tt := range tests {
		err := CheckHeader(tt.name, tt.value)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("CheckHeader(%q): %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("CheckHeader(%q) = %v, want %q", tt.name, err, tt.wantErr)
			continue
		}
		if len(tt.value) > 2 && strings.Contains(err.Error(), tt.value) {
			t.Errorf("CheckHeader(%q): the error shows the value: %v", tt.name, err)
		}
	}
}

func TestParseSecretAttr(t *testing.T) {
	good := secretOf(7, 32)
	tests := []struct {
		attr, in, wantErr string
	}{
		{"secret", good, ""},
		{"secret", " " + good + "\n", ""},
		{"secret", secretOf(1, 24), ""},
		{"secret", secretOf(1, 64), ""},
		{"secret", "", "secret is required: whsec_ followed by the base64 of 24 to 64 random bytes"},
		{"secret", "  ", "secret is required"},
		{"secret", strings.TrimPrefix(good, SecretPrefix), `secret must start with "whsec_" and continue with the base64 of 24 to 64 random bytes`},
		{"secrets_previous[1]", "whsec_c2hvcnQ=", "secrets_previous[1]: stdwebhook: invalid secret: 5 bytes once decoded, want 24 to 64"},
		{"secret", secretOf(1, 65), "65 bytes once decoded"},
		{"secret", "whsec_not*base64*at*all*not*base64*at*all", "secret: stdwebhook: invalid secret: not whsec_ followed by standard base64"},
		{"secret", "whsec_", "secret: stdwebhook: invalid secret: empty"},
	}
	for _, tt := range tests {
		key, err := ParseSecretAttr(tt.attr, tt.in)
		if tt.wantErr == "" {
			if err != nil || len(key) < MinSecretBytes {
				t.Errorf("ParseSecretAttr(%q): %d bytes, %v", tt.in, len(key), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseSecretAttr(%q) = %v, want %q", tt.in, err, tt.wantErr)
			continue
		}
		if !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("ParseSecretAttr(%q): %v is not ErrInvalidSecret", tt.in, err)
		}
		if b64 := strings.TrimPrefix(strings.TrimSpace(tt.in), SecretPrefix); len(b64) > 4 && strings.Contains(err.Error(), b64) {
			t.Errorf("ParseSecretAttr(%q): the error shows the secret", tt.in)
		}
	}
}

func TestSecretForms(t *testing.T) {
	s := secretOf(3, 32)
	got := SecretForms(" " + s + "\n")
	if len(got) != 2 || got[0] != s || got[1] != strings.TrimPrefix(s, SecretPrefix) {
		t.Fatalf("SecretForms = %q", got)
	}
}
