// Package route is what every proxy emitter plugin does with the route
// table before writing a byte of configuration: it checks each route again,
// whatever the core did, and puts the table into one canonical order.
//
// A route that passes [Prepare] has a name of 1 to 63 characters a-z, 0-9
// and '-' (a safe router, service, file or matcher name in any proxy), hosts
// that passed sdk/hostname (bytes a-z, 0-9, '-' and '.' only, so no rule,
// block or matcher they are written into can be broken out of), and an
// upstream of exactly http://<host>:<port>. Emitters may write these values
// without quoting; the reasons a route or host is left out never quote the
// route's data, so they are safe to log.
package route

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk/hostname"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Checked is a route that passed Prepare.
type Checked struct {
	// Route is the route as received.
	Route *pluginv1.Route
	// Name is the route's name (Route.Name).
	Name string
	// Hosts are the route's hosts without repeats, in their order, less any
	// host an earlier route (by name) already claimed.
	Hosts []string
	// Upstream is the route's upstream, "http://<Host>:<Port>".
	Upstream string
	// Host and Port are the upstream's parts; an IPv6 Host has no brackets.
	Host, Port string
}

// Dial is the upstream as host:port (IPv6 in brackets).
func (c Checked) Dial() string { return net.JoinHostPort(c.Host, c.Port) }

// Skipped is a route, or one host of a route, that Prepare left out.
type Skipped struct {
	Route *pluginv1.Route
	// Host is the host left out, or "" when the whole route was.
	Host string
	// Reason never quotes the route's data.
	Reason string
}

// Prepare checks every route and returns the usable ones sorted by name,
// and what it left out. A route with a bad name, a bad host or a bad
// upstream is left out whole; among routes sharing a name, the first by
// (app id, upstream, hosts) is kept, so the result does not depend on the
// input's order; a host already claimed by an earlier route is dropped from
// the later one (and a route left with no host is left out). Equal tables,
// in any order, give equal results.
func Prepare(routes []*pluginv1.Route) ([]Checked, []Skipped) {
	var skipped []Skipped
	ok := make([]Checked, 0, len(routes))
	for _, r := range routes {
		c, reason := Check(r)
		if reason != "" {
			skipped = append(skipped, Skipped{Route: r, Reason: reason})
			continue
		}
		ok = append(ok, c)
	}
	order := func(a, b Checked) int {
		return cmp.Or(
			strings.Compare(a.Name, b.Name),
			cmp.Compare(a.Route.GetAppId(), b.Route.GetAppId()),
			strings.Compare(a.Upstream, b.Upstream),
			slices.Compare(a.Hosts, b.Hosts),
		)
	}
	// The core sends tables sorted by name: checking costs far less than
	// sorting 10,000 structs.
	if !slices.IsSortedFunc(ok, order) {
		slices.SortFunc(ok, order)
	}
	kept := ok[:0]
	claimed := make(map[string]struct{}, len(ok))
	for i, c := range ok {
		if i > 0 && ok[i-1].Name == c.Name {
			skipped = append(skipped, Skipped{Route: c.Route, Reason: "another route has the same name"})
			continue
		}
		hosts := c.Hosts
		for j := 0; j < len(hosts); j++ {
			if _, dup := claimed[hosts[j]]; dup {
				skipped = append(skipped, Skipped{Route: c.Route, Host: hosts[j], Reason: "another route has this host"})
				hosts = slices.Delete(slices.Clone(hosts), j, j+1)
				j--
			}
		}
		if len(hosts) == 0 {
			skipped = append(skipped, Skipped{Route: c.Route, Reason: "every host belongs to another route"})
			continue
		}
		for _, h := range hosts {
			claimed[h] = struct{}{}
		}
		c.Hosts = hosts
		kept = append(kept, c)
	}
	return kept, skipped
}

// Check validates one route: its name, every host and the upstream. It
// returns the route with its hosts deduplicated (first occurrence kept), or
// why the route cannot be used.
func Check(r *pluginv1.Route) (Checked, string) {
	if !ValidName(r.GetName()) {
		return Checked{}, "the name is not 1 to 63 characters a-z, 0-9 and '-' starting with a letter or digit"
	}
	if len(r.GetHosts()) == 0 {
		return Checked{}, "no hosts"
	}
	hosts := r.GetHosts()
	for i, h := range hosts {
		if err := hostname.Valid(h); err != nil {
			return Checked{}, fmt.Sprintf("host %d: %s", i+1, reasonOf(err))
		}
	}
	if hasRepeat(hosts) {
		hosts = dedupe(hosts)
	}
	host, port, reason := SplitUpstream(r.GetUpstream())
	if reason != "" {
		return Checked{}, "upstream: " + reason
	}
	return Checked{Route: r, Name: r.GetName(), Hosts: hosts, Upstream: r.GetUpstream(), Host: host, Port: port}, ""
}

// reasonOf is why hostname rejected a name, without the name itself.
func reasonOf(err error) string {
	var he *hostname.Error
	if errors.As(err, &he) {
		return he.Reason
	}
	return "invalid host"
}

func hasRepeat(hosts []string) bool {
	for i, h := range hosts {
		if slices.Contains(hosts[:i], h) {
			return true
		}
	}
	return false
}

// dedupe returns hosts without repeats, first occurrences in order.
func dedupe(hosts []string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// ValidName reports whether n matches ^[a-z0-9][a-z0-9-]{0,62}$.
func ValidName(n string) bool {
	if len(n) == 0 || len(n) > 63 || n[0] == '-' {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// SplitUpstream accepts exactly http://<host>:<port>: host a valid host
// name or an IP address (IPv6 in brackets, no zone, neither unspecified nor
// multicast), port 1-65535 without leading zeros, nothing else (no user
// info, path, query or fragment). It returns the host (IPv6 without
// brackets) and port, or why the upstream is refused.
func SplitUpstream(raw string) (host, port, reason string) {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		return "", "", "it does not start with http://"
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil || host == "" || port == "" {
		return "", "", `it is not of the form "http://host:port"`
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", "", "the port is not a number from 1 to 65535"
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Zone() != "" || addr.IsUnspecified() || addr.IsMulticast() {
			return "", "", "the address cannot be dialled"
		}
	} else if hostname.Valid(host) != nil {
		return "", "", "the host is not a valid host name or IP address"
	}
	// One spelling only: brackets exactly around an IPv6 address.
	if rest != net.JoinHostPort(host, port) {
		return "", "", `it is not of the form "http://host:port"`
	}
	return host, port, ""
}

// maxLogged bounds the warnings LogSkipped writes one by one; the rest are
// only counted in its summary line.
const maxLogged = 20

// LogSkipped warns about what Prepare left out of the configuration of
// proxy (e.g. "Caddy"): route by route (by name and app id, never hosts or
// upstreams) up to a bound, then one summary line. It logs nothing when
// nothing was skipped.
func LogSkipped(log hclog.Logger, proxy string, skipped []Skipped, total int, generation uint64) {
	if len(skipped) == 0 {
		return
	}
	routes := 0
	for i, s := range skipped {
		if s.Host == "" {
			routes++
		}
		if i >= maxLogged {
			continue
		}
		what := "route left out of the " + proxy + " configuration"
		if s.Host != "" {
			what = "host left out of the " + proxy + " configuration"
		}
		log.Warn(what, "route", logName(s.Route.GetName()), "app_id", s.Route.GetAppId(), "reason", s.Reason)
	}
	log.Warn("routes left out of the "+proxy+" configuration", "skipped", routes,
		"hosts_skipped", len(skipped)-routes, "rendered", total-routes, "generation", generation)
}

// logName quotes a route name for the log, cut short: a name that failed
// validation may be anything.
func logName(n string) string {
	if len(n) > 64 {
		n = n[:64] + "…"
	}
	return strconv.Quote(n)
}
