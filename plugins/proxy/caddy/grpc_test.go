package caddy

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route/routetest"
)

// TestOverGRPC drives the plugin through the real gRPC path, as the core
// does: Info, Configure from HCL, Render, and Apply against a fake admin
// API that records the posted configuration.
func TestOverGRPC(t *testing.T) {
	rec := &loadRecorder{}
	_, admin := fakeAdmin(t, rec)
	c := plugintest.Connect(t, New())
	ctx := context.Background()

	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(info.GetCapabilities(), sdk.CapabilityProxyApply) {
		t.Fatalf("capabilities %v", info.GetCapabilities())
	}
	src := admin + "\ntls = \"internal\"\nhttp_listen = \"127.0.0.1:8080\"\nhttps_listen = \"127.0.0.1:8443\""
	js, diags := decode.Source(Spec(), []byte(src), "test.hcl", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if err := c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js}); err != nil {
		t.Fatal(err)
	}

	resp, err := c.(sdk.Proxy).Render(ctx, &pluginv1.RenderRequest{Routes: smallTable(), Generation: 4})
	if err != nil {
		t.Fatalf("Render over gRPC: %v", err)
	}
	direct, _ := newTestPlugin(t, src)
	if want := renderOK(t, direct, smallTable()); !bytes.Equal(resp.GetBody(), want) || resp.GetContentType() != ContentType {
		t.Fatalf("the gRPC render differs from the in-process one:\n got: %s\nwant: %s", resp.GetBody(), want)
	}

	applier, ok := c.(sdk.ProxyApplier)
	if !ok {
		t.Fatalf("%T is not an sdk.ProxyApplier", c)
	}
	ar, err := applier.Apply(ctx, &pluginv1.ApplyRequest{Routes: smallTable(), Generation: 4})
	if err != nil {
		t.Fatalf("Apply over gRPC: %v", err)
	}
	if !ar.GetApplied() {
		t.Errorf("apply response %v", ar)
	}
	if !bytes.Equal(rec.last(), resp.GetBody()) {
		t.Errorf("posted body differs from Render:\n got: %s\nwant: %s", rec.last(), resp.GetBody())
	}

	// A rejected load comes back as an error with Caddy's status and
	// message.
	rec.mu.Lock()
	rec.status, rec.answer = 400, `{"error":"loading config: bad things"}`
	rec.mu.Unlock()
	_, err = applier.Apply(ctx, &pluginv1.ApplyRequest{Routes: smallTable(), Generation: 5})
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request: loading config: bad things") {
		t.Errorf("err = %v", err)
	}
}

// TestRender20000OverGRPC renders 20,000 routes through the real gRPC
// path: about 3 MiB, the same bytes as in-process.
func TestRender20000OverGRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("renders a large config")
	}
	routetest.CheckRenderOverGRPC(t, New(), New(), routetest.ManyRoutes(20000))
}
