package webhook

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

// A fixed, valid secret for the static config tables (32 bytes of 0x01).
const tableSecret = "whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="

// goodConfigs and badConfigs are the built-ins' table entry
// (plugins/conformance_test.go). The first good one points at a closed
// loopback port: the conformance Deliver gets RETRY results without any
// network.
var (
	goodConfigs = []string{
		"url = \"http://127.0.0.1:1/hook\"\nsecret = \"" + tableSecret + "\"\nallow_private = true\ntimeout = \"2s\"",
		"url = \"https://hooks.example.com/wisehosting\"\nsecret = \"" + tableSecret + "\"",
		"url = \"https://hooks.example.com/x?token=abc\"\nsecret = \"" + tableSecret + "\"\nsecrets_previous = [\"whsec_AgICAgICAgICAgICAgICAgICAgICAgIC\"]\n" +
			"timeout = \"30s\"\nmax_concurrency = 2\nheaders = { Authorization = \"Bearer x\" }",
	}
	badConfigs = []string{
		``,
		`url = "https://hooks.example.com/"`,
		"url = \"ftp://hooks.example.com/\"\nsecret = \"" + tableSecret + "\"",
		"url = \"http://127.0.0.1:8080/\"\nsecret = \"" + tableSecret + "\"",
		"url = \"http://169.254.169.254/\"\nsecret = \"" + tableSecret + "\"",
		"url = \"https://hooks.example.com/\"\nsecret = \"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"",
		"url = \"https://hooks.example.com/\"\nsecret = \"whsec_c2hvcnQ=\"",
		"url = \"https://hooks.example.com/\"\nsecret = \"" + tableSecret + "\"\nheaders = { \"webhook-id\" = \"x\" }",
		"url = \"https://hooks.example.com/\"\nsecret = \"" + tableSecret + "\"\nmax_concurrency = 0",
		"url = \"https://hooks.example.com/\"\nsecret = \"" + tableSecret + "\"\ntimeout = \"forever\"",
		"url = \"https://hooks.example.com/\"\nsecret = 42\nheaders = [\"x\"]",
	}
)

// TestConformance runs the sdk's conformance kit with the table's configs,
// and once more with a live receiver, so its Deliver check sees events
// delivered and verified.
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

	rc := newReceiver(t, tableSecret)
	sdktest.Run(t, sdktest.Options{
		Command:     sdktest.SelfCommand(),
		Kind:        sdk.KindAlerts,
		GoodConfigs: []string{config(rc.URL, tableSecret)},
	})
	for _, ev := range sdktest.SampleEvents() {
		if n := rc.count(ev.GetId()); n != 1 {
			t.Errorf("the receiver verified %s %d times, want once", ev.GetId(), n)
		}
	}
	if n := rc.rejections(); n != 0 {
		t.Errorf("the receiver rejected %d requests", n)
	}
}
