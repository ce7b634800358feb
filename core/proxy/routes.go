// Package proxy is the core's edge-routing model: it turns the store's
// running apps into the route table every proxy-config emitter plugin
// renders (sdk.Proxy) or pushes (sdk.ProxyApplier).
//
// A route is one app: its name (the app's slug), its hosts (the slug under
// the platform domain, then its verified custom domains) and its upstream,
// http://<worker address>:<app port>. Every host passes sdk/hostname's
// validation here, before any emitter sees it: an accepted host holds only
// a-z, 0-9, '-' and '.', so no rule, block or matcher an emitter writes it
// into can be broken out of.
package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/hostname"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// DefaultPort is the upstream port of an app whose worker has not reported
// the port it listens on (the PORT it was given by default).
const DefaultPort = 8080

// Rejection is a route or host left out of the table, and why.
type Rejection struct {
	AppID int64
	// Host is the rejected host, or "" when the whole route was (an
	// unusable slug or worker address).
	Host   string
	Reason string
}

// Build turns store rows (ordered by subdomain, as store.ListRoutes returns
// them) into the route table of platform domain base, sorted by name.
// Hosts that fail validation are left out and reported, and so is a custom
// domain inside base (it could shadow another app's slug host) or a
// duplicate; a route whose slug host or worker address is unusable is left
// out whole. Equal inputs give equal tables.
func Build(base string, rows []store.RouteRow) ([]*pluginv1.Route, []Rejection) {
	var out []*pluginv1.Route
	var rejected []Rejection
	reject := func(app int64, host, reason string) {
		rejected = append(rejected, Rejection{AppID: app, Host: host, Reason: reason})
	}
	suffix := "." + base
	for _, r := range rows {
		if err := hostname.ValidLabel(r.Subdomain); err != nil {
			reject(r.AppID, "", fmt.Sprintf("slug: %s", reason(err)))
			continue
		}
		slugHost := r.Subdomain + suffix
		if err := hostname.Valid(slugHost); err != nil {
			reject(r.AppID, "", fmt.Sprintf("slug host: %s", reason(err)))
			continue
		}
		upstream, err := Upstream(r.WorkerAddress, r.Port)
		if err != nil {
			reject(r.AppID, "", err.Error())
			continue
		}
		hosts := []string{slugHost}
		for _, d := range r.Domains {
			switch err := hostname.Valid(d); {
			case err != nil:
				reject(r.AppID, d, reason(err))
			case d == base || strings.HasSuffix(d, suffix):
				reject(r.AppID, d, "a custom domain inside the platform domain could shadow another app's host")
			case slices.Contains(hosts, d):
				reject(r.AppID, d, "duplicate host")
			default:
				hosts = append(hosts, d)
			}
		}
		out = append(out, &pluginv1.Route{AppId: r.AppID, Name: r.Subdomain, Hosts: hosts, Upstream: upstream})
	}
	slices.SortFunc(out, func(a, b *pluginv1.Route) int { return strings.Compare(a.Name, b.Name) })
	return out, rejected
}

// Upstream is the URL the edge proxy dials for an app listening on port
// (0: not reported, DefaultPort) of the worker at address (an IP address
// or a host name, as the worker registered it).
func Upstream(address string, port int) (string, error) {
	if port == 0 {
		port = DefaultPort
	}
	if port < 1 || port > 65535 {
		return "", fmt.Errorf("port %d is out of range", port)
	}
	if ip, err := netip.ParseAddr(address); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("worker address %q has an IPv6 zone", address)
		}
	} else if err := hostname.Valid(address); err != nil {
		return "", fmt.Errorf("worker address: %s", reason(err))
	}
	return "http://" + net.JoinHostPort(address, strconv.Itoa(port)), nil
}

// reason is why hostname rejected a name, without the name itself.
func reason(err error) string {
	var he *hostname.Error
	if errors.As(err, &he) {
		return he.Reason
	}
	return err.Error()
}
