package log

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// newTestPlugin returns a plugin whose log is JSON in a buffer, as
// sdk.Logger writes it to stderr.
func newTestPlugin() (*Plugin, *syncBuffer) {
	buf := &syncBuffer{}
	return newWithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: buf, JSONFormat: true})), buf
}

func configJSON(t *testing.T, src string) ([]byte, error) {
	t.Helper()
	js, diags := decode.Source(Spec(), []byte(src), "test.hcl", nil)
	if diags.HasErrors() {
		return nil, diags
	}
	return js, nil
}

func TestInfo(t *testing.T) {
	p := New()
	info, err := p.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.GetKind() != sdk.KindAlerts || info.GetName() != Name || info.GetVersion() != Version || info.GetDescription() == "" {
		t.Errorf("info = %v", info)
	}
	if k := sdk.KindOf(p); k != sdk.KindAlerts {
		t.Errorf("KindOf = %q", k)
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name, hcl, wantErr string
		want               hclog.Level
	}{
		{name: "default", hcl: ``, want: hclog.Info},
		{name: "trace", hcl: `level = "trace"`, want: hclog.Trace},
		{name: "debug", hcl: `level = "debug"`, want: hclog.Debug},
		{name: "warn", hcl: `level = "warn"`, want: hclog.Warn},
		{name: "error", hcl: `level = "error"`, want: hclog.Error},
		{name: "unknown level", hcl: `level = "loud"`, wantErr: `level "loud" is not one of trace, debug, info, warn, error`},
		{name: "off is not a level to log events at", hcl: `level = "off"`, wantErr: `level "off"`},
		{name: "uppercase", hcl: `level = "INFO"`, wantErr: `level "INFO"`},
		{name: "unknown attribute", hcl: `events_only = []`, wantErr: "Unsupported argument"},
		{name: "wrong type", hcl: `level = ["info"]`, wantErr: "string required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestPlugin()
			js, err := configJSON(t, tt.hcl)
			if err == nil {
				err = p.Configure(context.Background(), &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js})
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if p.Level() != hclog.Info {
					t.Errorf("a rejected config changed the level to %v", p.Level())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Level() != tt.want {
				t.Errorf("level = %v, want %v", p.Level(), tt.want)
			}
		})
	}
}

func TestDeliver(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.UTC)
	tests := []struct {
		name  string
		level string
		event *pluginv1.Event
		want  map[string]any // fields the line must have (JSON-decoded)
		not   []string       // fields it must not have
	}{
		{
			name: "all fields and data",
			event: &pluginv1.Event{
				Id: "ev-1", Type: "deployment.failed", TimeUnixNano: at.UnixNano(), UserId: 7, AppId: 42, Attempt: 2,
				DataJson: []byte(`{"app_name":"shop","deployment_id":9007199254740993,"error":"build failed","tags":["a","b"],"meta":{"k":1}}`),
			},
			want: map[string]any{
				"@level": "info", "@message": "event",
				"id": "ev-1", "type": "deployment.failed", "time": "2026-03-01T12:30:45.123456789Z",
				"user_id": 7.0, "app_id": 42.0, "attempt": 2.0,
				"data.app_name": "shop", "data.error": "build failed",
				"data.tags": []any{"a", "b"}, "data.meta": map[string]any{"k": 1.0},
			},
		},
		{
			name:  "at the configured level",
			level: "warn",
			event: &pluginv1.Event{Id: "ev-2", Type: "app.cpu"},
			want:  map[string]any{"@level": "warn", "id": "ev-2", "type": "app.cpu", "user_id": 0.0, "app_id": 0.0},
			not:   []string{"time", "data_raw"},
		},
		{
			name:  "data keys cannot collide with the event's fields",
			event: &pluginv1.Event{Id: "ev-3", Type: "app.stopped", DataJson: []byte(`{"id":"spoofed","@level":"error"}`)},
			want:  map[string]any{"@level": "info", "id": "ev-3", "data.id": "spoofed", "data.@level": "error"},
		},
		{
			name:  "data that is not an object is logged raw",
			event: &pluginv1.Event{Id: "ev-4", Type: "webhook.test", DataJson: []byte(`[1,2]`)},
			want:  map[string]any{"id": "ev-4", "data_raw": "[1,2]"},
		},
		{
			name:  "invalid data is logged raw",
			event: &pluginv1.Event{Id: "ev-5", Type: "webhook.test", DataJson: []byte(`{"oops`)},
			want:  map[string]any{"id": "ev-5", "data_raw": `{"oops`},
		},
		{
			name:  "null data",
			event: &pluginv1.Event{Id: "ev-6", Type: "webhook.test", DataJson: []byte(`null`)},
			want:  map[string]any{"id": "ev-6", "data_raw": "null"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, buf := newTestPlugin()
			if tt.level != "" {
				cfg := []byte(`{"level":"` + tt.level + `"}`)
				if err := p.Configure(context.Background(), &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: cfg}); err != nil {
					t.Fatal(err)
				}
			}
			resp, err := p.Deliver(context.Background(), &pluginv1.DeliverRequest{Events: []*pluginv1.Event{tt.event}})
			if err != nil {
				t.Fatal(err)
			}
			if r := resp.GetResults(); len(r) != 1 || r[0].GetEventId() != tt.event.GetId() ||
				r[0].GetOutcome() != pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED {
				t.Errorf("results = %v", r)
			}
			lines := buf.lines(t)
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1", len(lines))
			}
			for k, v := range tt.want {
				got, _ := json.Marshal(lines[0][k])
				want, _ := json.Marshal(v)
				if !bytes.Equal(got, want) {
					t.Errorf("%s = %s, want %s", k, got, want)
				}
			}
			for _, k := range tt.not {
				if _, ok := lines[0][k]; ok {
					t.Errorf("unexpected field %s", k)
				}
			}
		})
	}
}

// Large integers in data keep every digit (no float64 rounding).
func TestDeliverKeepsNumbersExact(t *testing.T) {
	p, buf := newTestPlugin()
	if _, err := p.Deliver(context.Background(), &pluginv1.DeliverRequest{Events: []*pluginv1.Event{
		{Id: "x", Type: "app.cpu", DataJson: []byte(`{"deployment_id":9007199254740993}`)},
	}}); err != nil {
		t.Fatal(err)
	}
	buf.mu.Lock()
	line := buf.buf.String()
	buf.mu.Unlock()
	if !strings.Contains(line, `"data.deployment_id":9007199254740993`) {
		t.Errorf("line %s does not keep the number exact", line)
	}
}

func TestDeliverBatch(t *testing.T) {
	p, buf := newTestPlugin()
	var events []*pluginv1.Event
	for i := range 100 {
		events = append(events, &pluginv1.Event{Id: "ev-" + string(rune('a'+i%26)) + string(rune('0'+i/26)), Type: "app.stopped", AppId: int64(i)})
	}
	resp, err := p.Deliver(context.Background(), &pluginv1.DeliverRequest{Events: events})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResults()) != len(events) {
		t.Fatalf("%d results for %d events", len(resp.GetResults()), len(events))
	}
	lines := buf.lines(t)
	if len(lines) != len(events) {
		t.Fatalf("%d lines for %d events", len(lines), len(events))
	}
	for i, r := range resp.GetResults() {
		if r.GetEventId() != events[i].GetId() || lines[i]["id"] != events[i].GetId() {
			t.Errorf("event %d: result %v, line %v", i, r, lines[i])
		}
	}
	// An empty batch is fine.
	resp, err = p.Deliver(context.Background(), &pluginv1.DeliverRequest{})
	if err != nil || len(resp.GetResults()) != 0 {
		t.Errorf("empty batch: %v, %v", resp, err)
	}
}
