package mail

import (
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"unicode/utf8"
)

// Limits of an address.
const (
	// MaxAddressLength bounds an address as written, display name included.
	MaxAddressLength = 512
	// maxAddrSpec bounds local@domain (RFC 5321: a path holds at most 256
	// octets with its angle brackets).
	maxAddrSpec = 254
	// maxLocalPart and maxDomain are RFC 5321's limits.
	maxLocalPart = 64
	maxDomain    = 253
	// maxName bounds a display name.
	maxName = 256
)

// ParseAddress parses one address as written in a From or To header:
// "noreply@example.com", "<noreply@example.com>" or
// "WiseHosting <noreply@example.com>" (net/mail syntax; an RFC 2047-encoded
// display name is decoded). It is stricter than net/mail so that what it
// accepts can be put in a header and in an SMTP envelope as it is:
//
//   - no line breaks or other control characters, anywhere (also not in a
//     decoded display name): a header cannot be injected through an
//     address;
//   - the address proper (local@domain) is ASCII: a dot-atom local part (no
//     quoted local parts) of at most 64 bytes and a domain of letters,
//     digits, hyphens and dots (no address literals) of at most 253 bytes.
//
// The Address it returns formats itself for a header with String.
func ParseAddress(s string) (*netmail.Address, error) {
	switch {
	case s == "":
		return nil, errors.New("the address is empty")
	case len(s) > MaxAddressLength:
		return nil, fmt.Errorf("the address is longer than %d bytes", MaxAddressLength)
	case !utf8.ValidString(s):
		return nil, fmt.Errorf("the address %q is not valid UTF-8", s)
	case strings.ContainsAny(s, "\r\n"):
		return nil, fmt.Errorf("the address %q holds a line break", s)
	case hasControl(s):
		return nil, fmt.Errorf("the address %q holds a control character", s)
	}
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an e-mail address: %s", s, strings.TrimPrefix(err.Error(), "mail: "))
	}
	if err := checkAddrSpec(a.Address); err != nil {
		return nil, fmt.Errorf("%q is not an e-mail address this sender accepts: %w", s, err)
	}
	switch {
	case len(a.Name) > maxName:
		return nil, fmt.Errorf("the display name of %q is longer than %d bytes", s, maxName)
	case !utf8.ValidString(a.Name):
		return nil, fmt.Errorf("the display name of %q is not valid UTF-8", s)
	case hasControl(a.Name):
		return nil, fmt.Errorf("the display name of %q holds a line break or another control character", s)
	}
	return &netmail.Address{Name: a.Name, Address: a.Address}, nil
}

// checkAddrSpec checks local@domain (see ParseAddress).
func checkAddrSpec(addr string) error {
	if len(addr) > maxAddrSpec {
		return fmt.Errorf("local@domain is longer than %d bytes", maxAddrSpec)
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return errors.New("no @")
	}
	local, domain := addr[:at], addr[at+1:]
	if local == "" || len(local) > maxLocalPart {
		return fmt.Errorf("the local part must have 1 to %d bytes", maxLocalPart)
	}
	for _, atom := range strings.Split(local, ".") {
		if atom == "" {
			return errors.New("the local part has a leading, trailing or double dot")
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return fmt.Errorf("the local part holds %q; only letters, digits and !#$%%&'*+-/=?^_`{|}~ are accepted", rune(atom[i]))
			}
		}
	}
	return checkDomain(domain)
}

// checkDomain checks the domain of an address: dot-separated labels of
// ASCII letters, digits and hyphens, no label starting or ending with a
// hyphen.
func checkDomain(domain string) error {
	if domain == "" || len(domain) > maxDomain {
		return fmt.Errorf("the domain must have 1 to %d bytes", maxDomain)
	}
	if strings.HasPrefix(domain, "[") {
		return errors.New("address literals ([192.0.2.1]) are not accepted; use a domain")
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("the domain %q has an empty label or one longer than 63 bytes", domain)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("the domain %q has a label starting or ending with a hyphen", domain)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return fmt.Errorf("the domain %q holds %q; only ASCII letters, digits, hyphens and dots are accepted", domain, rune(c))
			}
		}
	}
	return nil
}

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// hasControl reports whether s holds a C0 control character (tab
// included), DEL, or a C1 control character.
func hasControl(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return true
		}
	}
	return false
}
