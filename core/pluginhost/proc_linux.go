//go:build linux

package pluginhost

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

// sysProcAttr puts a plugin in its own process group (so Stop can kill
// whatever it spawned, and a Ctrl-C aimed at the core's terminal does not
// reach it before the core decides) and asks the kernel to SIGKILL it when
// the core dies, even by SIGKILL: no plugin outlives the core.
//
// The parent-death signal fires when the thread that forked the plugin
// ends. The Go runtime ends a thread only when a goroutine locked to it
// (runtime.LockOSThread) exits locked, and such a thread runs nothing else,
// so the fork never happens on one: the signal comes with the process's
// death.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup sends SIGKILL to the process group led by pid. A group that no
// longer exists is not an error.
func killGroup(pid int) error {
	if pid <= 0 {
		return nil
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// isZombie reports whether pid has exited but is not reaped yet.
func isZombie(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
