package spread

import (
	"context"
	"os"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/sdktest"
)

// TestMain lets sdktest re-execute this test binary as the plugin process.
func TestMain(m *testing.M) {
	sdktest.ServeIfChild(func() sdk.Plugin { return New() })
	os.Exit(m.Run())
}

// BenchmarkPlaceRoundTrip measures one Place call with 1,000 jobs × 1,000
// workers through the plugin subprocess (gRPC over go-plugin's AutoMTLS
// socket, as the core calls it) beside the same code called in-process, in
// one run: the difference is what a batch pays for plugin isolation.
func BenchmarkPlaceRoundTrip(b *testing.B) {
	jobs, workers := benchBatch(1000, 1000)
	req := &pluginv1.PlaceRequest{Jobs: jobs, Workers: workers}
	ctx := context.Background()
	run := func(b *testing.B, s sdk.Scheduler) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := s.Place(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			if len(resp.GetPlacements()) != len(jobs) {
				b.Fatalf("%d placements for %d jobs", len(resp.GetPlacements()), len(jobs))
			}
		}
	}
	b.Run("in-process", func(b *testing.B) {
		p := New()
		if err := p.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: []byte("{}")}); err != nil {
			b.Fatal(err)
		}
		run(b, p)
	})
	b.Run("subprocess", func(b *testing.B) {
		c := sdktest.Start(b, sdktest.SelfCommand(), sdk.KindScheduler, "")
		run(b, c.(sdk.Scheduler))
	})
}
