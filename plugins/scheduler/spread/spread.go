// Package spread is the built-in "spread" scheduler plugin: it balances apps
// across zones first, then places each job on the least-loaded worker of the
// chosen zone, so that losing a zone takes down as few apps as possible and
// no zone fills up while another stands empty.
//
// For each job, in order:
//
//  1. If the job's app already holds capacity on eligible workers (a
//     reservation of the job, or an earlier job of the same app in this
//     batch), the job stays with it when it can: of those workers, the best
//     with room for the growth wins (in the order of step 2), whatever the
//     zones' counts: staying costs only the growth, and spread balances
//     where apps go, it does not move running ones around.
//  2. Otherwise the eligible workers with room for the job's full amount
//     are ranked by the app count of their zone, fewer first: the running
//     apps of all the zone's workers (whatever their runtime or room) plus
//     the apps this batch placed there; then by load score, lower first;
//     then by running apps, fewer first; then by id, lower first.
//
// The load score is least-loaded's:
//
//	score = w_cpu*cpu_percent + w_mem*memory_percent + w_apps*apps_norm
//	apps_norm = 100 * running_apps / max(1, max running_apps over the batch's workers)
//
// So a job goes to the least-populated zone that has room for it (a full
// zone is skipped for the next one), and, within it, to the least-loaded
// worker; zones with equal counts compete on their workers' scores. A job
// that names a zone is restricted to it, and is placed least-loaded within
// it. Workers without a zone count as one more zone, "" (which no job can
// name). A worker is eligible for a job when it offers the job's runtime, is
// in the job's zone (when the job names one) and has room for the job's cpu
// and memory, or only for the growth when the app already holds a
// reservation there; the rules are sdk/placement's, the same as
// least-loaded's. Within a batch the plugin keeps its own view of every
// worker and zone up to date: the cpu/memory percent and running apps of
// the chosen worker grow with each placement, and a zone's count grows by
// one for each app placed there that did not run there.
//
// Configuration (all optional; the values shown are the defaults):
//
//	plugin "scheduler" "spread" {
//	  config {
//	    weights {
//	      cpu    = 0.4  # weight of the worker's live CPU percent
//	      memory = 0.4  # weight of the worker's live memory percent
//	      apps   = 0.2  # weight of its running apps, normalised to 0..100
//	    }
//	  }
//	}
//
// Weights must be finite, at least 0, and not all 0. They rank the workers
// of a zone (and of zones with equal counts); zones are ranked by their app
// count alone.
package spread

import (
	"context"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/placement"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Name is the plugin's name: plugin "scheduler" "spread".
const Name = "spread"

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
		"weights": placement.LoadWeightsSpec("Weights of the load score that ranks the workers of a zone; lower scores win."),
	})
}

// Plugin is the spread scheduler. Create it with New.
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
		Description: "Balances apps across zones, then places each job on the least-loaded eligible worker of the chosen zone.",
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
