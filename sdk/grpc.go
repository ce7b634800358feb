package sdk

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// GRPCPlugin is the go-plugin glue for one kind: on the plugin side it
// registers the Base service and the kind's service for Impl; on the core's
// side it returns a client implementing the kind's interface.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Kind is one of the Kind constants.
	Kind string
	// Impl is the plugin, on the plugin side only.
	Impl Plugin
}

// GRPCServer implements plugin.GRPCPlugin.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterBaseServer(s, &baseServer{impl: p.Impl})
	switch impl := p.Impl.(type) {
	case Scheduler:
		pluginv1.RegisterSchedulerServer(s, &schedulerServer{impl: impl})
	case Proxy:
		pluginv1.RegisterProxyServer(s, &proxyServer{impl: impl})
	case AlertSink:
		pluginv1.RegisterAlertsServer(s, &alertsServer{impl: impl})
	case PlanSource:
		pluginv1.RegisterPlansServer(s, &plansServer{impl: impl})
	default:
		return fmt.Errorf("sdk: %T implements no plugin kind", p.Impl)
	}
	return nil
}

// GRPCClient implements plugin.GRPCPlugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewClient(p.Kind, conn)
}

// PluginSet is the set the core dispenses from: one GRPCPlugin per kind.
func PluginSet() plugin.PluginSet {
	set := plugin.PluginSet{}
	for _, k := range Kinds() {
		set[k] = &GRPCPlugin{Kind: k}
	}
	return set
}

// GRPCDialOptions are the call options the core's side needs (message sizes).
func GRPCDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize))}
}

// GRPCServerOptions are the server options the plugin's side needs.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessageSize), grpc.MaxSendMsgSize(MaxMessageSize)}
}

// --- plugin side ---------------------------------------------------------

type baseServer struct {
	pluginv1.UnimplementedBaseServer
	impl Plugin
}

func (s *baseServer) Info(ctx context.Context, _ *pluginv1.InfoRequest) (*pluginv1.InfoResponse, error) {
	return s.impl.Info(ctx)
}

func (s *baseServer) ConfigSpec(ctx context.Context, _ *pluginv1.ConfigSpecRequest) (*pluginv1.ConfigSpecResponse, error) {
	spec, err := s.impl.ConfigSpec(ctx)
	if err != nil {
		return nil, err
	}
	return &pluginv1.ConfigSpecResponse{Spec: spec}, nil
}

func (s *baseServer) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.ConfigureResponse, error) {
	if err := s.impl.Configure(ctx, req); err != nil {
		if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
			return nil, err
		}
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &pluginv1.ConfigureResponse{}, nil
}

func (s *baseServer) Health(ctx context.Context, _ *pluginv1.HealthRequest) (*pluginv1.HealthResponse, error) {
	if hc, ok := s.impl.(HealthChecker); ok {
		if err := hc.Health(ctx); err != nil {
			return &pluginv1.HealthResponse{Ok: false, Message: err.Error()}, nil
		}
	}
	return &pluginv1.HealthResponse{Ok: true}, nil
}

type schedulerServer struct {
	pluginv1.UnimplementedSchedulerServer
	impl Scheduler
}

func (s *schedulerServer) Place(ctx context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
	return s.impl.Place(ctx, req)
}

type proxyServer struct {
	pluginv1.UnimplementedProxyServer
	impl Proxy
}

func (s *proxyServer) Render(ctx context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error) {
	return s.impl.Render(ctx, req)
}

func (s *proxyServer) Apply(ctx context.Context, req *pluginv1.ApplyRequest) (*pluginv1.ApplyResponse, error) {
	a, ok := s.impl.(ProxyApplier)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this proxy plugin does not apply configurations (no "+CapabilityProxyApply+" capability)")
	}
	return a.Apply(ctx, req)
}

type alertsServer struct {
	pluginv1.UnimplementedAlertsServer
	impl AlertSink
}

func (s *alertsServer) Deliver(ctx context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
	return s.impl.Deliver(ctx, req)
}

type plansServer struct {
	pluginv1.UnimplementedPlansServer
	impl PlanSource
}

func (s *plansServer) Plans(ctx context.Context, _ *pluginv1.PlansRequest) (*pluginv1.PlansResponse, error) {
	return s.impl.Plans(ctx)
}

// --- core side -----------------------------------------------------------

// Client is the core's side of a plugin of any kind: the base calls, health,
// and the underlying connection. NewClient returns a value that also
// implements the kind's interface (Scheduler, Proxy and ProxyApplier,
// AlertSink or PlanSource).
type Client interface {
	Plugin
	HealthChecker
}

// NewClient returns the client for a plugin of the given kind served on conn.
func NewClient(kind string, conn *grpc.ClientConn) (Client, error) {
	b := baseClient{base: pluginv1.NewBaseClient(conn)}
	switch kind {
	case KindScheduler:
		return &schedulerClient{baseClient: b, c: pluginv1.NewSchedulerClient(conn)}, nil
	case KindProxy:
		return &proxyClient{baseClient: b, c: pluginv1.NewProxyClient(conn)}, nil
	case KindAlerts:
		return &alertsClient{baseClient: b, c: pluginv1.NewAlertsClient(conn)}, nil
	case KindPlans:
		return &plansClient{baseClient: b, c: pluginv1.NewPlansClient(conn)}, nil
	}
	return nil, fmt.Errorf("sdk: unknown plugin kind %q", kind)
}

type baseClient struct{ base pluginv1.BaseClient }

func (c baseClient) Info(ctx context.Context) (*pluginv1.InfoResponse, error) {
	return c.base.Info(ctx, &pluginv1.InfoRequest{})
}

func (c baseClient) ConfigSpec(ctx context.Context) (*pluginv1.Spec, error) {
	r, err := c.base.ConfigSpec(ctx, &pluginv1.ConfigSpecRequest{})
	if err != nil {
		return nil, err
	}
	return r.GetSpec(), nil
}

func (c baseClient) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) error {
	_, err := c.base.Configure(ctx, req)
	return err
}

func (c baseClient) Health(ctx context.Context) error {
	r, err := c.base.Health(ctx, &pluginv1.HealthRequest{})
	if err != nil {
		return err
	}
	if !r.GetOk() {
		return fmt.Errorf("unhealthy: %s", r.GetMessage())
	}
	return nil
}

type schedulerClient struct {
	baseClient
	c pluginv1.SchedulerClient
}

func (c *schedulerClient) Place(ctx context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
	return c.c.Place(ctx, req)
}

type proxyClient struct {
	baseClient
	c pluginv1.ProxyClient
}

func (c *proxyClient) Render(ctx context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error) {
	return c.c.Render(ctx, req)
}

func (c *proxyClient) Apply(ctx context.Context, req *pluginv1.ApplyRequest) (*pluginv1.ApplyResponse, error) {
	return c.c.Apply(ctx, req)
}

type alertsClient struct {
	baseClient
	c pluginv1.AlertsClient
}

func (c *alertsClient) Deliver(ctx context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
	return c.c.Deliver(ctx, req)
}

type plansClient struct {
	baseClient
	c pluginv1.PlansClient
}

func (c *plansClient) Plans(ctx context.Context) (*pluginv1.PlansResponse, error) {
	return c.c.Plans(ctx, &pluginv1.PlansRequest{})
}
