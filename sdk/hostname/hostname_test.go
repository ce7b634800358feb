package hostname

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	// 4 labels of 63 + 3 dots = 255; trim to exactly 253.
	long253 := strings.Join([]string{label63, label63, label63, strings.Repeat("b", 61)}, ".")
	tests := []struct {
		name   string
		in     string
		reason string // substring of Error.Reason; "" means valid
		label  int    // Error.Label
	}{
		{"two labels", "example.com", "", 0},
		{"subdomain", "apps.example.com", "", 0},
		{"digits and hyphens", "w-1.10-0-0-2.example.internal", "", 0},
		{"punycode", "xn--bcher-kva.example", "", 0},
		{"63-char label", label63 + ".com", "", 0},
		{"253 characters", long253, "", 0},
		{"digit-led inner label", "1password.example.com", "", 0},

		{"empty", "", "it is empty", 0},
		{"254 characters", long253 + "b", "at most 253", 0},
		{"64-char label", strings.Repeat("a", 64) + ".com", "label 1 is 64 characters long", 1},
		{"single label", "localhost", "single label", 0},
		{"trailing dot", "example.com.", "ends with a dot", 0},
		{"leading dot", ".example.com", "label 1 is empty", 1},
		{"double dot", "a..example.com", "label 2 is empty", 2},
		{"lone dot", ".", "ends with a dot", 0},
		{"leading hyphen", "-a.example.com", "label 1 starts with '-'", 1},
		{"trailing hyphen", "a.example-.com", "label 2 ends with '-'", 2},
		{"uppercase", "Apps.Example.com", "uppercase", 0},
		{"wildcard", "*.example.com", "wildcards are not accepted", 0},
		{"space", "a b.example.com", "whitespace at byte 2", 0},
		{"newline", "a.example.com\nx", "whitespace", 0},
		{"backtick", "a`.example.com", "quote or backtick", 0},
		{"backtick rule injection", "a.com`) || Host(`evil.com", "quote or backtick", 0},
		{"double quote", `a".example.com`, "quote or backtick", 0},
		{"single quote", "a'.example.com", "quote or backtick", 0},
		{"unicode", "bücher.example", "non-ASCII", 0},
		{"underscore", "_acme.example.com", "byte 1 is not allowed", 0},
		{"port", "example.com:80", "byte 12 is not allowed", 0},
		{"scheme", "http://example.com", "byte 5 is not allowed", 0},
		{"slash", "example.com/x", "not allowed", 0},
		{"NUL", "a\x00.example.com", "control character", 0},
		{"semicolon", "a.example.com;", "not allowed", 0},
		{"brace", "a.example.com{", "not allowed", 0},
		{"IPv4", "10.0.0.1", "IP address", 0},
		{"IPv6", "::1", "IP address", 0},
		{"IPv6 with zone", "fe80::1%eth0", "IP address", 0},
		{"short IPv4", "127.1", "last label starts with a digit", 2},
		{"hex IPv4", "0x7f.1", "last label starts with a digit", 2},
		{"numeric TLD", "example.123", "last label starts with a digit", 2},
		{"IPv4 with trailing dot", "10.0.0.1.", "ends with a dot", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Valid(tt.in)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Valid(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("Valid(%q) = %v, want an *Error", tt.in, err)
			}
			if !strings.Contains(he.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to contain %q", he.Reason, tt.reason)
			}
			if he.Label != tt.label {
				t.Errorf("Label = %d, want %d", he.Label, tt.label)
			}
			if he.Input != tt.in {
				t.Errorf("Input = %q, want %q", he.Input, tt.in)
			}
			if !strings.Contains(err.Error(), "is not a valid host name") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestValidLabel(t *testing.T) {
	tests := []struct {
		in     string
		reason string // "" means valid
	}{
		{"default", ""},
		{"eu-1", ""},
		{"a", ""},
		{"0", ""},
		{strings.Repeat("z", 63), ""},
		{"xn--bcher-kva", ""},

		{"", "it is empty"},
		{strings.Repeat("z", 64), "it is 64 characters long"},
		{"-eu", "it starts with '-'"},
		{"eu-", "it ends with '-'"},
		{"EU", "uppercase"},
		{"eu 1", "whitespace"},
		{"eu.1", "without dots"},
		{"eu_1", "byte 3 is not allowed; use a-z, 0-9 and '-'"},
		{"*", "wildcards"},
		{"é", "non-ASCII"},
		{"a`", "quote or backtick"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			err := ValidLabel(tt.in)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("ValidLabel(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			var he *Error
			if !errors.As(err, &he) || !strings.Contains(he.Reason, tt.reason) {
				t.Fatalf("ValidLabel(%q) = %v, want a reason containing %q", tt.in, err, tt.reason)
			}
			if !strings.Contains(err.Error(), "is not a valid DNS label") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

// Error() quotes the offending part for operators; Reason never contains
// any of the input.
func TestErrorMessages(t *testing.T) {
	tests := []struct {
		in, wantError string
	}{
		{"Apps.Example.com", `"Apps.Example.com" is not a valid host name: it contains uppercase letters; write "apps.example.com"`},
		{"a_b.example.com", `"a_b.example.com" is not a valid host name: '_' is not allowed; use a-z, 0-9, '-' and '.'`},
		{"apps.example.com.", `"apps.example.com." is not a valid host name: it ends with a dot; write "apps.example.com"`},
		{"-apps.example.com", `"-apps.example.com" is not a valid host name: label "-apps" starts with '-'; a label starts with a letter or digit`},
		{strings.Repeat("x", 300), `"` + strings.Repeat("x", 80) + `…" is not a valid host name: it is 300 characters long; a host name has at most 253`},
	}
	for _, tt := range tests {
		err := Valid(tt.in)
		if err == nil || err.Error() != tt.wantError {
			t.Errorf("Valid(%q):\n got  %v\n want %s", tt.in, err, tt.wantError)
		}
	}

	for _, in := range []string{"s3cr3t_Value.example.com", "s3cr3t-value-", "s3cr3t.value.", "s3cr3t..x", "s3cr3t`x", "S3CR3T.example.com"} {
		var he *Error
		if !errors.As(Valid(in), &he) || strings.Contains(strings.ToLower(he.Reason), "s3cr3t") {
			t.Errorf("Reason for %q quotes the input: %q", in, he.Reason)
		}
		if !errors.As(ValidLabel(in), &he) || strings.Contains(strings.ToLower(he.Reason), "s3cr3t") {
			t.Errorf("label Reason for %q quotes the input: %q", in, he.Reason)
		}
	}
}

// FuzzValid: no input panics, and anything accepted is made only of
// [a-z0-9.-], has the documented shape, and cannot be read as an address.
func FuzzValid(f *testing.F) {
	for _, s := range []string{
		"apps.example.com", "localhost", "10.0.0.1", "127.1", "0x7f.1", "::1", "*.example.com",
		"a.com`) || Host(`b.com", "Apps.Example.com", "bücher.example", "xn--bcher-kva.example",
		"example.com.", "a..b", "-a.b", "a-.b", "", ".", strings.Repeat("a", 64) + ".com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := Valid(s); err != nil {
			var he *Error
			if !errors.As(err, &he) || he.Reason == "" || err.Error() == "" {
				t.Fatalf("Valid(%q) = %v: want an *Error with a reason", s, err)
			}
		} else {
			for i := 0; i < len(s); i++ {
				c := s[i]
				if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
					t.Fatalf("Valid accepted %q, which contains %q", s, c)
				}
			}
			labels := strings.Split(s, ".")
			if len(s) > MaxLength || len(labels) < 2 {
				t.Fatalf("Valid accepted %q: length %d, %d labels", s, len(s), len(labels))
			}
			for _, l := range labels {
				if err := ValidLabel(l); err != nil {
					t.Fatalf("Valid accepted %q whose label %q is invalid: %v", s, l, err)
				}
			}
			if _, err := netip.ParseAddr(s); err == nil {
				t.Fatalf("Valid accepted the IP address %q", s)
			}
			if last := labels[len(labels)-1]; last[0] < 'a' || last[0] > 'z' {
				t.Fatalf("Valid accepted %q whose last label does not start with a letter", s)
			}
		}
		if err := ValidLabel(s); err == nil {
			if len(s) < 1 || len(s) > MaxLabelLength || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" ||
				s[0] == '-' || s[len(s)-1] == '-' {
				t.Fatalf("ValidLabel accepted %q", s)
			}
		}
	})
}
