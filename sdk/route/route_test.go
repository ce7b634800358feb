package route

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

func TestCheck(t *testing.T) {
	good := func(mut func(r *pluginv1.Route)) *pluginv1.Route {
		r := &pluginv1.Route{AppId: 1, Name: "shop", Hosts: []string{"shop.apps.example.com"}, Upstream: "http://10.0.0.2:8080"}
		mut(r)
		return r
	}
	tests := []struct {
		name   string
		route  *pluginv1.Route
		reason string // "" means accepted
	}{
		{"valid", good(func(*pluginv1.Route) {}), ""},
		{"ipv6 upstream", good(func(r *pluginv1.Route) { r.Upstream = "http://[fd00::4]:8080" }), ""},
		{"host name upstream", good(func(r *pluginv1.Route) { r.Upstream = "http://worker-2.wg.internal:80" }), ""},
		{"backtick", good(func(r *pluginv1.Route) { r.Hosts = []string{"a.example.com`) || Host(`evil.com"} }), "host 1"},
		{"double quote", good(func(r *pluginv1.Route) { r.Hosts = []string{`a".example.com`} }), "host 1"},
		{"single quote", good(func(r *pluginv1.Route) { r.Hosts = []string{`a'.example.com`} }), "host 1"},
		{"space", good(func(r *pluginv1.Route) { r.Hosts = []string{"a .example.com"} }), "host 1"},
		{"semicolon", good(func(r *pluginv1.Route) { r.Hosts = []string{"a.example.com;"} }), "host 1"},
		{"brace", good(func(r *pluginv1.Route) { r.Hosts = []string{"a.example.com}"} }), "host 1"},
		{"uppercase", good(func(r *pluginv1.Route) { r.Hosts = []string{"A.example.com"} }), "host 1"},
		{"wildcard", good(func(r *pluginv1.Route) { r.Hosts = []string{"*.example.com"} }), "host 1"},
		{"newline", good(func(r *pluginv1.Route) { r.Hosts = []string{"a.example.com\nrule"} }), "host 1"},
		{"second host bad", good(func(r *pluginv1.Route) { r.Hosts = []string{"a.example.com", "x`)"} }), "host 2"},
		{"unicode", good(func(r *pluginv1.Route) { r.Hosts = []string{"bücher.example.com"} }), "host 1"},
		{"ip as host", good(func(r *pluginv1.Route) { r.Hosts = []string{"10.0.0.9"} }), "host 1"},
		{"no hosts", good(func(r *pluginv1.Route) { r.Hosts = nil }), "no hosts"},
		{"name uppercase", good(func(r *pluginv1.Route) { r.Name = "Evil" }), "the name"},
		{"name with @", good(func(r *pluginv1.Route) { r.Name = "x@file" }), "the name"},
		{"name with underscore", good(func(r *pluginv1.Route) { r.Name = "a_http" }), "the name"},
		{"name too long", good(func(r *pluginv1.Route) { r.Name = strings.Repeat("x", 64) }), "the name"},
		{"name leading dash", good(func(r *pluginv1.Route) { r.Name = "-x" }), "the name"},
		{"empty name", good(func(r *pluginv1.Route) { r.Name = "" }), "the name"},
		{"https upstream", good(func(r *pluginv1.Route) { r.Upstream = "https://10.0.0.2:443" }), "upstream: it does not start with http://"},
		{"no port", good(func(r *pluginv1.Route) { r.Upstream = "http://10.0.0.2" }), "upstream"},
		{"path", good(func(r *pluginv1.Route) { r.Upstream = "http://10.0.0.2:80/admin" }), "upstream"},
		{"user info", good(func(r *pluginv1.Route) { r.Upstream = "http://u:p@10.0.0.2:80" }), "upstream"},
		{"query", good(func(r *pluginv1.Route) { r.Upstream = "http://10.0.0.2:80?x=`" }), "upstream"},
		{"port 0", good(func(r *pluginv1.Route) { r.Upstream = "http://10.0.0.2:0" }), "upstream: the port"},
		{"port too big", good(func(r *pluginv1.Route) { r.Upstream = "http://10.0.0.2:70000" }), "upstream: the port"},
		{"port leading zero", good(func(r *pluginv1.Route) { r.Upstream = "http://10.0.0.2:080" }), "upstream: the port"},
		{"bad upstream host", good(func(r *pluginv1.Route) { r.Upstream = "http://bad_host:80" }), "upstream: the host"},
		{"unspecified address", good(func(r *pluginv1.Route) { r.Upstream = "http://0.0.0.0:80" }), "upstream: the address"},
		{"multicast address", good(func(r *pluginv1.Route) { r.Upstream = "http://224.0.0.1:80" }), "upstream: the address"},
		{"scheme case", good(func(r *pluginv1.Route) { r.Upstream = "HTTP://10.0.0.2:80" }), "upstream"},
		{"trailing slash", good(func(r *pluginv1.Route) { r.Upstream = "http://10.0.0.2:80/" }), "upstream"},
		{"ipv6 without brackets", good(func(r *pluginv1.Route) { r.Upstream = "http://fd00::4:80" }), "upstream"},
		{"ipv6 zone", good(func(r *pluginv1.Route) { r.Upstream = "http://[fe80::1%25eth0]:80" }), "upstream"},
		{"bracketed ipv4", good(func(r *pluginv1.Route) { r.Upstream = "http://[10.0.0.2]:80" }), "upstream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, reason := Check(tt.route)
			if tt.reason == "" {
				if reason != "" {
					t.Fatalf("refused: %s", reason)
				}
				if c.Upstream != "http://"+c.Dial() {
					t.Errorf("Dial() = %q does not rebuild upstream %q", c.Dial(), c.Upstream)
				}
				return
			}
			if !strings.HasPrefix(reason, tt.reason) {
				t.Fatalf("reason = %q, want prefix %q", reason, tt.reason)
			}
			// The reason never quotes the route's data.
			for _, part := range append(slices.Clone(tt.route.GetHosts()), tt.route.GetUpstream(), tt.route.GetName()) {
				if len(part) > 3 && strings.Contains(reason, part) {
					t.Errorf("reason %q quotes %q", reason, part)
				}
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	routes := []*pluginv1.Route{
		{AppId: 3, Name: "shop", Hosts: []string{"shop.apps.example.com", "shop.example.org", "shop.apps.example.com"}, Upstream: "http://10.0.0.2:8080"},
		{AppId: 1, Name: "blog", Hosts: []string{"blog.apps.example.com", "shop.example.org"}, Upstream: "http://10.0.0.3:80"},
		{AppId: 9, Name: "blog", Hosts: []string{"blog2.apps.example.com"}, Upstream: "http://10.0.0.4:80"},
		{AppId: 5, Name: "copy", Hosts: []string{"blog.apps.example.com"}, Upstream: "http://10.0.0.5:80"},
		{AppId: 6, Name: "bad", Hosts: []string{"x`"}, Upstream: "http://10.0.0.5:80"},
	}
	want := "blog [blog.apps.example.com shop.example.org] http://10.0.0.3:80\n" +
		"shop [shop.apps.example.com] http://10.0.0.2:8080\n"
	wantSkipped := "6 - host 1: \n" + // only the prefix is compared
		"9 - another route has the same name\n" +
		"5 - every host belongs to another route\n" +
		"5 blog.apps.example.com another route has this host\n" +
		"3 shop.example.org another route has this host\n"
	for i := range 20 {
		in := slices.Clone(routes)
		rand.New(rand.NewPCG(uint64(i), 1)).Shuffle(len(in), func(a, b int) { in[a], in[b] = in[b], in[a] })
		kept, skipped := Prepare(in)
		var got strings.Builder
		for _, c := range kept {
			fmt.Fprintf(&got, "%s %v %s\n", c.Name, c.Hosts, c.Upstream)
		}
		if got.String() != want {
			t.Fatalf("shuffle %d: kept\n%s\nwant\n%s", i, got.String(), want)
		}
		var gs []string
		for _, s := range skipped {
			host := s.Host
			if host == "" {
				host = "-"
			}
			gs = append(gs, fmt.Sprintf("%d %s %s", s.Route.GetAppId(), host, s.Reason))
		}
		for _, w := range strings.Split(strings.TrimSpace(wantSkipped), "\n") {
			if !slices.ContainsFunc(gs, func(g string) bool { return strings.HasPrefix(g, w) }) {
				t.Errorf("shuffle %d: skipped %q is missing from %q", i, w, gs)
			}
		}
		if len(gs) != 5 {
			t.Errorf("shuffle %d: skipped %q", i, gs)
		}
	}
	// The input is not modified.
	if len(routes[0].GetHosts()) != 3 || routes[1].GetHosts()[1] != "shop.example.org" {
		t.Error("Prepare modified its input")
	}
}

func TestLogSkipped(t *testing.T) {
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &buf, JSONFormat: true})
	_, skipped := Prepare([]*pluginv1.Route{
		{Name: "a", Hosts: []string{"secret`host.example.com"}, Upstream: "http://10.0.0.1:80"},
		{Name: "b", Hosts: []string{"b.example.com"}, Upstream: "http://hidden_upstream:80"},
	})
	LogSkipped(log, "Test", skipped, 2, 7)
	out := buf.String()
	for _, leak := range []string{"secret", "hidden_upstream"} {
		if strings.Contains(out, leak) {
			t.Errorf("the log quotes %q: %s", leak, out)
		}
	}
	if !strings.Contains(out, `"skipped":2`) || !strings.Contains(out, `"generation":7`) || !strings.Contains(out, `"route":"\"a\""`) {
		t.Errorf("log: %s", out)
	}
	buf.Reset()
	LogSkipped(log, "Test", nil, 2, 7)
	if buf.Len() != 0 {
		t.Errorf("logged with nothing skipped: %s", buf.String())
	}
}
