package accounts

import (
	"net"
	"net/http"
	"net/netip"
)

// ClientIP returns the client's address: the host of the request's
// RemoteAddr, IPv4-mapped IPv6 addresses written as IPv4. Forwarding
// headers are ignored (see the package doc).
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return clip(host, 64)
}
