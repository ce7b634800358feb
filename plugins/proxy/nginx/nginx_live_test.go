//go:build unix

package nginx

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/plugins/proxy/nginx/nginxtest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// This file runs the plugin against a real nginx, started by nginxtest: its
// own nginx.conf in a temporary directory (nothing of the system's
// configuration or service is used), listening on 127.0.0.1 only.

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
	n := nginxtest.Start(t)
	shopUp := upstream(t, "shop-upstream")
	blogUp := upstream(t, "blog-upstream")

	p, _ := newTestPlugin(t, fmt.Sprintf("dir = %q\nprefix = %q\nconf = %q\nnginx = %q\nlisten = [%q]\ntimeout = \"20s\"",
		n.Dir, n.Prefix, n.Conf, n.Bin, n.Addr))
	ctx := context.Background()
	shop := &pluginv1.Route{AppId: 1, Name: "shop", Hosts: []string{"shop.apps.example.test", "www.shop.example.test"}, Upstream: shopUp.URL}
	blog := &pluginv1.Route{AppId: 2, Name: "blog", Hosts: []string{"blog.apps.example.test"}, Upstream: blogUp.URL}

	serves := func(host, marker string) func() (bool, string) {
		return func() (bool, string) {
			code, body, err := n.Get(host)
			return err == nil && code == http.StatusOK && strings.Contains(body, `"marker":"`+marker+`"`), fmt.Sprintf("%d %q %v", code, body, err)
		}
	}
	notFound := func(host string) func() (bool, string) {
		return func() (bool, string) {
			code, body, err := n.Get(host)
			return err == nil && code == http.StatusNotFound, fmt.Sprintf("%d %q %v", code, body, err)
		}
	}

	// 1. A route appears.
	resp, err := p.Apply(ctx, &pluginv1.ApplyRequest{Routes: []*pluginv1.Route{shop}, Generation: 1})
	if err != nil {
		t.Fatalf("apply: %v\nerror log: %s", err, n.ErrorLog())
	}
	if !resp.GetApplied() {
		t.Fatalf("apply = %v", resp)
	}
	took := eventually(t, 10*time.Second, "the shop route", serves("shop.apps.example.test", "shop-upstream"))
	t.Logf("Apply returned → route live (first of %d answers in a row from the app): %v", 10, took)
	eventually(t, 5*time.Second, "the second host", serves("www.shop.example.test", "shop-upstream"))
	eventually(t, 5*time.Second, "unknown hosts to stay 404", notFound("blog.apps.example.test"))

	// The headers the app gets.
	_, body, err := n.Get("shop.apps.example.test")
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
	webSocketEcho(t, n.Addr, "shop.apps.example.test")

	// 2. The route goes, another comes.
	resp, err = p.Apply(ctx, &pluginv1.ApplyRequest{Routes: []*pluginv1.Route{blog}, Generation: 2})
	if err != nil || !resp.GetApplied() {
		t.Fatalf("apply = %v, %v\nerror log: %s", resp, err, n.ErrorLog())
	}
	took = eventually(t, 10*time.Second, "the shop route to go", notFound("shop.apps.example.test"))
	t.Logf("Apply returned → route gone (first of %d 404s in a row): %v", 10, took)
	eventually(t, 5*time.Second, "the blog route", serves("blog.apps.example.test", "blog-upstream"))
	if _, err := os.Stat(filepath.Join(n.Dir, "shop.conf")); !os.IsNotExist(err) {
		t.Errorf("shop.conf: %v", err)
	}

	// 3. Nothing changed: nothing done.
	resp, err = p.Apply(ctx, &pluginv1.ApplyRequest{Routes: []*pluginv1.Route{blog}, Generation: 3})
	if err != nil || !strings.Contains(resp.GetMessage(), "nothing changed") {
		t.Fatalf("apply = %v, %v", resp, err)
	}

	// 4. A table nginx refuses: an upstream name that does not resolve
	// (nginx resolves upstream names when it loads the configuration).
	before := snapshotDir(t, n.Dir)
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
	if after := snapshotDir(t, n.Dir); after != before {
		t.Errorf("the directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	eventually(t, 5*time.Second, "blog still served", serves("blog.apps.example.test", "blog-upstream"))
	eventually(t, 5*time.Second, "the refused hosts to stay 404", notFound("blog.example.test"))
	select {
	case <-n.Exited():
		t.Fatalf("nginx exited: %s", n.ErrorLog())
	default:
	}

	// 5. Render's document is itself a valid configuration (nginx -t on
	// an http block including it).
	doc := renderOK(t, p, []*pluginv1.Route{shop, blog2, {AppId: 9, Name: "v6", Hosts: []string{"v6.example.test"}, Upstream: "http://[::1]:9"}})
	testDocument(t, n, doc)
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

// testDocument runs nginx -t on n's configuration with the include of its
// directory replaced by doc as one file.
func testDocument(t *testing.T, n *nginxtest.Nginx, doc []byte) {
	t.Helper()
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.txt")
	if err := os.WriteFile(routes, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(n.Conf)
	if err != nil {
		t.Fatal(err)
	}
	include := fmt.Sprintf("include %q;", filepath.Join(n.Dir, "*.conf"))
	if !strings.Contains(string(conf), include) {
		t.Fatalf("%s has no %s:\n%s", n.Conf, include, conf)
	}
	conf = []byte(strings.Replace(string(conf), include, fmt.Sprintf("include %q;", routes), 1))
	test := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(test, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	// nginx -t tolerates the listener being in use (by n itself).
	out, err := exec.Command(n.Bin, "-p", n.Prefix, "-c", test, "-t").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t on the rendered document: %v\n%s\ndocument:\n%s", err, out, doc)
	}
}
