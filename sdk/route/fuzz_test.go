package route

import (
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/sdk/hostname"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// FuzzPrepare: whatever the table holds, what Prepare keeps has a valid
// name, only hosts of bytes a-z, 0-9, '-' and '.' that hostname accepts
// (each claimed by one route), and an upstream that splits back into its
// host and port; every input route is either kept or reported.
func FuzzPrepare(f *testing.F) {
	f.Add("shop", "shop.apps.example.com\nshop.example.org", "http://10.0.0.2:8080", "shop", "shop.example.org", "http://[fd00::1]:80")
	f.Add("a`", "a.example.com`) || Host(`evil.com", "http://10.0.0.2:80", "b", "*.example.com;", "http://x:1")
	f.Fuzz(func(t *testing.T, name1, hosts1, up1, name2, hosts2, up2 string) {
		in := []*pluginv1.Route{
			{AppId: 1, Name: name1, Hosts: strings.Split(hosts1, "\n"), Upstream: up1},
			{AppId: 2, Name: name2, Hosts: strings.Split(hosts2, "\n"), Upstream: up2},
		}
		kept, skipped := Prepare(in)
		whole := 0
		for _, s := range skipped {
			if s.Host == "" {
				whole++
			}
		}
		if len(kept)+whole != len(in) {
			t.Fatalf("%d kept + %d skipped of %d routes", len(kept), whole, len(in))
		}
		claimed := map[string]bool{}
		for _, c := range kept {
			if !ValidName(c.Name) || len(c.Hosts) == 0 {
				t.Fatalf("kept %+v", c)
			}
			for _, h := range c.Hosts {
				if hostname.Valid(h) != nil || strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" || claimed[h] {
					t.Fatalf("kept host %q", h)
				}
				claimed[h] = true
			}
			if c.Upstream != "http://"+c.Dial() {
				t.Fatalf("upstream %q, dial %q", c.Upstream, c.Dial())
			}
		}
	})
}
