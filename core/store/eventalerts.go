package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/sdk/event"
)

// Kinds of the event-driven alerts: opened by an event rather than by a
// threshold rule.
const (
	AlertCrashloop        = "crashloop"
	AlertDeploymentFailed = "deployment_failed"
	AlertViolation        = "violation"
)

// EventAlertSource is the alert source of an app's event-driven alert of
// that kind: source type "app_event", source id "<app id>:<kind>". One is
// open at most per app and kind, as for threshold rules.
func EventAlertSource(appID int64, kind string) (sourceType, sourceID string) {
	return "app_event", fmt.Sprintf("%d:%s", appID, kind)
}

// eventAlert says what an event does to the event-driven alerts: the kind
// it opens (with its severity and title), and the kinds it resolves.
func eventAlert(e event.Event) (open, severity, title string, resolves []string) {
	switch e.Type {
	case event.AppCrashloop:
		return AlertCrashloop, "critical", "keeps crashing", nil
	case event.DeploymentFailed:
		return AlertDeploymentFailed, "warning", "deployment failed", nil
	case event.AppViolation:
		return AlertViolation, "critical", "broke a resource limit", nil
	case event.DeploymentSucceeded:
		// A new release: whatever the old one did is over.
		return "", "", "", []string{AlertDeploymentFailed, AlertCrashloop, AlertViolation}
	case event.AppStopped:
		return "", "", "", []string{AlertCrashloop, AlertViolation}
	}
	return "", "", "", nil
}

// applyEventAlerts opens and resolves, in the caller's transaction, the
// event-driven alerts events imply: a crash loop, a failed deployment or a
// violation opens one (unless one is open for the app and kind already); a
// successful deployment resolves them, a stop resolves the crash loop and
// the violation. The events themselves are the notifications: no further
// event is written.
func applyEventAlerts(ctx context.Context, tx pgx.Tx, events []event.Event) error {
	for _, e := range events {
		open, severity, title, resolves := eventAlert(e)
		if e.UserID == 0 || e.AppID == 0 || open == "" && len(resolves) == 0 {
			continue
		}
		if len(resolves) > 0 {
			if err := resolveEventAlerts(ctx, tx, e.UserID, e.AppID, resolves...); err != nil {
				return err
			}
			continue
		}
		var d event.AppData
		_ = json.Unmarshal(e.Data, &d) // best effort: the title falls back to the id
		name := d.AppName
		if name == "" {
			name = fmt.Sprintf("app %d", e.AppID)
		}
		msg := d.Reason
		if d.Error != "" {
			msg = d.Error
		}
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		st, sid := EventAlertSource(e.AppID, open)
		// Only for an app that exists and is the user's: events outlive
		// apps, and an event about a gone app must not fail its change.
		if _, err := tx.Exec(ctx, `
			INSERT INTO alerts (user_id, app_id, kind, severity, source_type, source_id, title, message)
			SELECT a.user_id, a.id, $3, $4, $5, $6, $7, $8 FROM apps a WHERE a.id = $2 AND a.user_id = $1
			ON CONFLICT (user_id, source_type, source_id) WHERE status <> 'resolved' DO NOTHING`,
			e.UserID, e.AppID, open, severity, st, sid, name+" "+title, truncate(msg, 1000)); err != nil {
			return mapErr("open "+open+" alert", err)
		}
	}
	return nil
}

// resolveEventAlerts resolves the app's open event-driven alerts of kinds.
func resolveEventAlerts(ctx context.Context, tx pgx.Tx, userID, appID int64, kinds ...string) error {
	ids := make([]string, len(kinds))
	for i, k := range kinds {
		_, ids[i] = EventAlertSource(appID, k)
	}
	_, err := tx.Exec(ctx, `UPDATE alerts SET status = 'resolved', resolved_at = now(), updated_at = now()
		WHERE user_id = $1 AND source_type = 'app_event' AND source_id = ANY($2) AND status <> 'resolved'`, userID, ids)
	return mapErr("resolve event alerts", err)
}
