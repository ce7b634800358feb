package proxy_test

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/core/proxy"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/hostname"
)

func TestBuild(t *testing.T) {
	rows := []store.RouteRow{
		{AppID: 1, Subdomain: "zeta", Port: 3000, WorkerAddress: "10.0.0.1", Domains: []string{"www.zeta.example", "zeta.example"}},
		{AppID: 2, Subdomain: "alpha", Port: 0, WorkerAddress: "fd00::1"},
		{AppID: 3, Subdomain: "hostile", Port: 80, WorkerAddress: "worker-3.internal", Domains: []string{
			"a`) || Host(`evil.example", "EVIL.example", "sp ace.example", "*.wild.example", "quo\"te.example",
			"other.apps.example.net", "apps.example.net", "ok.example", "ok.example", "127.0.0.1", "xn--bcher-kva.example",
		}},
		{AppID: 4, Subdomain: "Bad_Slug", WorkerAddress: "10.0.0.1"},
		{AppID: 5, Subdomain: "noaddr", WorkerAddress: "not an address"},
		{AppID: 6, Subdomain: "badport", Port: 70000, WorkerAddress: "10.0.0.1"},
		{AppID: 7, Subdomain: "zoned", WorkerAddress: "fe80::1%eth0"},
	}
	got, rejected := proxy.Build("apps.example.net", rows)
	type route struct {
		name, upstream string
		hosts          []string
	}
	var have []route
	for _, r := range got {
		have = append(have, route{r.Name, r.Upstream, r.Hosts})
	}
	want := []route{
		{"alpha", "http://[fd00::1]:8080", []string{"alpha.apps.example.net"}},
		{"hostile", "http://worker-3.internal:80", []string{"hostile.apps.example.net", "ok.example", "xn--bcher-kva.example"}},
		{"zeta", "http://10.0.0.1:3000", []string{"zeta.apps.example.net", "www.zeta.example", "zeta.example"}},
	}
	if !reflect.DeepEqual(have, want) {
		t.Fatalf("routes =\n%+v\nwant\n%+v", have, want)
	}
	wantRejected := map[int64]int{3: 9, 4: 1, 5: 1, 6: 1, 7: 1}
	count := map[int64]int{}
	for _, r := range rejected {
		count[r.AppID]++
		if r.Reason == "" {
			t.Errorf("rejection without a reason: %+v", r)
		}
	}
	if !reflect.DeepEqual(count, wantRejected) {
		t.Fatalf("rejections per app = %v, want %v (%+v)", count, wantRejected, rejected)
	}
}

// FuzzBuild: whatever the database holds, every host that reaches an
// emitter is a valid host name made of a-z, 0-9, '-' and '.', and every
// upstream is an http URL whose host is the worker's address.
func FuzzBuild(f *testing.F) {
	f.Add("app", "www.example.com", "10.0.0.1", 3000)
	f.Add("app", "a`) || Host(`b.example", "fd00::1", 0)
	f.Add("x", "X.example.com", "w.internal", 8080)
	f.Add("app", "app.apps.example.net", "10.0.0.1\n", 1)
	f.Fuzz(func(t *testing.T, slug, domain, address string, port int) {
		routes, _ := proxy.Build("apps.example.net", []store.RouteRow{
			{AppID: 1, Subdomain: slug, Port: port, WorkerAddress: address, Domains: []string{domain, domain + ".example.org"}},
		})
		for _, r := range routes {
			if hostname.ValidLabel(r.Name) != nil {
				t.Fatalf("route name %q reached an emitter", r.Name)
			}
			for _, h := range r.Hosts {
				if err := hostname.Valid(h); err != nil {
					t.Fatalf("host %q reached an emitter: %v", h, err)
				}
				if strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" {
					t.Fatalf("host %q holds a byte outside a-z 0-9 - .", h)
				}
			}
			u, err := url.Parse(r.Upstream)
			if err != nil || u.Scheme != "http" || u.Path != "" || u.Hostname() != address || u.User != nil {
				t.Fatalf("upstream %q for address %q: %v", r.Upstream, address, err)
			}
		}
	})
}
