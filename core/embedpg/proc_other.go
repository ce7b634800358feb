//go:build unix && !linux

package embedpg

import (
	"errors"
	"syscall"
)

// sysProcAttr runs a child in its own process group as the server account.
// Only Linux has a parent-death signal: elsewhere a killed caller leaves its
// server running (the next Start attaches to it).
func sysProcAttr(a account, _ syscall.Signal) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if a.switchUser {
		attr.Credential = &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}
	}
	return attr
}

// processCwd is unsupported here; callers then treat the process as live.
func processCwd(int) (string, error) { return "", errors.ErrUnsupported }

func isZombie(int) bool { return false }

// memoryTempDir is Linux-only.
func memoryTempDir() string { return "" }
