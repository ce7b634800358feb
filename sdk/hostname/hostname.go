// Package hostname validates DNS host names and labels the one way every
// part of WiseHosting does: the core's configuration (platform.domain,
// zones), worker addresses, app hostnames, and the proxy emitter plugins
// that write them into proxy rules.
//
// The rules are deliberately narrower than what DNS allows, so that an
// accepted name can be put into any proxy's configuration (a Traefik rule
// such as Host(`name`), a Caddyfile, an nginx server_name) without quoting
// or escaping, and can never change the meaning of the rule around it: an
// accepted name consists only of the bytes a-z, 0-9, '-' and '.'.
//
//   - A label ([ValidLabel]) has 1 to 63 characters a-z, 0-9 and '-', and
//     neither starts nor ends with '-' (RFC 1123). Uppercase is refused rather
//     than folded, so each name has exactly one spelling.
//   - A host name ([Valid]) has at most 253 characters and at least two
//     labels separated by single dots. Single-label names ("localhost",
//     "worker1") are refused: what they resolve to depends on the search
//     domains and hosts file of each machine that resolves them. There is no
//     trailing dot, no wildcard ("*.example.com"), and no IP address.
//   - The last label (the top-level domain) starts with a letter. Real
//     top-level domains all do, and the rule keeps a name from being read as
//     an IPv4 address by inet_aton-style parsers, which accept "127.1" and
//     "0x7f.1".
//   - Internationalized names are accepted in their ASCII (punycode) form,
//     "xn--…"; Unicode is refused.
//
// Errors are *[Error] values: Error() quotes the input and the offending
// part, while Error.Reason never contains any part of the input, for
// callers that must not echo a value (one read from a secret store, say).
//
// The package uses the standard library only.
package hostname

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Length limits, in bytes (an accepted name is ASCII).
const (
	// MaxLength is the longest host name Valid accepts.
	MaxLength = 253
	// MaxLabelLength is the longest label ValidLabel accepts.
	MaxLabelLength = 63
)

// Error is why a host name or label was rejected.
type Error struct {
	// Input is the rejected string.
	Input string
	// Label is the 1-based position of the label at fault within Input, or
	// 0 when the problem concerns the input as a whole (or Input is a single
	// label checked by ValidLabel).
	Label int
	// Reason says what is wrong and how to fix it without quoting any part
	// of Input.
	Reason string

	// label reports whether Input was checked as a label, not a name.
	label bool
	// detail is Reason with the offending part of Input quoted.
	detail string
}

// maxQuoted bounds how much of the input Error() quotes.
const maxQuoted = 80

// Error implements error. It quotes (a prefix of) the input, escaped, and
// the offending part.
func (e *Error) Error() string {
	in := e.Input
	if len(in) > maxQuoted {
		in = in[:maxQuoted] + "…"
	}
	what := "host name"
	if e.label {
		what = "DNS label"
	}
	msg := e.detail
	if msg == "" {
		msg = e.Reason
	}
	return fmt.Sprintf("%q is not a valid %s: %s", in, what, msg)
}

// Valid reports whether h is an acceptable host name (see the package
// documentation): nil, or an *Error saying what is wrong.
func Valid(h string) error {
	fail := func(label int, reason, detail string) error {
		return &Error{Input: h, Label: label, Reason: reason, detail: detail}
	}
	switch {
	case h == "":
		return fail(0, "it is empty", "")
	case len(h) > MaxLength:
		return fail(0, fmt.Sprintf("it is %d characters long; a host name has at most %d", len(h), MaxLength), "")
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return fail(0, "it is an IP address, not a host name", "")
	}
	if err := checkChars(h, true); err != nil {
		return fail(0, err.reason, err.detail)
	}
	if strings.HasSuffix(h, ".") {
		return fail(0, "it ends with a dot; write it without the trailing dot",
			fmt.Sprintf("it ends with a dot; write %q", strings.TrimRight(h, ".")))
	}
	labels := strings.Split(h, ".")
	for i, l := range labels {
		if l == "" {
			return fail(i+1, fmt.Sprintf("label %d is empty (a leading dot, or two dots in a row)", i+1), "")
		}
		if err := checkLabel(l); err != nil {
			return fail(i+1, fmt.Sprintf("label %d %s", i+1, err.reason), fmt.Sprintf("label %q %s", l, err.reason))
		}
	}
	if len(labels) < 2 {
		return fail(0, "it is a single label; use a fully qualified name such as worker-1.example.internal, "+
			"since what a single-label name resolves to depends on each resolver's search domains", "")
	}
	if last := labels[len(labels)-1]; last[0] < 'a' || last[0] > 'z' {
		return fail(len(labels), "the last label starts with a digit, so resolvers could read the name as an IPv4 address "+
			"(like 127.1 or 0x7f.1); a top-level label starts with a letter", "")
	}
	return nil
}

// ValidLabel reports whether s is an acceptable DNS label: 1 to 63
// characters a-z, 0-9 and '-', not starting or ending with '-'. It returns
// nil, or an *Error saying what is wrong.
func ValidLabel(s string) error {
	fail := func(p *problem) error {
		return &Error{Input: s, Reason: p.reason, label: true, detail: p.detail}
	}
	if s == "" {
		return fail(&problem{reason: "it is empty"})
	}
	if p := checkChars(s, false); p != nil {
		return fail(p)
	}
	if p := checkLabel(s); p != nil {
		return fail(&problem{reason: "it " + p.reason})
	}
	return nil
}

// problem is a rejection before it becomes an *Error.
type problem struct {
	reason string // never quotes the input
	detail string // may quote the offending part; "" means reason
}

// checkLabel checks the length and hyphens of a label whose characters
// checkChars already accepted. Its reasons read after "label N".
func checkLabel(l string) *problem {
	switch {
	case len(l) > MaxLabelLength:
		return &problem{reason: fmt.Sprintf("is %d characters long; a label has at most %d", len(l), MaxLabelLength)}
	case l[0] == '-':
		return &problem{reason: "starts with '-'; a label starts with a letter or digit"}
	case l[len(l)-1] == '-':
		return &problem{reason: "ends with '-'; a label ends with a letter or digit"}
	}
	return nil
}

// checkChars finds the first byte outside a-z, 0-9, '-' (and '.' when
// dots is set) and says what it is.
func checkChars(s string, dots bool) *problem {
	allowed := "a-z, 0-9 and '-'"
	if dots {
		allowed = "a-z, 0-9, '-' and '.'"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.' && dots:
			continue
		case c >= 'A' && c <= 'Z':
			return &problem{reason: "it contains uppercase letters; write it in lowercase",
				detail: fmt.Sprintf("it contains uppercase letters; write %q", strings.ToLower(s))}
		case c == '*':
			return &problem{reason: "it contains '*'; wildcards are not accepted, name each host"}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			return &problem{reason: fmt.Sprintf("it contains whitespace at byte %d", i+1)}
		case c == '"' || c == '\'' || c == '`':
			return &problem{reason: fmt.Sprintf("it contains a quote or backtick at byte %d", i+1)}
		case c == '.':
			return &problem{reason: "it contains '.'; a label is one part of a name, without dots"}
		case c >= utf8.RuneSelf:
			return &problem{reason: "it contains non-ASCII characters; write an internationalized name in its punycode form (xn--…)"}
		case c < ' ' || c == 0x7f:
			return &problem{reason: fmt.Sprintf("it contains a control character at byte %d", i+1)}
		default:
			return &problem{
				reason: fmt.Sprintf("byte %d is not allowed; use %s", i+1, allowed),
				detail: fmt.Sprintf("%q is not allowed; use %s", rune(c), allowed),
			}
		}
	}
	return nil
}
