// Package alerts is the core's alerting: the manager that opens and
// resolves alerts (one open alert per user and source, each change with
// its event written to the outbox in the same transaction) and the
// threshold poller that evaluates every app's rules against the live
// statistics with hysteresis.
//
// The poller runs on every core. Live statistics sit in the memory of the
// core holding each worker's connection, so the metric rules (cpu, memory,
// network, disk) of an app are evaluated only by the core that has its
// statistics; the offline rule reads the worker's last heartbeat from the
// database and is evaluated by every core. The manager's dedup (a unique
// index on open alerts) keeps an alert, and its event, single however many
// cores fire it.
package alerts

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/event"
)

// Store is what the manager writes (store.Store).
type Store interface {
	EmitAlert(ctx context.Context, na store.NewAlert, ev event.Event) (*store.Alert, bool, error)
	ResolveAlertsBySource(ctx context.Context, userID int64, sourceType, sourceID string, ev event.Event) (int, error)
}

// Manager opens and resolves alerts.
type Manager struct {
	store Store
}

// NewManager returns a manager writing to st.
func NewManager(st Store) *Manager { return &Manager{store: st} }

// Emit opens the alert unless one is open for its (user, source type,
// source id) already, and emits ev (its type fills Type) only when it
// opened one. It returns the open alert and whether it was created.
func (m *Manager) Emit(ctx context.Context, na store.NewAlert, ev event.Event) (*store.Alert, bool, error) {
	a, created, err := m.store.EmitAlert(ctx, na, ev)
	if err != nil {
		return nil, false, fmt.Errorf("alerts: emit %s: %w", na.Kind, err)
	}
	return a, created, nil
}

// Resolve resolves the open alerts of (user, source type, source id) and
// emits ev when it resolved any. It returns how many it resolved.
func (m *Manager) Resolve(ctx context.Context, userID int64, sourceType, sourceID string, ev event.Event) (int, error) {
	n, err := m.store.ResolveAlertsBySource(ctx, userID, sourceType, sourceID, ev)
	if err != nil {
		return 0, fmt.Errorf("alerts: resolve %s %s: %w", sourceType, sourceID, err)
	}
	return n, nil
}

func marshal(v any) json.RawMessage {
	b, _ := json.Marshal(v) // plain structs: cannot fail
	return b
}
