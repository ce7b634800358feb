package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/sdktest"
)

// binary is the plugin, built by TestMain exactly as an operator builds it.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wh-sink-file-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "wh-sink-file")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestConformance runs the sdk's conformance kit against the built binary,
// launched through go-plugin as the core launches it.
func TestConformance(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	rep := sdktest.Run(t, sdktest.Options{
		Command: func() *exec.Cmd { return exec.Command(binary) },
		Kind:    sdk.KindAlerts,
		GoodConfigs: []string{
			fmt.Sprintf("path = %q", events),
			fmt.Sprintf("path = %q\nfsync = true", filepath.Join(dir, "synced.jsonl")),
		},
		BadConfigs: []string{
			``, // path is required
			fmt.Sprintf("path = %q\nfsync = \"maybe\"", events),                     // not a bool
			fmt.Sprintf("path = %q\nformat = \"csv\"", events),                      // unknown attribute
			`path = "relative/events.jsonl"`,                                        // not absolute
			fmt.Sprintf("path = %q", filepath.Join(dir, "missing", "events.jsonl")), // no such directory
		},
	})
	want := []sdktest.Stage{sdktest.StageSpec, sdktest.StageSpec, sdktest.StageSpec, sdktest.StageConfigure, sdktest.StageConfigure}
	for i, b := range rep.Bad {
		if b.Stage != want[i] {
			t.Errorf("BadConfigs[%d]: rejected at %q, want %q (%s)", i, b.Stage, want[i], b.Message)
		}
	}

	// sdktest delivered its sample events with the first good config.
	lines := readLines(t, events)
	samples := sdktest.SampleEvents()
	if len(lines) != len(samples) {
		t.Fatalf("%s holds %d lines, want %d", events, len(lines), len(samples))
	}
	for i, l := range lines {
		if l.ID != samples[i].GetId() || l.Type != samples[i].GetType() || l.Attempt != samples[i].GetAttempt() {
			t.Errorf("line %d = %+v, want event %v", i, l, samples[i])
		}
	}
}

// TestDeliver checks the outcomes through the real gRPC path, in-process.
func TestDeliver(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "sub")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.jsonl")
	c := plugintest.Connect(t, New())
	cfg := fmt.Sprintf(`{"path":%q,"fsync":true}`, path)
	if err := c.Configure(ctx, &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: []byte(cfg)}); err != nil {
		t.Fatal(err)
	}
	sink := c.(sdk.AlertSink)

	resp, err := sink.Deliver(ctx, &pluginv1.DeliverRequest{Events: []*pluginv1.Event{
		{Id: "a", Type: "deployment.failed", TimeUnixNano: 1_700_000_000_000_000_000, AppId: 3, DataJson: []byte(`{"error":"exit 1"}`), Attempt: 1},
		{Id: "b", Type: "app.cpu", DataJson: []byte(`{not json`), Attempt: 1},
		{Id: "c", Type: "app.cpu.resolved", Attempt: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]pluginv1.DeliveryOutcome{}
	for _, r := range resp.GetResults() {
		outcomes[r.GetEventId()] = r.GetOutcome()
	}
	if outcomes["a"] != pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED ||
		outcomes["b"] != pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED ||
		outcomes["c"] != pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED {
		t.Errorf("outcomes = %v", outcomes)
	}
	lines := readLines(t, path)
	if len(lines) != 2 || lines[0].ID != "a" || lines[1].ID != "c" || string(lines[0].Data) != `{"error":"exit 1"}` ||
		lines[0].AppID != 3 || lines[0].Time.UnixNano() != 1_700_000_000_000_000_000 || lines[1].Attempt != 2 {
		t.Errorf("file lines = %+v", lines)
	}

	// The file cannot be written any more: every event is to be retried.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	resp, err = sink.Deliver(ctx, &pluginv1.DeliverRequest{Events: []*pluginv1.Event{{Id: "d"}, {Id: "e"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResults()) != 2 {
		t.Fatalf("results = %v", resp.GetResults())
	}
	for _, r := range resp.GetResults() {
		if r.GetOutcome() != pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_RETRY || r.GetRetryAfterMs() <= 0 ||
			!strings.Contains(r.GetMessage(), "no such file or directory") {
			t.Errorf("result after the directory vanished = %v", r)
		}
	}
}

func readLines(t *testing.T, path string) []Line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []Line
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
