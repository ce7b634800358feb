package sdktest

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill the plugin if the test process dies,
// as the core does for its plugins, unless the command sets its own signal.
func setPdeathsig(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if cmd.SysProcAttr.Pdeathsig == 0 {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
}
