// Package plans holds the default plan catalogue (the seed's free, pro and
// business plans), shared by the static plan-source plugin and the core's
// fallback when no plan source is configured.
package plans

import "github.com/wisehosting/wisehosting/sdk/proto/pluginv1"

const (
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// DefaultPlan is the id new users get.
const DefaultPlan = "free"

// Default returns a fresh copy of the default catalogue:
//
//	plan      max_apps  cpu  memory   disk    bandwidth
//	free      1         1    512MiB   1GiB    10mbit
//	pro       5         2    2GiB     10GiB   100mbit
//	business  unlimited 4    8GiB     50GiB   unlimited
func Default() *pluginv1.PlansResponse {
	return &pluginv1.PlansResponse{
		DefaultPlan: DefaultPlan,
		Plans: []*pluginv1.Plan{
			{Id: "free", Name: "Free", MaxApps: 1, Cpu: 1000, Memory: 512 * mib, Disk: 1 * gib, Bandwidth: 10_000_000},
			{Id: "pro", Name: "Pro", MaxApps: 5, Cpu: 2000, Memory: 2 * gib, Disk: 10 * gib, Bandwidth: 100_000_000},
			{Id: "business", Name: "Business", MaxApps: 0, Cpu: 4000, Memory: 8 * gib, Disk: 50 * gib, Bandwidth: 0},
		},
	}
}
