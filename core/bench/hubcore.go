package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/core/daemon"
	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// hubCore is a core daemon running in the benchmark's process, built from
// a configuration exactly as `wisehosting serve` builds it, on a fresh
// database of the benchmark's cluster. Its workers are simulated by a load
// generator in another process, so this process's memory is the core's.
type hubCore struct {
	d      *daemon.Daemon
	url    string
	caFile string
	dir    string
	cancel context.CancelFunc
	served chan error
	user   *store.User
	// stopped is set by stop (which the benchmark's goroutine alone calls).
	stopped bool
}

// coreOptions shape a benchmark core.
type coreOptions struct {
	// tls serves TLS 1.3 with a fresh self-signed certificate (caFile for
	// the load generator).
	tls bool
	// scheduler declares the built-in least-loaded scheduler plugin, so
	// the daemon runs its placement loop.
	scheduler bool
	// extra is appended to the configuration (e.g. proxy plugin blocks).
	extra string
}

// startCore starts a core.
func (e *Env) startCore(ctx context.Context, o coreOptions) (*hubCore, error) {
	tlsOn := o.tls
	cs, err := e.newDatabase(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wh-bench-core-")
	if err != nil {
		return nil, fmt.Errorf("core dir: %w", err)
	}
	c := &hubCore{dir: dir}
	var tlsAttrs string
	if tlsOn {
		cert, key, _, err := secrets.WriteSelfSignedCert(dir, 24*time.Hour)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.caFile = cert
		tlsAttrs = fmt.Sprintf("  tls_cert = %q\n  tls_key = %q\n", cert, key)
	}
	src := fmt.Sprintf(`data_dir = %q
platform {
  domain = "apps.bench.test"
}
server {
  listen = "127.0.0.1:0"
  secret = %q
%s}
database {
  url = %q
  max_conns = 16
}
worker {
  allow_loopback_address = true
}
logging {
  level = "warn"
}
%s%s`, dir, benchSecret, tlsAttrs, cs, schedulerBlock(o.scheduler), o.extra)
	cfg, diags := config.Parse([]byte(src), filepath.Join(dir, "bench.hcl"), config.Options{})
	if diags.HasErrors() {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("core config: %w", diags)
	}
	// The core logs warnings only, even with -v: a line per connecting
	// worker would be the benchmark's own load.
	c.d, err = daemon.NewWithOptions(ctx, cfg, hclog.New(&hclog.LoggerOptions{Name: "bench.core", Level: hclog.Warn, Output: os.Stderr}),
		daemon.Options{BuiltinCommand: e.builtin})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr, err := c.d.Listen()
	if err != nil {
		c.d.Close(context.WithoutCancel(ctx))
		os.RemoveAll(dir)
		return nil, err
	}
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	c.url = scheme + "://" + addr.String()
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.served = make(chan error, 1)
	go func() { c.served <- c.d.Serve(sctx) }()
	return c, nil
}

// schedulerBlock is the config declaring the least-loaded scheduler.
func schedulerBlock(on bool) string {
	if !on {
		return ""
	}
	return `scheduler {
  placement = "least-loaded"
}
plugin "scheduler" "least-loaded" {}
`
}

// stop shuts the core down; later calls do nothing.
func (c *hubCore) stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	c.cancel()
	<-c.served
	os.RemoveAll(c.dir)
}

func (c *hubCore) store() *store.Store { return c.d.Database().Store }

// seedWorkers creates n workers and returns the keys file lines; with apps
// each worker gets a running app (deployed through the store), named in
// its line.
func (c *hubCore) seedWorkers(ctx context.Context, prefix string, n int, apps bool) ([]string, error) {
	st, cipher := c.store(), c.d.Database().Cipher
	if apps && c.user == nil {
		u, err := st.CreateUser(ctx, store.NewUser{Email: "bench@bench.test", Name: "Bench"})
		if err != nil {
			return nil, err
		}
		c.user = u
	}
	lines := make([]string, 0, n)
	for i := range n {
		m, err := workerauth.Mint(cipher)
		if err != nil {
			return nil, err
		}
		w, err := st.CreateWorker(ctx, store.NewWorker{Name: fmt.Sprintf("%s-%05d", prefix, i), Creds: m.Creds})
		if err != nil {
			return nil, err
		}
		if !apps {
			lines = append(lines, m.APIKey)
			continue
		}
		if w, err = st.RegisterWorker(ctx, w.ID, store.Registration{Address: "127.0.0.1", CapacityCPU: 8000,
			CapacityMemory: 16 << 30, Runtimes: []string{wsproto.RuntimeExec}}); err != nil {
			return nil, err
		}
		a, err := st.CreateApp(ctx, store.NewApp{UserID: c.user.ID, Name: fmt.Sprintf("%s-app-%05d", prefix, i),
			GitRepo: "https://git.bench.test/app.git", GitBranch: "main"})
		if err != nil {
			return nil, err
		}
		d, err := st.CreateDeployment(ctx, a.ID, store.NewDeployment{CommitSHA: "abc1234", Branch: "main"},
			store.NewJob{WorkerID: &w.ID, CPU: 100, Memory: 64 << 20, Payload: []byte(`{}`)})
		if err != nil {
			return nil, err
		}
		if _, err := st.CompleteJob(ctx, d.Job.ID, w.ID, store.Outcome{Success: true, Port: 20000 + int64(i%10000)}); err != nil {
			return nil, err
		}
		lines = append(lines, m.APIKey+" "+strconv.FormatInt(a.ID, 10))
	}
	return lines, nil
}

// metric sums a counter or gauge of the core's registry over the series
// whose labels include the given name=value pairs.
func (c *hubCore) metric(name string, labels ...string) (float64, error) {
	return metrics.Sum(c.d.Registry(), name, labels...)
}

// loadProcess is a running load generator process.
type loadProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	errb  *strings.Builder
	keys  string
}

// startLoadgen writes the keys file and starts the load generator with
// args, returning once it reports every worker connected.
func (e *Env) startLoadgen(ctx context.Context, c *hubCore, lines []string, args ...string) (*loadProcess, error) {
	keys := filepath.Join(c.dir, fmt.Sprintf("keys-%d", time.Now().UnixNano()))
	if err := os.WriteFile(keys, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("keys file: %w", err)
	}
	args = append([]string{"-core", c.url, "-keys", keys}, args...)
	if c.caFile != "" {
		args = append(args, "-ca", c.caFile)
	}
	cmd, err := e.loadgenCmd(args)
	if err != nil {
		return nil, err
	}
	lg := &loadProcess{cmd: cmd, errb: &strings.Builder{}, keys: keys}
	cmd.Stderr = &limitedWriter{b: lg.errb, max: 64 << 10}
	if lg.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start load generator: %w", err)
	}
	lg.out = bufio.NewReader(stdout)
	line, err := lg.readLine(ctx, 5*time.Minute)
	if err != nil || !strings.HasPrefix(line, "ready ") {
		lg.stop()
		return nil, fmt.Errorf("load generator did not get ready (%q, %v): %s", line, err, lg.errb.String())
	}
	return lg, nil
}

// readLine reads one line of the generator's output within d.
func (lg *loadProcess) readLine(ctx context.Context, d time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := lg.out.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(d):
		return "", fmt.Errorf("no answer within %s", d)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// run starts the timed phase and returns its "done" line's fields.
func (lg *loadProcess) run(ctx context.Context, d time.Duration) (sent, errs int64, err error) {
	if err := lg.begin(); err != nil {
		return 0, 0, err
	}
	return lg.finish(ctx, d)
}

// begin starts the timed phase.
func (lg *loadProcess) begin() error {
	if _, err := io.WriteString(lg.stdin, "go\n"); err != nil {
		return fmt.Errorf("load generator: %w", err)
	}
	return nil
}

// finish waits for the end of the timed phase of length d.
func (lg *loadProcess) finish(ctx context.Context, d time.Duration) (sent, errs int64, err error) {
	line, err := lg.readLine(ctx, d+2*time.Minute)
	if err != nil || !strings.HasPrefix(line, "done ") {
		return 0, 0, fmt.Errorf("load generator (%q, %v): %s", line, err, lg.errb.String())
	}
	if _, err := fmt.Sscanf(line, "done sent=%d errors=%d", &sent, &errs); err != nil {
		return 0, 0, fmt.Errorf("load generator said %q", line)
	}
	return sent, errs, nil
}

// stop closes the generator's stdin (it disconnects its workers) and waits.
func (lg *loadProcess) stop() error {
	lg.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- lg.cmd.Wait() }()
	select {
	case err := <-done:
		os.Remove(lg.keys)
		if err != nil {
			return fmt.Errorf("load generator: %w: %s", err, lg.errb.String())
		}
		return nil
	case <-time.After(time.Minute):
		_ = lg.cmd.Process.Kill()
		<-done
		return errors.New("load generator did not stop within a minute; killed")
	}
}

type limitedWriter struct {
	b   *strings.Builder
	max int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if room := w.max - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// memory is this process's memory after a full collection with the freed
// pages returned to the kernel.
type memory struct {
	rss, goHeap, goStack uint64
	goroutines           int
}

func measureMemory() memory {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memory{goHeap: ms.HeapAlloc, goStack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			m.rss = pages * uint64(os.Getpagesize())
		}
	}
	return m
}
