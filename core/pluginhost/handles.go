package pluginhost

import (
	"context"
	"errors"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// handle is the host's side of one plugin: it implements the kind's sdk
// interface on top of whichever process currently serves the plugin, fails
// at once with ErrUnavailable while there is none, and names the plugin in
// every error.
type handle struct{ in *instance }

// errNoApply is not expected: the sdk's proxy client always has Apply.
var errNoApply = errors.New("the plugin's client does not implement Apply")

var (
	_ sdk.Scheduler     = (*schedulerHandle)(nil)
	_ sdk.Proxy         = (*proxyHandle)(nil)
	_ sdk.ProxyApplier  = (*applierHandle)(nil)
	_ sdk.AlertSink     = (*alertsHandle)(nil)
	_ sdk.PlanSource    = (*plansHandle)(nil)
	_ sdk.HealthChecker = handle{}
)

// newHandle returns the handle for in's kind; apply adds
// sdk.ProxyApplier to a proxy's.
func newHandle(in *instance, apply bool) sdk.Plugin {
	b := handle{in: in}
	switch in.kind {
	case sdk.KindScheduler:
		return &schedulerHandle{b}
	case sdk.KindProxy:
		if apply {
			return &applierHandle{proxyHandle{b}}
		}
		return &proxyHandle{b}
	case sdk.KindAlerts:
		return &alertsHandle{b}
	case sdk.KindPlans:
		return &plansHandle{b}
	}
	return b
}

// Info returns what the plugin said at its last start (no call).
func (h handle) Info(context.Context) (*pluginv1.InfoResponse, error) {
	if info := h.in.cachedInfo(); info != nil {
		return info, nil
	}
	_, err := h.in.conn()
	return nil, err
}

// ConfigSpec returns the spec the plugin declared at its first start (no
// call).
func (h handle) ConfigSpec(context.Context) (*pluginv1.Spec, error) {
	return h.in.cachedSpec(), nil
}

// Configure reconfigures the running plugin; on success the host re-sends
// this configuration after every restart.
func (h handle) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) error {
	c, err := h.in.conn()
	if err != nil {
		return err
	}
	if err := c.Configure(ctx, req); err != nil {
		return h.in.wrap("Configure", err)
	}
	h.in.setConfig(req.GetConfigJson())
	return nil
}

// Health asks the plugin whether it can serve.
func (h handle) Health(ctx context.Context) error {
	c, err := h.in.conn()
	if err != nil {
		return err
	}
	return h.in.wrap("Health", c.Health(ctx))
}

type schedulerHandle struct{ handle }

// Place implements sdk.Scheduler.
func (h *schedulerHandle) Place(ctx context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
	c, err := h.in.conn()
	if err != nil {
		return nil, err
	}
	resp, err := c.(sdk.Scheduler).Place(ctx, req)
	if err != nil {
		return nil, h.in.wrap("Place", err)
	}
	return resp, nil
}

type proxyHandle struct{ handle }

// Render implements sdk.Proxy.
func (h *proxyHandle) Render(ctx context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error) {
	c, err := h.in.conn()
	if err != nil {
		return nil, err
	}
	resp, err := c.(sdk.Proxy).Render(ctx, req)
	if err != nil {
		return nil, h.in.wrap("Render", err)
	}
	return resp, nil
}

// applierHandle is the handle of a proxy plugin with the proxy.apply
// capability.
type applierHandle struct{ proxyHandle }

// Apply implements sdk.ProxyApplier.
func (h *applierHandle) Apply(ctx context.Context, req *pluginv1.ApplyRequest) (*pluginv1.ApplyResponse, error) {
	c, err := h.in.conn()
	if err != nil {
		return nil, err
	}
	a, ok := c.(sdk.ProxyApplier)
	if !ok {
		return nil, h.in.wrap("Apply", errNoApply)
	}
	resp, err := a.Apply(ctx, req)
	if err != nil {
		return nil, h.in.wrap("Apply", err)
	}
	return resp, nil
}

type alertsHandle struct{ handle }

// Deliver implements sdk.AlertSink.
func (h *alertsHandle) Deliver(ctx context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
	c, err := h.in.conn()
	if err != nil {
		return nil, err
	}
	resp, err := c.(sdk.AlertSink).Deliver(ctx, req)
	if err != nil {
		return nil, h.in.wrap("Deliver", err)
	}
	return resp, nil
}

type plansHandle struct{ handle }

// Plans implements sdk.PlanSource.
func (h *plansHandle) Plans(ctx context.Context) (*pluginv1.PlansResponse, error) {
	c, err := h.in.conn()
	if err != nil {
		return nil, err
	}
	resp, err := c.(sdk.PlanSource).Plans(ctx)
	if err != nil {
		return nil, h.in.wrap("Plans", err)
	}
	return resp, nil
}
