//go:build unix

// Package nginxtest starts a real nginx for tests: the plugin's live test
// and end-to-end tests elsewhere in the project. Each nginx gets its own
// nginx.conf in a temporary directory (nothing of the system's
// configuration or service is used) and listens on 127.0.0.1 only.
//
// It imports only the standard library. Nothing here skips a test: callers
// that want nginx left out under go test -short check testing.Short
// themselves.
package nginxtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds the wait for a started nginx to answer, and each
// stage of stopping it.
const startTimeout = 15 * time.Second

// Find returns the nginx binary (PATH, then /usr/sbin, /usr/local/sbin,
// /usr/local/nginx/sbin) or fails t with the install hint (apt-get install
// nginx-light, or make proxies).
func Find(t testing.TB) string {
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

// Nginx is an nginx started by Start, running in the foreground in its own
// process group.
type Nginx struct {
	Bin    string // the binary
	Prefix string // its -p prefix: a temporary directory holding everything
	Conf   string // its nginx.conf (-c)
	Dir    string // the directory of server blocks nginx.conf includes (Dir/*.conf in the http block); it exists and is empty
	Addr   string // 127.0.0.1:<port>: the one listener, whose default server answers 404

	output string        // the master's stdout and stderr
	exited chan struct{} // closed once the master process has exited
}

// Start writes a self-contained nginx.conf (every path inside Prefix;
// workers run as the current user when root) and starts nginx; it returns
// once the default server answers 404. t.Cleanup stops nginx and fails t if
// any of its processes is left.
func Start(t testing.TB) *Nginx {
	t.Helper()
	bin := Find(t)
	prefix := t.TempDir()
	n := &Nginx{
		Bin:    bin,
		Prefix: prefix,
		Conf:   filepath.Join(prefix, "nginx.conf"),
		Dir:    filepath.Join(prefix, "wisehosting.d"),
		output: filepath.Join(prefix, "logs", "output.log"),
		exited: make(chan struct{}),
	}
	for _, d := range []string{n.Dir, filepath.Join(prefix, "logs"), filepath.Join(prefix, "temp")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n.Addr = freeAddr(t)
	conf, err := config(bin, prefix, n.Addr, n.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	// Output to a file, not a pipe: waiting for the master then does not
	// depend on its workers closing their copies of the descriptor.
	out, err := os.Create(n.output)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", n.Conf)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group: workers included
	err = cmd.Start()
	out.Close() // nginx has its own copy
	if err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	pgid := cmd.Process.Pid
	go func() {
		_ = cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() { n.stop(t, pgid) })

	// Ready when the default server answers.
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-n.exited:
			t.Fatalf("nginx exited at start: %s\nerror log: %s", n.readOutput(), n.ErrorLog())
		default:
		}
		code, body, err := n.Get("unknown.example.test")
		if err == nil && code == http.StatusNotFound {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer 404 on %s within %v; last: %d %q %v\nerror log: %s",
				n.Addr, startTimeout, code, body, err, n.ErrorLog())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends nginx (fast shutdown of the master, which stops its workers),
// kills the group if that takes too long, and checks no process is left.
func (n *Nginx) stop(t testing.TB, pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(startTimeout):
		t.Errorf("nginx did not stop within %v of SIGTERM; killing it", startTimeout)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-n.exited
	}
	// Workers outlive a master that was killed: make sure the group is gone.
	deadline := time.Now().Add(startTimeout)
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

// Exited is closed once the nginx master process has exited (which it
// does not do on its own: only when it fails, or when the test stops it).
func (n *Nginx) Exited() <-chan struct{} {
	return n.exited
}

// Get sends GET / with the given Host header to Addr on a fresh connection
// (no proxy from the environment) and returns the status and body.
// Redirects are not followed: a redirect's own status is returned.
func (n *Nginx) Get(host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+n.Addr+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// client talks to nginx directly: no proxy, no redirects followed, a new
// connection each time.
var client = &http.Client{
	Timeout:       5 * time.Second,
	Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// ErrorLog returns nginx's error log so far.
func (n *Nginx) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.Prefix, "logs", "error.log"))
	return string(b)
}

// readOutput returns what the master wrote to its stdout and stderr.
func (n *Nginx) readOutput() string {
	b, _ := os.ReadFile(n.output)
	return string(b)
}

// config is a self-contained nginx.conf: every path inside prefix, a
// default server answering 404 on addr, and dir/*.conf included in the
// http block.
func config(bin, prefix, addr, dir string) (string, error) {
	p := func(rel string) string { return fmt.Sprintf("%q", filepath.Join(prefix, rel)) }
	var b strings.Builder
	b.WriteString("daemon off;\nmaster_process on;\nworker_processes 1;\n")
	if os.Geteuid() == 0 {
		// As root nginx runs its workers as nobody, who cannot enter the
		// test's private temporary directories: run them as the test's user.
		u, err := user.Current()
		if err != nil {
			return "", err
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			return "", err
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
	return b.String(), nil
}

// freeAddr returns 127.0.0.1:<a port nobody listens on right now>.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
