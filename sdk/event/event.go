// Package event is the catalogue of platform events shared by the core and
// plugins: the event names, the envelope every sink receives, and the glob
// matching used by `events = ["app.*"]` subscriptions.
package event

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Event names. A fired threshold alert uses the metric's name (app.cpu); its
// resolution appends ".resolved" (app.cpu.resolved).
const (
	DeploymentSucceeded   = "deployment.succeeded"
	DeploymentFailed      = "deployment.failed"
	AppStopped            = "app.stopped"
	AppViolation          = "app.violation"
	AppCrashloop          = "app.crashloop"
	AppCPU                = "app.cpu"
	AppMemory             = "app.memory"
	AppNetwork            = "app.network"
	AppDisk               = "app.disk"
	AppOffline            = "app.offline"
	AppCPUResolved        = "app.cpu.resolved"
	AppMemoryResolved     = "app.memory.resolved"
	AppNetworkResolved    = "app.network.resolved"
	AppDiskResolved       = "app.disk.resolved"
	AppOfflineResolved    = "app.offline.resolved"
	AccountLoginNewDevice = "account.login_new_device"
	WebhookTest           = "webhook.test"
)

var catalogue = []string{
	DeploymentSucceeded, DeploymentFailed,
	AppStopped, AppViolation, AppCrashloop,
	AppCPU, AppMemory, AppNetwork, AppDisk, AppOffline,
	AppCPUResolved, AppMemoryResolved, AppNetworkResolved, AppDiskResolved, AppOfflineResolved,
	AccountLoginNewDevice, WebhookTest,
}

// All returns every event name in the catalogue, in a stable order.
func All() []string { return append([]string(nil), catalogue...) }

// Known reports whether name is in the catalogue.
func Known(name string) bool {
	for _, n := range catalogue {
		if n == name {
			return true
		}
	}
	return false
}

// Event is what the core writes to its outbox and hands to alert sinks.
type Event struct {
	// ID is unique per event (a UUID); sinks use it to deduplicate retries.
	ID string `json:"id"`
	// Type is a catalogue name such as deployment.failed.
	Type string `json:"type"`
	// Time is when the change that caused the event was committed.
	Time time.Time `json:"time"`
	// UserID is the owner of the subject, 0 when none.
	UserID int64 `json:"user_id,omitempty"`
	// AppID is the app the event is about, 0 when none.
	AppID int64 `json:"app_id,omitempty"`
	// Data carries the event's details as a JSON object (see the Data types).
	Data json.RawMessage `json:"data,omitempty"`
}

// AppData is the Data of app.* and deployment.* events.
type AppData struct {
	AppName       string  `json:"app_name"`
	Subdomain     string  `json:"subdomain,omitempty"`
	URL           string  `json:"url,omitempty"`
	DeploymentID  int64   `json:"deployment_id,omitempty"`
	CommitSHA     string  `json:"commit_sha,omitempty"`
	CommitMessage string  `json:"commit_message,omitempty"`
	Branch        string  `json:"branch,omitempty"`
	Error         string  `json:"error,omitempty"`
	Reason        string  `json:"reason,omitempty"`
	Value         float64 `json:"value,omitempty"`
	Threshold     float64 `json:"threshold,omitempty"`
	RestartCount  int     `json:"restart_count,omitempty"`
}

// ValidPattern checks a subscription pattern: dot-separated segments of
// [a-z0-9_], where a segment may be "*". A "*" matches exactly one segment,
// except as the last segment, where it matches one or more ("app.*" matches
// app.cpu and app.cpu.resolved). The lone pattern "*" matches everything.
func ValidPattern(p string) error {
	if p == "" {
		return fmt.Errorf("event pattern is empty")
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "*" {
			continue
		}
		if seg == "" {
			return fmt.Errorf("event pattern %q has an empty segment", p)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				return fmt.Errorf("event pattern %q: segment %q may hold only a-z, 0-9, _ or be *", p, seg)
			}
		}
	}
	return nil
}

// Match reports whether the event name matches the pattern (see ValidPattern).
func Match(pattern, name string) bool {
	ps := strings.Split(pattern, ".")
	ns := strings.Split(name, ".")
	for i, p := range ps {
		if i >= len(ns) {
			return false
		}
		if p == "*" && i == len(ps)-1 {
			return true
		}
		if p != "*" && p != ns[i] {
			return false
		}
	}
	return len(ps) == len(ns)
}

// MatchAny reports whether name matches any of the patterns.
func MatchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if Match(p, name) {
			return true
		}
	}
	return false
}
