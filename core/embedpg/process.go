package embedpg

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// process is a child started by spawn.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the child has exited and been reaped
	err  error         // result of Wait; read only after done is closed
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// signal sends sig to the child itself (postgres signals its own children).
func (p *process) signal(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
}

// killGroup sends SIGKILL to the child's process group.
func (p *process) killGroup() {
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	p.signal(syscall.SIGKILL)
}

// spawn starts binDir/name as the server account, in its own process group,
// with deathSig delivered when the parent dies, and its stdout and stderr
// forwarded to sink.
//
// The kernel sends the parent-death signal when the thread that forked the
// child exits, not only when the process does, so the child is forked from a
// goroutine locked to its OS thread that stays blocked in Wait for the
// child's lifetime. The goroutine never unlocks: the runtime then discards
// the thread once the child is gone.
func spawn(binDir, name string, args []string, dir string, acct account, deathSig syscall.Signal, sink *logSink) (*process, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Dir = dir
	cmd.Env = childEnv()
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = sysProcAttr(acct, deathSig)

	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := cmd.Start()
		_ = w.Close() // the child (and its children) hold the only write ends now
		if err != nil {
			_ = r.Close()
			started <- err
			return
		}
		go sink.run(r)
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// childEnv is the environment for initdb and postgres: the caller's, minus
// libpq variables and locale overrides that would change their behaviour.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") || strings.HasPrefix(kv, "LANGUAGE=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// logSink forwards a child's output, line by line, to a logger and keeps the
// last lines for error messages.
type logSink struct {
	log   hclog.Logger
	level hclog.Level   // fixed level for every line; NoLevel parses server severities
	done  chan struct{} // closed at EOF: every holder of the pipe has exited

	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

const logTailLines = 50

func newLogSink(log hclog.Logger) *logSink {
	return &logSink{log: log, done: make(chan struct{}), lines: make([]string, logTailLines)}
}

func (s *logSink) run(r io.ReadCloser) {
	defer close(s.done)
	defer func() { _ = r.Close() }()
	br := bufio.NewReader(r)
	level := hclog.Info
	for {
		line, err := br.ReadString('\n')
		if line = strings.TrimRight(line, "\r\n"); line != "" {
			if s.level != hclog.NoLevel {
				level = s.level
			} else {
				level = lineLevel(line, level)
			}
			s.log.Log(level, line)
			s.add(line)
		}
		if err != nil {
			return
		}
	}
}

func (s *logSink) add(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines[s.next] = line
	s.next = (s.next + 1) % len(s.lines)
	if s.next == 0 {
		s.full = true
	}
}

// tail returns up to n of the last lines, oldest first.
func (s *logSink) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []string
	if s.full {
		all = append(all, s.lines[s.next:]...)
	}
	all = append(all, s.lines[:s.next]...)
	if len(all) > n {
		all = all[len(all)-n:]
	}
	if len(all) == 0 {
		return "  (no output)"
	}
	return "  " + strings.Join(all, "\n  ")
}

// lineLevel maps a server log line ("[pid] SEVERITY:  message") to an hclog
// level. Statement errors are the client's business and logged at debug;
// continuation lines (DETAIL, HINT, ...) keep the level of their message.
func lineLevel(line string, prev hclog.Level) hclog.Level {
	msg := line
	if strings.HasPrefix(msg, "[") {
		if i := strings.Index(msg, "] "); i > 0 {
			msg = msg[i+2:]
		}
	}
	sev, rest, ok := strings.Cut(msg, ":")
	if !ok {
		if strings.HasPrefix(line, "\t") {
			return prev
		}
		return hclog.Info
	}
	switch sev {
	case "PANIC":
		return hclog.Error
	case "FATAL":
		for _, benign := range []string{
			"terminating connection due to administrator command",
			"the database system is starting up",
			"the database system is shutting down",
		} {
			if strings.Contains(rest, benign) {
				return hclog.Debug
			}
		}
		return hclog.Warn
	case "WARNING":
		return hclog.Warn
	case "ERROR", "LOG", "INFO", "NOTICE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3", "DEBUG4", "DEBUG5":
		return hclog.Debug
	case "DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION":
		return prev
	}
	return hclog.Info
}
