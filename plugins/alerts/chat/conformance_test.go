package chat

import (
	"fmt"
	"os"
	"strings"
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

// goodConfigs and badConfigs are the built-ins' table entry
// (plugins/conformance_test.go). Every good one points at loopback with
// allow_private; the first at a closed port, so the conformance Deliver
// gets RETRY results without any network.
var (
	goodConfigs = []string{
		"url = \"discord://tok@1\"\nbase_url = \"http://127.0.0.1:1\"\nallow_private = true\ntimeout = \"2s\"",
		"url = \"slack://hook:T01ABCDEF-B02GHIJKL-ZqXXXXXXXXXXXXXXXXXXXXXX@webhook\"\nbase_url = \"http://127.0.0.1:1/relay\"\nallow_private = true\nmax_concurrency = 2",
		"url = \"ntfy://127.0.0.1:1/alerts?scheme=http&priority=high\"\nallow_private = true\ntimeout = \"30s\"",
		"url = \"telegram://123456789:AAH-token@telegram?chats=@ops,-100123\"\nbase_url = \"http://[::1]:1\"\nallow_private = true",
		"url = \"gotify://127.0.0.1:1/Atoken0123456789?disabletls=yes\"\nallow_private = true",
		"url = \"generic+http://127.0.0.1:1/hook?team=ops&@X-Api-Key=k\"\nallow_private = true",
	}
	badConfigs = []string{
		``,
		`url = "mailto://ops@example.com"`,
		"url = \"discord://tok@1\"\nbase_url = \"http://127.0.0.1:1\"",
		`url = "ntfy://10.0.0.1/alerts"`,
		`url = "generic+http://169.254.169.254/latest"`,
		`url = "telegram://123:AAH@telegram"`,
		`url = "slack://xoxb:1-2-3@C01"`,
		"url = \"discord://tok@1\"\ntimeout = \"forever\"",
		"url = \"discord://tok@1\"\nmax_concurrency = 0",
		"url = \"discord://tok@1\"\nbase_url = \"ftp://relay.example.com\"",
		`url = ["discord://tok@1"]`,
		"url = \"discord://tok@1\"\nsecret = \"x\"",
	}
)

// TestConformance runs the sdk's conformance kit with the table's configs,
// and once more with a live receiver, so its Deliver check sees events
// delivered.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts plugin subprocesses")
	}
	rep := sdktest.Run(t, sdktest.Options{
		Command:     sdktest.SelfCommand(),
		Kind:        sdk.KindAlerts,
		GoodConfigs: goodConfigs,
		BadConfigs:  badConfigs,
	})
	for _, b := range rep.Bad {
		t.Logf("bad config %d rejected at %s: %s", b.Index, b.Stage, b.Message)
	}

	rc := newReceiver(t)
	sdktest.Run(t, sdktest.Options{
		Command:     sdktest.SelfCommand(),
		Kind:        sdk.KindAlerts,
		GoodConfigs: []string{config("discord://tok@1", fmt.Sprintf("base_url = %q", rc.URL))},
	})
	hits := rc.Requests()
	if len(hits) != len(sdktest.SampleEvents()) {
		t.Fatalf("the receiver got %d requests for %d sample events", len(hits), len(sdktest.SampleEvents()))
	}
	var bodies []string
	for _, h := range hits {
		bodies = append(bodies, string(h.Body))
	}
	for _, s := range []string{`❌ Deployment failed\nDeployment #42\nError: build failed: exit status 1`, `🔥 CPU high\nCPU at 97.5% (threshold 90%)`} {
		if !strings.Contains(strings.Join(bodies, "\n"), s) {
			t.Errorf("no request carried %q: %q", s, bodies)
		}
	}
}
