package httpplans

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/plans"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// TestOverGRPC drives the plugin through the real gRPC path, as the core
// does: Info, Configure from HCL (a rejected one comes back as an error),
// Plans (fetched, then cached), Health, and a failing first fetch.
func TestOverGRPC(t *testing.T) {
	srv := newServer(t, seedJSON)
	p, _ := newPlugin(t)
	c := plugintest.Connect(t, p)
	src := c.(sdk.PlanSource)
	ctx := context.Background()

	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.GetKind() != sdk.KindPlans || info.GetName() != Name || info.GetVersion() != Version {
		t.Fatalf("info %v", info)
	}

	configureOver := func(hcl string) error {
		js, diags := decode.Source(Spec(), []byte(hcl), "test.hcl", nil)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js, Instance: "billing"})
	}
	err = configureOver(urlConfig("ftp://" + strings.TrimPrefix(srv.url("/"), "http://")))
	if err == nil || !strings.Contains(err.Error(), "the scheme must be http or https") {
		t.Fatalf("Configure with an ftp url: %v", err)
	}
	if err := configureOver(urlConfig(srv.url("/plans.json"), `refresh = "1m"`)); err != nil {
		t.Fatal(err)
	}
	if srv.count() != 0 {
		t.Errorf("Configure made %d requests", srv.count())
	}

	for i := range 2 {
		got, err := src.Plans(ctx)
		if err != nil {
			t.Fatalf("Plans over gRPC: %v", err)
		}
		if want := withRefresh(plans.Default(), 60_000_000_000); !proto.Equal(got, want) {
			t.Errorf("call %d: plans =\n%v\nwant\n%v", i, got, want)
		}
	}
	if srv.count() != 1 {
		t.Errorf("%d requests for two Plans calls", srv.count())
	}
	if err := c.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}

	// A plugin whose first fetch fails: the error reaches the core.
	bad := newServer(t, "")
	bad.status(http.StatusForbidden, "no")
	q, _ := newPlugin(t)
	c2 := plugintest.Connect(t, q)
	js, _ := decode.Source(Spec(), []byte(urlConfig(bad.url("/"))), "test.hcl", nil)
	if err := c2.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js}); err != nil {
		t.Fatal(err)
	}
	_, err = c2.(sdk.PlanSource).Plans(ctx)
	if err == nil || !strings.Contains(err.Error(), "answered 403 Forbidden: no") {
		t.Errorf("Plans over gRPC with a failing fetch: %v", err)
	}
	if err := c2.Health(ctx); err == nil || !strings.Contains(err.Error(), "no plan catalogue yet") {
		t.Errorf("Health after a failing fetch: %v", err)
	}
}
