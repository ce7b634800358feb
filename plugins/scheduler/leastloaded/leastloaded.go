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
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Name is the plugin's name: plugin "scheduler" "least-loaded".
const Name = "least-loaded"

// Version is the plugin's release version.
const Version = "0.1.0"

// Weights are the factors of the load score. The score of a worker is
// CPU*cpu_percent + Memory*memory_percent + Apps*apps_norm; lower wins.
type Weights struct {
	// CPU weighs the worker's live CPU utilisation, in percent.
	CPU float64 `json:"cpu"`
	// Memory weighs the worker's live memory utilisation, in percent.
	Memory float64 `json:"memory"`
	// Apps weighs the worker's running apps, normalised to 0..100 against
	// the busiest worker of the batch.
	Apps float64 `json:"apps"`
}

// DefaultWeights are the seed's weights: 0.4 CPU, 0.4 memory, 0.2 apps.
var DefaultWeights = Weights{CPU: 0.4, Memory: 0.4, Apps: 0.2}

// Validate reports whether w can rank workers: every weight finite and at
// least 0, and not all of them 0.
func (w Weights) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"cpu", w.CPU}, {"memory", w.Memory}, {"apps", w.Apps}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("weights.%s must be a finite number", f.name)
		}
		if f.v < 0 {
			return fmt.Errorf("weights.%s must be at least 0, not %g", f.name, f.v)
		}
	}
	if w.CPU == 0 && w.Memory == 0 && w.Apps == 0 {
		return errors.New("weights: at least one of cpu, memory and apps must be above 0")
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
				"cpu":    weight("cpu", d.CPU, "Weight of the worker's live CPU percent (≥ 0)."),
				"memory": weight("memory", d.Memory, "Weight of the worker's live memory percent (≥ 0)."),
				"apps":   weight("apps", d.Apps, "Weight of the worker's running apps, normalised to 0..100 (≥ 0)."),
			}), "Weights of the load score; lower scores win."),
			hclspec.Literal(fmt.Sprintf("{cpu = %g, memory = %g, apps = %g}", d.CPU, d.Memory, d.Apps)),
		),
	})
}

// Plugin is the least-loaded scheduler. Create it with New.
type Plugin struct {
	sdk.Base

	mu      sync.Mutex // serialises Configure (decoding into cfg)
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
		Description: "Places each job on the eligible worker with the lowest weighted CPU/memory/app-count score.",
		Spec:        Spec(),
	}}
	p.Config = &p.cfg
	p.Validate = p.validate
	w := DefaultWeights
	p.weights.Store(&w)
	return p
}

// Configure implements sdk.Plugin. It decodes a fresh config, validates it,
// and only then swaps the weights in; Place calls in flight keep the weights
// they started with, and a rejected config leaves the previous one in force.
func (p *Plugin) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = Config{}
	return p.Base.Configure(ctx, req)
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
