package traefik

import (
	"context"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route/routetest"
)

// TestRender20000OverGRPC renders 20,000 routes through the real gRPC path
// (the sdk's message limits on both sides): the ~4.6 MiB answer is larger
// than gRPC's default 4 MiB limit, so this fails if either side kept it.
func TestRender20000OverGRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("renders a large config")
	}
	body := routetest.CheckRenderOverGRPC(t, New(), New(), routetest.ManyRoutes(20000))
	if n := len(body); n <= 4<<20 {
		t.Fatalf("body is %d bytes; the test needs more than gRPC's default 4 MiB to prove the raised limit", n)
	}
}

// BenchmarkRender10000OverGRPC is the render the core asks for at 10,000
// apps, through the sdk's gRPC options (what `make bench` measures against
// a plugin subprocess).
func BenchmarkRender10000OverGRPC(b *testing.B) {
	c := plugintest.Connect(b, newWithLogger(hclog.NewNullLogger()))
	ctx := context.Background()
	if err := c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: []byte("{}")}); err != nil {
		b.Fatal(err)
	}
	in := &pluginv1.RenderRequest{Routes: routetest.ManyRoutes(10000), Generation: 1}
	for b.Loop() {
		if _, err := c.(sdk.Proxy).Render(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}
