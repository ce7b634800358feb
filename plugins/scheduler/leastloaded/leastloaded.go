// Package leastloaded is the built-in "least-loaded" scheduler plugin: it
// places each job on the eligible worker with the lowest weighted load
// score, the seed's placement rule:
//
//	score = w_cpu*cpu_percent + w_mem*memory_percent + w_apps*apps_norm
//	apps_norm = 100 * running_apps / max(1, max running_apps over the batch's workers)
//
// Lower is better; ties go to the worker with fewer running apps, then to the
// lower worker id. A worker is eligible for a job when it offers the job's
// runtime, is in the job's zone (when the job names one) and has room for
// the job's cpu and memory, or only for the growth when the app already
// holds a reservation there. Within a batch the plugin keeps its own view of
// every worker up to date, so one batch spreads over the fleet instead of
// piling onto the worker that looked emptiest at the start.
//
// Configuration (all optional; the values shown are the defaults):
//
//	plugin "scheduler" "least-loaded" {
//	  config {
//	    weights {
//	      cpu    = 0.4  # weight of the worker's live CPU percent
//	      memory = 0.4  # weight of the worker's live memory percent
//	      apps   = 0.2  # weight of its running apps, normalised to 0..100
//	    }
//	  }
//	}
//
// Weights must be finite, at least 0, and not all 0.
package leastloaded

import (
	"context"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/placement"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Name is the plugin's name: plugin "scheduler" "least-loaded".
const Name = "least-loaded"

// Version is the plugin's release version.
const Version = "0.1.0"

// Weights are the factors of the load score (sdk/placement.LoadWeights).
type Weights = placement.LoadWeights

// DefaultWeights are the seed's: 0.4 CPU, 0.4 memory, 0.2 apps.
var DefaultWeights = placement.DefaultLoadWeights

// Config is the plugin's decoded config block.
type Config = placement.LoadWeightsConfig

// Spec returns the schema of the plugin's config block.
func Spec() *pluginv1.Spec {
	return hclspec.Object(map[string]*pluginv1.Spec{
		"weights": placement.LoadWeightsSpec("Weights of the load score; lower scores win."),
	})
}

// Plugin is the least-loaded scheduler. Create it with New.
type Plugin struct {
	sdk.Base

	weights placement.LoadWeightsSetting
}

var _ sdk.Scheduler = (*Plugin)(nil)

// New returns the plugin with the default weights; Configure replaces them.
func New() *Plugin {
	p := &Plugin{Base: sdk.Base{
		Kind:        sdk.KindScheduler,
		Name:        Name,
		Version:     Version,
		Description: "Places each job on the eligible worker with the lowest weighted CPU/memory/app-count score.",
		Spec:        Spec(),
	}}
	p.weights.Attach(&p.Base)
	return p
}

// Weights returns the weights in force.
func (p *Plugin) Weights() Weights { return p.weights.Weights() }

// Place implements sdk.Scheduler: one placement per job, in the jobs' order;
// a job that fits nowhere gets worker_id 0 and a reason.
func (p *Plugin) Place(ctx context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
	placements, err := place(ctx, p.Weights(), req.GetJobs(), req.GetWorkers())
	if err != nil {
		return nil, err
	}
	return &pluginv1.PlaceResponse{Placements: placements}, nil
}
