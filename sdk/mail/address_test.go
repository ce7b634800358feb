package mail

import (
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in       string
		addr     string // want; "" means an error
		name     string
		errWants string // part of the error
	}{
		{in: "noreply@example.com", addr: "noreply@example.com"},
		{in: "<noreply@example.com>", addr: "noreply@example.com"},
		{in: "WiseHosting <noreply@example.com>", addr: "noreply@example.com", name: "WiseHosting"},
		{in: `"Ops, Team" <ops@example.com>`, addr: "ops@example.com", name: "Ops, Team"},
		{in: "=?utf-8?q?=C3=9Cmlaut?= <u@example.com>", addr: "u@example.com", name: "Ümlaut"},
		{in: "Ümlaut <u@example.com>", addr: "u@example.com", name: "Ümlaut"},
		{in: "first.last+tag@sub.example.co.uk", addr: "first.last+tag@sub.example.co.uk"},
		{in: "root@localhost", addr: "root@localhost"},
		{in: "a!#$%&'*+/=?^_`{|}~-@example.com", addr: "a!#$%&'*+/=?^_`{|}~-@example.com"},

		{in: "", errWants: "empty"},
		{in: "noreply", errWants: "not an e-mail address"},
		{in: "a@b.c\r\nBcc: victim@example.com", errWants: "line break"},
		{in: "a@b.c\nBcc: victim@example.com", errWants: "line break"},
		{in: "Evil\r <a@b.c>", errWants: "line break"},
		{in: "a\x00b@example.com", errWants: "control character"},
		{in: "Tab\tName <a@example.com>", errWants: "control character"},
		{in: "=?utf-8?q?a=0D=0ABcc=3A_x=40y.z?= <a@example.com>", errWants: "display name"},
		{in: "=?utf-8?q?a=00b?= <a@example.com>", errWants: "display name"},
		{in: `"john doe"@example.com`, errWants: "local part"},
		{in: "a@[192.0.2.1]", errWants: "address literals"},
		{in: "a@exa_mple.com", errWants: "only ASCII letters"},
		{in: "a@-example.com", errWants: "hyphen"},
		{in: "a@example..com", errWants: "not an e-mail address"},
		{in: "ü@example.com", errWants: "local part"},
		{in: "a@exämple.com", errWants: "only ASCII letters"},
		{in: "x <a@b.c> y", errWants: "single address"},
		{in: "a@b.c, d@e.f", errWants: "not an e-mail address"},
		{in: strings.Repeat("a", 65) + "@example.com", errWants: "local part"},
		{in: "a@" + strings.Repeat("b", 64) + ".com", errWants: "longer than 63"},
		{in: strings.Repeat("a", 600) + "@example.com", errWants: "longer than 512"},
		{in: "a@example.com\xff", errWants: "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := ParseAddress(tt.in)
			if tt.addr == "" {
				if err == nil {
					t.Fatalf("accepted as %q <%s>", a.Name, a.Address)
				}
				if !strings.Contains(err.Error(), tt.errWants) {
					t.Fatalf("error %q, want it to mention %q", err, tt.errWants)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Address != tt.addr || a.Name != tt.name {
				t.Fatalf("got %q <%s>, want %q <%s>", a.Name, a.Address, tt.name, tt.addr)
			}
			// What it accepts formats as a header value that parses back.
			s := a.String()
			if strings.ContainsAny(s, "\r\n") {
				t.Fatalf("String() = %q holds a line break", s)
			}
			b, err := ParseAddress(s)
			if err != nil || b.Address != a.Address || b.Name != a.Name {
				t.Fatalf("String() = %q parses back as %v, %v", s, b, err)
			}
		})
	}
}

// FuzzParseAddress checks that whatever ParseAddress accepts is safe in a
// header and an SMTP envelope, and formats back into the same address.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"noreply@example.com", "WiseHosting <noreply@example.com>", `"Ops, Team" <ops@example.com>`,
		"=?utf-8?q?=C3=9Cmlaut?= <u@example.com>", "a@b.c\r\nBcc: x@y.z", "Group: a@b.c;", "a@[1.2.3.4]",
		`"a\"b" <a@b.c>`, "(comment) a@b.c", "a@b.c (comment)", "=?utf-8?b?AA==?= <a@b.c>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if a != nil {
				t.Fatal("an address with an error")
			}
			return
		}
		if strings.ContainsAny(a.Address, "\r\n<> \t\x00") || hasControl(a.Name) {
			t.Fatalf("%q: unsafe address %q / name %q", s, a.Address, a.Name)
		}
		if err := checkAddrSpec(a.Address); err != nil {
			t.Fatalf("%q: accepted %q: %v", s, a.Address, err)
		}
		out := a.String()
		if strings.ContainsAny(out, "\r\n") || hasControl(out) {
			t.Fatalf("%q formats as %q", s, out)
		}
		b, err := ParseAddress(out)
		if err != nil {
			t.Fatalf("%q formats as %q, which does not parse: %v", s, out, err)
		}
		if b.Address != a.Address || b.Name != a.Name {
			t.Fatalf("%q: %q <%s> formats as %q, which parses as %q <%s>", s, a.Name, a.Address, out, b.Name, b.Address)
		}
	})
}
