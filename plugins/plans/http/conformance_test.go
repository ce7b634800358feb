package httpplans

import (
	"fmt"
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

// goodConfigs returns the good config blocks of the built-ins' table
// (plugins/conformance_test.go). The first one must point at a live
// catalogue: the kit calls Plans with it. The others only configure (no
// request is made before Plans).
func goodConfigs(url string) []string {
	return []string{
		fmt.Sprintf("url = %q", url),
		`url = "https://plans.example.com/wisehosting/plans.json"`,
		"url = \"http://10.0.0.5:8080/plans?tenant=a\"\nrefresh = \"30s\"\ntimeout = \"2s\"\nmax_size = \"64KiB\"\n" +
			"headers = { Authorization = \"Bearer x\", \"X-Tenant\" = \"a\" }",
	}
}

// badConfigs are the bad config blocks of the built-ins' table.
var badConfigs = []string{
	``,
	`url = "ftp://plans.example.com/plans.json"`,
	`url = "https://user:pass@plans.example.com/plans.json"`,
	"url = \"https://plans.example.com/\"\nrefresh = \"1s\"",
	"url = \"https://plans.example.com/\"\ntimeout = \"forever\"",
	"url = \"https://plans.example.com/\"\nmax_size = \"lots\"",
	"url = \"https://plans.example.com/\"\nheaders = { Host = \"x\" }",
	"url = \"https://plans.example.com/\"\nheaders = [\"x\"]",
	`url = ["https://plans.example.com/"]`,
}

// TestConformance runs the sdk's conformance kit with the table's configs,
// the first one pointing at a live catalogue server.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts plugin subprocesses")
	}
	srv := newServer(t, seedJSON)
	rep := sdktest.Run(t, sdktest.Options{
		Command:     sdktest.SelfCommand(),
		Kind:        sdk.KindPlans,
		GoodConfigs: goodConfigs(srv.url("/plans.json")),
		BadConfigs:  badConfigs,
	})
	for _, b := range rep.Bad {
		t.Logf("bad config %d rejected at %s: %s", b.Index, b.Stage, b.Message)
	}
	if srv.count() != 1 {
		t.Errorf("the catalogue server got %d requests, want 1 (the kit's Plans call)", srv.count())
	}
}
