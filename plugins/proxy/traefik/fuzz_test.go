package traefik

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route"
)

// ruleShape is the only rule render may write: Host matchers of validated
// names joined by " || ".
var ruleShape = regexp.MustCompile("^Host\\(`[a-z0-9.-]+`\\)( \\|\\| Host\\(`[a-z0-9.-]+`\\))*$")

// FuzzRender feeds arbitrary names, hosts and upstreams to the rule
// builder: whatever comes in, the output is JSON whose every rule has the
// Host(`…`) shape, whose every router and service is a route that passed
// sdk/route, and whose upstreams are exactly http://host:port.
func FuzzRender(f *testing.F) {
	f.Add("shop", "shop.apps.example.com\nshop.example.org", "http://10.0.0.2:8080", "api", "api.example.net", "http://[fd00::1]:80")
	f.Add("a`", "a.example.com`) || Host(`evil.com", "http://10.0.0.2:80", "b", "*.example.com", "http://x:1")
	f.Add("x", "A.example.com\n\"q\".example.com", "http://10.0.0.2:80/admin", "y", "y.example.com y", "javascript:alert(1)")
	f.Fuzz(func(t *testing.T, name1, hosts1, up1, name2, hosts2, up2 string) {
		routes := []*pluginv1.Route{
			{AppId: 1, Name: name1, Hosts: strings.Split(hosts1, "\n"), Upstream: up1},
			{AppId: 2, Name: name2, Hosts: strings.Split(hosts2, "\n"), Upstream: up2},
		}
		checked, _ := route.Prepare(routes)
		for _, s := range []*settings{defaultSettings(), {entryPoints: []string{"websecure"}, http: HTTPNone}} {
			body := render(s, checked)
			var cfg struct {
				HTTP struct {
					Routers map[string]struct {
						Rule    string `json:"rule"`
						Service string `json:"service"`
					} `json:"routers"`
					Services map[string]struct {
						LoadBalancer struct {
							Servers []struct {
								URL string `json:"url"`
							} `json:"servers"`
						} `json:"loadBalancer"`
					} `json:"services"`
				} `json:"http"`
			}
			if err := json.Unmarshal(body, &cfg); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, body)
			}
			for key, r := range cfg.HTTP.Routers {
				if !ruleShape.MatchString(r.Rule) {
					t.Fatalf("router %q: rule %q", key, r.Rule)
				}
				if !route.ValidName(r.Service) || (key != r.Service && key != r.Service+HTTPRouterSuffix) {
					t.Fatalf("router %q points at service %q", key, r.Service)
				}
			}
			for key, svc := range cfg.HTTP.Services {
				if !route.ValidName(key) || len(svc.LoadBalancer.Servers) != 1 {
					t.Fatalf("service %q: %+v", key, svc)
				}
				if _, _, reason := route.SplitUpstream(svc.LoadBalancer.Servers[0].URL); reason != "" {
					t.Fatalf("service %q: upstream %q: %s", key, svc.LoadBalancer.Servers[0].URL, reason)
				}
			}
		}
	})
}
