package placement

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// LoadWeights are the factors of the seed's load score, which the built-in
// least-loaded and spread schedulers rank workers by:
//
//	score = CPU*cpu_percent + Memory*memory_percent + Apps*apps_norm
//
// where apps_norm is the worker's running apps normalised to 0..100 against
// the busiest worker of the batch. Lower wins.
type LoadWeights struct {
	// CPU weighs the worker's live CPU utilisation, in percent.
	CPU float64 `json:"cpu"`
	// Memory weighs the worker's live memory utilisation, in percent.
	Memory float64 `json:"memory"`
	// Apps weighs the worker's running apps, normalised to 0..100.
	Apps float64 `json:"apps"`
}

// DefaultLoadWeights are the seed's weights: 0.4 CPU, 0.4 memory, 0.2 apps.
var DefaultLoadWeights = LoadWeights{CPU: 0.4, Memory: 0.4, Apps: 0.2}

// Validate reports whether w can rank workers: every weight finite and at
// least 0, and not all of them 0.
func (w LoadWeights) Validate() error {
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

// LoadWeightsSpec is the schema of an optional `weights { cpu memory apps }`
// block defaulting to DefaultLoadWeights, for a plugin's config spec under
// the key "weights"; doc describes the block.
func LoadWeightsSpec(doc string) *pluginv1.Spec {
	weight := func(name string, def float64, doc string) *pluginv1.Spec {
		return hclspec.Default(hclspec.Attr(name, "number", false, doc), hclspec.Literal(fmt.Sprint(def)))
	}
	d := DefaultLoadWeights
	return hclspec.Default(
		hclspec.Block("weights", false, hclspec.Object(map[string]*pluginv1.Spec{
			"cpu":    weight("cpu", d.CPU, "Weight of the worker's live CPU percent (≥ 0)."),
			"memory": weight("memory", d.Memory, "Weight of the worker's live memory percent (≥ 0)."),
			"apps":   weight("apps", d.Apps, "Weight of the worker's running apps, normalised to 0..100 (≥ 0)."),
		}), doc),
		hclspec.Literal(fmt.Sprintf("{cpu = %g, memory = %g, apps = %g}", d.CPU, d.Memory, d.Apps)),
	)
}

// LoadWeightsSetting is the config of a plugin whose one setting is a
// `weights` block of LoadWeights (least-loaded, spread). Attach it to the
// plugin's sdk.Base; each Configure decodes a fresh block and validates
// it before the weights are swapped in, so Place calls in flight keep the
// weights they started with and a rejected config leaves the previous one
// in force.
type LoadWeightsSetting struct {
	cfg     LoadWeightsConfig
	weights atomic.Pointer[LoadWeights]
}

// LoadWeightsConfig is the decoded config block of a LoadWeightsSetting.
type LoadWeightsConfig struct {
	// Weights of the score; nil means DefaultLoadWeights.
	Weights *LoadWeights `json:"weights"`
}

// Attach makes b decode its config into s and validate it with s, and puts
// DefaultLoadWeights in force.
func (s *LoadWeightsSetting) Attach(b *sdk.Base) {
	b.Config = &s.cfg
	b.Validate = s.validate
	w := DefaultLoadWeights
	s.weights.Store(&w)
}

func (s *LoadWeightsSetting) validate() error {
	w := DefaultLoadWeights
	if s.cfg.Weights != nil {
		w = *s.cfg.Weights
	}
	if err := w.Validate(); err != nil {
		return err
	}
	s.weights.Store(&w)
	return nil
}

// Weights returns the weights in force.
func (s *LoadWeightsSetting) Weights() LoadWeights { return *s.weights.Load() }
