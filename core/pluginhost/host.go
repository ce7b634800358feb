// Package pluginhost starts, supervises and stops the plugins declared in
// wisehosting.hcl: one hashicorp/go-plugin subprocess per
// `plugin "<kind>" "<name>"` block.
//
// Built-in plugins (no `command`) are served by the core's own binary
// re-executed as `<exe> plugin serve <kind> <name>`; external ones run their
// `command` with `args`. A plugin gets a minimal environment (PATH, HOME,
// TMPDIR and LANG when set, plus its block's `env`), never the core's own
// (which holds secrets). The core speaks gRPC only, with AutoMTLS, and checks
// the binary's SHA-256 when the block sets `checksum`. On Linux each plugin
// runs in its own process group with a parent-death signal, so none outlives
// the core even when the core is killed.
//
// After the handshake the host asks the plugin for its Info (its kind must
// be the block's), negotiates the kind's API version, fetches its config
// spec, decodes the block's `config {}` against it (diagnostics keep their
// real file:line:col and name the plugin) and calls Configure.
//
// A supervisor per plugin notices a crash (the process exits, or a call
// finds the connection gone), marks the plugin restarting, logs the failure
// with the last lines the plugin wrote to stderr, and restarts it with
// exponential backoff and jitter, re-configuring it with the same config.
// Meanwhile every call fails at once with an error wrapping ErrUnavailable.
//
// The accessors (Scheduler, Proxy, Proxies, AlertSinks, PlanSource) return
// handles that implement the sdk's kind interfaces and survive restarts:
// keep them.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/event"
)

// ErrUnavailable is wrapped by the error of every call made while its plugin
// is down (crashed and restarting, failed, or stopped): such calls fail at
// once instead of waiting for the plugin.
var ErrUnavailable = errors.New("plugin unavailable")

// ErrNotDeclared is wrapped by the accessors' error when no plugin of that
// kind and name is declared.
var ErrNotDeclared = errors.New("plugin not declared")

// Defaults of the Options durations.
const (
	DefaultStartTimeout   = 30 * time.Second
	DefaultCallTimeout    = 10 * time.Second
	DefaultMinBackoff     = 200 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultPollInterval   = 250 * time.Millisecond
	DefaultHealthInterval = 30 * time.Second
)

// Command is a command line that serves a plugin.
type Command struct {
	// Path is the executable.
	Path string
	// Args are its arguments (without the program name).
	Args []string
	// Env holds "KEY=value" pairs added to the plugin's minimal
	// environment, before the block's own `env`.
	Env []string
}

// Options configure a Host. Zero fields take their defaults.
type Options struct {
	// Logger is the core's logger; each plugin logs (and has its stderr
	// re-logged) under "plugin.<kind>.<name>". Default: no logging.
	Logger hclog.Logger
	// Registry receives the wisehosting_plugin_up and
	// wisehosting_plugin_restarts_total metrics; nil registers nothing.
	Registry prometheus.Registerer
	// BuiltinCommand returns the command serving a built-in plugin. Default:
	// this executable with the arguments `plugin serve <kind> <name>`.
	// Tests re-execute the test binary instead.
	BuiltinCommand func(kind, name string) (Command, error)
	// StartTimeout bounds a plugin's start, up to its handshake.
	StartTimeout time.Duration
	// CallTimeout bounds each call the host makes itself (Info, ConfigSpec,
	// Configure, Health).
	CallTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay before a restart; it doubles
	// from MinBackoff after each failed attempt, with ±20% jitter.
	MinBackoff, MaxBackoff time.Duration
	// PollInterval is how often a supervisor checks that its plugin's
	// process still runs.
	PollInterval time.Duration
	// HealthInterval is how often a supervisor asks its plugin for Health.
	HealthInterval time.Duration
	// APIVersions are the kind API versions the core speaks. Default:
	// [sdk.APIVersion1].
	APIVersions []string
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.BuiltinCommand == nil {
		o.BuiltinCommand = selfCommand
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.StartTimeout, DefaultStartTimeout)
	def(&o.CallTimeout, DefaultCallTimeout)
	def(&o.MinBackoff, DefaultMinBackoff)
	def(&o.MaxBackoff, DefaultMaxBackoff)
	def(&o.PollInterval, DefaultPollInterval)
	def(&o.HealthInterval, DefaultHealthInterval)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if len(o.APIVersions) == 0 {
		o.APIVersions = []string{sdk.APIVersion1}
	}
	return o
}

// selfCommand re-executes this binary: `<exe> plugin serve <kind> <name>`.
func selfCommand(kind, name string) (Command, error) {
	exe, err := os.Executable()
	if err != nil {
		return Command{}, fmt.Errorf("locating the wisehosting executable: %w", err)
	}
	return Command{Path: exe, Args: []string{"plugin", "serve", kind, name}}, nil
}

// Host runs the plugins of one configuration. Create it with New, then call
// Start once and Stop once. Its methods are safe for concurrent use.
type Host struct {
	opts    Options
	log     hclog.Logger
	metrics *metrics

	// life is the lifetime of every plugin process: cancelling it kills
	// them (exec.CommandContext), even one still starting.
	life   context.Context
	cancel context.CancelFunc
	// stopping is closed when Stop begins; supervisors return.
	stopping chan struct{}
	wg       sync.WaitGroup

	mu       sync.RWMutex
	started  bool
	stopped  bool
	plugins  []*instance // in file order
	stopOnce sync.Once
}

// New returns a Host that has started nothing yet.
func New(opts Options) *Host {
	opts = opts.withDefaults()
	life, cancel := context.WithCancel(context.Background())
	return &Host{
		opts:     opts,
		log:      opts.Logger,
		metrics:  newMetrics(opts.Registry),
		life:     life,
		cancel:   cancel,
		stopping: make(chan struct{}),
	}
}

// Start starts every plugin block of cfg, concurrently, and configures each
// one. The diagnostics name the plugin and, for its configuration, point at
// the offending attribute in the file. On any error every plugin already
// started is stopped again and the Host is unusable; warnings may accompany
// success. ctx bounds the start (the plugins then live until Stop).
func (h *Host) Start(ctx context.Context, cfg *config.Config) hcl.Diagnostics {
	h.mu.Lock()
	if h.started || h.stopped {
		h.mu.Unlock()
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Plugin host already started",
			Detail: "pluginhost: Start may be called once per Host."}}
	}
	h.started = true
	h.mu.Unlock()

	diags := checkDeclarations(cfg)
	if diags.HasErrors() {
		return diags
	}
	insts := make([]*instance, len(cfg.Plugins))
	perPlugin := make([]hcl.Diagnostics, len(cfg.Plugins))
	var wg sync.WaitGroup
	for i, p := range cfg.Plugins {
		insts[i] = newInstance(h, p)
		wg.Go(func() { perPlugin[i] = insts[i].start(ctx, cfg) })
	}
	wg.Wait()
	for _, d := range perPlugin {
		diags = append(diags, d...)
	}

	h.mu.Lock()
	h.plugins = insts
	h.mu.Unlock()
	if diags.HasErrors() {
		// The context may be the one that just failed us; stopping must not
		// be cut short by it.
		_ = h.Stop(context.WithoutCancel(ctx))
		return diags
	}
	for _, in := range insts {
		h.wg.Add(1)
		go in.supervise()
	}
	return diags
}

// checkDeclarations reports what no single plugin can: more than one plan
// source.
func checkDeclarations(cfg *config.Config) hcl.Diagnostics {
	var diags hcl.Diagnostics
	plans := cfg.PluginsOfKind(sdk.KindPlans)
	for _, p := range plans[min(1, len(plans)):] {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("plugin %q %q: more than one plan source", p.Kind, p.Name),
			Detail: fmt.Sprintf("The plan catalogue comes from one plugin; plugin %q %q is already declared at %s. Remove one of them.",
				plans[0].Kind, plans[0].Name, plans[0].DefRange),
			Subject: p.DefRange.Ptr(),
		})
	}
	return diags
}

// Stop kills every plugin — go-plugin's graceful shutdown first, then
// SIGKILL to its whole process group — and waits for their processes and
// supervisors to end, or for ctx. Calls made afterwards fail with
// ErrUnavailable. Stop may be called more than once.
func (h *Host) Stop(ctx context.Context) error {
	h.mu.Lock()
	h.stopped = true
	insts := slices.Clone(h.plugins)
	h.mu.Unlock()

	var err error
	h.stopOnce.Do(func() {
		close(h.stopping)
		var wg sync.WaitGroup
		for _, in := range insts {
			wg.Go(in.stop)
		}
		wg.Wait()
		// Anything still starting (a supervisor mid-restart) dies here.
		h.cancel()
	})
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("pluginhost: stopping plugins: %w", ctx.Err())
	}
	return err
}

// Validate starts every plugin of cfg, checks its spec and configuration
// (Configure included), and stops them all: `wisehosting validate`.
func Validate(ctx context.Context, cfg *config.Config, opts Options) hcl.Diagnostics {
	h := New(opts)
	diags := h.Start(ctx, cfg)
	if err := h.Stop(context.WithoutCancel(ctx)); err != nil {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Stopping plugins", Detail: err.Error()})
	}
	return diags
}

// State is a plugin's lifecycle state.
type State string

// Plugin states.
const (
	// StateStarting: the first start is in progress.
	StateStarting State = "starting"
	// StateRunning: configured and serving calls.
	StateRunning State = "running"
	// StateRestarting: the plugin crashed and the host is restarting it
	// with backoff; calls fail with ErrUnavailable.
	StateRestarting State = "restarting"
	// StateFailed: the first start failed (see the diagnostics).
	StateFailed State = "failed"
	// StateStopped: the host was stopped.
	StateStopped State = "stopped"
)

// PluginStatus describes one declared plugin, for `wisehosting plugins list`
// and the API.
type PluginStatus struct {
	// Kind and Name are the block's labels.
	Kind, Name string
	// Source is "builtin" or the plugin's command path.
	Source string
	// Version, Description and Capabilities are what the plugin's Info said.
	Version     string
	Description string
	// Capabilities are the optional features the plugin declared.
	Capabilities []string
	// APIVersion is the negotiated kind API version.
	APIVersion string
	// State is the plugin's lifecycle state.
	State State
	// Since is when the plugin entered State.
	Since time.Time
	// Restarts counts restart attempts since Start.
	Restarts int
	// LastError is the last failure (crash or failed restart), "" if none.
	LastError string
	// Healthy is the result of the last health check; HealthMessage says
	// why not.
	Healthy       bool
	HealthMessage string
	// PID is the plugin's process id while it runs, 0 otherwise.
	PID int
}

// Status returns the status of every declared plugin in file order. It does
// no I/O: health is the last check's (done after every start and every
// Options.HealthInterval).
func (h *Host) Status() []PluginStatus {
	h.mu.RLock()
	insts := h.plugins
	h.mu.RUnlock()
	out := make([]PluginStatus, 0, len(insts))
	for _, in := range insts {
		out = append(out, in.status())
	}
	return out
}

// CheckHealth asks every running plugin for its health now and records the
// answers that Status reports.
func (h *Host) CheckHealth(ctx context.Context) {
	h.mu.RLock()
	insts := h.plugins
	h.mu.RUnlock()
	var wg sync.WaitGroup
	for _, in := range insts {
		wg.Go(func() { in.checkHealth(ctx) })
	}
	wg.Wait()
}

func (h *Host) find(kind, name string) (*instance, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, in := range h.plugins {
		if in.kind == kind && in.name == name {
			return in, nil
		}
	}
	return nil, fmt.Errorf("pluginhost: plugin %q %q: %w", kind, name, ErrNotDeclared)
}

func (h *Host) ofKind(kind string) []*instance {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []*instance
	for _, in := range h.plugins {
		if in.kind == kind {
			out = append(out, in)
		}
	}
	return out
}

// Scheduler returns the scheduler plugin named name.
func (h *Host) Scheduler(name string) (sdk.Scheduler, error) {
	in, err := h.find(sdk.KindScheduler, name)
	if err != nil {
		return nil, err
	}
	return in.handle.(sdk.Scheduler), nil
}

// Proxy returns the proxy plugin named name. When the plugin declared
// sdk.CapabilityProxyApply the value also implements sdk.ProxyApplier.
func (h *Host) Proxy(name string) (sdk.Proxy, error) {
	in, err := h.find(sdk.KindProxy, name)
	if err != nil {
		return nil, err
	}
	return in.handle.(sdk.Proxy), nil
}

// NamedProxy is a proxy plugin with its block name. Proxy also implements
// sdk.ProxyApplier when the plugin declared sdk.CapabilityProxyApply.
type NamedProxy struct {
	// Name is the block's name: plugin "proxy" "<Name>".
	Name string
	sdk.Proxy
}

// Proxies returns every proxy plugin in file order.
func (h *Host) Proxies() []NamedProxy {
	var out []NamedProxy
	for _, in := range h.ofKind(sdk.KindProxy) {
		out = append(out, NamedProxy{Name: in.name, Proxy: in.handle.(sdk.Proxy)})
	}
	return out
}

// AlertSink is an alert-sink plugin with its block name and the event
// patterns it subscribed to.
type AlertSink struct {
	// Name is the block's name: plugin "alerts" "<Name>".
	Name string
	// Events are the block's `events` patterns; empty means every event.
	Events []string
	sdk.AlertSink
}

// Wants reports whether the sink subscribed to events of type eventType.
func (a AlertSink) Wants(eventType string) bool {
	return len(a.Events) == 0 || event.MatchAny(a.Events, eventType)
}

// AlertSinks returns every alert-sink plugin in file order.
func (h *Host) AlertSinks() []AlertSink {
	var out []AlertSink
	for _, in := range h.ofKind(sdk.KindAlerts) {
		out = append(out, AlertSink{Name: in.name, Events: slices.Clone(in.block.Events), AlertSink: in.handle.(sdk.AlertSink)})
	}
	return out
}

// PlanSource returns the plan-source plugin, if one is declared (at most
// one may be).
func (h *Host) PlanSource() (sdk.PlanSource, bool) {
	ins := h.ofKind(sdk.KindPlans)
	if len(ins) == 0 {
		return nil, false
	}
	return ins[0].handle.(sdk.PlanSource), true
}
