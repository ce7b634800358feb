package sdk

import (
	"context"

	"github.com/hashicorp/go-plugin"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Plugin kinds.
const (
	KindScheduler = "scheduler"
	KindProxy     = "proxy"
	KindAlerts    = "alerts"
	KindPlans     = "plans"
)

// Kinds returns every plugin kind.
func Kinds() []string { return []string{KindScheduler, KindProxy, KindAlerts, KindPlans} }

// APIVersion1 is the first version of every kind's API. A kind's API
// version changes when its methods or messages change incompatibly; the core
// negotiates the highest version both sides speak.
const APIVersion1 = "1"

// CapabilityProxyApply marks a proxy plugin that implements ProxyApplier.
const CapabilityProxyApply = "proxy.apply"

// MaxMessageSize bounds a gRPC message either way (a 20,000-route render
// is several MiB; gRPC's default of 4 MiB is too small).
const MaxMessageSize = 128 << 20

// HandshakeConfig is the go-plugin handshake every WiseHosting plugin and the
// core share. ProtocolVersion changes only for wire breaks; interface
// evolution goes through the per-kind API versions instead.
func HandshakeConfig() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  1,
		MagicCookieKey:   "WISEHOSTING_PLUGIN",
		MagicCookieValue: "c1b3e0f6-wisehosting-plugin-v1",
	}
}

// Plugin is the base every kind implements.
type Plugin interface {
	// Info says what the plugin is.
	Info(ctx context.Context) (*pluginv1.InfoResponse, error)
	// ConfigSpec returns the schema of the plugin's config {} block, nil
	// for none.
	ConfigSpec(ctx context.Context) (*pluginv1.Spec, error)
	// Configure receives the decoded config (JSON) and the negotiated API
	// version. An error rejects the configuration; its text is shown to the
	// operator.
	Configure(ctx context.Context, req *pluginv1.ConfigureRequest) error
}

// HealthChecker is optionally implemented by plugins that can tell whether
// they are able to serve (e.g. their upstream is reachable). Plugins without
// it are healthy while they answer.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// Scheduler proposes placements for a batch of jobs.
type Scheduler interface {
	Plugin
	Place(ctx context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error)
}

// Proxy renders the route table into an edge proxy's configuration.
type Proxy interface {
	Plugin
	Render(ctx context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error)
}

// ProxyApplier is implemented by proxy plugins that can push the route
// table to a proxy they reach; they must list CapabilityProxyApply in Info.
type ProxyApplier interface {
	Apply(ctx context.Context, req *pluginv1.ApplyRequest) (*pluginv1.ApplyResponse, error)
}

// AlertSink delivers batches of platform events somewhere.
type AlertSink interface {
	Plugin
	Deliver(ctx context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error)
}

// PlanSource provides the plan catalogue.
type PlanSource interface {
	Plugin
	Plans(ctx context.Context) (*pluginv1.PlansResponse, error)
}

// KindOf returns the kind p implements, or "" when it implements none. A
// value implementing several kinds is rejected ("" too): one plugin, one kind.
func KindOf(p Plugin) string {
	var kinds []string
	if _, ok := p.(Scheduler); ok {
		kinds = append(kinds, KindScheduler)
	}
	if _, ok := p.(Proxy); ok {
		kinds = append(kinds, KindProxy)
	}
	if _, ok := p.(AlertSink); ok {
		kinds = append(kinds, KindAlerts)
	}
	if _, ok := p.(PlanSource); ok {
		kinds = append(kinds, KindPlans)
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}
