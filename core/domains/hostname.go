// Package domains verifies users' custom domains by DNS: a user adds a
// hostname to an app, publishes a TXT record holding the domain's token at
// _wisehosting.<hostname>, and the domain is verified once the record is
// seen; only verified domains are routed by the edge proxy.
//
// NormalizeHostname validates what users type. Verifier looks the record
// up, through a configured DNS server or the system's resolver. Checker
// re-checks domains periodically, as a cluster-wide singleton:
//
//   - a pending domain every PendingInterval (5 min) during its first
//     PendingWindow (24 h), then every Interval (6 h): it verifies by
//     itself soon after its owner publishes the record;
//   - verified and failed domains every Interval (6 h).
//
// A verified domain whose record disappears is not dropped at once: it
// becomes failed — and leaves the routes — only when a check proves the
// record absent or wrong (NXDOMAIN, no TXT, no TXT matching), the check
// before it failed too, and the record was last seen more than Grace
// (48 h) ago (store.RecordDomainChecks). A lookup that fails (timeout,
// SERVFAIL) proves nothing and never fails a domain. A failed domain
// whose record comes back is verified again.
//
// A hostname belongs to one domain row at a time, across users; another
// user's claim that never verified (or failed) and is older than
// StaleClaimAge can be replaced by a new claim.
package domains

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/wisehosting/wisehosting/sdk/hostname"
)

const (
	// RecordLabel is the label the TXT record sits under:
	// RecordLabel.<hostname>.
	RecordLabel = "_wisehosting"
	// TokenPrefix starts every verification token.
	TokenPrefix = "wisehosting-verify="
	// MaxHostnameLength is the longest hostname accepted: its record name,
	// RecordLabel.<hostname>, must fit DNS's 253 characters.
	MaxHostnameLength = hostname.MaxLength - len(RecordLabel) - 1
	// maxInput bounds the input NormalizeHostname looks at, so that the
	// IDNA mapping never works on megabytes.
	maxInput = 1024
)

// RecordName is the name of the TXT record that verifies host.
func RecordName(host string) string { return RecordLabel + "." + host }

// NewToken returns a fresh random verification token:
// TokenPrefix followed by 32 hex digits.
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return TokenPrefix + hex.EncodeToString(b[:])
}

// ErrInvalidHostname is what every NormalizeHostname error matches with
// errors.Is.
var ErrInvalidHostname = errors.New("invalid hostname")

// HostnameError is why NormalizeHostname refused an input.
type HostnameError struct {
	// Input is the refused input (clipped for display by Error).
	Input string
	// Reason says what is wrong, without quoting the input.
	Reason string
}

// Error implements error.
func (e *HostnameError) Error() string {
	in := e.Input
	if len(in) > 80 {
		in = in[:80] + "…"
	}
	return fmt.Sprintf("%q is not a valid hostname: %s", in, e.Reason)
}

// Is matches ErrInvalidHostname.
func (e *HostnameError) Is(target error) bool { return target == ErrInvalidHostname }

// NormalizeHostname returns the canonical form of a custom domain a user
// typed, or a *HostnameError saying what is wrong with it.
//
// Surrounding whitespace and one trailing dot are dropped, letters are
// lowercased, and an internationalized name is converted to its punycode
// (IDNA/UTS #46) form; the result then follows sdk/hostname's rules (what
// the proxy routes accept) and is at most MaxHostnameLength long. IP
// addresses, wildcards, single-label names, invalid punycode, and
// platformDomain and its subdomains (the platform's own names; "" to skip
// that rule) are refused. NormalizeHostname is idempotent.
func NormalizeHostname(in, platformDomain string) (string, error) {
	fail := func(format string, args ...any) error {
		return &HostnameError{Input: in, Reason: fmt.Sprintf(format, args...)}
	}
	h := strings.TrimSpace(in)
	switch {
	case h == "":
		return "", fail("it is empty")
	case len(h) > maxInput:
		return "", fail("it is %d characters long; a hostname has at most %d", len(h), MaxHostnameLength)
	case isIP(h):
		return "", fail("it is an IP address; use a hostname whose DNS points at the platform")
	case strings.Contains(h, "*"):
		return "", fail("wildcards are not accepted; add each hostname")
	case strings.Contains(h, "://") || strings.ContainsAny(h, "/:@?#"):
		return "", fail("write the hostname alone, without scheme, port or path (e.g. www.example.com)")
	}
	h = strings.TrimSuffix(h, ".")
	if !isASCII(h) {
		a, err := idna.Lookup.ToASCII(h)
		if err != nil {
			return "", fail("it is not a valid internationalized domain name")
		}
		h = strings.TrimSuffix(a, ".")
	}
	h = strings.ToLower(h)
	if err := hostname.Valid(h); err != nil {
		var he *hostname.Error
		if errors.As(err, &he) {
			return "", fail("%s", he.Reason)
		}
		return "", fail("%v", err)
	}
	if len(h) > MaxHostnameLength {
		return "", fail("it is %d characters long; a hostname has at most %d, so that %s.<hostname> fits in DNS",
			len(h), MaxHostnameLength, RecordLabel)
	}
	for i, l := range strings.Split(h, ".") {
		if !strings.HasPrefix(l, "xn--") {
			continue
		}
		// A punycode label must decode, and back to itself.
		u, err := idna.Lookup.ToUnicode(l)
		if err != nil {
			return "", fail("label %d is not valid punycode (xn--…)", i+1)
		}
		if a, err := idna.Lookup.ToASCII(u); err != nil || a != l {
			return "", fail("label %d is punycode (xn--…) not in its canonical form", i+1)
		}
	}
	if pd := strings.ToLower(strings.TrimSuffix(platformDomain, ".")); pd != "" && (h == pd || strings.HasSuffix(h, "."+pd)) {
		return "", fail("it is the platform's own domain %s or under it; apps already get a name there", pd)
	}
	return h, nil
}

func isIP(s string) bool {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	_, err := netip.ParseAddr(s)
	return err == nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
