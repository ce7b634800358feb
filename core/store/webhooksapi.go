package store

import (
	"context"
	"fmt"
)

// RecordWebhookDelivery records one delivery made outside the dispatcher
// (the API's test send) to the user's webhook as RecordDeliveries records
// the dispatcher's: a webhook_deliveries row, the webhook's counters and
// last status, and, when gone (the endpoint answered 410), the webhook
// disabled with the answer as its reason. One statement; ErrNotFound when
// the webhook is not the user's (or was deleted meanwhile).
func (s *Store) RecordWebhookDelivery(ctx context.Context, userID int64, d WebhookDelivery, gone bool) error {
	if d.Attempt < 1 {
		d.Attempt = 1
	}
	var status *int32 // NULL: no answer
	if d.StatusCode != nil && *d.StatusCode != 0 {
		status = new(int32(*d.StatusCode))
	}
	msg := truncate(d.Error, 1000)
	var id int64
	err := s.pool.QueryRow(ctx, `
		WITH w AS (
			UPDATE webhooks SET
				total_deliveries = total_deliveries + 1,
				failed_deliveries = failed_deliveries + CASE WHEN $6 THEN 0 ELSE 1 END,
				last_delivery_at = now(),
				last_status_code = coalesce($5, last_status_code),
				active = active AND NOT $9,
				disabled_reason = CASE WHEN $9 AND active THEN 'the endpoint answered 410 Gone: ' || $10 ELSE disabled_reason END,
				updated_at = CASE WHEN $9 AND active THEN now() ELSE updated_at END
			WHERE id = $1 AND user_id = $2
			RETURNING id
		)
		INSERT INTO webhook_deliveries (webhook_id, event_id, event, attempt, status_code, success, duration_ms, error)
		SELECT w.id, $3, $4, $11, $5, $6, $7, $8 FROM w
		RETURNING webhook_id`,
		d.WebhookID, userID, d.EventID, d.Event, status, d.Success, max(d.DurationMS, 0), msg, gone, truncate(d.Error, 500), d.Attempt).Scan(&id)
	if err != nil {
		return mapErr(fmt.Sprintf("record delivery to webhook %d", d.WebhookID), err)
	}
	return nil
}
