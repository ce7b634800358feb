package webhook

import (
	"context"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// TestOverGRPC drives the plugin through the real gRPC path, as the core
// does: Info, Configure from HCL (a rejected one comes back as an error),
// and Deliver to a receiver that verifies the signatures.
func TestOverGRPC(t *testing.T) {
	secret := newSecret(t)
	rc := newReceiver(t, secret)
	c := plugintest.Connect(t, New())
	ctx := context.Background()

	plugintest.CheckInfo(t, c, sdk.KindAlerts, Name, Version)

	bad, diags := decode.Source(Spec(), []byte(config(rc.URL, strings.TrimPrefix(secret, "whsec_"))), "test.hcl", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	err := c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: bad})
	if err == nil || !strings.Contains(err.Error(), `secret must start with "whsec_"`) {
		t.Fatalf("Configure with a bare base64 secret: %v", err)
	}
	if strings.Contains(err.Error(), strings.TrimPrefix(secret, "whsec_")) {
		t.Fatal("the Configure error shows the secret")
	}

	js, diags := decode.Source(Spec(), []byte(config(rc.URL, secret, "max_concurrency = 2")), "test.hcl", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if err := c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js, Instance: "ops"}); err != nil {
		t.Fatal(err)
	}

	events := []*pluginv1.Event{testEvent("g-1"), testEvent("g-2"), {Id: "g.3", Type: "app.cpu"}}
	results := plugintest.Deliver(t, c.(sdk.AlertSink), events...)
	want := []pluginv1.DeliveryOutcome{delivered, delivered, failed}
	for i, r := range results {
		if r.GetOutcome() != want[i] {
			t.Errorf("result %d: %v, want %v", i, r, want[i])
		}
	}
	if rc.count("g-1") != 1 || rc.count("g-2") != 1 || rc.rejections() != 0 {
		t.Fatalf("receiver: g-1 %d, g-2 %d, rejected %d", rc.count("g-1"), rc.count("g-2"), rc.rejections())
	}
}
