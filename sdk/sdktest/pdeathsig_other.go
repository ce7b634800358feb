//go:build !linux

package sdktest

import "os/exec"

// setPdeathsig does nothing where the kernel has no parent-death signal;
// go-plugin's Kill at the end of every check still stops the plugin.
func setPdeathsig(*exec.Cmd) {}
