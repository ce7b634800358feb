// Package routetest is the test kit of the proxy emitter plugins: the route
// tables they render in their unit tests, the routes every one of them must
// leave out, and the checks that are the same for every emitter (the output
// does not depend on the table's order; an evil route never reaches the
// output or the log; a render through the real gRPC path is the in-process
// one).
//
// What an emitter writes is its own: golden files, the output's shape and
// its syntax stay in the plugin's tests.
package routetest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// SmallTable is a route table like the core's, every route valid: apps on
// two workers, one with verified custom domains, one with a worker by name,
// one on IPv6. The routes are not in name order. Each call returns new
// routes.
func SmallTable() []*pluginv1.Route {
	return []*pluginv1.Route{
		{AppId: 3, Name: "shop", Hosts: []string{"shop.apps.example.com", "shop.example.org", "www.shop.example.org"}, Upstream: "http://10.8.0.2:8080"},
		{AppId: 1, Name: "blog", Hosts: []string{"blog.apps.example.com"}, Upstream: "http://10.8.0.3:3000"},
		{AppId: 2, Name: "api-v2", Hosts: []string{"api-v2.apps.example.com", "api.example.net"}, Upstream: "http://worker-2.wg.internal:8080"},
		{AppId: 4, Name: "v6", Hosts: []string{"v6.apps.example.com"}, Upstream: "http://[fd00::4]:8080"},
	}
}

// ManyRoutes is a valid table of n apps named app-0 to app-<n-1> (app ids 1
// to n), each with its platform subdomain and every third with a custom
// domain.
func ManyRoutes(n int) []*pluginv1.Route {
	routes := make([]*pluginv1.Route, n)
	for i := range routes {
		name := fmt.Sprintf("app-%d", i)
		hosts := []string{name + ".apps.example.com"}
		if i%3 == 0 {
			hosts = append(hosts, fmt.Sprintf("www.customer-%d.example.org", i))
		}
		routes[i] = &pluginv1.Route{
			AppId: int64(i + 1), Name: name, Hosts: hosts,
			Upstream: fmt.Sprintf("http://10.8.%d.%d:%d", i/250%256, i%250+1, 8080+i%10),
		}
	}
	return routes
}

// ContestedRoutes are routes that, added to ManyRoutes(n) with n of 10 or
// more, contest what it has: two more routes named app-7 (app ids 9001 and
// 9002) and one (zz-thief, 9003) claiming app-9's platform host. Which
// route wins must not depend on the table's order.
func ContestedRoutes() []*pluginv1.Route {
	return []*pluginv1.Route{
		{AppId: 9001, Name: "app-7", Hosts: []string{"other.example.com"}, Upstream: "http://10.0.0.9:80"},
		{AppId: 9002, Name: "app-7", Hosts: []string{"third.example.com"}, Upstream: "http://10.0.0.9:81"},
		{AppId: 9003, Name: "zz-thief", Hosts: []string{"app-9.apps.example.com", "own.example.com"}, Upstream: "http://10.0.0.9:82"},
	}
}

// Shuffles is how many shuffled copies of the table CheckDeterministic
// renders.
const Shuffles = 20

// CheckDeterministic checks that render gives the same bytes for routes
// whatever happens around it: rendered twice, rendered from Shuffles
// shuffled deep copies (proto.Clone, a fixed seed), and rendered at another
// generation. It also checks that rendering neither reordered nor changed
// routes. render renders a table at a generation and fails the test itself
// on an error (it may check the output's syntax on the way).
func CheckDeterministic(t testing.TB, render func(routes []*pluginv1.Route, generation uint64) []byte, routes []*pluginv1.Route) {
	t.Helper()
	before := make([]*pluginv1.Route, len(routes))
	copies := make([]*pluginv1.Route, len(routes))
	for i, r := range routes {
		before[i], copies[i] = r, proto.Clone(r).(*pluginv1.Route)
	}
	first := render(routes, 1)
	if again := render(routes, 1); !bytes.Equal(first, again) {
		t.Fatal("two renders of the same table differ")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range Shuffles {
		shuffled := make([]*pluginv1.Route, len(routes))
		for j, r := range routes {
			shuffled[j] = proto.Clone(r).(*pluginv1.Route)
		}
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if got := render(shuffled, 1); !bytes.Equal(first, got) {
			t.Fatalf("shuffle %d renders different bytes", i)
		}
	}
	if got := render(routes, 99); !bytes.Equal(first, got) {
		t.Error("the generation changed the output")
	}
	for i, r := range routes {
		if r != before[i] {
			t.Fatalf("Render reordered the request's routes (index %d)", i)
		}
		if !proto.Equal(r, copies[i]) {
			t.Fatalf("Render changed route %d: %v, was %v", i, r, copies[i])
		}
	}
}

// GoodRoute is the valid route rendered beside each of EvilRoutes: its
// host, good.apps.example.com, must reach the output.
func GoodRoute() *pluginv1.Route {
	return &pluginv1.Route{AppId: 1, Name: "good", Hosts: []string{"good.apps.example.com"}, Upstream: "http://10.0.0.1:8080"}
}

// EvilRoute is a route that fails route.Check: an emitter must leave it out
// whole, whatever its proxy's syntax.
type EvilRoute struct {
	// Name says what is wrong with the route (a subtest name).
	Name string
	// Route is the route.
	Route *pluginv1.Route
	// Mark is a part of the route that must never appear in the output.
	Mark string
}

// EvilRoutes are the injection cases of the emitters: hosts that would
// break out of Caddy's JSON, an nginx block or a Traefik rule, or are no
// DNS names; route names no proxy may see; upstreams that are not exactly
// http://<host>:<port>. Each call returns new routes.
func EvilRoutes() []EvilRoute {
	const up = "http://10.0.0.2:80"
	host := func(name, mark string, hosts ...string) EvilRoute {
		return EvilRoute{Name: name, Route: &pluginv1.Route{Name: mark, Hosts: hosts, Upstream: up}, Mark: mark}
	}
	named := func(name, routeName, mark string) EvilRoute {
		return EvilRoute{Name: name, Route: &pluginv1.Route{Name: routeName, Hosts: []string{mark + ".example.com"}, Upstream: up}, Mark: mark}
	}
	upstream := func(name, mark, upstream string) EvilRoute {
		return EvilRoute{Name: name, Route: &pluginv1.Route{Name: mark, Hosts: []string{mark + ".example.com"}, Upstream: upstream}, Mark: mark}
	}
	return []EvilRoute{
		// Hosts.
		{Name: "json break-out", Route: &pluginv1.Route{Name: "a1", Hosts: []string{`a1.example.com"]},{"host":["evil.com`}, Upstream: up}, Mark: "evil.com"},
		{Name: "semicolon and block", Route: &pluginv1.Route{Name: "a2", Hosts: []string{"a2.example.com; } server { server_name evil.com"}, Upstream: up}, Mark: "evil.com"},
		{Name: "backtick rule break-out", Route: &pluginv1.Route{Name: "a3", Hosts: []string{"a3.example.com`) || Host(`evil.com"}, Upstream: up}, Mark: "evil.com"},
		host("semicolon alone", "a4", "a4.example.com;"),
		host("backtick alone", "a5", "a5`.example.com"),
		host("brace", "a6", "a6.example.com{"),
		host("hash", "a7", "a7.example.com#"),
		host("double quote", "a8", `a8".example.com`),
		host("single quote", "a9", `a9'.example.com`),
		host("backslash", "b1", `b1\.example.com`),
		host("space", "b2", "b2 .example.com"),
		host("newline", "b3", "b3.example.com\nrule"),
		host("newline and directive", "b4", "b4.example.com\nreturn 302 http://evil.com"),
		host("uppercase", "b5", "B5.example.com"),
		host("wildcard", "b6", "*.example.com"),
		host("variable", "b7", "$host.example.com"),
		host("regex name", "b8", `~^(.+)\.example\.com$`),
		host("placeholder", "b9", "{env.HOME}.example.com"),
		host("unicode", "c1", "bücher.example.com"),
		host("ip as host", "c2", "10.0.0.9"),
		host("underscore host", "c3", "under_score.example.com"),
		host("no hosts", "c4"),
		host("second host brace", "c5", "c5.example.com", "x{"),
		host("second host semicolon", "c6", "c6.example.com", "x;"),
		host("second host backtick", "c7", "c7.example.com", "x`)"),
		// Route names.
		named("name uppercase", "Evil", "evil1"),
		named("name with path", "../nginx", "evil2"),
		named("name with @", "x@file", "evil3"),
		named("name with quote", `x"`, "evil4"),
		named("name with backtick", "x`", "evil5"),
		named("name with semicolon", "x;", "evil6"),
		named("name with underscore", "_wisehosting", "evil7"),
		named("name too long", strings.Repeat("x", 64), "evil8"),
		named("empty name", "", "evil9"),
		// Upstreams.
		upstream("https upstream", "d1", "https://10.0.0.2:443"),
		upstream("no port", "d2", "http://10.0.0.2"),
		upstream("path", "d3", "http://10.0.0.2:80/admin"),
		upstream("trailing slash", "d4", "http://10.0.0.2:80/"),
		upstream("user info", "d5", "http://u:p@10.0.0.2:80"),
		upstream("query with quote", "d6", `http://10.0.0.2:80?x="`),
		upstream("query with backtick", "d7", "http://10.0.0.2:80?x=`"),
		upstream("upstream semicolon", "d8", "http://10.0.0.2:80; return 200 evil"),
		upstream("port 0", "d9", "http://10.0.0.2:0"),
		upstream("port too big", "e1", "http://10.0.0.2:70000"),
		upstream("port leading zero", "e2", "http://10.0.0.2:080"),
		upstream("bad upstream host", "e3", "http://bad_host:80"),
		upstream("unix socket", "e4", "http://unix//var/run/docker.sock:80"),
		upstream("unix socket with colon", "e5", "http://unix:/var/run/docker.sock:80"),
		upstream("variable upstream", "e6", "http://$host:80"),
		upstream("placeholder upstream", "e7", "http://{env.X}:80"),
		upstream("unspecified address", "e8", "http://0.0.0.0:80"),
		upstream("scheme case", "e9", "HTTP://10.0.0.2:80"),
		upstream("not a url", "f1", "javascript:alert(1)"),
		upstream("ipv6 zone", "f2", "http://[fe80::1%25eth0]:80"),
	}
}

// CheckLeftOut checks what every emitter owes an evil route it rendered
// beside GoodRoute: e.Mark is not in body, and log (the plugin's log as
// plugintest.JSONLogger writes it) warns that one route was skipped and
// names it without quoting any of its hosts or its upstream.
func CheckLeftOut(t testing.TB, e EvilRoute, body []byte, log string) {
	t.Helper()
	if bytes.Contains(body, []byte(e.Mark)) {
		t.Errorf("%q reached the output: %s", e.Mark, body)
	}
	if !strings.Contains(log, `"@level":"warn"`) || !strings.Contains(log, `"skipped":1`) {
		t.Errorf("no warning for the skipped route: %s", log)
	}
	for _, h := range e.Route.GetHosts() {
		if h != "" && strings.Contains(log, h) {
			t.Errorf("the log quotes host %q: %s", h, log)
		}
	}
	if strings.Contains(log, e.Route.GetUpstream()) {
		t.Errorf("the log quotes the upstream: %s", log)
	}
}

// CheckRenderOverGRPC serves impl through the real gRPC path
// (plugintest.Connect, with the sdk's message limits on both sides),
// configures it with an empty config block ({}), renders routes at
// generation 1 and checks that the answer is what direct renders
// in-process, body and content type. It returns the body received over
// gRPC.
func CheckRenderOverGRPC(t testing.TB, impl sdk.Proxy, direct sdk.Proxy, routes []*pluginv1.Route) []byte {
	t.Helper()
	c := plugintest.Connect(t, impl)
	ctx := context.Background()
	if err := c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	proxy, ok := c.(sdk.Proxy)
	if !ok {
		t.Fatalf("%T is not an sdk.Proxy", c)
	}
	in := &pluginv1.RenderRequest{Routes: routes, Generation: 1}
	resp, err := proxy.Render(ctx, in)
	if err != nil {
		t.Fatalf("Render over gRPC: %v", err)
	}
	want, err := direct.Render(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want.GetBody(), resp.GetBody()) || want.GetContentType() != resp.GetContentType() {
		t.Fatal("the gRPC render differs from the in-process one")
	}
	t.Logf("%d routes over gRPC: %.1f MiB", len(routes), float64(len(resp.GetBody()))/(1<<20))
	return resp.GetBody()
}
