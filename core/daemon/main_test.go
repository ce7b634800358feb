package daemon

import (
	"os"
	"testing"

	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
)

func TestMain(m *testing.M) {
	// Re-executed by the plugin host to serve a test plugin.
	if name := os.Getenv(testPluginEnv); name != "" {
		os.Exit(serveTestPlugin(name))
	}
	os.Exit(pgtest.Main(m))
}
