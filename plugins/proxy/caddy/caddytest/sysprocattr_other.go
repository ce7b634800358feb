//go:build unix && !linux

package caddytest

import "syscall"

// sysProcAttr puts Caddy in its own process group (no parent-death signal
// outside Linux: t.Cleanup is what stops it).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
