package pluginhost_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/pluginhost"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// runExternalExample builds the out-of-tree sink in src with `go build`,
// declares it with command (and its checksum), delivers an event through
// the host and reads it back from the file the sink appends to.
func runExternalExample(t *testing.T, src string) {
	bin := filepath.Join(t.TempDir(), "wh-sink-file")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	build.Dir = src
	build.Env = append(os.Environ(), "GOWORK=off")
	begin := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", src, err, out)
	}
	t.Logf("built the example in %s", time.Since(begin).Round(time.Millisecond))

	events := filepath.Join(t.TempDir(), "events.jsonl")
	e := newEnv(t, fmt.Sprintf(`
plugin "alerts" "file" {
  command = %q
  events  = ["deployment.*"]
  config {
    path  = %q
    fsync = true
  }
}
`, bin, events))
	h := e.start(t)
	if s := statusOf(t, h, "alerts", "file"); s.Source != bin || s.Version == "" || s.State != pluginhost.StateRunning || !s.Healthy {
		t.Errorf("status = %+v, want the example running from %s", s, bin)
	}
	sinks := h.AlertSinks()
	if len(sinks) != 1 || !sinks[0].Wants("deployment.failed") || sinks[0].Wants("app.cpu") {
		t.Fatalf("AlertSinks() = %+v", sinks)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	resp, err := sinks[0].Deliver(t.Context(), &pluginv1.DeliverRequest{Events: []*pluginv1.Event{{
		Id: "evt-1", Type: "deployment.failed", TimeUnixNano: at.UnixNano(), UserId: 3, AppId: 42,
		DataJson: marshal(t, map[string]any{"app_name": "shop", "error": "build failed"}), Attempt: 1,
	}}})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if r := resp.GetResults(); len(r) != 1 || r[0].GetEventId() != "evt-1" || r[0].GetOutcome() != pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED {
		t.Fatalf("Deliver results = %v, want evt-1 delivered", r)
	}
	raw, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 1 {
		t.Fatalf("events file holds %d lines, want 1:\n%s", len(lines), raw)
	}
	var got struct {
		ID      string          `json:"id"`
		Type    string          `json:"type"`
		Time    time.Time       `json:"time"`
		AppID   int64           `json:"app_id"`
		Data    json.RawMessage `json:"data"`
		Attempt int32           `json:"attempt"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("line %q: %v", lines[0], err)
	}
	if got.ID != "evt-1" || got.Type != "deployment.failed" || !got.Time.Equal(at) || got.AppID != 42 || got.Attempt != 1 ||
		!strings.Contains(string(got.Data), `"build failed"`) {
		t.Errorf("line = %+v (%s)", got, lines[0])
	}
}
