package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/sdk/event"
)

// Webhook is a user's webhook: an endpoint that gets the user's events
// subscribed to, signed with its own secret.
type Webhook struct {
	ID     int64
	UserID int64
	URL    string
	// Secret is the stored (encrypted) whsec_ secret; never show it.
	Secret string
	// Events are the subscription patterns (event.ValidPattern); empty
	// means every event.
	Events      []string
	Description string
	// Active is false once the user or the endpoint (410 Gone) disabled
	// it; DisabledReason says why.
	Active           bool
	DisabledReason   string
	TotalDeliveries  int64
	FailedDeliveries int64
	LastDeliveryAt   *time.Time
	LastStatusCode   *int
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

const webhookColumns = `id, user_id, url, secret, events, description, active, disabled_reason,
	total_deliveries, failed_deliveries, last_delivery_at, last_status_code, created_at, updated_at`

func scanWebhook(r pgx.Row) (*Webhook, error) {
	var w Webhook
	var status *int32
	err := r.Scan(&w.ID, &w.UserID, &w.URL, &w.Secret, &w.Events, &w.Description, &w.Active, &w.DisabledReason,
		&w.TotalDeliveries, &w.FailedDeliveries, &w.LastDeliveryAt, &status, &w.CreatedAt, &w.UpdatedAt)
	if status != nil {
		w.LastStatusCode = new(int(*status))
	}
	return &w, err
}

func collectWebhooks(rows pgx.Rows, err error) ([]*Webhook, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Webhook, error) { return scanWebhook(r) })
}

// checkPatterns validates subscription patterns.
func checkPatterns(op string, patterns []string) error {
	for _, p := range patterns {
		if err := event.ValidPattern(p); err != nil {
			return fmt.Errorf("store: %s: %v: %w", op, err, ErrInvalid)
		}
	}
	return nil
}

// NewWebhook describes a webhook to create.
type NewWebhook struct {
	UserID int64
	// URL is http(s); the API checks it further (stdwebhook.CheckURL).
	URL string
	// Secret is the encrypted whsec_ secret.
	Secret      string
	Events      []string
	Description string
	// Disabled creates it inactive ("disabled by its owner").
	Disabled bool
}

// CreateWebhook creates a webhook, active unless nw.Disabled. Invalid event patterns or URL
// are ErrInvalid, an unknown user ErrInvalid too (its foreign key).
func (s *Store) CreateWebhook(ctx context.Context, nw NewWebhook) (*Webhook, error) {
	if err := checkPatterns("create webhook", nw.Events); err != nil {
		return nil, err
	}
	events := nw.Events
	if events == nil {
		events = []string{}
	}
	w, err := scanWebhook(s.pool.QueryRow(ctx, `
		INSERT INTO webhooks (user_id, url, secret, events, description, active, disabled_reason)
		VALUES ($1, $2, $3, $4, $5, NOT $6, CASE WHEN $6 THEN 'disabled by its owner' ELSE '' END)
		RETURNING `+webhookColumns, nw.UserID, nw.URL, nw.Secret, events, nw.Description, nw.Disabled))
	if err != nil {
		return nil, mapErr("create webhook", err)
	}
	return w, nil
}

// ListWebhooks returns the user's webhooks, oldest first.
func (s *Store) ListWebhooks(ctx context.Context, userID int64) ([]*Webhook, error) {
	out, err := collectWebhooks(s.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE user_id = $1 ORDER BY id`, userID))
	return out, mapErr("list webhooks", err)
}

// FindWebhook returns the user's webhook, or ErrNotFound when there is none
// with that id or it is another user's.
func (s *Store) FindWebhook(ctx context.Context, id, userID int64) (*Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1 AND user_id = $2`, id, userID))
	if err != nil {
		return nil, mapErr("find webhook", err)
	}
	return w, nil
}

// ActiveWebhooks returns the active webhooks of the given users (the
// dispatcher's targets).
func (s *Store) ActiveWebhooks(ctx context.Context, userIDs []int64) ([]*Webhook, error) {
	if len(userIDs) == 0 {
		return nil, nil
	}
	out, err := collectWebhooks(s.pool.Query(ctx, `
		SELECT `+webhookColumns+` FROM webhooks WHERE active AND user_id = ANY($1) ORDER BY id`, userIDs))
	return out, mapErr("active webhooks", err)
}

// WebhookUpdate holds the fields to change; nil leaves one as it is.
type WebhookUpdate struct {
	URL         *string
	Secret      *string // encrypted
	Events      *[]string
	Description *string
	// Active re-enables (clearing the disabled reason) or disables it.
	Active *bool
}

// UpdateWebhook changes the user's webhook and returns it; ErrNotFound when
// it is not the user's.
func (s *Store) UpdateWebhook(ctx context.Context, id, userID int64, u WebhookUpdate) (*Webhook, error) {
	var events []string
	if u.Events != nil {
		if err := checkPatterns("update webhook", *u.Events); err != nil {
			return nil, err
		}
		events = append([]string{}, *u.Events...)
	}
	w, err := scanWebhook(s.pool.QueryRow(ctx, `
		UPDATE webhooks SET
			url = coalesce($3, url),
			secret = coalesce($4, secret),
			events = CASE WHEN $5 THEN $6::text[] ELSE events END,
			description = coalesce($7, description),
			active = coalesce($8, active),
			disabled_reason = CASE WHEN $8 IS NULL THEN disabled_reason
			                       WHEN $8 THEN ''
			                       ELSE 'disabled by its owner' END,
			updated_at = now()
		WHERE id = $1 AND user_id = $2
		RETURNING `+webhookColumns, id, userID, u.URL, u.Secret, u.Events != nil, events, u.Description, u.Active))
	if err != nil {
		return nil, mapErr("update webhook", err)
	}
	return w, nil
}

// DeleteWebhook deletes the user's webhook with its delivery records;
// ErrNotFound when it is not the user's.
func (s *Store) DeleteWebhook(ctx context.Context, id, userID int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return mapErr("delete webhook", err)
	}
	if tag.RowsAffected() == 0 {
		return mapErr("delete webhook", pgx.ErrNoRows)
	}
	return nil
}

// WebhookDelivery is one attempt at delivering an event to a webhook.
type WebhookDelivery struct {
	ID         int64
	WebhookID  int64
	EventID    string
	Event      string
	Attempt    int
	StatusCode *int // nil: no answer
	Success    bool
	DurationMS int
	Error      string
	CreatedAt  time.Time
}

// ListWebhookDeliveries returns the newest deliveries (at most limit, 1 to
// 1000) of the user's webhook; ErrNotFound when it is not the user's.
func (s *Store) ListWebhookDeliveries(ctx context.Context, webhookID, userID int64, limit int) ([]WebhookDelivery, error) {
	if limit < 1 || limit > 1000 {
		return nil, fmt.Errorf("store: list webhook deliveries: limit %d is outside 1..1000: %w", limit, ErrInvalid)
	}
	if _, err := s.FindWebhook(ctx, webhookID, userID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, webhook_id, event_id, event, attempt, status_code, success, duration_ms, error, created_at
		FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, webhookID, limit)
	if err != nil {
		return nil, mapErr("list webhook deliveries", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WebhookDelivery, error) {
		var d WebhookDelivery
		var status *int32
		err := r.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.Event, &d.Attempt, &status, &d.Success, &d.DurationMS, &d.Error, &d.CreatedAt)
		if status != nil {
			d.StatusCode = new(int(*status))
		}
		return d, err
	})
	return out, mapErr("list webhook deliveries", err)
}

// WebhookStats are the headline figures of a user's webhooks.
type WebhookStats struct {
	Total, Active int64
	// Failed7d counts failed deliveries of the last 7 days.
	Failed7d int64
	// LastAt is the user's last delivery, nil when none.
	LastAt *time.Time
}

// WebhookStats returns the user's webhook figures in one query.
func (s *Store) WebhookStats(ctx context.Context, userID int64) (WebhookStats, error) {
	var st WebhookStats
	err := s.pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE active), max(last_delivery_at),
			(SELECT count(*) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
			 WHERE w.user_id = $1 AND NOT d.success AND d.created_at > now() - interval '7 days')
		FROM webhooks WHERE user_id = $1`, userID).Scan(&st.Total, &st.Active, &st.LastAt, &st.Failed7d)
	return st, mapErr("webhook stats", err)
}
