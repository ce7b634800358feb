package plugintest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/mock"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

func TestBaseCalls(t *testing.T) {
	ctx := context.Background()
	var got *pluginv1.ConfigureRequest
	m := &mock.Scheduler{
		ConfigSpecFunc: func(context.Context) (*pluginv1.Spec, error) {
			return hclspec.Object(map[string]*pluginv1.Spec{"x": hclspec.Attr("x", "number", true, "")}), nil
		},
		ConfigureFunc: func(_ context.Context, req *pluginv1.ConfigureRequest) error {
			got = req
			if string(req.GetConfigJson()) != `{"x":1}` {
				return errors.New("x must be 1")
			}
			return nil
		},
	}
	c := plugintest.Connect(t, m)

	info, err := c.Info(ctx)
	if err != nil || info.GetKind() != sdk.KindScheduler || info.GetName() != mock.Name {
		t.Fatalf("Info = %v, %v", info, err)
	}
	spec, err := c.ConfigSpec(ctx)
	if err != nil || spec.GetObject().GetAttributes()["x"].GetAttr().GetType() != "number" {
		t.Fatalf("ConfigSpec = %v, %v", spec, err)
	}
	if err := c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: "1", ConfigJson: []byte(`{"x":1}`), Instance: "main"}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if got.GetInstance() != "main" || got.GetApiVersion() != "1" {
		t.Errorf("plugin received %v", got)
	}
	err = c.Configure(ctx, &pluginv1.ConfigureRequest{ConfigJson: []byte(`{"x":2}`)})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "x must be 1") {
		t.Errorf("rejected Configure error = %v, want InvalidArgument with the plugin's message", err)
	}
	if err := c.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
	m.HealthFunc = func(context.Context) error { return errors.New("upstream down") }
	if err := c.Health(ctx); err == nil || !strings.Contains(err.Error(), "upstream down") {
		t.Errorf("unhealthy Health = %v", err)
	}
	for method, want := range map[string]int{mock.MethodConfigure: 2, mock.MethodHealth: 2, mock.MethodConfigSpec: 1} {
		if n := m.Calls(method); n != want {
			t.Errorf("the mock saw %d %s calls, want %d", n, method, want)
		}
	}
}

func TestKinds(t *testing.T) {
	ctx := context.Background()

	t.Run("scheduler", func(t *testing.T) {
		c := plugintest.Connect(t, &mock.Scheduler{
			PlaceFunc: func(_ context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
				return &pluginv1.PlaceResponse{Placements: []*pluginv1.Placement{
					{JobId: req.GetJobs()[0].GetId(), WorkerId: req.GetWorkers()[0].GetId()}}}, nil
			},
		})
		s, ok := c.(sdk.Scheduler)
		if !ok {
			t.Fatalf("%T is not an sdk.Scheduler", c)
		}
		resp, err := s.Place(ctx, &pluginv1.PlaceRequest{Jobs: []*pluginv1.PlaceJob{{Id: 5}}, Workers: []*pluginv1.PlaceWorker{{Id: 9}}})
		if err != nil || len(resp.GetPlacements()) != 1 || resp.GetPlacements()[0].GetWorkerId() != 9 {
			t.Errorf("Place = %v, %v", resp, err)
		}
	})

	t.Run("proxy pull only", func(t *testing.T) {
		c := plugintest.Connect(t, &mock.Proxy{})
		p := c.(sdk.Proxy)
		resp, err := p.Render(ctx, &pluginv1.RenderRequest{Generation: 2})
		if err != nil || string(resp.GetBody()) != "generation 2\n" {
			t.Errorf("Render = %v, %v", resp, err)
		}
		_, err = c.(sdk.ProxyApplier).Apply(ctx, &pluginv1.ApplyRequest{})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("Apply on a pull-only proxy = %v, want Unimplemented", err)
		}
	})

	t.Run("proxy push", func(t *testing.T) {
		c := plugintest.Connect(t, &mock.Proxy{
			ApplyFunc: func(_ context.Context, req *pluginv1.ApplyRequest) (*pluginv1.ApplyResponse, error) {
				return &pluginv1.ApplyResponse{Applied: true, Message: fmt.Sprint(req.GetGeneration())}, nil
			},
		})
		info, _ := c.Info(ctx)
		if len(info.GetCapabilities()) != 1 || info.GetCapabilities()[0] != sdk.CapabilityProxyApply {
			t.Errorf("capabilities = %v", info.GetCapabilities())
		}
		resp, err := c.(sdk.ProxyApplier).Apply(ctx, &pluginv1.ApplyRequest{Generation: 4})
		if err != nil || !resp.GetApplied() || resp.GetMessage() != "4" {
			t.Errorf("Apply = %v, %v", resp, err)
		}
	})

	t.Run("alerts", func(t *testing.T) {
		c := plugintest.Connect(t, &mock.AlertSink{})
		resp, err := c.(sdk.AlertSink).Deliver(ctx, &pluginv1.DeliverRequest{Events: []*pluginv1.Event{{Id: "a"}}})
		if err != nil || len(resp.GetResults()) != 1 || resp.GetResults()[0].GetEventId() != "a" {
			t.Errorf("Deliver = %v, %v", resp, err)
		}
	})

	t.Run("plans", func(t *testing.T) {
		c := plugintest.Connect(t, &mock.PlanSource{})
		resp, err := c.(sdk.PlanSource).Plans(ctx)
		if err != nil || len(resp.GetPlans()) == 0 || resp.GetDefaultPlan() == "" {
			t.Errorf("Plans = %v, %v", resp, err)
		}
	})

	t.Run("plugin error", func(t *testing.T) {
		c := plugintest.Connect(t, &mock.PlanSource{
			PlansFunc: func(context.Context) (*pluginv1.PlansResponse, error) {
				return nil, status.Error(codes.Unavailable, "catalogue unreachable")
			},
		})
		_, err := c.(sdk.PlanSource).Plans(ctx)
		if status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "catalogue unreachable" {
			t.Errorf("Plans error = %v, want the plugin's status", err)
		}
	})
}

// TestMessageSizes proves both sides use the sdk's limits: 20 MiB passes
// either way (gRPC's default is 4 MiB), and a message beyond
// sdk.MaxMessageSize fails with ResourceExhausted without breaking the
// connection.
func TestMessageSizes(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates several hundred MiB")
	}
	ctx := context.Background()
	var mu sync.Mutex
	size := 0
	var lastReq int
	m := &mock.Proxy{
		RenderFunc: func(_ context.Context, req *pluginv1.RenderRequest) (*pluginv1.RenderResponse, error) {
			mu.Lock()
			n := size
			lastReq = len(req.GetRoutes())
			mu.Unlock()
			return &pluginv1.RenderResponse{Body: bytes.Repeat([]byte{'x'}, n), ContentType: "application/octet-stream"}, nil
		},
	}
	p := plugintest.Connect(t, m).(sdk.Proxy)
	setSize := func(n int) {
		mu.Lock()
		size = n
		mu.Unlock()
	}

	setSize(20 << 20)
	resp, err := p.Render(ctx, &pluginv1.RenderRequest{})
	if err != nil {
		t.Fatalf("20 MiB response: %v", err)
	}
	if len(resp.GetBody()) != 20<<20 {
		t.Fatalf("20 MiB response: got %d bytes", len(resp.GetBody()))
	}
	resp = nil
	runtime.GC()

	setSize(sdk.MaxMessageSize + 1)
	_, err = p.Render(ctx, &pluginv1.RenderRequest{})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("response beyond MaxMessageSize: err = %v, want ResourceExhausted", err)
	}
	t.Logf("response beyond MaxMessageSize: %v", err)
	runtime.GC()

	// A 20 MiB request (20,000+ routes): the plugin side must accept it too.
	setSize(1)
	req := bigRenderRequest(20 << 20)
	if _, err := p.Render(ctx, req); err != nil {
		t.Fatalf("20 MiB request: %v", err)
	}
	mu.Lock()
	if lastReq != len(req.GetRoutes()) {
		t.Errorf("plugin saw %d routes, sent %d", lastReq, len(req.GetRoutes()))
	}
	mu.Unlock()
	req = nil
	runtime.GC()

	calls := m.Calls(mock.MethodRender)
	_, err = p.Render(ctx, bigRenderRequest(sdk.MaxMessageSize+1))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("request beyond MaxMessageSize: err = %v, want ResourceExhausted", err)
	}
	if m.Calls(mock.MethodRender) != calls {
		t.Errorf("an oversized request reached the plugin")
	}
	t.Logf("request beyond MaxMessageSize: %v", err)
	runtime.GC()

	// The connection survives both failures.
	if resp, err := p.Render(ctx, &pluginv1.RenderRequest{}); err != nil || len(resp.GetBody()) != 1 {
		t.Fatalf("call after the oversized messages: %v, %v", resp, err)
	}
}

// bigRenderRequest returns a request whose encoding is at least n bytes.
func bigRenderRequest(n int) *pluginv1.RenderRequest {
	const hostLen = 1 << 10
	host := strings.Repeat("h", hostLen-len(".example.com")) + ".example.com"
	req := &pluginv1.RenderRequest{Generation: 1}
	for i := 0; i*(hostLen+40) < n+hostLen; i++ {
		req.Routes = append(req.Routes, &pluginv1.Route{
			AppId: int64(i), Name: fmt.Sprintf("app-%d", i), Hosts: []string{host}, Upstream: "http://10.0.0.1:8080"})
	}
	return req
}

// fatalTB records Fatal calls; Fatal ends the calling goroutine as
// testing.T's does.
type fatalTB struct {
	testing.TB
	mu    sync.Mutex
	fatal string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestConnectRejectsNoKind(t *testing.T) {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		plugintest.Connect(f, noKind{})
	}()
	<-done
	if !strings.Contains(f.fatal, "exactly one plugin kind") {
		t.Errorf("Fatal = %q", f.fatal)
	}
}

// noKind implements the base only, no kind.
type noKind struct{}

func (noKind) Info(context.Context) (*pluginv1.InfoResponse, error) {
	return &pluginv1.InfoResponse{}, nil
}
func (noKind) ConfigSpec(context.Context) (*pluginv1.Spec, error)          { return nil, nil }
func (noKind) Configure(context.Context, *pluginv1.ConfigureRequest) error { return nil }
