package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// benchCaddy is a Caddy from Debian's package run by the benchmark: its
// admin API on a loopback port, no other configuration of its own, its
// storage under a private directory, and a dead HTTP proxy in its
// environment so that nothing it might send off this machine gets anywhere.
// (The tests start Caddy through plugins/proxy/caddy/caddytest, which
// needs a testing.TB.)
type benchCaddy struct {
	Admin  string // http://127.0.0.1:<port>
	cmd    *exec.Cmd
	exited chan struct{}
	client *http.Client
}

// startCaddy runs `caddy run` with its files under dir and waits for its
// admin API.
func startCaddy(ctx context.Context, dir string) (*benchCaddy, error) {
	bin, err := exec.LookPath("caddy")
	if err != nil {
		return nil, errors.New("caddy is not installed: install it with `apt-get install caddy` (or `make proxies`)")
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	initial := filepath.Join(dir, "initial.json")
	if err := os.WriteFile(initial, []byte(`{"admin":{"listen":"`+admin+`"}}`), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	c := &benchCaddy{Admin: "http://" + admin, exited: make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}}
	c.cmd = exec.Command(bin, "run", "--config", initial)
	c.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9"}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start caddy: %w", err)
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	if err := waitFor(ctx, 15*time.Second, func() bool {
		resp, err := c.client.Get(c.Admin + "/config/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		c.stop()
		log, _ := os.ReadFile(filepath.Join(dir, "caddy.log"))
		return nil, fmt.Errorf("caddy's admin API did not answer: %w\n%s", err, log)
	}
	return c, nil
}

// get sends GET / with the Host header host to Caddy's listener addr.
func (c *benchCaddy) get(addr, host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// stop ends Caddy's process group.
func (c *benchCaddy) stop() {
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.exited
	}
}
