package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// version is the plugin's release, reported by Info.
const version = "0.1.0"

// retryAfter is how long the core should wait before retrying a batch the
// file could not take.
const retryAfter = 5 * time.Second

// Config is the plugin's config {} block, decoded by the core against
// the spec below and passed to Configure as JSON.
type Config struct {
	// Path is the JSON-lines file events are appended to (absolute).
	Path string `json:"path"`
	// Fsync makes every batch durable before it is reported delivered.
	Fsync bool `json:"fsync"`
}

// Sink is an alert sink that appends each event as one JSON line to a file.
type Sink struct {
	sdk.Base

	mu  sync.Mutex // serialises appends: one batch's lines stay together
	cfg Config
}

// Line is what one line of the file holds: the sdk's event envelope plus
// the delivery attempt. Retries keep the id, so readers can deduplicate.
type Line struct {
	event.Event
	Attempt int32 `json:"attempt"`
}

// New returns the plugin, unconfigured.
func New() *Sink {
	s := &Sink{}
	s.Base = sdk.Base{
		Kind:        sdk.KindAlerts,
		Name:        "file",
		Version:     version,
		Description: "appends events as JSON lines to a file",
		Spec: hclspec.Object(map[string]*pluginv1.Spec{
			"path": hclspec.Attr("path", "string", true,
				"Absolute path of the JSON-lines file events are appended to; created if missing (mode 0600)."),
			"fsync": hclspec.Default(
				hclspec.Attr("fsync", "bool", false, "Sync the file after every batch before reporting it delivered."),
				hclspec.Literal("false")),
		}),
		Config:   &s.cfg,
		Validate: s.validate,
	}
	return s
}

// validate runs in Configure, after the JSON is decoded into s.cfg: the
// file must be creatable now, so a typo fails at startup rather than at
// the first event.
func (s *Sink) validate() error {
	if s.cfg.Path == "" {
		return errors.New("path is empty")
	}
	if !filepath.IsAbs(s.cfg.Path) {
		return fmt.Errorf("path %q must be absolute (the plugin does not run in the config file's directory)", s.cfg.Path)
	}
	f, err := os.OpenFile(s.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("path: %w", err)
	}
	return f.Close()
}

// Deliver implements sdk.AlertSink: one line per event, DELIVERED once
// written (and synced with fsync = true), RETRY when the file cannot take
// it, FAILED for an event that can never be written (its data is not JSON).
func (s *Sink) Deliver(_ context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg

	resp := &pluginv1.DeliverResponse{Results: make([]*pluginv1.DeliveryResult, 0, len(req.GetEvents()))}
	retryAll := func(from int, err error) {
		for _, e := range req.GetEvents()[from:] {
			resp.Results = append(resp.Results, &pluginv1.DeliveryResult{
				EventId: e.GetId(), Outcome: pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_RETRY,
				RetryAfterMs: retryAfter.Milliseconds(), Message: err.Error()})
		}
	}

	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		retryAll(0, err)
		return resp, nil
	}
	defer f.Close()

	written := 0 // results[:written] are DELIVERED pending the sync
	for i, e := range req.GetEvents() {
		line, err := encode(e)
		if err != nil {
			resp.Results = append(resp.Results, &pluginv1.DeliveryResult{
				EventId: e.GetId(), Outcome: pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED, Message: err.Error()})
			continue
		}
		if _, err := f.Write(line); err != nil {
			retryAll(i, fmt.Errorf("writing %s: %w", cfg.Path, err))
			break
		}
		resp.Results = append(resp.Results, &pluginv1.DeliveryResult{
			EventId: e.GetId(), Outcome: pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED})
		written++
	}
	if cfg.Fsync && written > 0 {
		if err := f.Sync(); err != nil {
			// Not known to be durable: have the core send them again (the
			// file may then hold a line twice; the id tells them apart).
			for _, r := range resp.Results {
				if r.Outcome == pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED {
					r.Outcome, r.RetryAfterMs = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_RETRY, retryAfter.Milliseconds()
					r.Message = fmt.Sprintf("syncing %s: %v", cfg.Path, err)
				}
			}
		}
	}
	return resp, nil
}

// encode renders one event as a JSON line.
func encode(e *pluginv1.Event) ([]byte, error) {
	data := e.GetDataJson()
	if len(data) > 0 && !json.Valid(data) {
		return nil, errors.New("data_json is not valid JSON")
	}
	b, err := json.Marshal(Line{
		Event: event.Event{
			ID: e.GetId(), Type: e.GetType(), Time: time.Unix(0, e.GetTimeUnixNano()).UTC(),
			UserID: e.GetUserId(), AppID: e.GetAppId(), Data: data,
		},
		Attempt: e.GetAttempt(),
	})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
