// Package netguard keeps outbound connections of plugins and the core off
// addresses an operator did not mean them to reach: loopback, private
// (RFC 1918, fc00::/7), link-local (169.254.0.0/16, where cloud metadata
// services answer, and fe80::/10), unspecified, multicast, carrier-grade
// NAT and reserved ranges, also in their IPv4-mapped and NAT64 forms. It is
// the SSRF guard of every sink that connects to a configured or
// user-supplied address.
//
// Reason judges one address; Control is a net.Dialer Control function that
// runs after name resolution on every address the dialer tries, so a host
// name that resolves (or re-resolves, as in DNS rebinding) to a blocked
// address is refused as surely as a literal one:
//
//	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: netguard.Control}
package netguard

import (
	"fmt"
	"net/netip"
	"syscall"
)

// blockedPrefixes are the ranges, beyond those netip classifies
// (loopback, private, link-local, multicast, unspecified), that are refused.
var blockedPrefixes = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `a "this network" address`},
	{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT (shared) address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address"},
	{netip.MustParsePrefix("::/96"), "an IPv4-compatible IPv6 address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use NAT64 address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local IPv6 address"},
}

// nat64 is the well-known NAT64 prefix: its addresses reach the IPv4
// address in their last 32 bits, which is checked in their stead.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Reason says why a may not be connected to ("a loopback address", …), or
// returns "" when it may. IPv4-mapped IPv6
// addresses (::ffff:10.0.0.1) are judged as the IPv4 address they carry;
// zones are ignored.
func Reason(a netip.Addr) string {
	a = a.WithZone("").Unmap()
	switch {
	case !a.IsValid():
		return "not an IP address"
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsLoopback():
		return "a loopback address"
	case a.IsPrivate():
		return "a private address"
	case a.IsLinkLocalUnicast():
		return "a link-local address (where cloud metadata services answer)"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "a multicast address"
	}
	for _, b := range blockedPrefixes {
		if b.prefix.Contains(a) {
			return b.why
		}
	}
	if nat64.Contains(a) {
		b := a.As16()
		if why := Reason(netip.AddrFrom4([4]byte(b[12:]))); why != "" {
			return why + " behind the NAT64 prefix"
		}
	}
	return ""
}

// BlockedError is the dial error of a connection the guard refused; find
// it with errors.As.
type BlockedError struct {
	// Addr is the IP address (or what the dialer passed when it was none).
	Addr string
	// Why is Reason's answer, e.g. "a loopback address".
	Why string
}

// Error implements error.
func (e *BlockedError) Error() string {
	return fmt.Sprintf("refused to connect to %s: %s", e.Addr, e.Why)
}

// Control is a net.Dialer Control function that refuses, with a
// *BlockedError, every address Reason blocks. The dialer calls it after
// name resolution, for every address it tries.
func Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedError{Addr: address, Why: "not an IP address and port"}
	}
	if why := Reason(ap.Addr()); why != "" {
		return &BlockedError{Addr: ap.Addr().String(), Why: why}
	}
	return nil
}
