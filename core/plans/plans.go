// Package plans keeps the plan catalogue (the limits of each plan: max
// apps, CPU, memory, disk, bandwidth) that the scheduler and the API
// consult. It comes from the configured plan-source plugin, loaded at start
// and refreshed when the plugin asks (refresh_after_ms); a refresh that
// fails or returns an invalid catalogue keeps the last good one. Without a
// plan source the catalogue is sdk/plans.Default() (free, pro, business).
package plans

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk"
	sdkplans "github.com/wisehosting/wisehosting/sdk/plans"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// Timing of Run.
const (
	// MinRefresh is the shortest refresh interval honoured; a plugin asking
	// for less gets this.
	MinRefresh = time.Second
	// RetryAfter bounds the wait before retrying a refresh that failed.
	RetryAfter = time.Minute
	// CallTimeout bounds one Plans call.
	CallTimeout = 10 * time.Second
)

var planIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// catalogue is one immutable, validated catalogue.
type catalogue struct {
	plans   []*pluginv1.Plan
	byID    map[string]*pluginv1.Plan
	def     *pluginv1.Plan
	refresh time.Duration
	// fromSource is false for the built-in default served before Load.
	fromSource bool
}

// Catalogue serves the current plan catalogue. It is safe for concurrent
// use; readers never block.
type Catalogue struct {
	src sdk.PlanSource
	log hclog.Logger
	cur atomic.Pointer[catalogue]
	// minRefresh and retryAfter are MinRefresh and RetryAfter; tests
	// shorten them.
	minRefresh, retryAfter time.Duration
}

// New returns a Catalogue over src (nil: the default catalogue). It serves
// sdk/plans.Default() until Load succeeds.
func New(src sdk.PlanSource, log hclog.Logger) *Catalogue {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	c := &Catalogue{src: src, log: log, minRefresh: MinRefresh, retryAfter: RetryAfter}
	def, err := build(sdkplans.Default())
	if err != nil {
		panic("plans: the default catalogue is invalid: " + err.Error())
	}
	c.cur.Store(def)
	return c
}

// Load fetches the catalogue from the plan source; on error the current
// catalogue stays. Without a source it does nothing.
func (c *Catalogue) Load(ctx context.Context) error {
	if c.src == nil {
		return nil
	}
	cat, err := c.fetch(ctx)
	if err != nil {
		return err
	}
	c.cur.Store(cat)
	c.log.Info("plan catalogue loaded", "plans", len(cat.plans), "default", cat.def.GetId(), "refresh", cat.refresh)
	return nil
}

func (c *Catalogue) fetch(ctx context.Context) (*catalogue, error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	resp, err := c.src.Plans(ctx)
	if err != nil {
		return nil, fmt.Errorf("plans: fetching the catalogue: %w", err)
	}
	cat, err := build(resp)
	if err != nil {
		return nil, fmt.Errorf("plans: the plan source returned an invalid catalogue: %w", err)
	}
	cat.fromSource = true
	if cat.refresh > 0 {
		cat.refresh = max(cat.refresh, c.minRefresh)
	}
	return cat, nil
}

// Run refreshes the catalogue on the interval the plan source asks for
// (refresh_after_ms; 0 means never) until ctx is done. A refresh that fails
// or returns an invalid catalogue is logged and retried (after the same
// interval, at most RetryAfter), and the last good catalogue stays.
func (c *Catalogue) Run(ctx context.Context) {
	if c.src == nil {
		return
	}
	wait := c.cur.Load().refresh
	if !c.cur.Load().fromSource {
		wait = c.retryAfter // Load failed or was not called
	}
	for {
		if wait <= 0 {
			<-ctx.Done()
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		cat, err := c.fetch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait = min(wait, c.retryAfter)
			c.log.Warn("plan catalogue refresh failed; keeping the last good catalogue", "error", err, "retry_in", wait)
			continue
		}
		c.cur.Store(cat)
		c.log.Debug("plan catalogue refreshed", "plans", len(cat.plans), "default", cat.def.GetId())
		wait = cat.refresh
	}
}

// PlanFor returns the plan of user: the plan its id names, or the default
// plan when the id is unknown or user is nil. It never returns nil. The
// plan is shared: do not modify it.
func (c *Catalogue) PlanFor(user *store.User) *pluginv1.Plan {
	cat := c.cur.Load()
	if user != nil {
		if p, ok := cat.byID[user.Plan]; ok {
			return p
		}
	}
	return cat.def
}

// Plan returns the plan with that id. The plan is shared: do not modify it.
func (c *Catalogue) Plan(id string) (*pluginv1.Plan, bool) {
	p, ok := c.cur.Load().byID[id]
	return p, ok
}

// Default returns the default plan. The plan is shared: do not modify it.
func (c *Catalogue) Default() *pluginv1.Plan { return c.cur.Load().def }

// Plans returns every plan in the source's order. The plans are shared: do
// not modify them (the slice is the caller's).
func (c *Catalogue) Plans() []*pluginv1.Plan {
	return append([]*pluginv1.Plan(nil), c.cur.Load().plans...)
}

// Validate checks a catalogue: at least one plan, every id valid
// ([a-z0-9][a-z0-9_-]*) and unique, no negative limit, and the default
// plan present.
func Validate(resp *pluginv1.PlansResponse) error {
	_, err := build(resp)
	return err
}

// build validates resp and indexes a private copy of it.
func build(resp *pluginv1.PlansResponse) (*catalogue, error) {
	if resp == nil || len(resp.GetPlans()) == 0 {
		return nil, errors.New("no plans")
	}
	for i, p := range resp.GetPlans() {
		if p == nil { // before Clone, which would make it an empty plan
			return nil, fmt.Errorf("plan %d is empty", i+1)
		}
	}
	resp = proto.Clone(resp).(*pluginv1.PlansResponse)
	cat := &catalogue{plans: resp.GetPlans(), byID: make(map[string]*pluginv1.Plan, len(resp.GetPlans()))}
	for i, p := range resp.GetPlans() {
		if !planIDRe.MatchString(p.GetId()) {
			return nil, fmt.Errorf("plan %d: id %q is not valid (lowercase letters, digits, '_' and '-', starting with a letter or digit)", i+1, p.GetId())
		}
		if _, dup := cat.byID[p.GetId()]; dup {
			return nil, fmt.Errorf("plan id %q appears twice", p.GetId())
		}
		for _, f := range []struct {
			name string
			v    int64
		}{{"max_apps", p.GetMaxApps()}, {"cpu", p.GetCpu()}, {"memory", p.GetMemory()}, {"disk", p.GetDisk()}, {"bandwidth", p.GetBandwidth()}} {
			if f.v < 0 {
				return nil, fmt.Errorf("plan %q: %s is negative (%d)", p.GetId(), f.name, f.v)
			}
		}
		cat.byID[p.GetId()] = p
	}
	def, ok := cat.byID[resp.GetDefaultPlan()]
	if !ok {
		return nil, fmt.Errorf("default plan %q is not in the catalogue", resp.GetDefaultPlan())
	}
	cat.def = def
	if ms := resp.GetRefreshAfterMs(); ms > 0 {
		cat.refresh = time.Duration(ms) * time.Millisecond
	} else if ms < 0 {
		return nil, fmt.Errorf("refresh_after_ms is negative (%d)", ms)
	}
	return cat, nil
}

// Limits returns a plan's per-app resource limits as a deploy payload
// carries them to the worker (wsproto.Limits; the units are the same:
// millicores, bytes, bits per second with 0 unlimited). The job that
// deploys the app reserves the same CPU and memory on its worker.
func Limits(p *pluginv1.Plan) wsproto.Limits {
	return wsproto.Limits{CPU: p.GetCpu(), Memory: p.GetMemory(), Disk: p.GetDisk(), Bandwidth: p.GetBandwidth()}
}

// NewApp returns na limited by the user's plan: its MaxApps is the plan's
// max_apps, so store.CreateApp refuses an app beyond it (store.ErrQuota).
func (c *Catalogue) NewApp(user *store.User, na store.NewApp) store.NewApp {
	na.MaxApps = c.PlanFor(user).GetMaxApps()
	return na
}
