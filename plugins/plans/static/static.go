// Package static is the built-in "static" plan-source plugin: the plan
// catalogue comes from its HCL config, or is the default free/pro/business
// table (sdk/plans.Default) when the config declares no plan.
//
// Configuration:
//
//	plugin "plans" "static" {
//	  config {
//	    default_plan = "free"            # the plan new users get; default "free"
//
//	    plan "free" {                    # the id users.plan stores: [a-z0-9][a-z0-9_-]{0,63}
//	      name      = "Free"             # display name; default: the id
//	      max_apps  = 1                  # live apps per user; 0 = unlimited
//	      cpu       = 0.5                # CPU per app in cores; fractions to the millicore
//	      memory    = "512MiB"           # memory per app (B, KB, MB, GB, KiB, MiB, GiB, …)
//	      disk      = "1GiB"             # disk per app
//	      bandwidth = "10mbit"           # per app (bit, kbit, mbit, gbit); default "unlimited"
//	    }
//	    plan "pro" {
//	      name      = "Pro"
//	      max_apps  = 5
//	      cpu       = 2
//	      memory    = "2GiB"
//	      disk      = "10GiB"
//	      bandwidth = "100mbit"
//	    }
//	  }
//	}
//
// (HCL allows only one attribute in a block written on one line, so plan
// blocks take one attribute per line.)
//
// max_apps, cpu, memory and disk are required in each plan; cpu, memory and
// disk must be above 0. Plans are listed smallest first (by cpu, memory,
// disk, then id). The catalogue never changes while the plugin runs
// (refresh_after_ms 0): edit the config and restart the plugin.
package static

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/plans"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Name is the plugin's name: plugin "plans" "static".
const Name = "static"

// Version is the plugin's release version.
const Version = "0.1.0"

// PlanConfig is one plan "<id>" { … } block as decoded.
type PlanConfig = plans.PlanConfig

// Config is the plugin's decoded config block.
type Config struct {
	// Plans by id; empty means the default catalogue.
	Plans map[string]PlanConfig `json:"plan"`
	// DefaultPlan is the id new users get; "" means "free".
	DefaultPlan string `json:"default_plan"`
}

// Spec returns the schema of the plugin's config block.
func Spec() *pluginv1.Spec {
	plan := hclspec.Object(map[string]*pluginv1.Spec{
		"name": hclspec.Default(hclspec.Attr("name", "string", false, "Display name; default: the plan id."), hclspec.Literal(`""`)),
		"max_apps": hclspec.Attr("max_apps", "number", true,
			"Number of live apps a user on this plan may have; 0 means unlimited."),
		"cpu": hclspec.Attr("cpu", "number", true,
			"CPU limit per app, in cores; fractions are allowed down to a millicore (0.5 = 500 mCPU)."),
		"memory": hclspec.Attr("memory", "string", true, `Memory limit per app, e.g. "512MiB" or "2GiB".`),
		"disk":   hclspec.Attr("disk", "string", true, `Disk limit per app, e.g. "10GiB".`),
		"bandwidth": hclspec.Default(
			hclspec.Attr("bandwidth", "string", false, `Bandwidth limit per app, e.g. "100mbit"; "unlimited" (the default) or "0" for none.`),
			hclspec.Literal(`"unlimited"`)),
	})
	return hclspec.Object(map[string]*pluginv1.Spec{
		"plan": hclspec.BlockMap("plan", []string{"id"}, plan,
			"A plan of the catalogue, labelled with its id; without any, the default free/pro/business catalogue."),
		"default_plan": hclspec.Default(
			hclspec.Attr("default_plan", "string", false, "The plan new users get and unknown ids fall back to."),
			hclspec.Literal(fmt.Sprintf("%q", plans.DefaultPlan))),
	})
}

// Plugin is the static plan source. Create it with New.
type Plugin struct {
	sdk.Base

	cfg       Config
	catalogue atomic.Pointer[pluginv1.PlansResponse]
}

var _ sdk.PlanSource = (*Plugin)(nil)

// New returns the plugin serving the default catalogue; Configure replaces it.
func New() *Plugin {
	p := &Plugin{Base: sdk.Base{
		Kind:        sdk.KindPlans,
		Name:        Name,
		Version:     Version,
		Description: "Serves the plan catalogue declared in its config (default: free, pro, business).",
		Spec:        Spec(),
	}}
	p.Config = &p.cfg
	p.Validate = p.validate
	p.catalogue.Store(plans.Default())
	return p
}

func (p *Plugin) validate() error {
	c, err := Catalogue(p.cfg)
	if err != nil {
		return err
	}
	p.catalogue.Store(c)
	return nil
}

// Plans implements sdk.PlanSource. It returns a copy of the catalogue, with
// refresh_after_ms 0: the catalogue only changes with the config.
func (p *Plugin) Plans(context.Context) (*pluginv1.PlansResponse, error) {
	return plans.Clone(p.catalogue.Load()), nil
}

// Catalogue builds the catalogue a config describes, or says everything
// that is wrong with it, naming each plan and attribute.
func Catalogue(cfg Config) (*pluginv1.PlansResponse, error) {
	def := cfg.DefaultPlan
	if def == "" {
		def = plans.DefaultPlan
	}
	if len(cfg.Plans) == 0 {
		c := plans.Default()
		ids := make([]string, 0, len(c.GetPlans()))
		for _, pl := range c.GetPlans() {
			ids = append(ids, pl.GetId())
		}
		if !slices.Contains(ids, def) {
			return nil, fmt.Errorf("default_plan %q is not a plan of the default catalogue (%s); declare plan blocks or pick one of those",
				def, strings.Join(ids, ", "))
		}
		c.DefaultPlan = def
		return c, nil
	}
	return plans.Build(cfg.Plans, def)
}
