package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// podmanDriver builds an image from the app's Containerfile (or Dockerfile)
// and runs it as the container wh-<uuid> with the plan's limits. The app's
// environment goes through an --env-file (mode 0600, removed once the
// container exists), never through podman's argv.
type podmanDriver struct {
	a   *Agent
	env []string // podman's own environment: the agent's, minus the worker key
}

// defaultContainerPort is where an app listens inside its container unless
// its environment sets PORT.
const defaultContainerPort = 8080

func newPodmanDriver(a *Agent) *podmanDriver {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, KeyEnv+"=") {
			env = append(env, kv)
		}
	}
	return &podmanDriver{a: a, env: env}
}

func (d *podmanDriver) name() string { return wsproto.RuntimePodman }

func containerName(uuid string) string { return "wh-" + uuid }

// command returns a podman invocation.
func (d *podmanDriver) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.a.cfg.PodmanPath, args...)
	cmd.Env = d.env
	return cmd
}

// run runs podman and returns its trimmed stdout; a failure carries stderr.
func (d *podmanDriver) run(ctx context.Context, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := d.command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("podman %s: %s", args[0], msg)
	}
	return strings.TrimSpace(out.String()), nil
}

func (d *podmanDriver) build(ctx context.Context, spec *runSpec, p *wsproto.DeployPayload, bl *buildLog) error {
	file := p.Dockerfile
	if file == "" {
		file = "Containerfile"
		if _, err := os.Stat(filepath.Join(spec.Dir, file)); err != nil {
			if _, err := os.Stat(filepath.Join(spec.Dir, "Dockerfile")); err == nil {
				file = "Dockerfile"
			}
		}
	}
	clean := filepath.Clean(file)
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("dockerfile %q is outside the repository", file)
	}
	if _, err := os.Stat(filepath.Join(spec.Dir, clean)); err != nil {
		return fmt.Errorf("no %s in the repository", clean)
	}
	spec.Image = containerName(spec.AppUUID) + ":" + strconv.FormatInt(spec.JobID, 10)
	bl.note("podman build -t " + spec.Image + " -f " + clean + " .")
	cmd := d.command(ctx, "build", "-t", spec.Image, "-f", clean, ".")
	cmd.Dir = spec.Dir
	return runGroup(cmd, bl)
}

// prepare renames the running container of the previous podman release
// out of the way (wh-<uuid>-<job>), so the new one can take wh-<uuid>
// while the old one keeps serving until the new one is up.
func (d *podmanDriver) prepare(ctx context.Context, spec *runSpec, old *release) (func(), error) {
	name := containerName(spec.AppUUID)
	spec.Container = name
	if old == nil || old.spec.Runtime != wsproto.RuntimePodman {
		// No release of ours holds the name; a leftover container would.
		_, _ = d.run(ctx, "rm", "-f", "--ignore", name)
		return func() {}, nil
	}
	oi := old.inst.(*podmanInstance)
	aside := name + "-" + strconv.FormatInt(old.spec.JobID, 10)
	if _, err := d.run(ctx, "rename", name, aside); err != nil {
		return nil, err
	}
	setName := func(n string) {
		old.mu.Lock()
		old.spec.Container = n
		old.mu.Unlock()
		oi.setName(n)
	}
	setName(aside)
	return func() {
		if _, err := d.run(context.Background(), "rename", aside, name); err == nil {
			setName(name)
		}
	}, nil
}

func (d *podmanDriver) start(ctx context.Context, spec *runSpec) (instance, error) {
	ctrPort := defaultContainerPort
	if v, ok := spec.Env["PORT"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n < 65536 {
			ctrPort = n
		}
	}
	spec.ContainerPort = ctrPort
	env := make(map[string]string, len(spec.Env))
	for k, v := range spec.Env {
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("environment variable %s holds a line break, which podman's env files cannot carry", k)
		}
		env[k] = v
	}
	env["PORT"] = strconv.Itoa(ctrPort)
	envDir := filepath.Join(d.a.appDir(spec.AppUUID), "env")
	if err := os.MkdirAll(envDir, 0o700); err != nil {
		return nil, err
	}
	envFile := filepath.Join(envDir, strconv.FormatInt(spec.JobID, 10)+".env")
	var b strings.Builder
	for _, kv := range mergeEnv(nil, env) {
		b.WriteString(kv)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(envFile, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(envFile)

	args := podmanRunArgs(spec, envFile)
	id, err := d.run(ctx, args...)
	if err != nil {
		return nil, err
	}
	if i := strings.LastIndexByte(id, '\n'); i >= 0 {
		id = id[i+1:] // the id is the last line (pull progress may precede it)
	}
	spec.ContainerID = id
	x := d.newInstance(spec)
	x.watch()
	x.follow(time.Time{})
	return x, nil
}

// podmanRunArgs is the `podman run` command line of a release.
func podmanRunArgs(spec *runSpec, envFile string) []string {
	args := []string{"run", "-d", "--name", spec.Container,
		"-p", strconv.Itoa(spec.Port) + ":" + strconv.Itoa(spec.ContainerPort)}
	l := spec.Limits
	if l.Memory > 0 {
		args = append(args, "--memory", strconv.FormatInt(l.Memory, 10))
	}
	if l.CPU > 0 {
		args = append(args, "--cpus", strconv.FormatFloat(float64(l.CPU)/1000, 'f', -1, 64))
	}
	if l.PIDs > 0 {
		args = append(args, "--pids-limit", strconv.FormatInt(l.PIDs, 10))
	}
	args = append(args, "--env-file", envFile, spec.Image)
	if spec.Command != "" {
		args = append(args, "sh", "-c", spec.Command)
	}
	return args
}

func (d *podmanDriver) adopt(spec *runSpec) instance {
	x := d.newInstance(spec)
	x.watch()
	x.follow(time.Now())
	return x
}

func (d *podmanDriver) cleanup(spec *runSpec) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if spec.Container != "" {
		_, _ = d.run(ctx, "rm", "-f", "--ignore", spec.Container)
	}
	if spec.Image != "" {
		_, _ = d.run(ctx, "rmi", "-f", spec.Image)
	}
	if spec.Dir != "" {
		os.RemoveAll(spec.Dir)
	}
}

func (d *podmanDriver) newInstance(spec *runSpec) *podmanInstance {
	ctx, cancel := context.WithCancel(context.Background())
	return &podmanInstance{d: d, appID: spec.AppID, name: spec.Container, id: spec.ContainerID,
		last: newRing(20), ctx: ctx, cancel: cancel}
}

// podmanInstance is an app's container. `podman wait` tells when it ends,
// `podman logs -f` streams its output.
type podmanInstance struct {
	d     *podmanDriver
	appID int64
	id    string
	last  *ring

	ctx    context.Context // ends the wait and logs helpers
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	name     string
	doneCh   chan struct{}
	code     int
	logsStop context.CancelFunc
}

func (x *podmanInstance) setName(n string) {
	x.mu.Lock()
	x.name = n
	x.mu.Unlock()
}

func (x *podmanInstance) getName() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.name
}

// watch starts `podman wait` for the current run.
func (x *podmanInstance) watch() {
	done := make(chan struct{})
	x.mu.Lock()
	x.doneCh, x.code = done, 0
	name := x.name
	x.mu.Unlock()
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		out, err := x.d.run(x.ctx, "wait", name)
		if x.ctx.Err() != nil {
			return // detached: the container runs on
		}
		code := -1
		if err == nil {
			if n, err := strconv.Atoi(lastLine(out)); err == nil {
				code = n
			}
		}
		x.mu.Lock()
		x.code = code
		x.mu.Unlock()
		close(done)
	}()
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}

// follow streams `podman logs -f` (since t, when set) until the next run.
func (x *podmanInstance) follow(since time.Time) {
	ctx, stop := context.WithCancel(x.ctx)
	x.mu.Lock()
	if x.logsStop != nil {
		x.logsStop()
	}
	x.logsStop = stop
	name := x.name
	x.mu.Unlock()
	args := []string{"logs", "-f"}
	if !since.IsZero() {
		args = append(args, "--since", since.UTC().Format(time.RFC3339Nano))
	}
	args = append(args, name)
	cmd := x.d.command(ctx, args...)
	stdout, err1 := cmd.StdoutPipe()
	stderr, err2 := cmd.StderrPipe()
	if err1 != nil || err2 != nil || cmd.Start() != nil {
		stop()
		return
	}
	var readers sync.WaitGroup
	pump := func(r io.Reader, stream string) {
		defer readers.Done()
		sp := &lineSplitter{emit: func(line string) {
			x.last.add(line)
			x.d.a.logs.add(x.appID, stream, line)
		}}
		br := bufio.NewReaderSize(r, 32<<10)
		buf := make([]byte, 32<<10)
		for {
			n, err := br.Read(buf)
			if n > 0 {
				_, _ = sp.Write(buf[:n])
			}
			if err != nil {
				sp.flush()
				return
			}
		}
	}
	readers.Add(2)
	x.wg.Add(1)
	go pump(stdout, "stdout")
	go pump(stderr, "stderr")
	go func() {
		defer x.wg.Done()
		readers.Wait()
		_ = cmd.Wait()
	}()
}

func (x *podmanInstance) containerID() string { return x.id }

func (x *podmanInstance) done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.doneCh
}

func (x *podmanInstance) exitCode() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.code
}

func (x *podmanInstance) restart(ctx context.Context) error {
	t := time.Now()
	if _, err := x.d.run(ctx, "start", x.getName()); err != nil {
		return err
	}
	x.watch()
	x.follow(t)
	return nil
}

func (x *podmanInstance) stop(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace+30*time.Second)
	defer cancel()
	secs := int((grace + time.Second - 1) / time.Second)
	_, _ = x.d.run(ctx, "stop", "-t", strconv.Itoa(secs), x.getName())
	select {
	case <-x.done():
	case <-time.After(5 * time.Second):
	}
}

func (x *podmanInstance) kill() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = x.d.run(ctx, "kill", x.getName())
}

func (x *podmanInstance) afterExit() {}

func (x *podmanInstance) remove() {
	x.cancel()
	x.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = x.d.run(ctx, "rm", "-f", "--ignore", x.getName())
}

func (x *podmanInstance) detach() {
	x.cancel()
	x.wg.Wait()
}

func (x *podmanInstance) drainLogs()          { time.Sleep(100 * time.Millisecond) }
func (x *podmanInstance) lastLines() []string { return x.last.last() }

// podmanStat is one entry of `podman stats --no-stream --format json`.
// Podman prints human-readable strings ("1.5%", "10.2MB / 512MB");
// older releases named net_io "netio".
type podmanStat struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	CPU     string          `json:"cpu_percent"`
	Mem     string          `json:"mem_usage"`
	NetIO   string          `json:"net_io"`
	NetIO2  string          `json:"netio"`
	BlockIO string          `json:"block_io"`
	PIDs    json.RawMessage `json:"pids"`
}

// containerStats is a parsed podmanStat.
type containerStats struct {
	cpu          float64
	mem          int64
	rx, tx       int64
	blockR, blkW int64
	pids         int64
}

// podmanStats runs one `podman stats` for every running container and
// returns them by name.
func (d *podmanDriver) stats(ctx context.Context) (map[string]containerStats, error) {
	out, err := d.run(ctx, "stats", "--no-stream", "--format", "json")
	if err != nil {
		return nil, err
	}
	return parsePodmanStats([]byte(out))
}

func parsePodmanStats(b []byte) (map[string]containerStats, error) {
	var list []podmanStat
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]containerStats{}, nil
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("podman stats: %w", err)
	}
	out := make(map[string]containerStats, len(list))
	for _, s := range list {
		var cs containerStats
		cs.cpu, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s.CPU), "%"), 64)
		cs.mem, _ = splitSizes(s.Mem)
		net := s.NetIO
		if net == "" {
			net = s.NetIO2
		}
		cs.rx, cs.tx = splitSizes(net)
		cs.blockR, cs.blkW = splitSizes(s.BlockIO)
		p := strings.Trim(string(s.PIDs), `" `)
		cs.pids, _ = strconv.ParseInt(p, 10, 64)
		out[s.Name] = cs
	}
	return out, nil
}

// splitSizes reads "a / b" sizes as podman prints them.
func splitSizes(s string) (int64, int64) {
	a, b, _ := strings.Cut(s, "/")
	return parseHumanSize(a), parseHumanSize(b)
}

// parseHumanSize reads "10.5MB", "1.2KiB", "796B", "--" (0).
func parseHumanSize(s string) int64 {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] == '.' || (s[i] >= '0' && s[i] <= '9')) {
		i++
	}
	f, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	}[strings.ToLower(strings.TrimSpace(s[i:]))]
	return int64(f * mult)
}
