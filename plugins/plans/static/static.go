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
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/plans"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/units"
)

// Name is the plugin's name: plugin "plans" "static".
const Name = "static"

// Version is the plugin's release version.
const Version = "0.1.0"

// Limits on configured values, far above any real plan, that keep the
// arithmetic exact.
const (
	// MaxApps bounds max_apps.
	MaxApps = 1_000_000
	// MaxCPU bounds cpu, in cores.
	MaxCPU = 1_000_000
	// MaxNameLength bounds a plan's display name, in characters.
	MaxNameLength = 64
)

// idPattern is what a plan id looks like.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// PlanConfig is one plan "<id>" { … } block as decoded.
type PlanConfig struct {
	// Name is the display name; "" means the id.
	Name string `json:"name"`
	// MaxApps is the number of live apps a user may have; 0 = unlimited.
	MaxApps float64 `json:"max_apps"`
	// CPU per app, in cores (0.5 = 500 millicores).
	CPU float64 `json:"cpu"`
	// Memory per app, a size such as "512MiB".
	Memory string `json:"memory"`
	// Disk per app, a size such as "10GiB".
	Disk string `json:"disk"`
	// Bandwidth per app, such as "100mbit"; "", "0" or "unlimited" = none.
	Bandwidth string `json:"bandwidth"`
}

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
	return clone(p.catalogue.Load()), nil
}

func clone(c *pluginv1.PlansResponse) *pluginv1.PlansResponse {
	out := &pluginv1.PlansResponse{DefaultPlan: c.GetDefaultPlan(), RefreshAfterMs: 0, Plans: make([]*pluginv1.Plan, 0, len(c.GetPlans()))}
	for _, pl := range c.GetPlans() {
		out.Plans = append(out.Plans, &pluginv1.Plan{
			Id: pl.GetId(), Name: pl.GetName(), MaxApps: pl.GetMaxApps(),
			Cpu: pl.GetCpu(), Memory: pl.GetMemory(), Disk: pl.GetDisk(), Bandwidth: pl.GetBandwidth(),
		})
	}
	return out
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
	ids := make([]string, 0, len(cfg.Plans))
	for id := range cfg.Plans {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var errs []error
	out := &pluginv1.PlansResponse{DefaultPlan: def}
	for _, id := range ids {
		pl, err := plan(id, cfg.Plans[id])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out.Plans = append(out.Plans, pl)
	}
	if _, ok := cfg.Plans[def]; !ok {
		errs = append(errs, fmt.Errorf("default_plan %q is not one of the declared plans (%s)", def, strings.Join(ids, ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(out.Plans, func(a, b *pluginv1.Plan) int {
		return cmp.Or(
			cmp.Compare(a.GetCpu(), b.GetCpu()),
			cmp.Compare(a.GetMemory(), b.GetMemory()),
			cmp.Compare(a.GetDisk(), b.GetDisk()),
			strings.Compare(a.GetId(), b.GetId()),
		)
	})
	return out, nil
}

// plan checks one plan block and converts it to the wire's units.
func plan(id string, c PlanConfig) (*pluginv1.Plan, error) {
	if !idPattern.MatchString(id) {
		return nil, fmt.Errorf("plan %q: the id must be 1 to 64 characters a-z, 0-9, '_' and '-', starting with a letter or digit", id)
	}
	var errs []error
	fail := func(attr, format string, args ...any) {
		errs = append(errs, fmt.Errorf("plan %q: %s: %s", id, attr, fmt.Sprintf(format, args...)))
	}
	pl := &pluginv1.Plan{Id: id, Name: c.Name}
	switch {
	case pl.Name == "":
		pl.Name = id
	case utf8.RuneCountInString(pl.Name) > MaxNameLength:
		fail("name", "at most %d characters", MaxNameLength)
	case strings.ContainsFunc(pl.Name, unicode.IsControl) || !utf8.ValidString(pl.Name):
		fail("name", "control characters and invalid UTF-8 are not allowed")
	}

	switch v := c.MaxApps; {
	case math.IsNaN(v) || v < 0 || v > MaxApps:
		fail("max_apps", "must be between 0 (unlimited) and %d, not %g", MaxApps, v)
	case v != math.Trunc(v):
		fail("max_apps", "must be a whole number, not %g", v)
	default:
		pl.MaxApps = int64(v)
	}

	switch v := c.CPU; {
	case math.IsNaN(v) || v <= 0 || v > MaxCPU:
		fail("cpu", "must be above 0 and at most %d cores, not %g", MaxCPU, v)
	default:
		m := v * 1000
		r := math.Round(m)
		if math.Abs(m-r) > 1e-6 || r < 1 {
			fail("cpu", "%g cores is not a whole number of millicores (the precision is 0.001)", v)
		}
		pl.Cpu = int64(r)
	}

	size := func(attr, s string) int64 {
		n, err := units.ParseSize(s)
		switch {
		case err != nil:
			fail(attr, "%v", err)
		case n <= 0:
			fail(attr, "must be above 0")
		}
		return n
	}
	pl.Memory = size("memory", c.Memory)
	pl.Disk = size("disk", c.Disk)

	if c.Bandwidth != "" {
		n, err := units.ParseBandwidth(c.Bandwidth)
		if err != nil {
			fail("bandwidth", "%v", err)
		}
		pl.Bandwidth = n
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return pl, nil
}
