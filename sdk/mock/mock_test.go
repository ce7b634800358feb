package mock_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/mock"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

func TestKinds(t *testing.T) {
	for want, p := range map[string]sdk.Plugin{
		sdk.KindScheduler: &mock.Scheduler{},
		sdk.KindProxy:     &mock.Proxy{},
		sdk.KindAlerts:    &mock.AlertSink{},
		sdk.KindPlans:     &mock.PlanSource{},
	} {
		if got := sdk.KindOf(p); got != want {
			t.Errorf("KindOf(%T) = %q, want %q", p, got, want)
		}
		info, err := p.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.GetKind() != want || info.GetName() != mock.Name || info.GetVersion() == "" ||
			len(info.GetApiVersions()) != 1 || info.GetApiVersions()[0] != sdk.APIVersion1 {
			t.Errorf("%T default Info = %v", p, info)
		}
		if spec, err := p.ConfigSpec(context.Background()); spec != nil || err != nil {
			t.Errorf("%T default ConfigSpec = %v, %v", p, spec, err)
		}
		if err := p.Configure(context.Background(), &pluginv1.ConfigureRequest{ConfigJson: []byte(`{"x":1}`)}); err != nil {
			t.Errorf("%T default Configure: %v", p, err)
		}
		if err := p.(sdk.HealthChecker).Health(context.Background()); err != nil {
			t.Errorf("%T default Health: %v", p, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	ctx := context.Background()

	s := &mock.Scheduler{}
	pr, err := s.Place(ctx, &pluginv1.PlaceRequest{Jobs: []*pluginv1.PlaceJob{{Id: 7}, {Id: 8}}})
	if err != nil || len(pr.GetPlacements()) != 2 || pr.GetPlacements()[1].GetJobId() != 8 ||
		pr.GetPlacements()[1].GetWorkerId() != 0 || pr.GetPlacements()[1].GetReason() == "" {
		t.Errorf("default Place = %v, %v", pr, err)
	}

	p := &mock.Proxy{}
	req := &pluginv1.RenderRequest{Generation: 3, Routes: []*pluginv1.Route{{Name: "a", Upstream: "http://10.0.0.1:8080", Hosts: []string{"a.example.com"}}}}
	r1, err1 := p.Render(ctx, req)
	r2, err2 := p.Render(ctx, req)
	if err1 != nil || err2 != nil || string(r1.GetBody()) != string(r2.GetBody()) ||
		string(r1.GetBody()) != "generation 3\na http://10.0.0.1:8080 a.example.com\n" || r1.GetContentType() == "" {
		t.Errorf("default Render = %q (%v), %v %v", r1.GetBody(), r1.GetContentType(), err1, err2)
	}
	if _, err := p.Apply(ctx, &pluginv1.ApplyRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("default Apply error = %v, want Unimplemented", err)
	}
	if info, _ := p.Info(ctx); len(info.GetCapabilities()) != 0 {
		t.Errorf("proxy without ApplyFunc lists capabilities %v", info.GetCapabilities())
	}

	a := &mock.AlertSink{}
	dr, err := a.Deliver(ctx, &pluginv1.DeliverRequest{Events: []*pluginv1.Event{{Id: "e1"}, {Id: "e2"}}})
	if err != nil || len(dr.GetResults()) != 2 || dr.GetResults()[1].GetEventId() != "e2" ||
		dr.GetResults()[1].GetOutcome() != pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED {
		t.Errorf("default Deliver = %v, %v", dr, err)
	}

	ps := &mock.PlanSource{}
	pl, err := ps.Plans(ctx)
	if err != nil || len(pl.GetPlans()) == 0 || pl.GetDefaultPlan() == "" {
		t.Errorf("default Plans = %v, %v", pl, err)
	}
}

func TestFuncsAndCalls(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	p := &mock.Proxy{
		ApplyFunc: func(_ context.Context, req *pluginv1.ApplyRequest) (*pluginv1.ApplyResponse, error) {
			return &pluginv1.ApplyResponse{Applied: true, Message: "gen"}, nil
		},
		HealthFunc:    func(context.Context) error { return boom },
		ConfigureFunc: func(context.Context, *pluginv1.ConfigureRequest) error { return boom },
	}
	info, _ := p.Info(ctx)
	if len(info.GetCapabilities()) != 1 || info.GetCapabilities()[0] != sdk.CapabilityProxyApply {
		t.Errorf("proxy with ApplyFunc capabilities = %v", info.GetCapabilities())
	}
	if r, err := p.Apply(ctx, &pluginv1.ApplyRequest{}); err != nil || !r.GetApplied() {
		t.Errorf("Apply = %v, %v", r, err)
	}
	if err := p.Health(ctx); !errors.Is(err, boom) {
		t.Errorf("Health = %v", err)
	}
	if err := p.Configure(ctx, &pluginv1.ConfigureRequest{}); !errors.Is(err, boom) {
		t.Errorf("Configure = %v", err)
	}
	_, _ = p.Render(ctx, &pluginv1.RenderRequest{})
	_, _ = p.Render(ctx, &pluginv1.RenderRequest{})
	for method, want := range map[string]int{mock.MethodInfo: 1, mock.MethodApply: 1, mock.MethodHealth: 1,
		mock.MethodConfigure: 1, mock.MethodRender: 2, mock.MethodConfigSpec: 0} {
		if got := p.Calls(method); got != want {
			t.Errorf("Calls(%s) = %d, want %d", method, got, want)
		}
	}
}

func TestCallsConcurrent(t *testing.T) {
	s := &mock.Scheduler{}
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				_, _ = s.Place(context.Background(), &pluginv1.PlaceRequest{})
			}
		}()
	}
	for range 8 {
		<-done
	}
	if got := s.Calls(mock.MethodPlace); got != 800 {
		t.Errorf("Calls(Place) = %d, want 800", got)
	}
}
