package alerts

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/core/hub"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/event"
)

// DefaultPollEvery is how often the threshold poller evaluates the rules
// (the seed's 30 s).
const DefaultPollEvery = 30 * time.Second

// TargetStore lists the rules to evaluate and ensures the default ones
// (store.Store).
type TargetStore interface {
	ListThresholdTargets(ctx context.Context) ([]store.ThresholdTarget, error)
}

// StatsSource gives an app's live statistics when this core holds them
// (hub.Hub.AppStatsLive).
type StatsSource interface {
	AppStatsLive(appID int64) (hub.AppStats, bool)
}

// PollerOptions configure a Poller.
type PollerOptions struct {
	Targets TargetStore
	Stats   StatsSource
	Manager *Manager
	// Every defaults to DefaultPollEvery.
	Every time.Duration
	// Now is the clock; nil means time.Now (tests inject a fake one).
	Now    func() time.Time
	Logger hclog.Logger
}

// Poller evaluates every enabled rule of every running app against the
// live statistics with hysteresis: a rule fires once its value has stayed
// over the threshold for its sustain window, and resolves once it has
// stayed under (or at) the threshold for the window again; shorter
// excursions either way change nothing. The offline rule fires when the
// app's worker has sent no heartbeat for the window, and resolves when it
// has been heard from within the window again.
type Poller struct {
	o     PollerOptions
	log   hclog.Logger
	mu    sync.Mutex // serialises Tick
	state map[int64]*ruleState
}

// ruleState is what the poller remembers of one rule between ticks.
type ruleState struct {
	firing bool
	// overSince and underSince are when the current run of values over
	// (under) the threshold began; zero when not in one.
	overSince, underSince time.Time
}

// NewPoller returns a poller; nothing runs before Run.
func NewPoller(o PollerOptions) (*Poller, error) {
	if o.Targets == nil || o.Stats == nil || o.Manager == nil {
		return nil, fmt.Errorf("alerts: poller needs Targets, Stats and Manager")
	}
	if o.Every <= 0 {
		o.Every = DefaultPollEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &Poller{o: o, log: o.Logger, state: map[int64]*ruleState{}}
	if p.log == nil {
		p.log = hclog.NewNullLogger()
	}
	return p, nil
}

// Run ticks every Every until ctx ends; a failed tick is logged.
func (p *Poller) Run(ctx context.Context) {
	t := time.NewTicker(p.o.Every)
	defer t.Stop()
	for {
		if err := p.Tick(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("threshold poll failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick evaluates every rule once, at the poller's clock's now.
func (p *Poller) Tick(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	targets, err := p.o.Targets.ListThresholdTargets(ctx)
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	now := p.o.Now()
	var errs []error
	seen := make(map[int64]bool, len(targets))
	for _, t := range targets {
		seen[t.Rule.ID] = true
		st, ok := p.state[t.Rule.ID]
		if !ok {
			// A rule first seen (or a restarted core) starts from what the
			// database says: firing if its alert is open.
			st = &ruleState{firing: t.Open}
			p.state[t.Rule.ID] = st
		}
		value, unit, known := p.measure(t, now)
		if !known {
			// Not this core's app (its statistics are elsewhere), or no
			// report yet: no evidence either way.
			continue
		}
		if err := p.evaluate(ctx, t, st, value, unit, now); err != nil {
			errs = append(errs, err)
		}
	}
	for id := range p.state {
		if !seen[id] {
			delete(p.state, id) // the rule, or its app's run, is gone
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("alerts: %d rules failed, first: %w", len(errs), errs[0])
	}
	return nil
}

// measure returns a rule's current value and unit, and whether this core
// knows it.
func (p *Poller) measure(t store.ThresholdTarget, now time.Time) (float64, string, bool) {
	if t.Rule.Kind == store.RuleOffline {
		if t.WorkerID == 0 {
			return 0, "", false
		}
		if t.WorkerHeartbeat.IsZero() {
			// Never heard from: silent since the rule exists.
			return now.Sub(t.Rule.CreatedAt).Seconds(), "s", true
		}
		return now.Sub(t.WorkerHeartbeat).Seconds(), "s", true
	}
	s, ok := p.o.Stats.AppStatsLive(t.Rule.AppID)
	if !ok {
		return 0, "", false
	}
	switch t.Rule.Kind {
	case store.RuleCPU:
		return s.CPUPercent, "%", true
	case store.RuleMemory:
		if s.MemLimit <= 0 {
			return 0, "", false
		}
		return 100 * float64(s.MemBytes) / float64(s.MemLimit), "%", true
	case store.RuleNetwork:
		return s.NetMbps, "Mbit/s", true
	case store.RuleDisk:
		return s.DiskMbps, "MB/s", true
	}
	return 0, "", false
}

// over reports whether value breaks the rule: above the threshold, or for
// the offline rule, silent for longer than the sustain window (the window
// is the threshold there).
func over(t store.ThresholdTarget, value float64) bool {
	if t.Rule.Kind == store.RuleOffline {
		return value > 0 && time.Duration(value*float64(time.Second)) >= sustain(t)
	}
	return value > t.Rule.Threshold
}

func sustain(t store.ThresholdTarget) time.Duration {
	return time.Duration(t.Rule.SustainMinutes) * time.Minute
}

// evaluate applies one observation to a rule's state and fires or resolves
// through the manager.
func (p *Poller) evaluate(ctx context.Context, t store.ThresholdTarget, st *ruleState, value float64, unit string, now time.Time) error {
	window := sustain(t)
	if t.Rule.Kind == store.RuleOffline {
		// The silence itself is the window: fire as soon as it is long
		// enough; resolve as soon as the worker is heard from again.
		window = 0
	}
	if over(t, value) {
		st.underSince = time.Time{}
		if st.overSince.IsZero() {
			st.overSince = now
		}
		if !st.firing && now.Sub(st.overSince) >= window {
			if err := p.fire(ctx, t, value, unit); err != nil {
				return err
			}
			st.firing = true
		}
		return nil
	}
	st.overSince = time.Time{}
	if !st.firing {
		st.underSince = time.Time{}
		return nil
	}
	if st.underSince.IsZero() {
		st.underSince = now
	}
	if now.Sub(st.underSince) >= window {
		if err := p.resolve(ctx, t, value, unit); err != nil {
			return err
		}
		st.firing, st.underSince = false, time.Time{}
	}
	return nil
}

// Event names of the rule kinds: fired, then resolved.
var ruleEvents = map[string][2]string{
	store.RuleCPU:     {event.AppCPU, event.AppCPUResolved},
	store.RuleMemory:  {event.AppMemory, event.AppMemoryResolved},
	store.RuleNetwork: {event.AppNetwork, event.AppNetworkResolved},
	store.RuleDisk:    {event.AppDisk, event.AppDiskResolved},
	store.RuleOffline: {event.AppOffline, event.AppOfflineResolved},
}

func (p *Poller) fire(ctx context.Context, t store.ThresholdTarget, value float64, unit string) error {
	srcType, srcID := store.RuleSource(t.Rule.AppID, t.Rule.Kind)
	title, msg := describe(t, value, unit)
	severity := "warning"
	if t.Rule.Kind == store.RuleOffline {
		severity = "critical"
	}
	ev := event.Event{Type: ruleEvents[t.Rule.Kind][0], UserID: t.Rule.UserID, AppID: t.Rule.AppID,
		Data: marshal(event.AppData{AppName: t.AppName, Subdomain: t.Subdomain, Value: value, Threshold: t.Rule.Threshold, Reason: msg})}
	_, created, err := p.o.Manager.Emit(ctx, store.NewAlert{UserID: t.Rule.UserID, AppID: t.Rule.AppID, Kind: t.Rule.Kind,
		Severity: severity, SourceType: srcType, SourceID: srcID, Title: title, Message: msg}, ev)
	if err != nil {
		return err
	}
	if created {
		p.log.Info("alert fired", "app_id", t.Rule.AppID, "rule", t.Rule.Kind, "value", value, "threshold", t.Rule.Threshold)
	}
	return nil
}

func (p *Poller) resolve(ctx context.Context, t store.ThresholdTarget, value float64, unit string) error {
	srcType, srcID := store.RuleSource(t.Rule.AppID, t.Rule.Kind)
	_, msg := describe(t, value, unit)
	ev := event.Event{Type: ruleEvents[t.Rule.Kind][1], UserID: t.Rule.UserID, AppID: t.Rule.AppID,
		Data: marshal(event.AppData{AppName: t.AppName, Subdomain: t.Subdomain, Value: value, Threshold: t.Rule.Threshold, Reason: msg})}
	n, err := p.o.Manager.Resolve(ctx, t.Rule.UserID, srcType, srcID, ev)
	if err != nil {
		return err
	}
	if n > 0 {
		p.log.Info("alert resolved", "app_id", t.Rule.AppID, "rule", t.Rule.Kind, "value", value)
	}
	return nil
}

// describe is an alert's title and message (the seed's metricTitle and
// metricMessage).
func describe(t store.ThresholdTarget, value float64, unit string) (title, msg string) {
	if t.Rule.Kind == store.RuleOffline {
		return fmt.Sprintf("%s is offline", t.AppName),
			fmt.Sprintf("its worker has not been heard from for %.0f s (window %d min)", value, t.Rule.SustainMinutes)
	}
	names := map[string]string{store.RuleCPU: "CPU", store.RuleMemory: "memory", store.RuleNetwork: "network", store.RuleDisk: "disk"}
	return fmt.Sprintf("%s: high %s", t.AppName, names[t.Rule.Kind]),
		fmt.Sprintf("%s at %.1f %s, threshold %.1f %s, sustained %d min", names[t.Rule.Kind], value, unit, t.Rule.Threshold, unit, t.Rule.SustainMinutes)
}
