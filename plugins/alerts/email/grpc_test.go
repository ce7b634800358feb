package email

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/mail/mailtest"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// TestOverGRPC drives the plugin through the real gRPC path, as the core
// does: Info, Configure from HCL (a rejected one comes back as an error
// that does not show the password), and Deliver to a live SMTP server.
func TestOverGRPC(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Username: testUser, Password: testPass})
	c := plugintest.Connect(t, New())
	ctx := context.Background()

	plugintest.CheckInfo(t, c, sdk.KindAlerts, Name, Version)

	// Credentials in clear text to a public address: refused.
	bad, diags := decode.Source(Spec(), []byte(fmt.Sprintf("host = \"203.0.113.7\"\nstarttls = false\nfrom = \"a@example.com\"\n"+
		"to = [\"b@example.com\"]\nusername = \"u\"\npassword = %q", testPass)), "test.hcl", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	err := c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: bad})
	if err == nil || !strings.Contains(err.Error(), "clear text") {
		t.Fatalf("Configure with clear-text credentials: %v", err)
	}
	if strings.Contains(err.Error(), testPass) {
		t.Fatal("the Configure error shows the password")
	}

	js, diags := decode.Source(Spec(), []byte(config(t, srv, fmt.Sprintf("username = %q\npassword = %q", testUser, testPass))), "test.hcl", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if err := c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js, Instance: "ops-mail"}); err != nil {
		t.Fatal(err)
	}

	events := []*pluginv1.Event{testEvent("g-1"), testEvent("g-2"), {Id: "g 3", Type: "app.cpu"}}
	results := plugintest.Deliver(t, c.(sdk.AlertSink), events...)
	want := []pluginv1.DeliveryOutcome{delivered, delivered, failed}
	for i, r := range results {
		if r.GetOutcome() != want[i] {
			t.Errorf("result %d: %v, want %v", i, r, want[i])
		}
	}
	if n := len(srv.Messages()); n != 2 {
		t.Fatalf("the server got %d messages", n)
	}
}
