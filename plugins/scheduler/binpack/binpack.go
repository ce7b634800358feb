// Package binpack is the built-in "binpack" scheduler plugin: it places each
// job on the eligible worker that is the fullest that still fits (best-fit
// bin packing), so that the batch fills workers that are already busy and
// leaves empty workers whole: free for large apps, or to be drained and
// switched off.
//
// A worker's score for a job is the room the worker has left once the job is
// on it, as fractions of its capacity, weighted and summed:
//
//	score = w_cpu*(free_cpu - cpu)/capacity_cpu + w_mem*(free_memory - memory)/capacity_memory
//	free_x = capacity_x - used_x
//
// where cpu and memory are what the job takes there: its full amount, or,
// on a worker where its app already holds capacity, only the growth. Lower
// is better (0 is a perfect fit); ties go to the lower worker id. A term
// whose capacity is 0 (or less) counts as 0.
//
// The score sums the two fractions rather than taking the larger: it is all
// the room left stranded, so a worker with 60% of its memory and none of its
// CPU left ranks fuller than one with 60% of both, where the larger of the
// two would rank them alike. And for workers of one size a sum ranks them
// the same way whatever the job, which keeps the search fast.
//
// A worker is eligible for a job when it offers the job's runtime, is in
// the job's zone (when the job names one) and has room for the job's cpu and
// memory, or only for the growth when the app already holds a reservation
// there; the rules are sdk/placement's, the same as least-loaded's. Within a
// batch the plugin keeps its own view of every worker up to date, so the
// jobs of one batch fill a worker up before they start on the next one.
//
// Configuration (all optional; the values shown are the defaults):
//
//	plugin "scheduler" "binpack" {
//	  config {
//	    weights {
//	      cpu    = 1  # weight of the fraction of CPU left
//	      memory = 1  # weight of the fraction of memory left
//	    }
//	  }
//	}
//
// Weights must be finite, at least 0, and not both 0. With memory = 1 and
// cpu = 0 the plugin packs by memory alone (CPU must still fit).
package binpack

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Name is the plugin's name: plugin "scheduler" "binpack".
const Name = "binpack"

// Version is the plugin's release version.
const Version = "0.1.0"

// Weights are the factors of the packing score: a worker's score for a job
// is CPU*cpu_left/capacity_cpu + Memory*memory_left/capacity_memory, the
// room it has left once the job is on it; lower wins.
type Weights struct {
	// CPU weighs the fraction of the worker's CPU left.
	CPU float64 `json:"cpu"`
	// Memory weighs the fraction of the worker's memory left.
	Memory float64 `json:"memory"`
}

// DefaultWeights count CPU and memory alike.
var DefaultWeights = Weights{CPU: 1, Memory: 1}

// Validate reports whether w can rank workers: both weights finite and at
// least 0, and not both of them 0.
func (w Weights) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"cpu", w.CPU}, {"memory", w.Memory}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("weights.%s must be a finite number", f.name)
		}
		if f.v < 0 {
			return fmt.Errorf("weights.%s must be at least 0, not %g", f.name, f.v)
		}
	}
	if w.CPU == 0 && w.Memory == 0 {
		return errors.New("weights: at least one of cpu and memory must be above 0")
	}
	return nil
}

// Config is the plugin's decoded config block.
type Config struct {
	// Weights of the score; nil means DefaultWeights.
	Weights *Weights `json:"weights"`
}

// Spec returns the schema of the plugin's config block.
func Spec() *pluginv1.Spec {
	weight := func(name string, def float64, doc string) *pluginv1.Spec {
		return hclspec.Default(hclspec.Attr(name, "number", false, doc), hclspec.Literal(fmt.Sprint(def)))
	}
	d := DefaultWeights
	return hclspec.Object(map[string]*pluginv1.Spec{
		"weights": hclspec.Default(
			hclspec.Block("weights", false, hclspec.Object(map[string]*pluginv1.Spec{
				"cpu":    weight("cpu", d.CPU, "Weight of the fraction of the worker's CPU left after placement (≥ 0)."),
				"memory": weight("memory", d.Memory, "Weight of the fraction of the worker's memory left after placement (≥ 0)."),
			}), "Weights of the packing score; lower scores (fuller workers) win."),
			hclspec.Literal(fmt.Sprintf("{cpu = %g, memory = %g}", d.CPU, d.Memory)),
		),
	})
}

// Plugin is the binpack scheduler. Create it with New.
type Plugin struct {
	sdk.Base

	cfg     Config
	weights atomic.Pointer[Weights]
}

var _ sdk.Scheduler = (*Plugin)(nil)

// New returns the plugin with the default weights; Configure replaces them.
func New() *Plugin {
	p := &Plugin{Base: sdk.Base{
		Kind:        sdk.KindScheduler,
		Name:        Name,
		Version:     Version,
		Description: "Packs each job onto the fullest eligible worker it still fits on, keeping empty workers free.",
		Spec:        Spec(),
	}}
	p.Config = &p.cfg
	p.Validate = p.validate
	w := DefaultWeights
	p.weights.Store(&w)
	return p
}

func (p *Plugin) validate() error {
	w := DefaultWeights
	if p.cfg.Weights != nil {
		w = *p.cfg.Weights
	}
	if err := w.Validate(); err != nil {
		return err
	}
	p.weights.Store(&w)
	return nil
}

// Weights returns the weights in force.
func (p *Plugin) Weights() Weights { return *p.weights.Load() }

// Place implements sdk.Scheduler: one placement per job, in the jobs' order;
// a job that fits nowhere gets worker_id 0 and a reason.
func (p *Plugin) Place(ctx context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
	placements, err := place(ctx, p.Weights(), req.GetJobs(), req.GetWorkers())
	if err != nil {
		return nil, err
	}
	return &pluginv1.PlaceResponse{Placements: placements}, nil
}
