package nginx

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route/routetest"
)

// TestOverGRPC drives the plugin through the real gRPC path: Info lists the
// apply capability, Render answers the same bytes as in-process, Apply
// writes the files and runs the commands (/bin/true, /bin/false), and a
// failed Apply reaches the core as an error carrying the message.
func TestOverGRPC(t *testing.T) {
	for _, p := range []string{"/bin/true", "/bin/false"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is needed by this test: %v", p, err)
		}
	}
	dir := t.TempDir()
	c := plugintest.Connect(t, New())
	ctx := context.Background()
	configure := func(test string) {
		t.Helper()
		js, _ := json.Marshal(map[string]any{"dir": dir, "test_command": []string{test}, "reload_command": []string{"/bin/true"}})
		if err := c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js}); err != nil {
			t.Fatal(err)
		}
	}
	configure("/bin/true")

	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(info.GetCapabilities(), sdk.CapabilityProxyApply) {
		t.Errorf("capabilities = %v", info.GetCapabilities())
	}

	in := &pluginv1.RenderRequest{Routes: smallTable(), Generation: 1}
	resp, err := c.(sdk.Proxy).Render(ctx, in)
	if err != nil {
		t.Fatalf("Render over gRPC: %v", err)
	}
	direct, err := New().Render(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if string(direct.GetBody()) != string(resp.GetBody()) || resp.GetContentType() != ContentType {
		t.Fatal("the gRPC render differs from the in-process one")
	}

	applier, ok := c.(sdk.ProxyApplier)
	if !ok {
		t.Fatalf("%T is not an sdk.ProxyApplier", c)
	}
	ar, err := applier.Apply(ctx, &pluginv1.ApplyRequest{Routes: smallTable(), Generation: 1})
	if err != nil {
		t.Fatalf("Apply over gRPC: %v", err)
	}
	if !ar.GetApplied() || !strings.Contains(ar.GetMessage(), "nginx reloaded") {
		t.Errorf("apply = %v", ar)
	}
	files := splitDocument(t, resp.GetBody())
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != string(want) {
			t.Errorf("%s: %v", name, err)
		}
	}

	configure("/bin/false")
	_, err = applier.Apply(ctx, &pluginv1.ApplyRequest{Routes: smallTable()[1:], Generation: 2})
	if err == nil || !strings.Contains(err.Error(), "nginx: apply: configuration test failed: /bin/false: exit status 1 (no output) (the previous files were restored)") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "shop.conf")); err != nil {
		t.Errorf("shop.conf was not restored: %v", err)
	}
}

// TestRender20000OverGRPC renders 20,000 routes through the real gRPC path
// (the sdk's message limits on both sides).
func TestRender20000OverGRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("renders a large config")
	}
	routetest.CheckRenderOverGRPC(t, New(), New(), routetest.ManyRoutes(20000))
}
