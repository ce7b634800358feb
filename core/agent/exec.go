package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// execDriver runs apps as plain processes of the agent's user: the build
// command and the run command through `sh -c` in the checkout, each run in
// a process group of its own. Limits are watched, not enforced by the
// kernel (see the stats loop): this runtime is for trusted code.
type execDriver struct{ a *Agent }

func (d *execDriver) name() string { return wsproto.RuntimeExec }

func (d *execDriver) build(ctx context.Context, spec *runSpec, p *wsproto.DeployPayload, bl *buildLog) error {
	if p.BuildCommand == "" {
		bl.note("no build command")
		return nil
	}
	bl.note("running the build command")
	cmd := exec.CommandContext(ctx, "sh", "-c", p.BuildCommand)
	cmd.Dir = spec.Dir
	cmd.Env = mergeEnv(d.a.cfg.BaseEnv, spec.Env)
	return runGroup(cmd, bl)
}

// runGroup runs cmd in a process group of its own with its output in w;
// when cmd's context ends the whole group is killed.
func runGroup(cmd *exec.Cmd, w io.Writer) error {
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd.Run()
}

func (d *execDriver) prepare(context.Context, *runSpec, *release) (func(), error) {
	return func() {}, nil
}

func (d *execDriver) start(_ context.Context, spec *runSpec) (instance, error) {
	logs := filepath.Join(d.a.appDir(spec.AppUUID), "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return nil, err
	}
	job := strconv.FormatInt(spec.JobID, 10)
	spec.Stdout = filepath.Join(logs, job+".stdout")
	spec.Stderr = filepath.Join(logs, job+".stderr")
	for _, p := range []string{spec.Stdout, spec.Stderr} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			return nil, err
		}
	}
	x := d.newInstance(spec)
	if err := x.spawn(); err != nil {
		return nil, err
	}
	x.tail.start(false)
	return x, nil
}

func (d *execDriver) adopt(spec *runSpec) instance {
	x := d.newInstance(spec)
	done := make(chan struct{})
	x.doneCh = done
	x.pid = spec.PID
	st, err := readProcStat(procRoot, spec.PID)
	if err != nil || st.start != spec.PIDStart || st.state == 'Z' {
		// It died while no agent watched it.
		x.code = -1
		close(done)
	} else {
		go x.pollExit(spec.PID, spec.PIDStart, done)
	}
	x.tail.start(true)
	return x
}

func (d *execDriver) cleanup(spec *runSpec) {
	for _, p := range []string{spec.Stdout, spec.Stderr} {
		if p != "" {
			os.Remove(p)
		}
	}
	if spec.Dir != "" {
		os.RemoveAll(spec.Dir)
	}
}

func (d *execDriver) newInstance(spec *runSpec) *execInstance {
	x := &execInstance{d: d, spec: spec, last: newRing(20), quit: make(chan struct{})}
	x.tail = &fileTailer{
		interval: d.a.cfg.LogFlushInterval,
		quit:     x.quit,
		files: []*tailFile{
			{path: spec.Stdout, stream: "stdout"},
			{path: spec.Stderr, stream: "stderr"},
		},
		emit: func(stream, line string) {
			x.last.add(line)
			d.a.logs.add(spec.AppID, stream, line)
		},
	}
	return x
}

// execInstance is an app's process group. Its output goes to files in the
// app's directory, not to pipes, so the app survives the agent: a tailer
// ships the files as runtime logs.
type execInstance struct {
	d    *execDriver
	spec *runSpec
	tail *fileTailer
	last *ring
	quit chan struct{}
	once sync.Once

	mu     sync.Mutex
	pid    int // process (and group) id of the current run
	doneCh chan struct{}
	code   int
}

func (x *execInstance) spawn() error {
	stdout, err := os.OpenFile(x.spec.Stdout, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer stdout.Close()
	stderr, err := os.OpenFile(x.spec.Stderr, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer stderr.Close()
	cmd := exec.Command("sh", "-c", x.spec.Command)
	cmd.Dir = x.spec.Dir
	cmd.Env = mergeEnv(x.d.a.cfg.BaseEnv, x.spec.Env)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the run command: %w", err)
	}
	pid := cmd.Process.Pid
	var start uint64
	if st, err := readProcStat(procRoot, pid); err == nil {
		start = st.start
	}
	done := make(chan struct{})
	x.mu.Lock()
	x.pid, x.doneCh, x.code = pid, done, 0
	x.spec.PID, x.spec.PIDStart = pid, start
	x.mu.Unlock()
	go func() {
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		} else if err != nil {
			code = -1
		}
		x.mu.Lock()
		x.code = code
		x.mu.Unlock()
		close(done)
	}()
	return nil
}

// pollExit watches a process that is not the agent's child.
func (x *execInstance) pollExit(pid int, start uint64, done chan struct{}) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-x.quit:
			return
		case <-t.C:
		}
		st, err := readProcStat(procRoot, pid)
		if err != nil || st.start != start || st.state == 'Z' {
			x.mu.Lock()
			x.code = -1 // not our child: its exit status is unknown
			x.mu.Unlock()
			close(done)
			return
		}
	}
}

func (x *execInstance) containerID() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return "pid:" + strconv.Itoa(x.pid)
}

func (x *execInstance) done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.doneCh
}

func (x *execInstance) exitCode() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.code
}

func (x *execInstance) pgid() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.pid
}

func (x *execInstance) restart(context.Context) error { return x.spawn() }

func (x *execInstance) stop(grace time.Duration) {
	pg := x.pgid()
	if pg <= 0 {
		return
	}
	_ = syscall.Kill(-pg, syscall.SIGTERM)
	if !waitGroupGone(pg, grace) {
		_ = syscall.Kill(-pg, syscall.SIGKILL)
		waitGroupGone(pg, 5*time.Second)
	}
	select {
	case <-x.done():
	case <-time.After(5 * time.Second):
	}
}

func (x *execInstance) kill() {
	if pg := x.pgid(); pg > 0 {
		_ = syscall.Kill(-pg, syscall.SIGKILL)
	}
}

func (x *execInstance) afterExit() {
	// Whatever the leader left behind in its group would hold the port.
	if pg := x.pgid(); pg > 0 {
		_ = syscall.Kill(-pg, syscall.SIGKILL)
		waitGroupGone(pg, 2*time.Second)
	}
}

func (x *execInstance) remove() {
	x.once.Do(func() { close(x.quit) })
	x.tail.wait()
}

func (x *execInstance) detach() { x.remove() }

func (x *execInstance) drainLogs()          { x.tail.drain() }
func (x *execInstance) lastLines() []string { return x.last.last() }

// waitGroupGone waits until no live process is left in process group pg.
func waitGroupGone(pg int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !groupAlive(pg) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupAlive reports whether process group pg has a process that is not a
// zombie (an unreaped zombie holds no port and no memory).
func groupAlive(pg int) bool {
	if err := syscall.Kill(-pg, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	for _, s := range scanProcs(procRoot) {
		if s.pgrp == pg && s.state != 'Z' {
			return true
		}
	}
	return false
}

// fileTailer ships what an app appends to its output files. Files that
// grow beyond maxLogFile are truncated once read (the app writes with
// O_APPEND, so it carries on at the new end).
type fileTailer struct {
	interval time.Duration
	quit     chan struct{}
	files    []*tailFile
	emit     func(stream, line string)

	mu  sync.Mutex // one reader at a time
	wg  sync.WaitGroup
	buf []byte
}

type tailFile struct {
	path   string
	stream string
	off    int64
	split  *lineSplitter
}

const maxLogFile = 16 << 20

// start begins tailing; atEnd skips what the files already hold (an
// adopted app's old output).
func (t *fileTailer) start(atEnd bool) {
	for _, f := range t.files {
		stream := f.stream
		f.split = &lineSplitter{emit: func(line string) { t.emit(stream, line) }}
		if atEnd {
			if st, err := os.Stat(f.path); err == nil {
				f.off = st.Size()
			}
		}
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tick := time.NewTicker(t.interval)
		defer tick.Stop()
		for {
			select {
			case <-t.quit:
				t.drain()
				return
			case <-tick.C:
				t.drain()
			}
		}
	}()
}

func (t *fileTailer) wait() { t.wg.Wait() }

// drain reads what was appended since the last read.
func (t *fileTailer) drain() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.buf == nil {
		t.buf = make([]byte, 64<<10)
	}
	for _, f := range t.files {
		if f.split == nil || f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			continue
		}
		if st, err := fh.Stat(); err == nil && st.Size() < f.off {
			f.off = 0 // truncated by someone else
		}
		for read := 0; read < 4<<20; {
			n, err := fh.ReadAt(t.buf, f.off)
			if n > 0 {
				_, _ = f.split.Write(t.buf[:n])
				f.off += int64(n)
				read += n
			}
			if err != nil || n == 0 {
				break
			}
		}
		fh.Close()
		if f.off > maxLogFile {
			if os.Truncate(f.path, 0) == nil {
				f.off = 0
			}
		}
	}
}
