package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/sdk/event"
)

// Alert statuses (alerts.status). An alert opens active; its owner may
// acknowledge it (it stays open) and resolve it; the manager resolves it
// when its cause is over.
const (
	AlertActive       = "active"
	AlertAcknowledged = "acknowledged"
	AlertResolved     = "resolved"
	// AlertOpen is a filter, not a status: active or acknowledged.
	AlertOpen = "open"
)

// AlertKinds returns every alert kind (alerts.kind): the threshold rule
// kinds, then the event-driven ones.
func AlertKinds() []string {
	return []string{RuleCPU, RuleMemory, RuleNetwork, RuleDisk, RuleOffline, AlertCrashloop, AlertDeploymentFailed, AlertViolation}
}

// MaxAlertPage bounds AlertFilter.Limit.
const MaxAlertPage = 500

// AlertFilter narrows ListAlerts. Zero fields do not filter.
type AlertFilter struct {
	// Status is AlertActive, AlertAcknowledged, AlertResolved or AlertOpen.
	Status string
	// Kind is one of AlertKinds.
	Kind string
	// AppID keeps the alerts of that app.
	AppID int64
	// Limit is the page size, 1 to MaxAlertPage (0: 50).
	Limit int
	// Before is the cursor: only alerts with a smaller id (the previous
	// page's last id).
	Before int64
}

// AlertStats are the headline figures of a user's alerts (of one app when
// the filter names one; the status, kind and cursor of the filter do not
// apply): what is open now, and what happened lately.
type AlertStats struct {
	// Open is active + acknowledged.
	Open         int64 `json:"open"`
	Active       int64 `json:"active"`
	Acknowledged int64 `json:"acknowledged"`
	// CriticalOpen counts the open alerts of severity critical (an app
	// offline, crash looping or breaking a limit).
	CriticalOpen int64 `json:"critical_open"`
	// Opened24h counts the alerts opened in the last 24 hours.
	Opened24h int64 `json:"opened_24h"`
	// Resolved24h and Resolved7d count the alerts resolved in the last 24
	// hours and 7 days.
	Resolved24h int64 `json:"resolved_24h"`
	Resolved7d  int64 `json:"resolved_7d"`
}

// ListAlerts returns a page of the user's alerts matching f, newest (highest
// id) first, and the headline figures, in one round trip. An unknown
// status or kind, or a limit out of range, is ErrInvalid.
func (s *Store) ListAlerts(ctx context.Context, userID int64, f AlertFilter) ([]*Alert, AlertStats, error) {
	var st AlertStats
	switch f.Status {
	case "", AlertActive, AlertAcknowledged, AlertResolved, AlertOpen:
	default:
		return nil, st, fmt.Errorf("store: list alerts: status %q is not active, acknowledged, resolved or open: %w", f.Status, ErrInvalid)
	}
	if f.Kind != "" && !slices.Contains(AlertKinds(), f.Kind) {
		return nil, st, fmt.Errorf("store: list alerts: unknown kind %q: %w", f.Kind, ErrInvalid)
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > MaxAlertPage {
		return nil, st, fmt.Errorf("store: list alerts: limit %d is outside 1..%d: %w", f.Limit, MaxAlertPage, ErrInvalid)
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+alertColumns+` FROM alerts
		WHERE user_id = $1
		  AND ($2::text = '' OR status = $2 OR ($2 = 'open' AND status <> 'resolved'))
		  AND ($3::text = '' OR kind = $3)
		  AND ($4::bigint = 0 OR app_id = $4)
		  AND ($5::bigint = 0 OR id < $5)
		ORDER BY id DESC LIMIT $6`, userID, f.Status, f.Kind, f.AppID, f.Before, f.Limit)
	b.Queue(`SELECT
			count(*) FILTER (WHERE status <> 'resolved'),
			count(*) FILTER (WHERE status = 'active'),
			count(*) FILTER (WHERE status = 'acknowledged'),
			count(*) FILTER (WHERE status <> 'resolved' AND severity = 'critical'),
			count(*) FILTER (WHERE created_at > now() - interval '24 hours'),
			count(*) FILTER (WHERE resolved_at > now() - interval '24 hours'),
			count(*) FILTER (WHERE resolved_at > now() - interval '7 days')
		FROM alerts WHERE user_id = $1 AND ($2::bigint = 0 OR app_id = $2)`, userID, f.AppID)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	list, err := collectAlerts(rows, err)
	if err != nil {
		return nil, st, mapErr("list alerts", err)
	}
	if err := br.QueryRow().Scan(&st.Open, &st.Active, &st.Acknowledged, &st.CriticalOpen,
		&st.Opened24h, &st.Resolved24h, &st.Resolved7d); err != nil {
		return nil, st, mapErr("alert stats", err)
	}
	if err := br.Close(); err != nil {
		return nil, st, mapErr("list alerts", err)
	}
	return list, st, nil
}

func collectAlerts(rows pgx.Rows, err error) ([]*Alert, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Alert, error) { return scanAlert(r) })
}

// UpdateAlertStatus acknowledges (status AlertAcknowledged) or resolves
// (AlertResolved) the user's alert and returns it. Acknowledging stamps
// acknowledged_at, resolving resolved_at. Both are idempotent: acknowledging
// an acknowledged alert or resolving a resolved one changes nothing and
// returns it as it is. Acknowledging a resolved alert is ErrConflict; another
// status ErrInvalid; another user's alert ErrNotFound.
//
// Resolving a threshold rule's alert writes the event the alert manager
// writes when the rule recovers (app.<kind>.resolved, reason "resolved by
// its owner") to the outbox in the same transaction, so sinks and webhooks
// learn of it. Event-driven alerts (crash loop, failed deployment,
// violation) have no resolution event in the catalogue; resolving them
// writes none, as when a deployment resolves them.
func (s *Store) UpdateAlertStatus(ctx context.Context, id, userID int64, status string) (*Alert, error) {
	if status != AlertAcknowledged && status != AlertResolved {
		return nil, fmt.Errorf("store: update alert status: %q is not acknowledged or resolved: %w", status, ErrInvalid)
	}
	var out *Alert
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var before, appName, subdomain string
		var threshold float64
		var a Alert
		// cur locks the alert first, so before is its status as this
		// transaction changes it, whatever ran concurrently.
		err := tx.QueryRow(ctx, `
			WITH cur AS (
				SELECT al.id AS alert_id, al.status AS before, coalesce(ap.name, '') AS app_name,
					coalesce(ap.subdomain, '') AS app_subdomain, coalesce(r.threshold, 0) AS rule_threshold
				FROM alerts al
				LEFT JOIN apps ap ON ap.id = al.app_id
				LEFT JOIN app_alert_rules r ON r.app_id = al.app_id AND r.kind = al.kind
				WHERE al.id = $1 AND al.user_id = $2
				FOR UPDATE OF al
			), change AS (
				SELECT alert_id, before <> 'resolved' AND before <> $3::text AS changed FROM cur
			)
			UPDATE alerts a SET
				status = CASE WHEN change.changed THEN $3 ELSE a.status END,
				acknowledged_at = CASE WHEN change.changed AND $3 = 'acknowledged' THEN now() ELSE a.acknowledged_at END,
				resolved_at = CASE WHEN change.changed AND $3 = 'resolved' THEN now() ELSE a.resolved_at END,
				updated_at = CASE WHEN change.changed THEN now() ELSE a.updated_at END
			FROM cur JOIN change USING (alert_id)
			WHERE a.id = cur.alert_id
			RETURNING cur.before, cur.app_name, cur.app_subdomain, cur.rule_threshold,
				a.id, a.user_id, a.app_id, a.kind, a.severity, a.source_type, a.source_id, a.title, a.message, a.status,
				a.created_at, a.updated_at, a.acknowledged_at, a.resolved_at`, id, userID, status).Scan(
			&before, &appName, &subdomain, &threshold,
			&a.ID, &a.UserID, &a.AppID, &a.Kind, &a.Severity, &a.SourceType, &a.SourceID, &a.Title, &a.Message,
			&a.Status, &a.CreatedAt, &a.UpdatedAt, &a.AcknowledgedAt, &a.ResolvedAt)
		if err != nil {
			return mapErr("update alert status", err)
		}
		out = &a
		switch {
		case before == AlertResolved && status == AlertAcknowledged:
			return fmt.Errorf("store: update alert status: alert %d is resolved: %w", id, ErrConflict)
		case before == AlertResolved || status != AlertResolved:
			return nil
		}
		ev, ok := resolvedEvent(&a, appName, subdomain, threshold)
		if !ok {
			return nil
		}
		return EmitEvents(ctx, tx, []event.Event{ev})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// resolvedEvent is the event the alert manager writes when a's threshold
// rule recovers; false for alerts of no rule.
func resolvedEvent(a *Alert, appName, subdomain string, threshold float64) (event.Event, bool) {
	typ := "app." + a.Kind + ".resolved"
	if a.SourceType != "app_rule" || a.AppID == nil || !event.Known(typ) {
		return event.Event{}, false
	}
	data, _ := json.Marshal(event.AppData{AppName: appName, Subdomain: subdomain, Threshold: threshold,
		Reason: "resolved by its owner"}) // a plain struct: cannot fail
	return event.Event{Type: typ, UserID: a.UserID, AppID: *a.AppID, Data: data}, true
}
