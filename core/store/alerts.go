package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/sdk/event"
)

// Threshold rule kinds (app_alert_rules.kind).
const (
	RuleCPU     = "cpu"     // percent of one core's worth of the app's CPU limit, as the worker reports it
	RuleMemory  = "memory"  // percent of the app's memory limit
	RuleNetwork = "network" // Mbit/s, received + sent
	RuleDisk    = "disk"    // MB/s, read + written
	RuleOffline = "offline" // the app's worker silent (no heartbeat); no threshold
)

// DefaultAlertRules is the rule set every app gets (EnsureAlertRules):
// enabled, with these thresholds and sustain windows.
var DefaultAlertRules = []AlertRule{
	{Kind: RuleCPU, Enabled: true, Threshold: 90, SustainMinutes: 5},
	{Kind: RuleMemory, Enabled: true, Threshold: 90, SustainMinutes: 5},
	{Kind: RuleNetwork, Enabled: true, Threshold: 800, SustainMinutes: 5},
	{Kind: RuleDisk, Enabled: true, Threshold: 200, SustainMinutes: 5},
	{Kind: RuleOffline, Enabled: true, Threshold: 0, SustainMinutes: 2},
}

// AlertRule is one threshold rule of an app.
type AlertRule struct {
	ID             int64     `json:"id"`
	AppID          int64     `json:"app_id"`
	UserID         int64     `json:"user_id"`
	Kind           string    `json:"kind"`
	Enabled        bool      `json:"enabled"`
	Threshold      float64   `json:"threshold"`
	SustainMinutes int       `json:"sustain_minutes"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

const alertRuleColumns = `id, app_id, user_id, kind, enabled, threshold, sustain_minutes, created_at, updated_at`

func scanAlertRule(r pgx.Row) (AlertRule, error) {
	var a AlertRule
	err := r.Scan(&a.ID, &a.AppID, &a.UserID, &a.Kind, &a.Enabled, &a.Threshold, &a.SustainMinutes, &a.CreatedAt, &a.UpdatedAt)
	return a, err
}

// defaultRuleColumns is DefaultAlertRules as the columns of an unnest.
func defaultRuleColumns() (kinds []string, thresholds []float64, sustains []int32) {
	for _, r := range DefaultAlertRules {
		kinds, thresholds, sustains = append(kinds, r.Kind), append(thresholds, r.Threshold), append(sustains, int32(r.SustainMinutes))
	}
	return kinds, thresholds, sustains
}

// EnsureAlertRules gives each of the apps (created before CreateApp added
// them) the DefaultAlertRules it lacks,
// in one statement; rules that exist are left as their owner set them.
func (s *Store) EnsureAlertRules(ctx context.Context, appIDs []int64) error {
	if len(appIDs) == 0 {
		return nil
	}
	kinds, thresholds, sustains := defaultRuleColumns()
	_, err := s.pool.Exec(ctx, `
		INSERT INTO app_alert_rules (app_id, user_id, kind, enabled, threshold, sustain_minutes)
		SELECT a.id, a.user_id, d.kind, true, d.threshold, d.sustain
		FROM apps a CROSS JOIN unnest($2::text[], $3::float8[], $4::int[]) AS d(kind, threshold, sustain)
		WHERE a.id = ANY($1) AND a.deleted_at IS NULL
		ORDER BY a.id, d.kind
		ON CONFLICT (app_id, kind) DO NOTHING`, appIDs, kinds, thresholds, sustains)
	return mapErr("ensure alert rules", err)
}

// ListAppAlertRules returns an app's rules, by kind.
func (s *Store) ListAppAlertRules(ctx context.Context, appID int64) ([]AlertRule, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+alertRuleColumns+` FROM app_alert_rules WHERE app_id = $1 ORDER BY kind`, appID)
	if err != nil {
		return nil, mapErr("list alert rules", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AlertRule, error) { return scanAlertRule(r) })
	return out, mapErr("list alert rules", err)
}

// UpsertAlertRule sets an app's rule of r.Kind (enabled, threshold,
// sustain window); the app's owner is taken from the app. Invalid values
// are ErrInvalid.
func (s *Store) UpsertAlertRule(ctx context.Context, r AlertRule) (*AlertRule, error) {
	switch r.Kind {
	case RuleCPU, RuleMemory, RuleNetwork, RuleDisk, RuleOffline:
	default:
		return nil, fmt.Errorf("store: upsert alert rule: kind %q is not one of cpu, memory, network, disk, offline: %w", r.Kind, ErrInvalid)
	}
	if r.Threshold < 0 || r.SustainMinutes < 1 || r.SustainMinutes > 1440 {
		return nil, fmt.Errorf("store: upsert alert rule: threshold must be ≥ 0 and sustain_minutes 1 to 1440: %w", ErrInvalid)
	}
	out, err := scanAlertRule(s.pool.QueryRow(ctx, `
		INSERT INTO app_alert_rules (app_id, user_id, kind, enabled, threshold, sustain_minutes)
		SELECT id, user_id, $2, $3, $4, $5 FROM apps WHERE id = $1 AND deleted_at IS NULL
		ON CONFLICT (app_id, kind) DO UPDATE SET enabled = EXCLUDED.enabled, threshold = EXCLUDED.threshold,
			sustain_minutes = EXCLUDED.sustain_minutes, updated_at = now()
		RETURNING `+alertRuleColumns, r.AppID, r.Kind, r.Enabled, r.Threshold, r.SustainMinutes))
	if err != nil {
		return nil, mapErr("upsert alert rule", err)
	}
	return &out, nil
}

// ThresholdTarget is one enabled rule of a running app, as the threshold
// poller evaluates it.
type ThresholdTarget struct {
	Rule      AlertRule
	AppName   string
	Subdomain string
	// WorkerID is the app's worker (0: none); WorkerHeartbeat its last
	// heartbeat (zero: never).
	WorkerID        int64
	WorkerHeartbeat time.Time
	// Open is whether the rule's alert is firing (an unresolved alert for
	// its source exists), so a restarted core resumes where it left.
	Open bool
}

// RuleSource is the alert source of an app's threshold rule: source type
// "app_rule", source id "<app id>:<kind>".
func RuleSource(appID int64, kind string) (sourceType, sourceID string) {
	return "app_rule", fmt.Sprintf("%d:%s", appID, kind)
}

// ListThresholdTargets returns every enabled rule of every running app, with
// its worker's last heartbeat and whether its alert is open: one query.
func (s *Store) ListThresholdTargets(ctx context.Context) ([]ThresholdTarget, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT r.id, r.app_id, r.user_id, r.kind, r.enabled, r.threshold, r.sustain_minutes, r.created_at, r.updated_at,
			a.name, a.subdomain, coalesce(a.worker_id, 0), w.last_heartbeat,
			EXISTS (SELECT 1 FROM alerts al WHERE al.user_id = r.user_id AND al.source_type = 'app_rule'
				AND al.source_id = r.app_id::text || ':' || r.kind AND al.status <> 'resolved')
		FROM app_alert_rules r
		JOIN apps a ON a.id = r.app_id
		LEFT JOIN workers w ON w.id = a.worker_id
		WHERE r.enabled AND a.status = 'running' AND a.deleted_at IS NULL
		ORDER BY r.app_id, r.kind`)
	if err != nil {
		return nil, mapErr("list threshold targets", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ThresholdTarget, error) {
		var t ThresholdTarget
		var hb *time.Time
		err := r.Scan(&t.Rule.ID, &t.Rule.AppID, &t.Rule.UserID, &t.Rule.Kind, &t.Rule.Enabled, &t.Rule.Threshold,
			&t.Rule.SustainMinutes, &t.Rule.CreatedAt, &t.Rule.UpdatedAt, &t.AppName, &t.Subdomain, &t.WorkerID, &hb, &t.Open)
		if hb != nil {
			t.WorkerHeartbeat = *hb
		}
		return t, err
	})
	return out, mapErr("list threshold targets", err)
}

// Alert is one alert row.
type Alert struct {
	ID             int64      `json:"id"`
	UserID         int64      `json:"user_id"`
	AppID          *int64     `json:"app_id,omitempty"`
	Kind           string     `json:"kind"`
	Severity       string     `json:"severity"`
	SourceType     string     `json:"source_type"`
	SourceID       string     `json:"source_id"`
	Title          string     `json:"title"`
	Message        string     `json:"message"`
	Status         string     `json:"status"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
}

const alertColumns = `id, user_id, app_id, kind, severity, source_type, source_id, title, message, status,
	created_at, updated_at, acknowledged_at, resolved_at`

func scanAlert(r pgx.Row) (*Alert, error) {
	var a Alert
	err := r.Scan(&a.ID, &a.UserID, &a.AppID, &a.Kind, &a.Severity, &a.SourceType, &a.SourceID, &a.Title, &a.Message,
		&a.Status, &a.CreatedAt, &a.UpdatedAt, &a.AcknowledgedAt, &a.ResolvedAt)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// NewAlert is what EmitAlert records.
type NewAlert struct {
	UserID int64
	// AppID is 0 for an alert about no app.
	AppID                int64
	Kind, Severity       string
	SourceType, SourceID string
	Title, Message       string
}

// EmitAlert opens an alert unless one is already open for its (user,
// source type, source id), and writes ev to the outbox in the same
// transaction only when it opened one. It returns the open alert and
// whether this call created it. Concurrent calls (several cores) open one
// alert and emit one event.
func (s *Store) EmitAlert(ctx context.Context, na NewAlert, ev event.Event) (*Alert, bool, error) {
	if na.Severity == "" {
		na.Severity = "warning"
	}
	var appID *int64
	if na.AppID != 0 {
		appID = &na.AppID
	}
	var out *Alert
	created := false
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		a, err := scanAlert(tx.QueryRow(ctx, `
			INSERT INTO alerts (user_id, app_id, kind, severity, source_type, source_id, title, message)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (user_id, source_type, source_id) WHERE status <> 'resolved' DO NOTHING
			RETURNING `+alertColumns, na.UserID, appID, na.Kind, na.Severity, na.SourceType, na.SourceID, na.Title, na.Message))
		if errors.Is(err, pgx.ErrNoRows) {
			out, err = scanAlert(tx.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts
				WHERE user_id = $1 AND source_type = $2 AND source_id = $3 AND status <> 'resolved'`,
				na.UserID, na.SourceType, na.SourceID))
			return err
		}
		if err != nil {
			return err
		}
		out, created = a, true
		return EmitEvents(ctx, tx, []event.Event{ev})
	})
	if err != nil {
		return nil, false, mapErr("emit alert", err)
	}
	return out, created, nil
}

// ResolveAlertsBySource resolves the open alerts of (user, source type,
// source id), stamping resolved_at, and writes ev to the outbox in the same
// transaction when it resolved any. It returns how many it resolved (0 when
// none was open, or a concurrent call resolved it first).
func (s *Store) ResolveAlertsBySource(ctx context.Context, userID int64, sourceType, sourceID string, ev event.Event) (int, error) {
	var n int
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE alerts SET status = 'resolved', resolved_at = now(), updated_at = now()
			WHERE user_id = $1 AND source_type = $2 AND source_id = $3 AND status <> 'resolved'`, userID, sourceType, sourceID)
		if err != nil {
			return err
		}
		if n = int(tag.RowsAffected()); n == 0 {
			return nil
		}
		return EmitEvents(ctx, tx, []event.Event{ev})
	})
	if err != nil {
		return 0, mapErr("resolve alerts", err)
	}
	return n, nil
}

// ListOpenAlerts returns a user's unresolved alerts, newest first.
func (s *Store) ListOpenAlerts(ctx context.Context, userID int64) ([]*Alert, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+alertColumns+` FROM alerts WHERE user_id = $1 AND status <> 'resolved'
		ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return nil, mapErr("list open alerts", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Alert, error) { return scanAlert(r) })
	return out, mapErr("list open alerts", err)
}
