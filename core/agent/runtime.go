package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// runSpec describes one release of an app: what runs, where, and how to
// start it again. It is persisted (0600: it holds the app's environment) as
// apps/<uuid>/state.json so a restarted agent can adopt the release.
type runSpec struct {
	AppID         int64             `json:"app_id"`
	AppUUID       string            `json:"app_uuid"`
	JobID         int64             `json:"job_id"`
	DeploymentID  int64             `json:"deployment_id,omitempty"`
	Runtime       string            `json:"runtime"`
	Dir           string            `json:"dir"`
	Command       string            `json:"command,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	Port          int               `json:"port"`
	Limits        wsproto.Limits    `json:"limits"`
	Commit        string            `json:"commit,omitempty"`
	CommitMessage string            `json:"commit_message,omitempty"`

	// exec
	PID      int    `json:"pid,omitempty"`
	PIDStart uint64 `json:"pid_start,omitempty"`
	Stdout   string `json:"stdout,omitempty"`
	Stderr   string `json:"stderr,omitempty"`

	// podman
	Container     string `json:"container,omitempty"`
	ContainerID   string `json:"container_id,omitempty"`
	Image         string `json:"image,omitempty"`
	ContainerPort int    `json:"container_port,omitempty"`
}

// appRecord is the persisted state of an app on this worker.
type appRecord struct {
	AppID   int64    `json:"app_id"`
	AppUUID string   `json:"app_uuid"`
	Release *runSpec `json:"release,omitempty"`
}

// instance is a started release: a supervised process group (exec) or a
// container (podman).
type instance interface {
	// containerID names it in job results: "pid:<pid>" or the container id.
	containerID() string
	// done is closed when the current run has ended; exitCode is valid then.
	done() <-chan struct{}
	exitCode() int
	// restart runs the app again after its run ended.
	restart(ctx context.Context) error
	// stop ends the app (SIGTERM, SIGKILL after grace) and waits for it.
	stop(grace time.Duration)
	// kill ends the app at once (limit enforcement).
	kill()
	// afterExit cleans up after an unexpected exit (stray processes).
	afterExit()
	// remove releases what the instance holds (log followers, container);
	// the app must have ended.
	remove()
	// detach stops watching the app and leaves it running (agent exit).
	detach()
	// drainLogs reads pending output; lastLines returns its latest lines.
	drainLogs()
	lastLines() []string
}

// driver is a runtime: how releases are built, started and cleaned up.
type driver interface {
	name() string
	// build turns the checkout in spec.Dir into something start can run.
	build(ctx context.Context, spec *runSpec, p *wsproto.DeployPayload, bl *buildLog) error
	// prepare makes room for a new release next to old (which may be nil
	// or of another runtime); undo reverts it when the new release fails.
	prepare(ctx context.Context, spec *runSpec, old *release) (undo func(), err error)
	start(ctx context.Context, spec *runSpec) (instance, error)
	adopt(spec *runSpec) instance
	// cleanup removes a stopped release's files, images and containers.
	cleanup(spec *runSpec)
}

// release is a started runSpec and its supervision state.
type release struct {
	spec *runSpec
	inst instance
	drv  driver

	// mu serializes restarts against stop, and guards the spec fields a
	// restart or a rename changes (PID, PIDStart, Container).
	mu       sync.Mutex
	stopping bool
	stopCh   chan struct{}
	supDone  chan struct{}

	crashloop atomic.Bool
	// restarts are the recent unexpected exits (supervisor only).
	restarts     []time.Time
	restartCount atomic.Int64

	// stats is the sampler state (stats loop only).
	stats statsState
	// violating remembers the limits currently broken (stats loop only).
	violating map[string]bool
}

func newRelease(spec *runSpec, inst instance, drv driver) *release {
	return &release{spec: spec, inst: inst, drv: drv, stopCh: make(chan struct{}), supDone: make(chan struct{}), violating: map[string]bool{}}
}

// markStopping tells the supervisor the next exit is intended. It reports
// false if it was already stopping.
func (r *release) markStopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return false
	}
	r.stopping = true
	close(r.stopCh)
	return true
}

func (r *release) isStopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

// appEnv validates the app's variables and returns them with PORT set.
func appEnv(env map[string]string, port int) (map[string]string, error) {
	out := make(map[string]string, len(env)+1)
	for k, v := range env {
		if !validEnvName(k) {
			return nil, fmt.Errorf("invalid environment variable name %q", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("environment variable %s holds a NUL byte", k)
		}
		out[k] = v
	}
	out["PORT"] = strconv.Itoa(port)
	return out, nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func validEnvName(k string) bool { return envNameRE.MatchString(k) }

// mergeEnv returns base with vars layered on top (vars win), without the
// worker key whatever the inputs hold.
func mergeEnv(base []string, vars map[string]string) []string {
	out := make([]string, 0, len(base)+len(vars))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, over := vars[k]; over || k == KeyEnv {
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		if k != KeyEnv {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+vars[k])
	}
	return out
}

var uuidRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

// writeJSON writes v to path atomically with mode 0600.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// portAllocator hands out host ports from the configured range; a port is
// given only if it is not in use by another release and can be bound.
type portAllocator struct {
	mu     sync.Mutex
	lo, hi int
	next   int
	used   map[int]bool
}

func newPortAllocator(lo, hi int) *portAllocator {
	return &portAllocator{lo: lo, hi: hi, next: lo, used: map[int]bool{}}
}

var errNoPort = errors.New("no free port left in the port range")

func (p *portAllocator) acquire() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.hi - p.lo + 1
	for i := 0; i < n; i++ {
		port := p.next
		p.next++
		if p.next > p.hi {
			p.next = p.lo
		}
		if p.used[port] || !bindable(port) {
			continue
		}
		p.used[port] = true
		return port, nil
	}
	return 0, errNoPort
}

func (p *portAllocator) reserve(port int) {
	p.mu.Lock()
	p.used[port] = true
	p.mu.Unlock()
}

func (p *portAllocator) release(port int) {
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}

// bindable reports whether a TCP listener can take port on every address.
func bindable(port int) bool {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// waitReady waits until port accepts TCP connections. It fails when the
// instance's run ends first, when timeout passes, or when stop is closed.
func waitReady(ctx context.Context, port int, inst instance, timeout time.Duration, stop <-chan struct{}) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	d := net.Dialer{Timeout: 250 * time.Millisecond}
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return errors.New("stopped")
		case <-inst.done():
			return fmt.Errorf("the app exited with code %d before accepting connections on port %d", inst.exitCode(), port)
		case <-deadline.C:
			return fmt.Errorf("the app did not accept connections on port %d within %s", port, timeout)
		case <-tick.C:
		}
	}
}

// withLastLines appends an instance's or a build's latest output to msg.
func withLastLines(msg string, lines []string) string {
	if len(lines) == 0 {
		return msg
	}
	return msg + "; last output:\n" + strings.Join(lines, "\n")
}

// appDir is data-dir/apps/<uuid>.
func (a *Agent) appDir(uuid string) string {
	return filepath.Join(a.cfg.DataDir, "apps", uuid)
}
