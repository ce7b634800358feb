//go:build !linux

package pluginhost

import "syscall"

// sysProcAttr is nil outside Linux: there is no parent-death signal there,
// so plugins rely on go-plugin's own shutdown (and their stdin closing).
func sysProcAttr() *syscall.SysProcAttr { return nil }

// killGroup is a no-op outside Linux; Client.Kill ends the plugin itself.
func killGroup(int) error { return nil }

// isZombie is always false outside Linux.
func isZombie(int) bool { return false }
