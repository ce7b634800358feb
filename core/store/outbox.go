package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/sdk/event"
)

// ChannelEvents is notified (empty payload) when events are written to the
// outbox (migration 007): the dispatcher delivers them at once.
const ChannelEvents = "wisehosting_events"

// LockDispatchEvents makes the outbox dispatcher a cluster-wide singleton;
// LockPruneEvents guards the daily retention prune of events, webhook
// deliveries and audit events.
const (
	LockDispatchEvents int64 = 0x5748_0000_0000_0003
	LockPruneEvents    int64 = 0x5748_0000_0000_0004
)

// Outbox statuses (event_outbox.status).
const (
	OutboxPending   = "pending"   // not yet delivered to its targets
	OutboxRetrying  = "retrying"  // some target failed and is retried (event_retries)
	OutboxDelivered = "delivered" // every target took it
	OutboxDead      = "dead"      // some target failed for good or ran out of time
)

// OutboxEvent is an outbox row as the dispatcher delivers it.
type OutboxEvent struct {
	// Seq is the outbox row id.
	Seq int64
	// Event is the event; Event.Time is when it was written.
	Event event.Event
}

const outboxColumns = `o.id, o.event_id::text, o.type, coalesce(o.user_id, 0), coalesce(o.app_id, 0), o.payload, o.created_at`

func scanOutboxEvent(r pgx.Row, extra ...any) (OutboxEvent, error) {
	var e OutboxEvent
	var payload []byte
	dst := append([]any{&e.Seq, &e.Event.ID, &e.Event.Type, &e.Event.UserID, &e.Event.AppID, &payload, &e.Event.Time}, extra...)
	if err := r.Scan(dst...); err != nil {
		return e, err
	}
	if len(payload) > 0 && string(payload) != "{}" {
		e.Event.Data = json.RawMessage(payload)
	}
	return e, nil
}

// PendingEvents returns up to limit events not yet delivered to their
// targets, oldest first, leaving out the outbox rows in skip (those a
// delivery in flight holds).
func (s *Store) PendingEvents(ctx context.Context, limit int, skip []int64) ([]OutboxEvent, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+outboxColumns+` FROM event_outbox o
		WHERE o.status = 'pending' AND NOT (o.id = ANY($2))
		ORDER BY o.id LIMIT $1`, limit, nonNil(skip))
	if err != nil {
		return nil, mapErr("pending events", err)
	}
	defer rows.Close()
	var out []OutboxEvent
	for rows.Next() {
		e, err := scanOutboxEvent(rows)
		if err != nil {
			return nil, mapErr("pending events: scan", err)
		}
		out = append(out, e)
	}
	return out, mapErr("pending events", rows.Err())
}

// DueRetry is one target's retry of an event that is due.
type DueRetry struct {
	OutboxEvent
	// Target is "sink:<name>" or "webhook:<id>".
	Target string
	// Attempts is how many attempts were made so far.
	Attempts int
}

// DueRetries returns up to limit retries due at now, the most overdue
// first, leaving out those of the outbox rows in skip.
func (s *Store) DueRetries(ctx context.Context, now time.Time, limit int, skip []int64) ([]DueRetry, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+outboxColumns+`, r.target, r.attempts
		FROM event_retries r JOIN event_outbox o ON o.id = r.outbox_id
		WHERE r.next_attempt_at <= $1 AND NOT (r.outbox_id = ANY($3))
		ORDER BY r.next_attempt_at, r.outbox_id, r.target LIMIT $2`, now, limit, nonNil(skip))
	if err != nil {
		return nil, mapErr("due retries", err)
	}
	defer rows.Close()
	var out []DueRetry
	for rows.Next() {
		var d DueRetry
		var attempts int32
		e, err := scanOutboxEvent(rows, &d.Target, &attempts)
		if err != nil {
			return nil, mapErr("due retries: scan", err)
		}
		d.OutboxEvent, d.Attempts = e, int(attempts)
		out = append(out, d)
	}
	return out, mapErr("due retries", rows.Err())
}

// nonNil makes a nil slice an empty array for ANY(): NULL would match
// nothing in NOT (x = ANY(NULL)).
func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// Attempt is the outcome of one delivery attempt of an event to a target.
type Attempt struct {
	// Seq is the outbox row id of the event.
	Seq int64
	// Target is "sink:<name>" or "webhook:<id>".
	Target string
	// Number is this attempt's number, 1 for the first.
	Number int
	// Retry asks for another attempt at NextAttemptAt. Otherwise the
	// target is done: delivered when Dead is false.
	Retry         bool
	NextAttemptAt time.Time
	// Dead: the target failed for good or ran out of time.
	Dead bool
	// Error says what went wrong ("" when delivered).
	Error string

	// The rest is for users' webhooks (Target "webhook:<id>"), recorded in
	// webhook_deliveries and the webhook's counters.

	// WebhookID is the webhook's id; 0 for sinks.
	WebhookID int64
	// EventID and EventType identify the event in the delivery record.
	EventID, EventType string
	// StatusCode is the endpoint's answer, 0 when there was none.
	StatusCode int
	// Duration is how long the request took.
	Duration time.Duration
	// Gone: the endpoint answered 410; the webhook is disabled.
	Gone bool
}

// RecordDeliveries stores, in one transaction, the outcome of one
// dispatcher pass: fanned are the outbox rows this pass delivered for the
// first time (including those with no target at all), attempts every
// attempt made, first or retried. Targets asking for a retry get (or keep)
// a row in event_retries; finished ones lose theirs. An event becomes
// 'dead' when a target is dead, else 'retrying' while a retry row is left,
// else 'delivered'. Attempts at users' webhooks are recorded in
// webhook_deliveries and counted on the webhook; a webhook whose endpoint
// answered 410 is disabled.
func (s *Store) RecordDeliveries(ctx context.Context, fanned []int64, attempts []Attempt) error {
	var (
		rSeq, fSeq, touched    []int64
		rTarget, fTarget       []string
		rAttempts              []int32
		rNext                  []time.Time
		rErr                   []string
		deadSeq                []int64
		deadErr                []string
		wID                    []int64
		wEventID, wEvent, wErr []string
		wAttempt, wDuration    []int32
		wStatus                []*int32
		wSuccess               []bool
		goneIDs                []int64
		goneWhy                []string
	)
	seen := make(map[int64]bool, len(fanned)+len(attempts))
	touch := func(seq int64) {
		if !seen[seq] {
			seen[seq] = true
			touched = append(touched, seq)
		}
	}
	for _, seq := range fanned {
		touch(seq)
	}
	for _, a := range attempts {
		touch(a.Seq)
		if a.Retry {
			rSeq, rTarget, rAttempts = append(rSeq, a.Seq), append(rTarget, a.Target), append(rAttempts, int32(a.Number))
			rNext, rErr = append(rNext, a.NextAttemptAt), append(rErr, truncate(a.Error, 1000))
		} else {
			fSeq, fTarget = append(fSeq, a.Seq), append(fTarget, a.Target)
		}
		if a.Dead {
			deadSeq, deadErr = append(deadSeq, a.Seq), append(deadErr, truncate(a.Target+": "+a.Error, 1000))
		}
		if a.WebhookID != 0 {
			wID, wEventID, wEvent = append(wID, a.WebhookID), append(wEventID, a.EventID), append(wEvent, a.EventType)
			wAttempt = append(wAttempt, int32(a.Number))
			var status *int32 // NULL: no answer
			if a.StatusCode != 0 {
				status = new(int32(a.StatusCode))
			}
			wStatus = append(wStatus, status)
			ok := !a.Retry && !a.Dead
			wSuccess, wErr = append(wSuccess, ok), append(wErr, truncate(a.Error, 1000))
			wDuration = append(wDuration, int32(min(a.Duration.Milliseconds(), 1<<31-1)))
			if a.Gone {
				goneIDs, goneWhy = append(goneIDs, a.WebhookID), append(goneWhy, truncate(a.Error, 500))
			}
		}
	}
	if len(touched) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		if len(rSeq) > 0 {
			b.Queue(`
				INSERT INTO event_retries (outbox_id, target, attempts, next_attempt_at, last_error)
				SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::timestamptz[], $5::text[])
				ON CONFLICT (outbox_id, target) DO UPDATE
				SET attempts = EXCLUDED.attempts, next_attempt_at = EXCLUDED.next_attempt_at, last_error = EXCLUDED.last_error`,
				rSeq, rTarget, rAttempts, rNext, rErr)
		}
		if len(fSeq) > 0 {
			b.Queue(`
				DELETE FROM event_retries r USING unnest($1::bigint[], $2::text[]) AS f(seq, target)
				WHERE r.outbox_id = f.seq AND r.target = f.target`, fSeq, fTarget)
		}
		if len(deadSeq) > 0 {
			b.Queue(`
				UPDATE event_outbox o SET status = 'dead', last_error = d.err
				FROM (SELECT DISTINCT ON (seq) seq, err FROM unnest($1::bigint[], $2::text[]) AS d(seq, err)) d
				WHERE o.id = d.seq`, deadSeq, deadErr)
		}
		b.Queue(`
			UPDATE event_outbox o
			SET attempts = o.attempts + 1,
			    status = CASE WHEN o.status = 'dead' THEN 'dead'
			                  WHEN EXISTS (SELECT 1 FROM event_retries r WHERE r.outbox_id = o.id) THEN 'retrying'
			                  ELSE 'delivered' END,
			    delivered_at = CASE WHEN o.status <> 'dead'
			                        AND NOT EXISTS (SELECT 1 FROM event_retries r WHERE r.outbox_id = o.id)
			                        THEN now() END
			WHERE o.id = ANY($1)`, touched)
		if len(wID) > 0 {
			b.Queue(`
				INSERT INTO webhook_deliveries (webhook_id, event_id, event, attempt, status_code, success, duration_ms, error)
				SELECT d.* FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::int[], $6::bool[], $7::int[], $8::text[])
					AS d(webhook_id, event_id, event, attempt, status_code, success, duration_ms, error)
				WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id)`,
				wID, wEventID, wEvent, wAttempt, wStatus, wSuccess, wDuration, wErr)
			b.Queue(`
				UPDATE webhooks w
				SET total_deliveries = w.total_deliveries + d.total,
				    failed_deliveries = w.failed_deliveries + d.failed,
				    last_delivery_at = now(),
				    last_status_code = coalesce(d.last_status, w.last_status_code)
				FROM (SELECT webhook_id, count(*) AS total, count(*) FILTER (WHERE NOT success) AS failed,
				             (array_agg(status_code ORDER BY ord DESC))[1] AS last_status
				      FROM unnest($1::bigint[], $2::int[], $3::bool[]) WITH ORDINALITY AS d(webhook_id, status_code, success, ord)
				      GROUP BY webhook_id) d
				WHERE w.id = d.webhook_id`, wID, wStatus, wSuccess)
		}
		if len(goneIDs) > 0 {
			b.Queue(`
				UPDATE webhooks w SET active = false, updated_at = now(),
				    disabled_reason = 'the endpoint answered 410 Gone: ' || g.why
				FROM unnest($1::bigint[], $2::text[]) AS g(id, why)
				WHERE w.id = g.id AND w.active`, goneIDs, goneWhy)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return mapErr(fmt.Sprintf("record deliveries of %d events", len(touched)), err)
		}
		return nil
	})
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// PruneEvents deletes, in batches of at most pruneBatch rows, the finished
// outbox rows (delivered or dead, with no retry left) written before
// before, the webhook deliveries and the audit events older than before.
// Run it as a cluster-wide singleton (LockPruneEvents).
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (outbox, deliveries, audit int64, err error) {
	steps := []struct {
		what string
		sql  string
		n    *int64
	}{
		{"outbox", `DELETE FROM event_outbox WHERE id IN (
			SELECT o.id FROM event_outbox o
			WHERE o.status IN ('delivered', 'dead') AND o.created_at < $1
			  AND NOT EXISTS (SELECT 1 FROM event_retries r WHERE r.outbox_id = o.id)
			LIMIT $2)`, &outbox},
		{"webhook deliveries", `DELETE FROM webhook_deliveries WHERE id IN (
			SELECT id FROM webhook_deliveries WHERE created_at < $1 LIMIT $2)`, &deliveries},
		{"audit events", `DELETE FROM audit_events WHERE id IN (
			SELECT id FROM audit_events WHERE created_at < $1 LIMIT $2)`, &audit},
	}
	for _, st := range steps {
		for {
			tag, err := s.pool.Exec(ctx, st.sql, before, pruneBatch)
			if err != nil {
				return outbox, deliveries, audit, mapErr("prune "+st.what, err)
			}
			*st.n += tag.RowsAffected()
			if tag.RowsAffected() < pruneBatch {
				break
			}
		}
	}
	return outbox, deliveries, audit, nil
}
