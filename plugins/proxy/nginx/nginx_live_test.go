//go:build unix

package nginx

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// This file runs the plugin against a real nginx: its own nginx.conf in a
// temporary directory (nothing of the system's configuration or service is
// used), listening on 127.0.0.1 only.

// findNginx returns the nginx binary, failing the test when there is none.
func findNginx(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	t.Fatal("nginx is not installed (not in PATH, /usr/sbin, /usr/local/sbin or /usr/local/nginx/sbin): " +
		"install it with `apt-get install nginx-light` (or `make proxies`), or run go test -short to leave this test out")
	return ""
}

// liveNginx is an nginx started by a test.
type liveNginx struct {
	bin, prefix, conf, dir string
	addr                   string // 127.0.0.1:port
	cmd                    *exec.Cmd
	out                    *cappedBuffer
	exited                 chan struct{}
}

// startNginx writes an nginx.conf into a temporary directory and runs nginx
// in the foreground with it: a default server answering 404 on a free port
// of 127.0.0.1, and the plugin's directory included in the http block.
func startNginx(t *testing.T, bin string) *liveNginx {
	t.Helper()
	prefix := t.TempDir()
	n := &liveNginx{bin: bin, prefix: prefix, conf: filepath.Join(prefix, "nginx.conf"), dir: filepath.Join(prefix, "wisehosting.d")}
	for _, d := range []string{n.dir, filepath.Join(prefix, "logs"), filepath.Join(prefix, "temp")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n.addr = freeAddr(t)
	if err := os.WriteFile(n.conf, []byte(nginxConf(t, bin, prefix, n.addr, n.dir)), 0o644); err != nil {
		t.Fatal(err)
	}

	n.out = &cappedBuffer{max: 64 << 10}
	n.cmd = exec.Command(bin, "-p", prefix, "-c", n.conf)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group: workers included
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := n.cmd.Process.Pid
	n.exited = make(chan struct{})
	go func() {
		_ = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() { n.stop(t, pgid) })

	// Ready when the default server answers.
	eventually(t, 15*time.Second, "nginx to answer", func() (bool, string) {
		select {
		case <-n.exited:
			t.Fatalf("nginx exited at start: %s\nerror log: %s", n.out.buf.String(), n.errorLog())
		default:
		}
		code, body, err := n.get("unknown.example.test")
		return err == nil && code == http.StatusNotFound, fmt.Sprintf("%d %q %v", code, body, err)
	})
	return n
}

// stop ends nginx (fast shutdown of the master, which stops its workers),
// kills the group if that takes too long, and checks no process is left.
func (n *liveNginx) stop(t *testing.T, pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("nginx did not stop within 10s of SIGTERM; killing it")
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-n.exited
	}
	// Workers outlive a master that was killed: make sure the group is gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Kill(-pgid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("nginx processes of group %d are still running: %v", pgid, err)
			return
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *liveNginx) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.prefix, "logs", "error.log"))
	return string(b)
}

// get asks nginx for / with the given Host header, on a new connection.
func (n *liveNginx) get(host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+n.addr+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// nginxConf is a self-contained nginx.conf: every path inside prefix.
func nginxConf(t *testing.T, bin, prefix, addr, dir string) string {
	t.Helper()
	p := func(rel string) string { return fmt.Sprintf("%q", filepath.Join(prefix, rel)) }
	var b strings.Builder
	b.WriteString("daemon off;\nmaster_process on;\nworker_processes 1;\n")
	if os.Geteuid() == 0 {
		// As root nginx runs its workers as nobody, who cannot enter the
		// test's private temporary directories: run them as the test's user.
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "user %s %s;\n", u.Username, g.Name)
	}
	fmt.Fprintf(&b, "pid %s;\nerror_log %s info;\n", p("nginx.pid"), p("logs/error.log"))
	b.WriteString("events { worker_connections 128; }\n")
	b.WriteString("http {\n")
	fmt.Fprintf(&b, "    access_log %s;\n", p("logs/access.log"))
	fmt.Fprintf(&b, "    client_body_temp_path %s;\n    proxy_temp_path %s;\n", p("temp/client_body"), p("temp/proxy"))
	// Builds may leave these modules out, and their directives with them.
	version, _ := exec.Command(bin, "-V").CombinedOutput()
	for _, m := range []string{"fastcgi", "uwsgi", "scgi"} {
		if !strings.Contains(string(version), "--without-http_"+m+"_module") {
			fmt.Fprintf(&b, "    %s_temp_path %s;\n", m, p("temp/"+m))
		}
	}
	fmt.Fprintf(&b, "    server {\n        listen %s default_server;\n        return 404;\n    }\n", addr)
	fmt.Fprintf(&b, "    include %q;\n", filepath.Join(dir, "*.conf"))
	b.WriteString("}\n")
	return b.String()
}

// freeAddr returns 127.0.0.1:<a port nobody listens on right now>.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// eventually polls cond until it holds streak times in a row (after a
// reload, nginx's old workers go on accepting connections for a moment, so
// answers flap before they settle) or the deadline passes. It returns how
// long it took until the first answer of the final streak.
func eventually(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	const streak = 10
	start := time.Now()
	deadline := start.Add(limit)
	var first time.Time
	for n := 0; ; {
		ok, state := cond()
		switch {
		case !ok:
			n = 0
		case n == 0:
			first, n = time.Now(), 1
		default:
			n++
		}
		if n == streak {
			return first.Sub(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", limit, what, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// upstream is an app: it answers a marker and the headers it got, and
// echoes what it reads on an upgraded (WebSocket) connection.
func upstream(t *testing.T, marker string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			if !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
				http.Error(w, "upgrade without Connection: upgrade: "+r.Header.Get("Connection"), http.StatusBadRequest)
				return
			}
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			_ = rw.Flush()
			_, _ = io.Copy(conn, rw) // echo
			return
		}
		h := map[string]string{"marker": marker, "host": r.Host}
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "Connection", "Upgrade"} {
			h[k] = r.Header.Get(k)
		}
		_ = json.NewEncoder(w).Encode(h)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLiveNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nginx")
	}
	bin := findNginx(t)
	n := startNginx(t, bin)
	shopUp := upstream(t, "shop-upstream")
	blogUp := upstream(t, "blog-upstream")

	p, _ := newTestPlugin(t, fmt.Sprintf("dir = %q\nprefix = %q\nconf = %q\nnginx = %q\nlisten = [%q]\ntimeout = \"20s\"",
		n.dir, n.prefix, n.conf, bin, n.addr))
	ctx := context.Background()
	shop := &pluginv1.Route{AppId: 1, Name: "shop", Hosts: []string{"shop.apps.example.test", "www.shop.example.test"}, Upstream: shopUp.URL}
	blog := &pluginv1.Route{AppId: 2, Name: "blog", Hosts: []string{"blog.apps.example.test"}, Upstream: blogUp.URL}

	serves := func(host, marker string) func() (bool, string) {
		return func() (bool, string) {
			code, body, err := n.get(host)
			return err == nil && code == http.StatusOK && strings.Contains(body, `"marker":"`+marker+`"`), fmt.Sprintf("%d %q %v", code, body, err)
		}
	}
	notFound := func(host string) func() (bool, string) {
		return func() (bool, string) {
			code, body, err := n.get(host)
			return err == nil && code == http.StatusNotFound, fmt.Sprintf("%d %q %v", code, body, err)
		}
	}

	// 1. A route appears.
	resp, err := p.Apply(ctx, &pluginv1.ApplyRequest{Routes: []*pluginv1.Route{shop}, Generation: 1})
	if err != nil {
		t.Fatalf("apply: %v\nerror log: %s", err, n.errorLog())
	}
	if !resp.GetApplied() {
		t.Fatalf("apply = %v", resp)
	}
	took := eventually(t, 10*time.Second, "the shop route", serves("shop.apps.example.test", "shop-upstream"))
	t.Logf("Apply returned → route live (first of %d answers in a row from the app): %v", 10, took)
	eventually(t, 5*time.Second, "the second host", serves("www.shop.example.test", "shop-upstream"))
	eventually(t, 5*time.Second, "unknown hosts to stay 404", notFound("blog.apps.example.test"))

	// The headers the app gets.
	_, body, err := n.get("shop.apps.example.test")
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for k, want := range map[string]string{
		"host": "shop.apps.example.test", "X-Forwarded-Host": "shop.apps.example.test", "X-Forwarded-Proto": "http",
		"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "Connection": "close", "Upgrade": "",
	} {
		if h[k] != want {
			t.Errorf("upstream got %s = %q, want %q", k, h[k], want)
		}
	}

	// A WebSocket upgrade goes through, and the connection carries data
	// both ways.
	webSocketEcho(t, n.addr, "shop.apps.example.test")

	// 2. The route goes, another comes.
	resp, err = p.Apply(ctx, &pluginv1.ApplyRequest{Routes: []*pluginv1.Route{blog}, Generation: 2})
	if err != nil || !resp.GetApplied() {
		t.Fatalf("apply = %v, %v\nerror log: %s", resp, err, n.errorLog())
	}
	took = eventually(t, 10*time.Second, "the shop route to go", notFound("shop.apps.example.test"))
	t.Logf("Apply returned → route gone (first of %d 404s in a row): %v", 10, took)
	eventually(t, 5*time.Second, "the blog route", serves("blog.apps.example.test", "blog-upstream"))
	if _, err := os.Stat(filepath.Join(n.dir, "shop.conf")); !os.IsNotExist(err) {
		t.Errorf("shop.conf: %v", err)
	}

	// 3. Nothing changed: nothing done.
	resp, err = p.Apply(ctx, &pluginv1.ApplyRequest{Routes: []*pluginv1.Route{blog}, Generation: 3})
	if err != nil || !strings.Contains(resp.GetMessage(), "nothing changed") {
		t.Fatalf("apply = %v, %v", resp, err)
	}

	// 4. A table nginx refuses: an upstream name that does not resolve
	// (nginx resolves upstream names when it loads the configuration).
	before := snapshotDir(t, n.dir)
	bad := &pluginv1.Route{AppId: 3, Name: "bad", Hosts: []string{"bad.apps.example.test"}, Upstream: "http://no-such-host.invalid:8080"}
	blog2 := &pluginv1.Route{AppId: 2, Name: "blog", Hosts: []string{"blog.apps.example.test", "blog.example.test"}, Upstream: blogUp.URL}
	start := time.Now()
	_, err = p.Apply(ctx, &pluginv1.ApplyRequest{Routes: []*pluginv1.Route{blog2, bad}, Generation: 4})
	if err == nil {
		t.Fatal("apply of an unresolvable upstream succeeded")
	}
	t.Logf("refused apply took %v: %v", time.Since(start), err)
	for _, want := range []string{"configuration test failed", `host not found in upstream "no-such-host.invalid`, "previous files were restored"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if after := snapshotDir(t, n.dir); after != before {
		t.Errorf("the directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	eventually(t, 5*time.Second, "blog still served", serves("blog.apps.example.test", "blog-upstream"))
	eventually(t, 5*time.Second, "the refused hosts to stay 404", notFound("blog.example.test"))
	select {
	case <-n.exited:
		t.Fatalf("nginx exited: %s", n.errorLog())
	default:
	}

	// 5. Render's document is itself a valid configuration (nginx -t on
	// an http block including it).
	doc := renderOK(t, p, []*pluginv1.Route{shop, blog2, {AppId: 9, Name: "v6", Hosts: []string{"v6.example.test"}, Upstream: "http://[::1]:9"}})
	testDocument(t, bin, doc)
}

// webSocketEcho upgrades a connection through nginx and checks bytes go
// both ways.
func webSocketEcho(t *testing.T, addr, host string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host)
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade answered %s: %s", resp.Status, b)
	}
	for _, msg := range []string{"ping\n", "pong pong\n"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("echo = %q, %v; want %q", got, err, msg)
		}
	}
}

// snapshotDir is the names, modes and contents of dir's entries.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "== %s %v\n%s", e.Name(), info.Mode(), data)
	}
	return b.String()
}

// testDocument runs nginx -t on a configuration whose http block includes
// doc as one file.
func testDocument(t *testing.T, bin string, doc []byte) {
	t.Helper()
	prefix := t.TempDir()
	for _, d := range []string{"logs", "temp"} {
		if err := os.Mkdir(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(prefix, "routes.txt"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := nginxConf(t, bin, prefix, freeAddr(t), prefix)
	conf = strings.Replace(conf, fmt.Sprintf("include %q;", filepath.Join(prefix, "*.conf")),
		fmt.Sprintf("include %q;", filepath.Join(prefix, "routes.txt")), 1)
	if err := os.WriteFile(filepath.Join(prefix, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-p", prefix, "-c", filepath.Join(prefix, "nginx.conf"), "-t").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t on the rendered document: %v\n%s\ndocument:\n%s", err, out, doc)
	}
}
