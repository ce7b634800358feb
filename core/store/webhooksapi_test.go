package store_test

import (
	"errors"
	"testing"

	"github.com/wisehosting/wisehosting/core/store"
)

func TestRecordWebhookDelivery(t *testing.T) {
	f := newFixture(t)
	other := f.mustUser(t, "eve@example.com")
	w, err := f.s.CreateWebhook(f.ctx, store.NewWebhook{UserID: f.user.ID, URL: "https://hooks.example.com/a", Secret: "v1:enc"})
	if err != nil {
		t.Fatal(err)
	}
	off, err := f.s.CreateWebhook(f.ctx, store.NewWebhook{UserID: f.user.ID, URL: "https://hooks.example.com/b", Secret: "v1:enc", Disabled: true})
	if err != nil || off.Active || off.DisabledReason != "disabled by its owner" {
		t.Fatalf("created disabled: %+v, %v", off, err)
	}

	for _, tt := range []struct {
		name    string
		d       store.WebhookDelivery
		gone    bool
		total   int64
		failed  int64
		status  *int
		active  bool
		reason  string
		summary string
	}{
		{"delivered", store.WebhookDelivery{EventID: "e1", Event: "webhook.test", StatusCode: new(204), Success: true, DurationMS: 12},
			false, 1, 0, new(204), true, "", "webhook.test 1 204 true 12 "},
		{"no answer", store.WebhookDelivery{EventID: "e2", Event: "webhook.test", Error: "connection refused", DurationMS: 3},
			false, 2, 1, new(204), true, "", "webhook.test 1 0 false 3 connection refused"},
		{"gone", store.WebhookDelivery{EventID: "e3", Event: "webhook.test", StatusCode: new(410), Error: "the endpoint answered 410 Gone"},
			true, 3, 2, new(410), false, "the endpoint answered 410 Gone: the endpoint answered 410 Gone", "webhook.test 1 410 false 0 the endpoint answered 410 Gone"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.d.WebhookID = w.ID
			if err := f.s.RecordWebhookDelivery(f.ctx, f.user.ID, tt.d, tt.gone); err != nil {
				t.Fatal(err)
			}
			got, err := f.s.FindWebhook(f.ctx, w.ID, f.user.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.TotalDeliveries != tt.total || got.FailedDeliveries != tt.failed || *got.LastStatusCode != *tt.status ||
				got.Active != tt.active || got.DisabledReason != tt.reason || got.LastDeliveryAt == nil {
				t.Errorf("webhook %+v", got)
			}
			var summary string
			if err := f.s.Pool().QueryRow(f.ctx, `SELECT event || ' ' || attempt || ' ' || coalesce(status_code, 0) || ' ' || success
				|| ' ' || duration_ms || ' ' || error FROM webhook_deliveries WHERE event_id = $1`, tt.d.EventID).Scan(&summary); err != nil || summary != tt.summary {
				t.Errorf("delivery %q, %v; want %q", summary, err, tt.summary)
			}
		})
	}

	// Eve cannot record on ada's webhook; nothing is written.
	err = f.s.RecordWebhookDelivery(f.ctx, other.ID, store.WebhookDelivery{WebhookID: w.ID, EventID: "e4", Event: "webhook.test"}, true)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("as eve: %v, want ErrNotFound", err)
	}
	var n int
	if err := f.s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM webhook_deliveries WHERE event_id = 'e4'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("eve's record left %d rows (%v)", n, err)
	}
}
