// Package log is the built-in "log" alert sink: it writes every delivered
// event as one structured line to the plugin's log, which the core shows
// under the plugin's name (plugin.alerts.<instance>). Useful to see what the
// platform emits, and as the smallest possible sink.
//
// Each line has the message "event" and the fields id, type, time (RFC 3339,
// UTC), user_id, app_id, attempt and, for each field of the event's data
// object, data.<field>. Every event is reported delivered.
//
// Configuration:
//
//	plugin "alerts" "log" {
//	  events = ["app.*", "deployment.failed"]
//	  config {
//	    level = "info"   # trace, debug, info (default), warn or error
//	  }
//	}
//
// A second instance with other settings names the built-in with source:
// plugin "alerts" "audit-log" { source = "log" … }.
package log

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Name is the plugin's name: plugin "alerts" "<instance>" { … } with the
// built-in log sink.
const Name = "log"

// Version is the plugin's release version.
const Version = "0.1.0"

// Levels are the accepted values of level, lowest first.
var Levels = []string{"trace", "debug", "info", "warn", "error"}

// DefaultLevel is the level events are logged at when the config sets none.
const DefaultLevel = "info"

// maxRawData bounds how much of a data payload that is not a JSON object is
// logged (as data_raw).
const maxRawData = 4 << 10

// Config is the plugin's decoded config block.
type Config struct {
	// Level events are logged at; one of Levels, "" means DefaultLevel.
	Level string `json:"level"`
}

// Spec returns the schema of the plugin's config block.
func Spec() *pluginv1.Spec {
	return hclspec.Object(map[string]*pluginv1.Spec{
		"level": hclspec.Default(
			hclspec.Attr("level", "string", false, "Level of the log lines: trace, debug, info, warn or error."),
			hclspec.Literal(fmt.Sprintf("%q", DefaultLevel))),
	})
}

// Plugin is the log alert sink. Create it with New.
type Plugin struct {
	sdk.Base

	cfg   Config
	level atomic.Int32 // an hclog.Level
	log   hclog.Logger
}

var _ sdk.AlertSink = (*Plugin)(nil)

// New returns the plugin logging at DefaultLevel through sdk.Logger.
func New() *Plugin { return newWithLogger(sdk.Logger()) }

func newWithLogger(l hclog.Logger) *Plugin {
	p := &Plugin{
		Base: sdk.Base{
			Kind:        sdk.KindAlerts,
			Name:        Name,
			Version:     Version,
			Description: "Writes each event as one structured line to the plugin's log.",
			Spec:        Spec(),
		},
		log: l,
	}
	p.Config = &p.cfg
	p.Validate = p.validate
	p.level.Store(int32(hclog.Info))
	return p
}

func (p *Plugin) validate() error {
	name := p.cfg.Level
	if name == "" {
		name = DefaultLevel
	}
	if !slices.Contains(Levels, name) {
		return fmt.Errorf("level %q is not one of trace, debug, info, warn, error", name)
	}
	p.level.Store(int32(hclog.LevelFromString(name)))
	return nil
}

// Level returns the level events are logged at.
func (p *Plugin) Level() hclog.Level { return hclog.Level(p.level.Load()) }

// Deliver implements sdk.AlertSink: one log line per event, every event
// delivered.
func (p *Plugin) Deliver(_ context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
	level := p.Level()
	resp := &pluginv1.DeliverResponse{Results: make([]*pluginv1.DeliveryResult, 0, len(req.GetEvents()))}
	for _, ev := range req.GetEvents() {
		p.log.Log(level, "event", fields(ev)...)
		resp.Results = append(resp.Results, &pluginv1.DeliveryResult{
			EventId: ev.GetId(), Outcome: pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED})
	}
	return resp, nil
}

// fields are the key/value pairs of an event's log line.
func fields(ev *pluginv1.Event) []any {
	kv := []any{"id", ev.GetId(), "type", ev.GetType()}
	if ns := ev.GetTimeUnixNano(); ns != 0 {
		kv = append(kv, "time", time.Unix(0, ns).UTC().Format(time.RFC3339Nano))
	}
	kv = append(kv, "user_id", ev.GetUserId(), "app_id", ev.GetAppId(), "attempt", ev.GetAttempt())
	raw := bytes.TrimSpace(ev.GetDataJson())
	if len(raw) == 0 {
		return kv
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(raw, &data); err != nil || data == nil {
		if len(raw) > maxRawData {
			raw = raw[:maxRawData]
		}
		return append(kv, "data_raw", string(raw))
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kv = append(kv, "data."+k, value(data[k]))
	}
	return kv
}

// value decodes a JSON value for the log: numbers stay exact (json.Number),
// objects and arrays become maps and slices.
func value(raw json.RawMessage) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return string(raw)
	}
	return v
}
