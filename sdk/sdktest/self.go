package sdktest

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/wisehosting/wisehosting/sdk"
)

// EnvServe is the environment variable SelfCommand sets on the re-executed
// test binary: its presence tells ServeIfChild to serve instead of testing.
// Its value names the plugin for ServeNamedIfChild.
const EnvServe = "WISEHOSTING_SDKTEST_SERVE"

// selfValue is EnvServe's value for SelfCommand.
const selfValue = "1"

// ServeIfChild serves the plugin factory returns, and exits, when the
// process is a test binary re-executed by SelfCommand (EnvServe is set);
// otherwise it returns at once. Call it first thing in TestMain:
//
//	func TestMain(m *testing.M) {
//		sdktest.ServeIfChild(func() sdk.Plugin { return myplugin.New() })
//		os.Exit(m.Run())
//	}
func ServeIfChild(factory func() sdk.Plugin) {
	if os.Getenv(EnvServe) == "" {
		return
	}
	sdk.Serve(factory())
	os.Exit(0)
}

// ServeNamedIfChild is ServeIfChild for a test binary that serves several
// plugins: it serves factories[name] for the name SelfCommandNamed(name)
// set, and exits; an unknown name exits with an error. Without EnvServe it
// returns at once.
func ServeNamedIfChild(factories map[string]func() sdk.Plugin) {
	name := os.Getenv(EnvServe)
	if name == "" {
		return
	}
	factory, ok := factories[name]
	if !ok {
		names := make([]string, 0, len(factories))
		for n := range factories {
			names = append(names, n)
		}
		slices.Sort(names)
		fmt.Fprintf(os.Stderr, "sdktest: this test binary serves no plugin named %q (it serves %s)\n", name, strings.Join(names, ", "))
		os.Exit(2)
	}
	sdk.Serve(factory())
	os.Exit(0)
}

// SelfCommand returns an Options.Command that re-executes the running test
// binary with EnvServe set, so that ServeIfChild, called at the top of
// TestMain, serves the plugin: no prior `go build`. The binary also gets
// -test.run=^$ so that, should TestMain not call ServeIfChild, the child
// runs no test (and the handshake fails with a hint) instead of recursing.
func SelfCommand() func() *exec.Cmd { return selfCommand(selfValue) }

// SelfCommandNamed is SelfCommand for a test binary that serves several
// plugins through ServeNamedIfChild: the child serves factories[name].
func SelfCommandNamed(name string) func() *exec.Cmd {
	if name == "" {
		panic("sdktest: SelfCommandNamed needs a name")
	}
	return selfCommand(name)
}

func selfCommand(value string) func() *exec.Cmd {
	return func() *exec.Cmd {
		cmd := exec.Command(selfExecutable(), "-test.run=^$")
		cmd.Env = append(os.Environ(), EnvServe+"="+value)
		return cmd
	}
}

// isSelf reports whether cmd re-executes the test binary (for hints).
func isSelf(cmd *exec.Cmd) bool {
	return slices.ContainsFunc(cmd.Env, func(kv string) bool { return strings.HasPrefix(kv, EnvServe+"=") })
}
