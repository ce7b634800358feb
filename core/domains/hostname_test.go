package domains_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/core/domains"
	"github.com/wisehosting/wisehosting/sdk/hostname"
)

const platform = "apps.example.net"

func TestDomainNormalizeHostname(t *testing.T) {
	label := strings.Repeat("a", 63)
	at240 := strings.Join([]string{label, label, label, strings.Repeat("b", 48)}, ".") // 240
	tests := []struct {
		in, want string
		reason   string // substring of the error; "" means valid
	}{
		{in: "www.example.com", want: "www.example.com"},
		{in: "  WWW.Example.COM.  ", want: "www.example.com"},
		{in: "example.com", want: "example.com"},
		{in: "Bücher.Example", want: "xn--bcher-kva.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "XN--BCHER-KVA.example", want: "xn--bcher-kva.example"},
		{in: "ｗｗｗ．example．com", want: "www.example.com"}, // full-width letters and dots
		{in: "r3---sn-x.example.com", want: "r3---sn-x.example.com"},
		{in: "example.net", want: "example.net"},
		{in: "notapps.example.net", want: "notapps.example.net"},
		{in: at240, want: at240},

		{in: "", reason: "empty"},
		{in: "   ", reason: "empty"},
		{in: "10.0.0.1", reason: "IP address"},
		{in: "::1", reason: "IP address"},
		{in: "[2001:db8::1]", reason: "IP address"},
		{in: "*.example.com", reason: "wildcards"},
		{in: "localhost", reason: "single label"},
		{in: "com.", reason: "single label"},
		{in: "apps.example.net", reason: "platform's own domain"},
		{in: "my-app.apps.example.net", reason: "platform's own domain"},
		{in: "A.Apps.Example.Net.", reason: "platform's own domain"},
		{in: at240 + "b", reason: "at most 240"},
		{in: strings.Repeat("a.", 600) + "com", reason: "at most"},
		{in: "https://example.com", reason: "without scheme"},
		{in: "example.com:443", reason: "without scheme, port"},
		{in: "example.com/path", reason: "without scheme"},
		{in: "a b.example.com", reason: "whitespace"},
		{in: "_acme.example.com", reason: "not allowed"},
		{in: "a..example.com", reason: "label 2 is empty"},
		{in: "-a.example.com", reason: "starts with '-'"},
		{in: "example.123", reason: "starts with a digit"},
		{in: "a`.example.com", reason: "quote or backtick"},
		{in: "xn--zz.example.com", reason: "not valid punycode"},
		{in: "bü_cher.example", reason: "internationalized"},
		{in: "a\x00.example.com", reason: "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := domains.NormalizeHostname(tt.in, platform)
			if tt.reason == "" {
				if err != nil || got != tt.want {
					t.Fatalf("= %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("= %q, want an error containing %q", got, tt.reason)
			}
			if !errors.Is(err, domains.ErrInvalidHostname) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("error %q, want one containing %q", err, tt.reason)
			}
		})
	}
	if got, err := domains.NormalizeHostname("my-app.apps.example.net", ""); err != nil || got != "my-app.apps.example.net" {
		t.Errorf("without a platform domain: %q, %v", got, err)
	}
}

func TestDomainToken(t *testing.T) {
	a, b := domains.NewToken(), domains.NewToken()
	if !regexp.MustCompile(`^wisehosting-verify=[0-9a-f]{32}$`).MatchString(a) || a == b {
		t.Fatalf("tokens %q, %q", a, b)
	}
	if got := domains.RecordName("www.example.com"); got != "_wisehosting.www.example.com" {
		t.Fatalf("RecordName = %q", got)
	}
}

// dbHostname is the database's hostname rule (migration 004).
var dbHostname = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)

func FuzzNormalizeHostname(f *testing.F) {
	for _, s := range []string{"www.example.com", "Bücher.Example.", "xn--bcher-kva.example", "10.0.0.1", "*.a.com",
		"a.apps.example.net", "ｗｗｗ．example．com", "xn--zz.com", "a..b", "\u200d.com", "ß.de", "xn--zca.de", "İ.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := domains.NormalizeHostname(in, platform)
		if err != nil {
			if !errors.Is(err, domains.ErrInvalidHostname) {
				t.Fatalf("error %v is not ErrInvalidHostname", err)
			}
			return
		}
		if err := hostname.Valid(h); err != nil {
			t.Fatalf("%q → %q, which sdk/hostname refuses: %v", in, h, err)
		}
		if !dbHostname.MatchString(h) || len(h) > domains.MaxHostnameLength {
			t.Fatalf("%q → %q, which the database refuses", in, h)
		}
		if h == platform || strings.HasSuffix(h, "."+platform) {
			t.Fatalf("%q → %q, under the platform domain", in, h)
		}
		again, err := domains.NormalizeHostname(h, platform)
		if err != nil || again != h {
			t.Fatalf("not idempotent: %q → %q → %q, %v", in, h, again, err)
		}
	})
}
