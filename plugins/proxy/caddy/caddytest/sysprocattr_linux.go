package caddytest

import "syscall"

// sysProcAttr puts Caddy in its own process group, killed with the test
// binary if that dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
