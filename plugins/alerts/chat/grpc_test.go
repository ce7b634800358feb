package chat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// TestOverGRPC drives the plugin through the real gRPC path, as the core
// does: Info, Configure from HCL (a rejected one comes back as an error
// without the token), and Deliver to a receiver on loopback.
func TestOverGRPC(t *testing.T) {
	rc := newReceiver(t)
	rc.SetRespond(func(w http.ResponseWriter, _ *http.Request, body []byte) {
		if bytes.Contains(body, []byte("refuse-me")) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"message":"Invalid Form Body"}`)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	c := plugintest.Connect(t, New())
	ctx := context.Background()

	plugintest.CheckInfo(t, c, sdk.KindAlerts, Name, Version)

	bad, diags := decode.Source(Spec(), []byte(config("discord://"+discordToken+"@"+discordID+"/S3KRIT")), "test.hcl", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	err := c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: bad})
	if err == nil || !strings.Contains(err.Error(), "url: discord: the URL has a path") {
		t.Fatalf("Configure with a path: %v", err)
	}
	if strings.Contains(err.Error(), "S3KRIT") {
		t.Fatal("the Configure error shows the token")
	}

	js, diags := decode.Source(Spec(), []byte(config("discord://"+discordToken+"@"+discordID,
		fmt.Sprintf("base_url = %q", rc.URL), "max_concurrency = 2")), "test.hcl", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if err := c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js, Instance: "team-chat"}); err != nil {
		t.Fatal(err)
	}

	refused := &pluginv1.Event{Id: "g-3", Type: "app.stopped", DataJson: []byte(`{"app_name":"refuse-me"}`)}
	events := []*pluginv1.Event{failedDeployment("g-1"), {Id: "g-2", Type: "app.cpu", DataJson: []byte(`{"value":97.5,"threshold":90}`)}, refused}
	results := plugintest.Deliver(t, c.(sdk.AlertSink), events...)
	want := []pluginv1.DeliveryOutcome{delivered, delivered, failed}
	for i, r := range results {
		if r.GetOutcome() != want[i] {
			t.Errorf("result %d: %v, want %v", i, r, want[i])
		}
		if strings.Contains(r.GetMessage(), discordToken) {
			t.Errorf("result %d shows the token: %q", i, r.GetMessage())
		}
	}
	if r := results[2]; !strings.Contains(r.GetMessage(), "Invalid Form Body") {
		t.Errorf("result 2: %q", r.GetMessage())
	}
	hits := rc.Requests()
	if len(hits) != 3 {
		t.Fatalf("%d requests", len(hits))
	}
	var contents []string
	for _, h := range hits {
		contents = append(contents, string(h.Body))
	}
	all := strings.Join(contents, "\n")
	for _, s := range []string{`❌ Deployment failed — shop`, `🔥 CPU high\nCPU at 97.5% (threshold 90%)`, `⏹️ App stopped — refuse-me`} {
		if !strings.Contains(all, s) {
			t.Errorf("no request carried %q:\n%s", s, all)
		}
	}
}
