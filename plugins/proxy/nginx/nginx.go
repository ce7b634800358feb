// Package nginx is the built-in "nginx" proxy plugin: it turns the route
// table into nginx configuration, one server block per app, and can both
// hand it out (Render, for a pull-style operator) and push it to an nginx
// on the same machine (Apply: write the files, nginx -t, nginx -s reload).
//
// For each route it writes a file <name>.conf holding one server block:
//
//	# managed by wisehosting (nginx proxy plugin); do not edit: every apply rewrites or removes this file
//	# app shop (id 3)
//	server {
//	    listen 80;
//	    server_name shop.apps.example.com shop.example.org;
//
//	    location / {
//	        proxy_pass http://10.8.0.2:8080;
//	        proxy_http_version 1.1;
//	        proxy_set_header Host $host;
//	        proxy_set_header X-Real-IP $remote_addr;
//	        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
//	        proxy_set_header X-Forwarded-Proto $scheme;
//	        proxy_set_header X-Forwarded-Host $host;
//	        proxy_set_header Upgrade $http_upgrade;
//	        proxy_set_header Connection $wisehosting_connection_upgrade;
//	    }
//	}
//
// and one shared file, _wisehosting.conf (SharedFile; the underscore keeps
// it from ever being an app's file name), with the http-level part: a map
// setting $wisehosting_connection_upgrade to "upgrade" when the client asks
// to switch protocols (WebSockets) and to "close" otherwise (what nginx
// sends anyway), the form the nginx documentation gives for WebSocket
// proxying. The variable's prefix keeps it from clashing with the
// operator's own maps. The server_names_hash_* directives are written there
// only when configured, since nginx refuses a directive set twice and many
// nginx.conf files set them already.
//
// The files go into a directory of their own that nginx.conf includes in
// its http block, next to the operator's default server (one answering 404
// for unknown hosts is the usual choice; the plugin never writes
// default_server):
//
//	http {
//	    ...
//	    server { listen 80 default_server; return 404; }
//	    include /etc/nginx/wisehosting.d/*.conf;
//	}
//
// Render returns the same files as one text document: each file, in file
// name order, preceded by a "# file: <name>" line. Included as a whole in
// an http block, the document is itself a valid configuration. Equal route
// tables give byte-equal output whatever their order; the generation is
// not part of it. Routes are checked again with sdk/route, whatever the
// core did: a route whose name, any host or upstream is not safe to write
// unquoted into nginx's configuration is left out and logged (by name), so
// nothing of a route can end a directive or open a block.
//
// Apply writes the files into dir: each new or changed file is written to a
// temporary file in dir (named .wisehosting-*.tmp, which *.conf does not
// match), synced and renamed over the old one, so a crash leaves every file
// either old or new; the files of removed apps are deleted, and the
// directory is synced. The plugin owns exactly the *.conf files whose first
// line starts with "# managed by wisehosting" (Marker); it never touches
// any other file, and leaves out (with a warning) an app whose file name is
// taken by a file it does not own. Then it runs the test command; if that
// fails, every file is put back as it was (changed files rewritten with
// their previous bytes and mode, deleted ones recreated, new ones removed)
// and Apply returns an error carrying the command's output, so nginx keeps
// serving the previous routes and the directory matches them. If the test
// passes it runs the reload command; a failing reload is an error too (the
// files are kept, and the next Apply reloads even if nothing changed). When
// the files on disk already are what the table gives, Apply writes nothing
// and does not reload, except on its first call and its first after a
// Configure (it cannot know whether nginx has loaded what it finds) and
// after a failed reload.
//
// Listening with ssl needs ssl_certificate and ssl_certificate_key in the
// http block of nginx.conf (they apply to every server without its own).
//
// nginx resolves upstream host names when it loads its configuration: a
// route whose worker name does not resolve makes the test fail, and the
// Apply with it, until the name resolves or the route changes; nginx keeps
// serving the previous table meanwhile. nginx -s reload only signals the
// master process, which loads the new configuration in the background
// (against a local nginx, the new routes answered steadily about 0.1s
// after Apply returned; old workers may answer a few requests meanwhile);
// problems only the master can detect (a listen address it cannot bind)
// end up in nginx's error log, not in Apply's result. With the default bucket size
// of 64 bytes (on most CPUs), nginx refuses host names longer than 46
// characters ("could not build server_names_hash"); set
// server_names_hash_bucket_size (here or in nginx.conf) to 128 for names up
// to 110 characters, 256 for 238 and 512 for any.
//
// Configuration (all optional; the values shown are the defaults):
//
//	plugin "proxy" "nginx" {
//	  config {
//	    dir     = "/etc/nginx/wisehosting.d" # absolute; must exist; one plugin instance per directory
//	    listen  = ["80"]                     # listen directives of every app server, e.g. ["80", "[::]:80"],
//	                                         # ["443 ssl http2"]: a port, *:port, IPv4:port or [IPv6]:port,
//	                                         # then any of ssl, http2, proxy_protocol
//	    nginx   = "nginx"                    # the binary: a name looked up in PATH, then /usr/sbin,
//	                                         # /usr/local/sbin, /sbin and /usr/local/nginx/sbin; or an absolute path
//	    prefix  = null                       # passed as -p <prefix> when set (absolute)
//	    conf    = null                       # passed as -c <conf> when set
//	    timeout = "30s"                      # limit of each test or reload command, 1s to 10m
//
//	    test_command   = null  # default [nginx, -p prefix, -c conf, -t] (-p, -c when set)
//	    reload_command = null  # default [nginx, -p prefix, -c conf, -s, reload]
//	                           # Either is a program and its arguments, run directly (no shell);
//	                           # prefix and conf are not added to them.
//
//	    server_names_hash_bucket_size = 0 # written to _wisehosting.conf when set: a power of two, 32 to 32768
//	    server_names_hash_max_size    = 0 # written to _wisehosting.conf when set: 512 to 4194304
//	  }
//	}
//
// Apply needs to write dir and to signal nginx's master process (usually
// root).
package nginx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route"
)

// Name is the plugin's name: plugin "proxy" "nginx".
const Name = "nginx"

// Version is the plugin's release version.
const Version = "0.1.0"

// ContentType is the content type of the rendered configuration.
const ContentType = "text/plain; charset=utf-8"

// Marker starts the first line of every file the plugin writes; a *.conf
// file in dir whose first line does not start with it is not the plugin's.
const Marker = "# managed by wisehosting"

// SharedFile is the name of the file with the http-level directives. App
// names cannot contain '_', so no app's file has this name.
const SharedFile = "_wisehosting.conf"

// ConnectionVariable is the variable the shared map sets for the
// Connection header sent upstream.
const ConnectionVariable = "$wisehosting_connection_upgrade"

// header is the first line of every file the plugin writes.
const header = Marker + " (nginx proxy plugin); do not edit: every apply rewrites or removes this file\n"

// Defaults of the config block.
var (
	// DefaultDir is the directory Apply writes the files into.
	DefaultDir = "/etc/nginx/wisehosting.d"
	// DefaultListen are the listen directives of every app server.
	DefaultListen = []string{"80"}
	// DefaultNginx is the nginx binary the default commands run.
	DefaultNginx = "nginx"
	// DefaultTimeout bounds each test or reload command.
	DefaultTimeout = 30 * time.Second
)

// Limits of the config block.
const (
	minTimeout    = time.Second
	maxTimeout    = 10 * time.Minute
	minBucketSize = 32
	maxBucketSize = 32768
	minMaxSize    = 512
	maxMaxSize    = 4 << 20
	maxListen     = 16
	maxArgs       = 64
)

// listenParams are the listen parameters every app server may repeat on
// the same address (nginx merges them per address). Socket options
// (backlog=, reuseport, …) and default_server may be given once per
// address only, so they belong on the default server in nginx.conf.
var listenParams = []string{"ssl", "http2", "proxy_protocol"}

// Config is the plugin's decoded config block.
type Config struct {
	// Dir is where Apply writes the files; nil means DefaultDir.
	Dir *string `json:"dir"`
	// Listen are the listen directives of every server; nil means
	// DefaultListen.
	Listen []string `json:"listen"`
	// Nginx is the binary of the default commands; nil means DefaultNginx.
	Nginx *string `json:"nginx"`
	// Prefix is passed as -p to the default commands when set.
	Prefix *string `json:"prefix"`
	// Conf is passed as -c to the default commands when set.
	Conf *string `json:"conf"`
	// Timeout bounds each command (a Go duration); nil means
	// DefaultTimeout.
	Timeout *string `json:"timeout"`
	// TestCommand replaces the default nginx -t command when set.
	TestCommand []string `json:"test_command"`
	// ReloadCommand replaces the default nginx -s reload command when set.
	ReloadCommand []string `json:"reload_command"`
	// ServerNamesHashBucketSize is written to the shared file when set
	// (non-zero).
	ServerNamesHashBucketSize *int `json:"server_names_hash_bucket_size"`
	// ServerNamesHashMaxSize is written to the shared file when set
	// (non-zero).
	ServerNamesHashMaxSize *int `json:"server_names_hash_max_size"`
}

// Spec returns the schema of the plugin's config block.
func Spec() *pluginv1.Spec {
	listen, _ := json.Marshal(DefaultListen) // a JSON list of strings is an HCL tuple literal
	return hclspec.Object(map[string]*pluginv1.Spec{
		"dir": hclspec.Default(
			hclspec.Attr("dir", "string", false,
				"Directory (absolute, existing) Apply writes one <app>.conf per app into; nginx.conf must include <dir>/*.conf in its http block."),
			hclspec.Literal(strconv.Quote(DefaultDir))),
		"listen": hclspec.Default(
			hclspec.Attr("listen", "list(string)", false,
				`listen directives of every app server: "port", "*:port", "IPv4:port" or "[IPv6]:port", optionally followed by ssl, http2, proxy_protocol.`),
			hclspec.Literal(string(listen))),
		"nginx": hclspec.Default(
			hclspec.Attr("nginx", "string", false,
				"nginx binary of the default test and reload commands: a name looked up in PATH (then /usr/sbin, /usr/local/sbin, /sbin, /usr/local/nginx/sbin), or an absolute path."),
			hclspec.Literal(strconv.Quote(DefaultNginx))),
		"prefix": hclspec.Attr("prefix", "string", false,
			"nginx prefix path (absolute), passed as -p to the default commands."),
		"conf": hclspec.Attr("conf", "string", false,
			"nginx configuration file, passed as -c to the default commands."),
		"timeout": hclspec.Default(
			hclspec.Attr("timeout", "string", false, "Limit of each test or reload command, 1s to 10m."),
			hclspec.Literal(strconv.Quote(DefaultTimeout.String()))),
		"test_command": hclspec.Attr("test_command", "list(string)", false,
			"Program and arguments that check the configuration, run without a shell; default: nginx [-p prefix] [-c conf] -t."),
		"reload_command": hclspec.Attr("reload_command", "list(string)", false,
			"Program and arguments that reload nginx, run without a shell; default: nginx [-p prefix] [-c conf] -s reload."),
		"server_names_hash_bucket_size": hclspec.Attr("server_names_hash_bucket_size", "number", false,
			"Written to the shared file when set (a power of two, 32 to 32768); do not set it in nginx.conf as well."),
		"server_names_hash_max_size": hclspec.Attr("server_names_hash_max_size", "number", false,
			"Written to the shared file when set (512 to 4194304); do not set it in nginx.conf as well."),
	})
}

// settings are the validated config Render and Apply use.
type settings struct {
	dir        string
	listen     []string // normalised listen directive arguments
	testCmd    []string
	reloadCmd  []string
	timeout    time.Duration
	bucketSize int // 0: not written
	maxSize    int // 0: not written
}

// defaultSettings are the settings of a plugin not configured yet.
func defaultSettings() *settings {
	return &settings{
		dir:       DefaultDir,
		listen:    slices.Clone(DefaultListen),
		testCmd:   nginxCommand(DefaultNginx, "", "", "-t"),
		reloadCmd: nginxCommand(DefaultNginx, "", "", "-s", "reload"),
		timeout:   DefaultTimeout,
	}
}

// nginxCommand is nginx [-p prefix] [-c conf] args….
func nginxCommand(bin, prefix, conf string, args ...string) []string {
	cmd := []string{bin}
	if prefix != "" {
		cmd = append(cmd, "-p", prefix)
	}
	if conf != "" {
		cmd = append(cmd, "-c", conf)
	}
	return append(cmd, args...)
}

// Plugin is the nginx proxy emitter. Create it with New.
type Plugin struct {
	sdk.Base

	cfg      Config
	settings atomic.Pointer[settings]
	log      hclog.Logger

	applyMu sync.Mutex // serialises Apply
	// reloadedWith are the settings of the last successful reload, nil
	// once files were written without one since (or before the first):
	// while they are the current settings, the files in dir are what
	// nginx loaded. Guarded by applyMu.
	reloadedWith *settings
}

var (
	_ sdk.Proxy        = (*Plugin)(nil)
	_ sdk.ProxyApplier = (*Plugin)(nil)
)

// New returns the plugin with the default settings, logging through
// sdk.Logger.
func New() *Plugin { return newWithLogger(sdk.Logger()) }

func newWithLogger(l hclog.Logger) *Plugin {
	p := &Plugin{
		Base: sdk.Base{
			Kind:         sdk.KindProxy,
			Name:         Name,
			Version:      Version,
			Description:  "Writes the route table as nginx server blocks, tests them with nginx -t and reloads nginx.",
			Capabilities: []string{sdk.CapabilityProxyApply},
			Spec:         Spec(),
		},
		log: l,
	}
	p.Config = &p.cfg
	p.Validate = p.validate
	p.settings.Store(defaultSettings())
	return p
}

func (p *Plugin) validate() error {
	c := &p.cfg
	s := defaultSettings()

	if c.Dir != nil {
		if err := checkPath("dir", *c.Dir, true); err != nil {
			return err
		}
		s.dir = filepath.Clean(*c.Dir)
	}

	if c.Listen != nil {
		if len(c.Listen) == 0 {
			return errors.New(`listen: at least one listen directive is needed, e.g. ["80"]`)
		}
		if len(c.Listen) > maxListen {
			return fmt.Errorf("listen: %d entries; at most %d", len(c.Listen), maxListen)
		}
		s.listen = make([]string, 0, len(c.Listen))
		seen := make(map[string]int, len(c.Listen))
		for i, l := range c.Listen {
			norm, key, err := parseListen(l)
			if err != nil {
				return fmt.Errorf("listen[%d] = %q: %w", i, l, err)
			}
			if j, dup := seen[key]; dup {
				return fmt.Errorf("listen[%d] = %q: the same address as listen[%d]", i, l, j)
			}
			seen[key] = i
			s.listen = append(s.listen, norm)
		}
	}

	bin := DefaultNginx
	if c.Nginx != nil {
		bin = *c.Nginx
		if err := checkProgram("nginx", bin); err != nil {
			return err
		}
	}
	var prefix, conf string
	if c.Prefix != nil {
		if err := checkPath("prefix", *c.Prefix, true); err != nil {
			return err
		}
		prefix = *c.Prefix
	}
	if c.Conf != nil {
		if err := checkPath("conf", *c.Conf, false); err != nil {
			return err
		}
		conf = *c.Conf
	}
	s.testCmd = nginxCommand(bin, prefix, conf, "-t")
	s.reloadCmd = nginxCommand(bin, prefix, conf, "-s", "reload")
	if c.TestCommand != nil {
		if err := checkCommand("test_command", c.TestCommand); err != nil {
			return err
		}
		s.testCmd = slices.Clone(c.TestCommand)
	}
	if c.ReloadCommand != nil {
		if err := checkCommand("reload_command", c.ReloadCommand); err != nil {
			return err
		}
		s.reloadCmd = slices.Clone(c.ReloadCommand)
	}

	if c.Timeout != nil {
		d, err := time.ParseDuration(*c.Timeout)
		if err != nil || d < minTimeout || d > maxTimeout {
			return fmt.Errorf("timeout = %q: a duration from %v to %v, such as \"30s\"", *c.Timeout, minTimeout, maxTimeout)
		}
		s.timeout = d
	}

	if c.ServerNamesHashBucketSize != nil {
		n := *c.ServerNamesHashBucketSize
		if n != 0 && (n < minBucketSize || n > maxBucketSize || n&(n-1) != 0) {
			return fmt.Errorf("server_names_hash_bucket_size = %d: a power of two from %d to %d (or 0 to leave it to nginx.conf)", n, minBucketSize, maxBucketSize)
		}
		s.bucketSize = n
	}
	if c.ServerNamesHashMaxSize != nil {
		n := *c.ServerNamesHashMaxSize
		if n != 0 && (n < minMaxSize || n > maxMaxSize) {
			return fmt.Errorf("server_names_hash_max_size = %d: a number from %d to %d (or 0 to leave it to nginx.conf)", n, minMaxSize, maxMaxSize)
		}
		s.maxSize = n
	}

	p.settings.Store(s)
	return nil
}

// checkPath checks a path setting: not empty, without control characters,
// absolute when abs is set.
func checkPath(attr, v string, abs bool) error {
	switch {
	case v == "":
		return fmt.Errorf("%s: empty; leave it out for the default", attr)
	case hasControl(v):
		return fmt.Errorf("%s = %q: control characters in a path", attr, v)
	case abs && !filepath.IsAbs(v):
		return fmt.Errorf("%s = %q: not an absolute path", attr, v)
	}
	return nil
}

// checkProgram checks a program to run: a bare name (looked up in PATH) or
// an absolute path.
func checkProgram(attr, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s: empty; name a program", attr)
	case hasControl(v):
		return fmt.Errorf("%s = %q: control characters in a program name", attr, v)
	case strings.ContainsRune(v, '/') && !filepath.IsAbs(v):
		return fmt.Errorf("%s = %q: a program is a bare name (looked up in PATH) or an absolute path", attr, v)
	}
	return nil
}

// checkCommand checks a command override: a program and its arguments.
func checkCommand(attr string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("%s: empty; name a program and its arguments, or leave it out for the default", attr)
	}
	if len(argv) > maxArgs {
		return fmt.Errorf("%s: %d arguments; at most %d", attr, len(argv), maxArgs)
	}
	if err := checkProgram(attr+"[0]", argv[0]); err != nil {
		return err
	}
	for i, a := range argv[1:] {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("%s[%d]: a NUL byte in an argument", attr, i+1)
		}
	}
	return nil
}

// hasControl reports whether s has an ASCII control character (NUL,
// newline, …).
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// parseListen checks one listen entry and returns it normalised (single
// spaces, an IPv6 address in its canonical form) and a key that is equal
// for entries naming the same address.
func parseListen(l string) (norm, key string, err error) {
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			c == '.' || c == ':' || c == '[' || c == ']' || c == '_' || c == '*' || c == ' ') {
			return "", "", errors.New(`only letters, digits, spaces and . : [ ] _ * are allowed`)
		}
	}
	fields := strings.Fields(l)
	if len(fields) == 0 {
		return "", "", errors.New(`empty; write a port such as "80"`)
	}
	addr, key, err := parseListenAddress(fields[0])
	if err != nil {
		return "", "", err
	}
	params := fields[1:]
	for i, f := range params {
		switch {
		case f == "default_server" || f == "default":
			return "", "", errors.New("default_server cannot be given: every app server gets the same listen list, " +
				"and an address has one default server; set it on the default server in nginx.conf")
		case !slices.Contains(listenParams, f):
			return "", "", fmt.Errorf("parameter %q is not supported: use %s (socket options may be set once per address only, "+
				"so they belong on the default server in nginx.conf)", f, strings.Join(listenParams, ", "))
		case slices.Contains(params[:i], f):
			return "", "", fmt.Errorf("parameter %q is given twice", f)
		}
	}
	return strings.Join(append([]string{addr}, params...), " "), key, nil
}

// parseListenAddress checks the address of a listen entry: port, *:port,
// IPv4:port or [IPv6]:port. It returns the address to write and its key.
func parseListenAddress(a string) (addr, key string, err error) {
	const form = `the address is a port, "*:port", "IPv4:port" or "[IPv6]:port"`
	host, port := "", a
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i+1:]
		if host == "" {
			return "", "", errors.New(form)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", "", errors.New("the port is not a number from 1 to 65535 (" + form + ")")
	}
	switch {
	case host == "" || host == "*":
		return a, "0.0.0.0:" + port, nil
	case strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]"):
		ip, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !ip.Is6() || ip.Is4In6() || ip.Zone() != "" {
			return "", "", errors.New("not an IPv6 address in brackets (" + form + ")")
		}
		addr = "[" + ip.String() + "]:" + port
		return addr, addr, nil
	default:
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is4() {
			return "", "", errors.New("not an IPv4 address (" + form + "; host names are not accepted)")
		}
		if ip.IsUnspecified() {
			return a, "0.0.0.0:" + port, nil
		}
		return a, a, nil
	}
}

// Render implements sdk.Proxy: the files Apply would write, as one
// document. The generation is not part of the output: equal route tables
// render to equal bytes.
func (p *Plugin) Render(_ context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error) {
	checked, skipped := route.Prepare(req.GetRoutes())
	route.LogSkipped(p.log, "nginx", skipped, len(req.GetRoutes()), req.GetGeneration())
	return &pluginv1.RenderResponse{Body: document(files(p.settings.Load(), checked)), ContentType: ContentType}, nil
}

// file is one configuration file: its name in dir and its bytes.
type file struct {
	name string
	data []byte
	// route is the app the file serves; nil for the shared file.
	route *route.Checked
}

// files renders the configuration for routes (as route.Prepare returns
// them): the shared file and one file per app, sorted by name.
func files(s *settings, routes []route.Checked) []file {
	out := make([]file, 0, len(routes)+1)
	out = append(out, file{name: SharedFile, data: sharedFile(s)})
	for i := range routes {
		out = append(out, file{name: routes[i].Name + ".conf", data: appFile(s, &routes[i]), route: &routes[i]})
	}
	slices.SortFunc(out, func(a, b file) int { return strings.Compare(a.name, b.name) })
	return out
}

// document concatenates files, each preceded by a "# file: <name>" line.
func document(fs []file) []byte {
	size := 0
	for _, f := range fs {
		size += len("# file: \n") + len(f.name) + len(f.data)
	}
	b := make([]byte, 0, size)
	for _, f := range fs {
		b = append(b, "# file: "...)
		b = append(b, f.name...)
		b = append(b, '\n')
		b = append(b, f.data...)
	}
	return b
}

// sharedFile is the http-level part of the configuration.
func sharedFile(s *settings) []byte {
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("# http-level settings of the app servers in this directory.\n\n")
	b.WriteString("# The Connection header sent upstream: \"upgrade\" when the client asks to\n")
	b.WriteString("# switch protocols (WebSockets), \"close\" otherwise.\n")
	b.WriteString("map $http_upgrade " + ConnectionVariable + " {\n")
	b.WriteString("    default upgrade;\n")
	b.WriteString("    ''      close;\n")
	b.WriteString("}\n")
	if s.bucketSize != 0 || s.maxSize != 0 {
		b.WriteString("\n")
	}
	if s.bucketSize != 0 {
		b.WriteString("server_names_hash_bucket_size " + strconv.Itoa(s.bucketSize) + ";\n")
	}
	if s.maxSize != 0 {
		b.WriteString("server_names_hash_max_size " + strconv.Itoa(s.maxSize) + ";\n")
	}
	return []byte(b.String())
}

// appFile is the server block of one app. Everything written passed
// route.Prepare (names a-z, 0-9, '-'; hosts also '.'; the upstream an
// address and a port) or validate (listen): nothing needs quoting.
func appFile(s *settings, r *route.Checked) []byte {
	size := 640 + len(r.Name) + len(r.Upstream)
	for _, l := range s.listen {
		size += len(l) + 16
	}
	for _, h := range r.Hosts {
		size += len(h) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, header...)
	b = append(b, "# app "...)
	b = append(b, r.Name...)
	b = append(b, " (id "...)
	b = strconv.AppendInt(b, r.Route.GetAppId(), 10)
	b = append(b, ")\nserver {\n"...)
	for _, l := range s.listen {
		b = append(b, "    listen "...)
		b = append(b, l...)
		b = append(b, ";\n"...)
	}
	b = append(b, "    server_name"...)
	for _, h := range r.Hosts {
		b = append(b, ' ')
		b = append(b, h...)
	}
	b = append(b, ";\n\n    location / {\n        proxy_pass http://"...)
	b = append(b, r.Dial()...)
	b = append(b, ";\n"...)
	b = append(b, locationTail...)
	return b
}

// locationTail is the end of every app's location block.
const locationTail = `        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection ` + ConnectionVariable + `;
    }
}
`
