//go:build unix

// Package caddytest starts a real Caddy (2.6 or later, from PATH) for
// tests: the plugin's live tests and end-to-end tests elsewhere in the
// project. Caddy listens on 127.0.0.1 only, keeps every file under the
// test's temporary directory, and never reaches another machine: any HTTP
// it would send elsewhere goes to a dead proxy on 127.0.0.1.
//
// It imports only the standard library. Nothing here skips a test: callers
// that want Caddy left out under go test -short check testing.Short
// themselves.
package caddytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds the wait for a started Caddy's admin API, and the
// wait for Caddy to stop.
const startTimeout = 20 * time.Second

// Find returns the caddy binary or fails t with the install hint (apt-get
// install caddy, or make proxies).
func Find(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("caddy")
	if err != nil {
		t.Fatalf("the test needs the caddy binary (Caddy 2.6 or later) in PATH: %v\n"+
			"install it with `apt-get install caddy` (Debian, Ubuntu) or `make proxies`, or run go test -short to leave the live tests out", err)
	}
	return path
}

// Env is the environment Start runs Caddy in, with home as its HOME: data
// and config directories under home, and a dead HTTP proxy so that nothing
// Caddy might send off this machine over HTTP gets anywhere (Go never
// proxies loopback addresses, so upstreams and endpoints on 127.0.0.1 are
// unaffected). It suits other caddy commands too (caddy validate).
func Env(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"HTTP_PROXY=http://127.0.0.1:9",
		"HTTPS_PROXY=http://127.0.0.1:9",
		"http_proxy=http://127.0.0.1:9",
		"https_proxy=http://127.0.0.1:9",
	}
}

// Caddy is a caddy started by Start with only its admin API configured
// (apply a config through Admin/load to give it servers).
type Caddy struct {
	Bin   string
	Admin string // "http://127.0.0.1:<port>": the admin API, as the plugin's admin setting takes it
	Home  string // HOME and XDG_DATA_HOME/XDG_CONFIG_HOME of the process (Caddy's storage, e.g. its internal CA root under Home)

	log string // Caddy's stdout and stderr
}

// Start runs `caddy run` with a bootstrap config holding only the admin
// listener on a free loopback port, with HOME and the XDG directories in a
// temporary directory and an environment that cannot reach anything but
// loopback (see Env); it returns once the admin API answers. t.Cleanup
// stops Caddy and fails t if its process group is left; when t has failed
// it also logs the end of Caddy's output.
//
// Caddy runs in its own process group; on Linux it is also killed if the
// test binary dies.
func Start(t testing.TB) *Caddy {
	t.Helper()
	bin := Find(t)
	home := t.TempDir()
	c := &Caddy{Bin: bin, Admin: "http://" + FreeAddr(t), Home: home, log: filepath.Join(home, "caddy.log")}
	initial := filepath.Join(home, "initial.json")
	if err := os.WriteFile(initial, []byte(`{"admin":{"listen":"`+c.adminAddr()+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", initial)
	cmd.Dir = home
	cmd.Env = Env(home)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	logf.Close() // Caddy has its own copy
	if err != nil {
		t.Fatalf("starting caddy: %v", err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("caddy did not stop within 10s of SIGTERM; killing it")
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		// Nothing of the process group is left.
		if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("a process of caddy's group %d is still there (kill 0: %v)", pgid, err)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		if t.Failed() {
			c.dumpLog(t)
		}
	})

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			t.Fatalf("caddy exited before its admin API answered")
		default:
		}
		err := c.AdminUp()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy's admin API at %s did not answer within %v: %v", c.Admin, startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// adminAddr is Admin without its scheme: host:port, as Caddy's admin
// listen setting takes it.
func (c *Caddy) adminAddr() string {
	return strings.TrimPrefix(c.Admin, "http://")
}

// dumpLog writes the end of Caddy's output to the test log.
func (c *Caddy) dumpLog(t testing.TB) {
	t.Helper()
	b, _ := os.ReadFile(c.log)
	if len(b) > 16<<10 {
		b = b[len(b)-16<<10:]
	}
	t.Logf("caddy output (end):\n%s", b)
}

// AdminUp checks that the admin API answers GET /config/ and that the
// running configuration keeps the admin listener where Start put it (a
// loaded configuration without an admin section would move it to Caddy's
// default, localhost:2019).
func (c *Caddy) AdminUp() error {
	resp, err := client.Get(c.Admin + "/config/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /config/: %s: %s", resp.Status, body)
	}
	var cfg struct{ Admin struct{ Listen string } }
	if err := json.Unmarshal(body, &cfg); err != nil {
		return fmt.Errorf("GET /config/: %v: %s", err, body)
	}
	if cfg.Admin.Listen != c.adminAddr() {
		return fmt.Errorf("the running configuration has the admin API on %q, not %q", cfg.Admin.Listen, c.adminAddr())
	}
	return nil
}

// RootCA returns the path of the root certificate of Caddy's internal CA
// (under Home). Caddy writes it when it first needs the CA, e.g. once a
// configuration with internal TLS is loaded: wait for it to appear.
func (c *Caddy) RootCA() string {
	return filepath.Join(c.Home, "data", "caddy", "pki", "authorities", "local", "root.crt")
}

// Get sends GET / with the given Host header to addr (host:port of one of
// Caddy's HTTP listeners) on a fresh connection and returns the status and
// body. No proxy from the environment is used and redirects are not
// followed: a redirect's own status is returned.
func (c *Caddy) Get(addr, host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
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

// client talks to Caddy directly: no proxy, no redirects followed, a new
// connection each time.
var client = &http.Client{
	Timeout:       5 * time.Second,
	Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// FreeAddr returns 127.0.0.1:<a port free a moment ago>.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
