package caddy

import (
	"os"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/sdktest"
)

// TestMain lets the test binary serve the plugin when sdktest re-executes
// it, so the conformance kit checks it through a real subprocess.
func TestMain(m *testing.M) {
	sdktest.ServeIfChild(func() sdk.Plugin { return New() })
	os.Exit(m.Run())
}

// TestConformance runs the sdk's conformance kit with the good and bad
// config blocks of the built-ins' table (plugins/conformance_test.go).
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts plugin subprocesses")
	}
	rep := sdktest.Run(t, sdktest.Options{
		Command:     sdktest.SelfCommand(),
		Kind:        sdk.KindProxy,
		GoodConfigs: goodConfigs,
		BadConfigs:  badConfigs,
	})
	for _, b := range rep.Bad {
		t.Logf("bad config %d rejected at %s: %s", b.Index, b.Stage, b.Message)
	}
}
