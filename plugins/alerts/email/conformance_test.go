package email

import (
	"os"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/mail/mailtest"
	"github.com/wisehosting/wisehosting/sdk/sdktest"
)

// TestMain lets the test binary serve the plugin when sdktest re-executes
// it, so the conformance kit checks it through a real subprocess.
func TestMain(m *testing.M) {
	sdktest.ServeIfChild(func() sdk.Plugin { return New() })
	os.Exit(m.Run())
}

// goodConfigs and badConfigs are the built-ins' table entry
// (plugins/conformance_test.go). The first good one points at a closed
// loopback port: the conformance Deliver gets RETRY results without any
// network.
var (
	goodConfigs = []string{
		"host = \"127.0.0.1\"\nport = 1\nallow_private = true\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]\ntimeout = \"2s\"",
		"host = \"smtp.example.com\"\nfrom = \"WiseHosting <alerts@example.com>\"\nto = [\"ops@example.com\", \"Jane <jane@example.com>\"]",
		"host = \"smtp.example.com\"\nport = 465\ntls = true\nusername = \"alerts@example.com\"\npassword = \"hunter2\"\n" +
			"from = \"alerts@example.com\"\nto = [\"ops@example.com\"]\ntimeout = \"10s\"\nmax_concurrency = 4\n" +
			"subject_prefix = \"[Prod]\"\nserver_name = \"mail.example.com\"",
	}
	badConfigs = []string{
		``,
		"host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"",
		"host = \"smtp.example.com\"\nfrom = \"not an address\"\nto = [\"ops@example.com\"]",
		"host = \"127.0.0.1\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]",
		"host = \"169.254.169.254\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]",
		"host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]\nmax_concurrency = 0",
		"host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]\ntimeout = \"forever\"",
		"host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]\nstarttls = false\nusername = \"u\"\npassword = \"p\"",
		"host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]\nca_file = \"ca.pem\"",
		"host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\nto = \"ops@example.com\"",
	}
)

// TestConformance runs the sdk's conformance kit with the table's configs,
// and once more with a live SMTP server, so its Deliver check sees events
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

	srv := mailtest.Start(t, mailtest.Options{})
	sdktest.Run(t, sdktest.Options{
		Command:     sdktest.SelfCommand(),
		Kind:        sdk.KindAlerts,
		GoodConfigs: []string{config(t, srv)},
	})
	got := map[string]int{}
	for _, m := range srv.Messages() {
		p, err := m.Parse()
		if err != nil {
			t.Fatal(err)
		}
		got[p.Header.Get("X-Wisehosting-Event-Id")]++
	}
	for _, ev := range sdktest.SampleEvents() {
		if n := got[ev.GetId()]; n != 1 {
			t.Errorf("the server got %s %d times, want once", ev.GetId(), n)
		}
	}
}
