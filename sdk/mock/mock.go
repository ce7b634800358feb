// Package mock provides one mock per plugin kind, built from function fields
// (the go-plugin/Nomad style): set the FooFunc fields a test cares about and
// leave the rest nil for a sensible default.
//
//	s := &mock.Scheduler{
//		PlaceFunc: func(ctx context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
//			return &pluginv1.PlaceResponse{}, nil
//		},
//	}
//
// Every mock implements sdk.Plugin, sdk.HealthChecker and its kind's
// interface, so it can stand in for a plugin in-process, be served through
// the real gRPC path with sdk/plugintest, or be served as a subprocess with
// sdk.Serve. Each method counts its calls (Calls); the counters are safe for
// concurrent use.
//
// Defaults when a field is nil:
//
//	Info        kind, name "mock", version "0.0.0", api_versions ["1"]
//	ConfigSpec  nil (the plugin takes no configuration)
//	Configure   accepts anything
//	Health      healthy
//	Place       every job unplaced (worker 0) with a reason
//	Render      a deterministic text/plain listing of the routes
//	Apply       codes.Unimplemented (see Proxy)
//	Deliver     DELIVERED for every event
//	Plans       the default catalogue of sdk/plans
package mock

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/plans"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Name is the plugin name a mock's default Info reports.
const Name = "mock"

// Version is the plugin version a mock's default Info reports.
const Version = "0.0.0"

// Method names, as counted by Calls.
const (
	MethodInfo       = "Info"
	MethodConfigSpec = "ConfigSpec"
	MethodConfigure  = "Configure"
	MethodHealth     = "Health"
	MethodPlace      = "Place"
	MethodRender     = "Render"
	MethodApply      = "Apply"
	MethodDeliver    = "Deliver"
	MethodPlans      = "Plans"
)

// counter counts calls per method; its zero value is ready to use.
type counter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *counter) inc(method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[method]++
}

// Calls returns how many times method (one of the Method constants) was
// called on the mock.
func (c *counter) Calls(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method]
}

// base holds the four base behaviours every kind shares, so each kind's
// mock only wires its own fields to it.
type base struct {
	kind         string
	capabilities []string
	info         func(context.Context) (*pluginv1.InfoResponse, error)
	configSpec   func(context.Context) (*pluginv1.Spec, error)
	configure    func(context.Context, *pluginv1.ConfigureRequest) error
	health       func(context.Context) error
}

// Info answers with info, or the default for the kind.
func (b base) Info(ctx context.Context) (*pluginv1.InfoResponse, error) {
	if b.info != nil {
		return b.info(ctx)
	}
	return &pluginv1.InfoResponse{
		Kind: b.kind, Name: Name, Version: Version,
		Description:  "mock " + b.kind + " plugin",
		ApiVersions:  []string{sdk.APIVersion1},
		Capabilities: b.capabilities,
	}, nil
}

// ConfigSpec answers with configSpec, or no spec.
func (b base) ConfigSpec(ctx context.Context) (*pluginv1.Spec, error) {
	if b.configSpec != nil {
		return b.configSpec(ctx)
	}
	return nil, nil
}

// Configure answers with configure, or accepts.
func (b base) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) error {
	if b.configure != nil {
		return b.configure(ctx, req)
	}
	return nil
}

// Health answers with health, or healthy.
func (b base) Health(ctx context.Context) error {
	if b.health != nil {
		return b.health(ctx)
	}
	return nil
}

// Scheduler is a mock sdk.Scheduler.
type Scheduler struct {
	// InfoFunc answers Info; nil reports kind "scheduler", name "mock".
	InfoFunc func(ctx context.Context) (*pluginv1.InfoResponse, error)
	// ConfigSpecFunc answers ConfigSpec; nil means no configuration.
	ConfigSpecFunc func(ctx context.Context) (*pluginv1.Spec, error)
	// ConfigureFunc answers Configure; nil accepts anything.
	ConfigureFunc func(ctx context.Context, req *pluginv1.ConfigureRequest) error
	// HealthFunc answers Health; nil is healthy.
	HealthFunc func(ctx context.Context) error
	// PlaceFunc answers Place; nil leaves every job unplaced (worker 0)
	// with the reason "mock: no PlaceFunc".
	PlaceFunc func(ctx context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error)

	counter
}

var _ interface {
	sdk.Scheduler
	sdk.HealthChecker
} = (*Scheduler)(nil)

func (m *Scheduler) base() base {
	return base{kind: sdk.KindScheduler, info: m.InfoFunc, configSpec: m.ConfigSpecFunc,
		configure: m.ConfigureFunc, health: m.HealthFunc}
}

// Info implements sdk.Plugin.
func (m *Scheduler) Info(ctx context.Context) (*pluginv1.InfoResponse, error) {
	m.inc(MethodInfo)
	return m.base().Info(ctx)
}

// ConfigSpec implements sdk.Plugin.
func (m *Scheduler) ConfigSpec(ctx context.Context) (*pluginv1.Spec, error) {
	m.inc(MethodConfigSpec)
	return m.base().ConfigSpec(ctx)
}

// Configure implements sdk.Plugin.
func (m *Scheduler) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) error {
	m.inc(MethodConfigure)
	return m.base().Configure(ctx, req)
}

// Health implements sdk.HealthChecker.
func (m *Scheduler) Health(ctx context.Context) error {
	m.inc(MethodHealth)
	return m.base().Health(ctx)
}

// Place implements sdk.Scheduler.
func (m *Scheduler) Place(ctx context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
	m.inc(MethodPlace)
	if m.PlaceFunc != nil {
		return m.PlaceFunc(ctx, req)
	}
	resp := &pluginv1.PlaceResponse{}
	for _, j := range req.GetJobs() {
		resp.Placements = append(resp.Placements, &pluginv1.Placement{
			JobId: j.GetId(), WorkerId: 0, Reason: "mock: no PlaceFunc"})
	}
	return resp, nil
}

// Proxy is a mock sdk.Proxy.
//
// Go methods cannot come and go, so *Proxy always has an Apply method and
// always satisfies sdk.ProxyApplier. It is only useful when ApplyFunc is set:
// then the default Info lists sdk.CapabilityProxyApply and Apply calls
// ApplyFunc. With ApplyFunc nil the default Info lists no capability and
// Apply answers codes.Unimplemented, exactly what the sdk's gRPC server
// answers for a proxy plugin that does not implement ProxyApplier; so over
// the wire the mock behaves like a pull-only proxy.
type Proxy struct {
	// InfoFunc answers Info; nil reports kind "proxy", name "mock", and the
	// proxy.apply capability when ApplyFunc is set.
	InfoFunc func(ctx context.Context) (*pluginv1.InfoResponse, error)
	// ConfigSpecFunc answers ConfigSpec; nil means no configuration.
	ConfigSpecFunc func(ctx context.Context) (*pluginv1.Spec, error)
	// ConfigureFunc answers Configure; nil accepts anything.
	ConfigureFunc func(ctx context.Context, req *pluginv1.ConfigureRequest) error
	// HealthFunc answers Health; nil is healthy.
	HealthFunc func(ctx context.Context) error
	// RenderFunc answers Render; nil renders one text/plain line per route
	// ("<name> <upstream> <hosts…>") after a "generation <n>" line, so equal
	// requests give byte-equal bodies.
	RenderFunc func(ctx context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error)
	// ApplyFunc answers Apply; nil answers codes.Unimplemented (see Proxy).
	ApplyFunc func(ctx context.Context, req *pluginv1.ApplyRequest) (*pluginv1.ApplyResponse, error)

	counter
}

var _ interface {
	sdk.Proxy
	sdk.ProxyApplier
	sdk.HealthChecker
} = (*Proxy)(nil)

func (m *Proxy) base() base {
	b := base{kind: sdk.KindProxy, info: m.InfoFunc, configSpec: m.ConfigSpecFunc,
		configure: m.ConfigureFunc, health: m.HealthFunc}
	if m.ApplyFunc != nil {
		b.capabilities = []string{sdk.CapabilityProxyApply}
	}
	return b
}

// Info implements sdk.Plugin.
func (m *Proxy) Info(ctx context.Context) (*pluginv1.InfoResponse, error) {
	m.inc(MethodInfo)
	return m.base().Info(ctx)
}

// ConfigSpec implements sdk.Plugin.
func (m *Proxy) ConfigSpec(ctx context.Context) (*pluginv1.Spec, error) {
	m.inc(MethodConfigSpec)
	return m.base().ConfigSpec(ctx)
}

// Configure implements sdk.Plugin.
func (m *Proxy) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) error {
	m.inc(MethodConfigure)
	return m.base().Configure(ctx, req)
}

// Health implements sdk.HealthChecker.
func (m *Proxy) Health(ctx context.Context) error {
	m.inc(MethodHealth)
	return m.base().Health(ctx)
}

// Render implements sdk.Proxy.
func (m *Proxy) Render(ctx context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error) {
	m.inc(MethodRender)
	if m.RenderFunc != nil {
		return m.RenderFunc(ctx, req)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "generation %d\n", req.GetGeneration())
	for _, r := range req.GetRoutes() {
		fmt.Fprintf(&b, "%s %s %s\n", r.GetName(), r.GetUpstream(), strings.Join(r.GetHosts(), " "))
	}
	return &pluginv1.RenderResponse{Body: []byte(b.String()), ContentType: "text/plain; charset=utf-8"}, nil
}

// Apply implements sdk.ProxyApplier when ApplyFunc is set; otherwise it
// answers codes.Unimplemented (see Proxy).
func (m *Proxy) Apply(ctx context.Context, req *pluginv1.ApplyRequest) (*pluginv1.ApplyResponse, error) {
	m.inc(MethodApply)
	if m.ApplyFunc != nil {
		return m.ApplyFunc(ctx, req)
	}
	return nil, status.Error(codes.Unimplemented, "mock proxy: no ApplyFunc (no "+sdk.CapabilityProxyApply+" capability)")
}

// AlertSink is a mock sdk.AlertSink.
type AlertSink struct {
	// InfoFunc answers Info; nil reports kind "alerts", name "mock".
	InfoFunc func(ctx context.Context) (*pluginv1.InfoResponse, error)
	// ConfigSpecFunc answers ConfigSpec; nil means no configuration.
	ConfigSpecFunc func(ctx context.Context) (*pluginv1.Spec, error)
	// ConfigureFunc answers Configure; nil accepts anything.
	ConfigureFunc func(ctx context.Context, req *pluginv1.ConfigureRequest) error
	// HealthFunc answers Health; nil is healthy.
	HealthFunc func(ctx context.Context) error
	// DeliverFunc answers Deliver; nil reports every event DELIVERED.
	DeliverFunc func(ctx context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error)

	counter
}

var _ interface {
	sdk.AlertSink
	sdk.HealthChecker
} = (*AlertSink)(nil)

func (m *AlertSink) base() base {
	return base{kind: sdk.KindAlerts, info: m.InfoFunc, configSpec: m.ConfigSpecFunc,
		configure: m.ConfigureFunc, health: m.HealthFunc}
}

// Info implements sdk.Plugin.
func (m *AlertSink) Info(ctx context.Context) (*pluginv1.InfoResponse, error) {
	m.inc(MethodInfo)
	return m.base().Info(ctx)
}

// ConfigSpec implements sdk.Plugin.
func (m *AlertSink) ConfigSpec(ctx context.Context) (*pluginv1.Spec, error) {
	m.inc(MethodConfigSpec)
	return m.base().ConfigSpec(ctx)
}

// Configure implements sdk.Plugin.
func (m *AlertSink) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) error {
	m.inc(MethodConfigure)
	return m.base().Configure(ctx, req)
}

// Health implements sdk.HealthChecker.
func (m *AlertSink) Health(ctx context.Context) error {
	m.inc(MethodHealth)
	return m.base().Health(ctx)
}

// Deliver implements sdk.AlertSink.
func (m *AlertSink) Deliver(ctx context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
	m.inc(MethodDeliver)
	if m.DeliverFunc != nil {
		return m.DeliverFunc(ctx, req)
	}
	resp := &pluginv1.DeliverResponse{}
	for _, e := range req.GetEvents() {
		resp.Results = append(resp.Results, &pluginv1.DeliveryResult{
			EventId: e.GetId(), Outcome: pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED})
	}
	return resp, nil
}

// PlanSource is a mock sdk.PlanSource.
type PlanSource struct {
	// InfoFunc answers Info; nil reports kind "plans", name "mock".
	InfoFunc func(ctx context.Context) (*pluginv1.InfoResponse, error)
	// ConfigSpecFunc answers ConfigSpec; nil means no configuration.
	ConfigSpecFunc func(ctx context.Context) (*pluginv1.Spec, error)
	// ConfigureFunc answers Configure; nil accepts anything.
	ConfigureFunc func(ctx context.Context, req *pluginv1.ConfigureRequest) error
	// HealthFunc answers Health; nil is healthy.
	HealthFunc func(ctx context.Context) error
	// PlansFunc answers Plans; nil returns plans.Default() (free, pro,
	// business; default "free").
	PlansFunc func(ctx context.Context) (*pluginv1.PlansResponse, error)

	counter
}

var _ interface {
	sdk.PlanSource
	sdk.HealthChecker
} = (*PlanSource)(nil)

func (m *PlanSource) base() base {
	return base{kind: sdk.KindPlans, info: m.InfoFunc, configSpec: m.ConfigSpecFunc,
		configure: m.ConfigureFunc, health: m.HealthFunc}
}

// Info implements sdk.Plugin.
func (m *PlanSource) Info(ctx context.Context) (*pluginv1.InfoResponse, error) {
	m.inc(MethodInfo)
	return m.base().Info(ctx)
}

// ConfigSpec implements sdk.Plugin.
func (m *PlanSource) ConfigSpec(ctx context.Context) (*pluginv1.Spec, error) {
	m.inc(MethodConfigSpec)
	return m.base().ConfigSpec(ctx)
}

// Configure implements sdk.Plugin.
func (m *PlanSource) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) error {
	m.inc(MethodConfigure)
	return m.base().Configure(ctx, req)
}

// Health implements sdk.HealthChecker.
func (m *PlanSource) Health(ctx context.Context) error {
	m.inc(MethodHealth)
	return m.base().Health(ctx)
}

// Plans implements sdk.PlanSource.
func (m *PlanSource) Plans(ctx context.Context) (*pluginv1.PlansResponse, error) {
	m.inc(MethodPlans)
	if m.PlansFunc != nil {
		return m.PlansFunc(ctx)
	}
	return plans.Default(), nil
}
