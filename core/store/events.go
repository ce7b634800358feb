package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/sdk/event"
)

// EmitEvents writes events to the outbox inside the caller's transaction, in
// one statement, so an event exists if and only if the change that caused it
// committed. Missing IDs and times are filled in (the events slice is
// updated), so the caller can log or return them. The event-driven alerts
// the events imply (crash loops, failed deployments, violations) are opened
// or resolved in the same transaction.
func EmitEvents(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	if len(events) == 0 {
		return nil
	}
	n := len(events)
	ids, types := make([]string, n), make([]string, n)
	users, apps := make([]*int64, n), make([]*int64, n)
	payloads, times := make([]string, n), make([]time.Time, n)
	now := time.Now().UTC()
	for i := range events {
		e := &events[i]
		if !event.Known(e.Type) {
			return fmt.Errorf("store: emit events: unknown event type %q", e.Type)
		}
		if e.ID == "" {
			e.ID = uuid.NewString()
		}
		if e.Time.IsZero() {
			e.Time = now
		}
		ids[i], types[i], times[i] = e.ID, e.Type, e.Time
		if e.UserID != 0 {
			users[i] = &e.UserID
		}
		if e.AppID != 0 {
			apps[i] = &e.AppID
		}
		payloads[i] = "{}"
		if len(e.Data) > 0 {
			if !json.Valid(e.Data) {
				return fmt.Errorf("store: emit events: %s: data is not valid JSON", e.Type)
			}
			payloads[i] = string(e.Data)
		}
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO event_outbox (event_id, type, user_id, app_id, payload, created_at)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::jsonb[], $6::timestamptz[])`,
		ids, types, users, apps, payloads, times)
	if err != nil {
		return mapErr("emit events", err)
	}
	return applyEventAlerts(ctx, tx, events)
}

// appEventData marshals an app's event data; it cannot fail for AppData.
func appEventData(d event.AppData) json.RawMessage {
	b, _ := json.Marshal(d)
	return b
}
