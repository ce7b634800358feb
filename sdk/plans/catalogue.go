package plans

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/units"
)

// Limits on plan values, far above any real plan, that keep the arithmetic
// exact.
const (
	// MaxApps bounds max_apps.
	MaxApps = 1_000_000
	// MaxCPU bounds cpu, in cores.
	MaxCPU = 1_000_000
	// MaxNameLength bounds a plan's display name, in characters.
	MaxNameLength = 64
)

// IDPattern is what a plan id looks like.
var IDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// PlanConfig is one plan as a plan source reads it (an HCL plan block, a
// JSON object), before Build checks it and converts it to the wire's units.
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

// Build checks a catalogue of plans by id and its default plan ("" means
// DefaultPlan), and returns it in the wire's units, sorted by size, or says
// everything that is wrong with it, naming each plan and attribute. Every
// plan source builds its catalogue here, so all accept exactly the same
// plans with the same messages. An empty catalogue is an error: a source
// that falls back to Default decides so itself.
func Build(byID map[string]PlanConfig, defaultPlan string) (*pluginv1.PlansResponse, error) {
	def := defaultPlan
	if def == "" {
		def = DefaultPlan
	}
	if len(byID) == 0 {
		return nil, errors.New("the catalogue lists no plan")
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var errs []error
	out := &pluginv1.PlansResponse{DefaultPlan: def}
	for _, id := range ids {
		pl, err := plan(id, byID[id])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out.Plans = append(out.Plans, pl)
	}
	if _, ok := byID[def]; !ok {
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

// Clone returns a deep copy of a catalogue with refresh_after_ms 0.
func Clone(c *pluginv1.PlansResponse) *pluginv1.PlansResponse {
	out := &pluginv1.PlansResponse{DefaultPlan: c.GetDefaultPlan(), Plans: make([]*pluginv1.Plan, 0, len(c.GetPlans()))}
	for _, pl := range c.GetPlans() {
		out.Plans = append(out.Plans, &pluginv1.Plan{
			Id: pl.GetId(), Name: pl.GetName(), MaxApps: pl.GetMaxApps(),
			Cpu: pl.GetCpu(), Memory: pl.GetMemory(), Disk: pl.GetDisk(), Bandwidth: pl.GetBandwidth(),
		})
	}
	return out
}

// plan checks one plan and converts it to the wire's units.
func plan(id string, c PlanConfig) (*pluginv1.Plan, error) {
	if !IDPattern.MatchString(id) {
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
