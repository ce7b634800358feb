package nginx

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hostname"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route/routetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// newTestPlugin returns a plugin logging JSON into a buffer, as sdk.Logger
// does to stderr.
func newTestPlugin(t *testing.T, configHCL string) (*Plugin, *plugintest.LogBuffer) {
	t.Helper()
	log, buf := plugintest.JSONLogger()
	p := newWithLogger(log)
	if err := configure(t, p, configHCL); err != nil {
		t.Fatal(err)
	}
	return p, buf
}

func configure(t *testing.T, p *Plugin, src string) error {
	t.Helper()
	return plugintest.Configure(p, Spec(), src)
}

func renderOK(t *testing.T, p *Plugin, routes []*pluginv1.Route) []byte {
	t.Helper()
	return renderGen(t, p, routes, 1)
}

// renderGen renders routes at generation gen and checks the answer's
// syntax.
func renderGen(t *testing.T, p *Plugin, routes []*pluginv1.Route, gen uint64) []byte {
	t.Helper()
	resp, err := p.Render(context.Background(), &pluginv1.RenderRequest{Routes: routes, Generation: gen})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetContentType() != "text/plain; charset=utf-8" {
		t.Errorf("content type %q", resp.GetContentType())
	}
	checkSyntax(t, resp.GetBody())
	return resp.GetBody()
}

// checkSyntax checks what can be checked of nginx syntax without nginx:
// braces balance, every line is a comment, a block opening or closing, or
// one directive ending in ';'.
func checkSyntax(t *testing.T, b []byte) {
	t.Helper()
	depth := 0
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		l := strings.TrimSpace(line)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasSuffix(l, "{"):
			depth++
		case l == "}":
			depth--
		case strings.HasSuffix(l, ";") && strings.Count(l, ";") == 1 && !strings.ContainsAny(l, "{}#\"\\"):
		default:
			t.Fatalf("line %d is not a directive, block or comment: %q", i+1, line)
		}
		if depth < 0 || depth > 2 {
			t.Fatalf("line %d: nesting depth %d", i+1, depth)
		}
	}
	if depth != 0 {
		t.Fatalf("unbalanced braces (depth %d at the end)", depth)
	}
}

// smallTable is a route table like the core's (routetest.SmallTable) and
// one route the core got wrong, a host breaking out of its server block.
func smallTable() []*pluginv1.Route {
	return append(routetest.SmallTable(),
		&pluginv1.Route{AppId: 5, Name: "bad", Hosts: []string{"bad.apps.example.com; } server { listen 80; server_name evil.com"}, Upstream: "http://10.8.0.2:8081"})
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name, config string
		routes       []*pluginv1.Route
	}{
		{name: "defaults", routes: smallTable()},
		{name: "listen", config: `
			listen = ["127.0.0.1:8080", "[::1]:8080", "443 ssl http2", "*:8443 proxy_protocol"]
			server_names_hash_bucket_size = 128
			server_names_hash_max_size = 4096`, routes: smallTable()},
		{name: "empty", routes: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestPlugin(t, tt.config)
			got := renderOK(t, p, tt.routes)
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n got:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

// splitDocument cuts a rendered document into its files.
func splitDocument(t *testing.T, doc []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var names []string
	for _, part := range strings.SplitAfter(string(doc), "\n") {
		if name, ok := strings.CutPrefix(part, "# file: "); ok {
			name = strings.TrimSuffix(name, "\n")
			names = append(names, name)
			out[name] = []byte{}
			continue
		}
		if len(names) == 0 {
			t.Fatalf("the document does not start with a # file: line: %q", part)
		}
		out[names[len(names)-1]] = append(out[names[len(names)-1]], part...)
	}
	if !slices.IsSorted(names) {
		t.Errorf("files not in name order: %q", names)
	}
	return out
}

// The rendered shape, checked piece by piece (the golden files pin bytes).
func TestShape(t *testing.T) {
	p, _ := newTestPlugin(t, "")
	files := splitDocument(t, renderOK(t, p, smallTable()))
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	if fmt.Sprint(names) != "[_wisehosting.conf api-v2.conf blog.conf shop.conf v6.conf]" {
		t.Fatalf("files %v (the bad route must be left out)", names)
	}
	for n, data := range files {
		if !strings.HasPrefix(string(data), Marker) {
			t.Errorf("%s does not start with the marker", n)
		}
	}
	shop := string(files["shop.conf"])
	for _, want := range []string{
		"\n    listen 80;\n",
		"\n    server_name shop.apps.example.com shop.example.org www.shop.example.org;\n",
		"\n        proxy_pass http://10.8.0.2:8080;\n",
		"\n        proxy_set_header Host $host;\n",
		"\n        proxy_set_header Connection $wisehosting_connection_upgrade;\n",
	} {
		if !strings.Contains(shop, want) {
			t.Errorf("shop.conf lacks %q:\n%s", want, shop)
		}
	}
	if !strings.Contains(string(files["v6.conf"]), "proxy_pass http://[fd00::4]:8080;") {
		t.Errorf("v6.conf: %s", files["v6.conf"])
	}
	if !strings.Contains(string(files["api-v2.conf"]), "proxy_pass http://worker-2.wg.internal:8080;") {
		t.Errorf("api-v2.conf: %s", files["api-v2.conf"])
	}
	shared := string(files[SharedFile])
	if !strings.Contains(shared, "map $http_upgrade $wisehosting_connection_upgrade {") || strings.Contains(shared, "server_names_hash") {
		t.Errorf("shared file:\n%s", shared)
	}
}

func TestDeterministic(t *testing.T) {
	p, _ := newTestPlugin(t, "")
	render := func(routes []*pluginv1.Route, gen uint64) []byte { return renderGen(t, p, routes, gen) }
	routetest.CheckDeterministic(t, render, append(routetest.ManyRoutes(500), routetest.ContestedRoutes()...))
}

func TestInjection(t *testing.T) {
	p0, _ := newTestPlugin(t, "")
	want := renderOK(t, p0, []*pluginv1.Route{routetest.GoodRoute()})
	for _, tt := range routetest.EvilRoutes() {
		t.Run(tt.Name, func(t *testing.T) {
			p, logs := newTestPlugin(t, "")
			body := renderOK(t, p, []*pluginv1.Route{routetest.GoodRoute(), tt.Route})
			// The bad route is left out whole: the output is the good
			// route's alone.
			if !bytes.Equal(body, want) {
				t.Errorf("output differs from the good route's alone:\n%s", body)
			}
			routetest.CheckLeftOut(t, tt, body, logs.String())
		})
	}
}

// Every token written after server_name and proxy_pass is a checked value.
func TestOnlyCheckedValues(t *testing.T) {
	p, _ := newTestPlugin(t, "")
	body := renderOK(t, p, append(routetest.ManyRoutes(300), smallTable()...))
	for _, line := range strings.Split(string(body), "\n") {
		l := strings.TrimSpace(line)
		if names, ok := strings.CutPrefix(l, "server_name "); ok {
			for _, h := range strings.Fields(strings.TrimSuffix(names, ";")) {
				if err := hostname.Valid(h); err != nil {
					t.Errorf("server_name %q: %v", h, err)
				}
			}
		}
		if up, ok := strings.CutPrefix(l, "proxy_pass "); ok && strings.ContainsAny(strings.TrimSuffix(up, ";"), " ;{}#$'\"\\") {
			t.Errorf("proxy_pass %q", up)
		}
	}
}

// Duplicate hosts within a route are written once; the order is kept.
// A host another route (by name) already has is dropped from the later one.
func TestDuplicateHosts(t *testing.T) {
	p, _ := newTestPlugin(t, "")
	files := splitDocument(t, renderOK(t, p, []*pluginv1.Route{
		{Name: "b", Hosts: []string{"b.example.com", "a.example.com", "b.example.com"}, Upstream: "http://10.0.0.1:80"},
		{Name: "a", Hosts: []string{"a.example.com", "x.example.com"}, Upstream: "http://10.0.0.2:80"},
	}))
	if !strings.Contains(string(files["b.conf"]), "server_name b.example.com;\n") {
		t.Errorf("b.conf:\n%s", files["b.conf"])
	}
	if !strings.Contains(string(files["a.conf"]), "server_name a.example.com x.example.com;\n") {
		t.Errorf("a.conf:\n%s", files["a.conf"])
	}
}

// configCases are config blocks the plugin accepts (want: a check of the
// settings) or rejects (wantErr: part of the message).
var configCases = []struct {
	name, hcl, wantErr string
	want               func(*settings) bool
}{
	{name: "defaults", want: func(s *settings) bool {
		return s.dir == "/etc/nginx/wisehosting.d" && fmt.Sprint(s.listen) == "[80]" && s.timeout == 30*time.Second &&
			fmt.Sprint(s.testCmd) == "[nginx -t]" && fmt.Sprint(s.reloadCmd) == "[nginx -s reload]" && s.bucketSize == 0 && s.maxSize == 0
	}},
	{name: "dir", hcl: `dir = "/srv/nginx/apps/"`, want: func(s *settings) bool { return s.dir == "/srv/nginx/apps" }},
	{name: "listen forms", hcl: `listen = ["80", "[::]:80", "127.0.0.1:8080", "*:8081", "443 ssl http2", "[::]:443  ssl   http2", "10.0.0.1:81 proxy_protocol"]`,
		want: func(s *settings) bool {
			return fmt.Sprintf("%q", s.listen) == `["80" "[::]:80" "127.0.0.1:8080" "*:8081" "443 ssl http2" "[::]:443 ssl http2" "10.0.0.1:81 proxy_protocol"]`
		}},
	{name: "ipv6 canonical", hcl: `listen = ["[0:0::1]:80"]`, want: func(s *settings) bool { return fmt.Sprint(s.listen) == "[[::1]:80]" }},
	{name: "prefix and conf", hcl: "nginx = \"/usr/sbin/nginx\"\nprefix = \"/var/lib/edge\"\nconf = \"conf/nginx.conf\"",
		want: func(s *settings) bool {
			return fmt.Sprint(s.testCmd) == "[/usr/sbin/nginx -p /var/lib/edge -c conf/nginx.conf -t]" &&
				fmt.Sprint(s.reloadCmd) == "[/usr/sbin/nginx -p /var/lib/edge -c conf/nginx.conf -s reload]"
		}},
	{name: "command overrides", hcl: "test_command = [\"sudo\", \"-n\", \"nginx\", \"-t\"]\nreload_command = [\"/bin/systemctl\", \"reload\", \"nginx\"]\nprefix = \"/x\"",
		want: func(s *settings) bool {
			return fmt.Sprint(s.testCmd) == "[sudo -n nginx -t]" && fmt.Sprint(s.reloadCmd) == "[/bin/systemctl reload nginx]"
		}},
	{name: "timeout", hcl: `timeout = "2m"`, want: func(s *settings) bool { return s.timeout == 2*time.Minute }},
	{name: "hash sizes", hcl: "server_names_hash_bucket_size = 128\nserver_names_hash_max_size = 4096",
		want: func(s *settings) bool { return s.bucketSize == 128 && s.maxSize == 4096 }},
	{name: "hash sizes zero", hcl: "server_names_hash_bucket_size = 0\nserver_names_hash_max_size = 0",
		want: func(s *settings) bool { return s.bucketSize == 0 && s.maxSize == 0 }},

	{name: "relative dir", hcl: `dir = "wisehosting.d"`, wantErr: `dir = "wisehosting.d": not an absolute path`},
	{name: "empty dir", hcl: `dir = ""`, wantErr: "dir: empty"},
	{name: "dir with newline", hcl: `dir = "/etc/nginx/x\n"`, wantErr: "control characters"},
	{name: "no listen", hcl: `listen = []`, wantErr: "at least one listen directive"},
	{name: "listen semicolon", hcl: `listen = ["80; include /etc/passwd"]`, wantErr: "only letters, digits"},
	{name: "listen brace", hcl: `listen = ["80 {"]`, wantErr: "only letters, digits"},
	{name: "listen variable", hcl: `listen = ["$port"]`, wantErr: "only letters, digits"},
	{name: "listen newline", hcl: `listen = ["80\nserver_name evil"]`, wantErr: "only letters, digits"},
	{name: "listen empty", hcl: `listen = [""]`, wantErr: "empty"},
	{name: "listen port 0", hcl: `listen = ["0"]`, wantErr: "port is not a number"},
	{name: "listen port too big", hcl: `listen = ["65536"]`, wantErr: "port is not a number"},
	{name: "listen leading zero", hcl: `listen = ["080"]`, wantErr: "port is not a number"},
	{name: "listen host name", hcl: `listen = ["localhost:80"]`, wantErr: "host names are not accepted"},
	{name: "listen unix socket", hcl: `listen = ["unix:/run/nginx.sock"]`, wantErr: "only letters, digits"},
	{name: "listen bad ipv6", hcl: `listen = ["[1.2.3.4]:80"]`, wantErr: "not an IPv6 address"},
	{name: "listen no port", hcl: `listen = ["127.0.0.1"]`, wantErr: "port is not a number"},
	{name: "listen default_server", hcl: `listen = ["80 default_server"]`, wantErr: "default_server cannot be given"},
	{name: "listen socket option", hcl: `listen = ["80 reuseport"]`, wantErr: `parameter "reuseport" is not supported`},
	{name: "listen param twice", hcl: `listen = ["443 ssl ssl"]`, wantErr: `"ssl" is given twice`},
	{name: "listen duplicate", hcl: `listen = ["80", "*:80"]`, wantErr: `listen[1] = "*:80": the same address as listen[0]`},
	{name: "listen duplicate unspecified", hcl: `listen = ["0.0.0.0:80", "80 ssl"]`, wantErr: "the same address as listen[0]"},
	{name: "listen wrong type", hcl: `listen = "80"`, wantErr: "list of string required"},
	{name: "nginx relative path", hcl: `nginx = "bin/nginx"`, wantErr: "a bare name (looked up in PATH) or an absolute path"},
	{name: "nginx empty", hcl: `nginx = ""`, wantErr: "nginx: empty"},
	{name: "relative prefix", hcl: `prefix = "nginx"`, wantErr: "not an absolute path"},
	{name: "empty conf", hcl: `conf = ""`, wantErr: "conf: empty"},
	{name: "empty test command", hcl: `test_command = []`, wantErr: "test_command: empty"},
	{name: "reload command relative", hcl: `reload_command = ["./reload.sh"]`, wantErr: "reload_command[0]"},
	{name: "reload command empty program", hcl: `reload_command = ["", "reload"]`, wantErr: "reload_command[0]: empty"},
	{name: "bad timeout", hcl: `timeout = "soon"`, wantErr: `timeout = "soon"`},
	{name: "timeout too short", hcl: `timeout = "10ms"`, wantErr: "a duration from 1s to 10m0s"},
	{name: "timeout too long", hcl: `timeout = "1h"`, wantErr: "a duration from 1s to 10m0s"},
	{name: "bucket not power of two", hcl: `server_names_hash_bucket_size = 100`, wantErr: "a power of two"},
	{name: "bucket too big", hcl: `server_names_hash_bucket_size = 65536`, wantErr: "a power of two"},
	{name: "bucket fraction", hcl: `server_names_hash_bucket_size = 64.5`, wantErr: "cannot unmarshal"},
	{name: "max size too small", hcl: `server_names_hash_max_size = 100`, wantErr: "from 512 to 4194304"},
	{name: "unknown attribute", hcl: `ssl_certificate = "/etc/ssl/x.pem"`, wantErr: "Unsupported argument"},
}

func TestConfigure(t *testing.T) {
	for _, tt := range configCases {
		t.Run(tt.name, func(t *testing.T) {
			p := newWithLogger(hclog.NewNullLogger())
			before := p.settings.Load()
			err := configure(t, p, tt.hcl)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if p.settings.Load() != before {
					t.Error("a rejected config changed the settings")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.settings.Load(); !tt.want(got) {
				t.Errorf("settings = %+v", *got)
			}
		})
	}
}

// A rejected config leaves the previous one in force.
func TestConfigureKeepsPrevious(t *testing.T) {
	p, _ := newTestPlugin(t, `listen = ["8080"]`)
	if err := configure(t, p, `listen = ["80;"]`); err == nil {
		t.Fatal("bad config accepted")
	}
	if fmt.Sprint(p.settings.Load().listen) != "[8080]" {
		t.Errorf("listen = %v", p.settings.Load().listen)
	}
}

func TestInfo(t *testing.T) {
	p := New()
	info, err := p.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.GetKind() != sdk.KindProxy || info.GetName() != Name || info.GetVersion() != Version || info.GetDescription() == "" {
		t.Errorf("info = %v", info)
	}
	if !slices.Contains(info.GetCapabilities(), sdk.CapabilityProxyApply) {
		t.Errorf("capabilities = %v", info.GetCapabilities())
	}
	if k := sdk.KindOf(p); k != sdk.KindProxy {
		t.Errorf("KindOf = %q", k)
	}
}

func TestRender20000(t *testing.T) {
	p, logs := newTestPlugin(t, "")
	routes := routetest.ManyRoutes(20000)
	start := time.Now()
	body := renderOK(t, p, routes)
	took := time.Since(start)
	if n := strings.Count(string(body), "\nserver {\n"); n != 20000 {
		t.Errorf("%d server blocks", n)
	}
	if len(body) >= sdk.MaxMessageSize {
		t.Errorf("%d bytes exceed the plugin message limit", len(body))
	}
	if logs.String() != "" {
		t.Errorf("unexpected log: %s", logs.String())
	}
	t.Logf("20,000 routes: %d bytes (%.1f MiB) rendered in %v", len(body), float64(len(body))/(1<<20), took)
}

func BenchmarkRender20000(b *testing.B) {
	p := newWithLogger(hclog.NewNullLogger())
	req := &pluginv1.RenderRequest{Routes: routetest.ManyRoutes(20000), Generation: 1}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Render(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
