package store_test

import (
	"errors"
	"testing"

	"github.com/wisehosting/wisehosting/core/store"
)

func TestWebhooksCRUDAndOwnership(t *testing.T) {
	f := newFixture(t)
	other := f.mustUser(t, "eve@example.com")
	w, err := f.s.CreateWebhook(f.ctx, store.NewWebhook{UserID: f.user.ID, URL: "https://hooks.example.com/a",
		Secret: "v1:enc", Events: []string{"deployment.*", "app.offline"}, Description: "deploys"})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Active || w.TotalDeliveries != 0 || w.LastStatusCode != nil || len(w.Events) != 2 || w.Description != "deploys" {
		t.Fatalf("created %+v", w)
	}
	for _, tt := range []struct {
		name string
		nw   store.NewWebhook
	}{
		{"bad pattern", store.NewWebhook{UserID: f.user.ID, URL: "https://h.example/x", Secret: "s", Events: []string{"App.*"}}},
		{"bad url", store.NewWebhook{UserID: f.user.ID, URL: "ftp://h.example/x", Secret: "s"}},
		{"unknown user", store.NewWebhook{UserID: 1 << 40, URL: "https://h.example/x", Secret: "s"}},
	} {
		if _, err := f.s.CreateWebhook(f.ctx, tt.nw); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tt.name, err)
		}
	}

	// Another user sees, changes and deletes nothing.
	if _, err := f.s.FindWebhook(f.ctx, w.ID, other.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("find as another user: %v", err)
	}
	if _, err := f.s.UpdateWebhook(f.ctx, w.ID, other.ID, store.WebhookUpdate{Description: new("mine")}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update as another user: %v", err)
	}
	if err := f.s.DeleteWebhook(f.ctx, w.ID, other.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete as another user: %v", err)
	}
	if _, err := f.s.ListWebhookDeliveries(f.ctx, w.ID, other.ID, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deliveries as another user: %v", err)
	}
	if list, err := f.s.ListWebhooks(f.ctx, other.ID); err != nil || len(list) != 0 {
		t.Errorf("another user's list: %v, %v", list, err)
	}

	// Updates: only the given fields; disabling and enabling.
	w2, err := f.s.UpdateWebhook(f.ctx, w.ID, f.user.ID, store.WebhookUpdate{Events: &[]string{}, Active: new(false)})
	if err != nil {
		t.Fatal(err)
	}
	if w2.Active || w2.DisabledReason != "disabled by its owner" || len(w2.Events) != 0 || w2.URL != w.URL || w2.Description != "deploys" {
		t.Fatalf("after disabling: %+v", w2)
	}
	if _, err := f.s.UpdateWebhook(f.ctx, w.ID, f.user.ID, store.WebhookUpdate{Events: &[]string{"no spaces allowed"}}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad pattern on update: %v", err)
	}
	w3, err := f.s.UpdateWebhook(f.ctx, w.ID, f.user.ID, store.WebhookUpdate{Active: new(true), URL: new("https://hooks.example.com/b")})
	if err != nil {
		t.Fatal(err)
	}
	if !w3.Active || w3.DisabledReason != "" || w3.URL != "https://hooks.example.com/b" {
		t.Fatalf("after enabling: %+v", w3)
	}

	// Deliveries and stats.
	if _, err := f.s.Pool().Exec(f.ctx, `
		INSERT INTO webhook_deliveries (webhook_id, event_id, event, attempt, status_code, success, duration_ms, error, created_at) VALUES
		($1, 'e1', 'deployment.failed', 1, 503, false, 12, 'the endpoint answered 503', now() - interval '8 days'),
		($1, 'e1', 'deployment.failed', 2, NULL, false, 10000, 'no answer', now() - interval '1 day'),
		($1, 'e1', 'deployment.failed', 3, 200, true, 9, '', now())`, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Pool().Exec(f.ctx, `UPDATE webhooks SET last_delivery_at = now() WHERE id = $1`, w.ID); err != nil {
		t.Fatal(err)
	}
	ds, err := f.s.ListWebhookDeliveries(f.ctx, w.ID, f.user.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Attempt != 3 || *ds[0].StatusCode != 200 || !ds[0].Success || ds[1].StatusCode != nil || ds[1].Error != "no answer" {
		t.Fatalf("deliveries %+v", ds)
	}
	if _, err := f.s.ListWebhookDeliveries(f.ctx, w.ID, f.user.ID, 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("limit 0: %v", err)
	}
	if _, err := f.s.CreateWebhook(f.ctx, store.NewWebhook{UserID: f.user.ID, URL: "https://h.example/2", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Pool().Exec(f.ctx, `UPDATE webhooks SET active = false WHERE url = 'https://h.example/2'`); err != nil {
		t.Fatal(err)
	}
	st, err := f.s.WebhookStats(f.ctx, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 2 || st.Active != 1 || st.Failed7d != 1 || st.LastAt == nil {
		t.Fatalf("stats %+v", st)
	}
	if st, err := f.s.WebhookStats(f.ctx, other.ID); err != nil || st.Total != 0 || st.LastAt != nil {
		t.Fatalf("another user's stats %+v, %v", st, err)
	}

	// Deleting takes the delivery records with it.
	if err := f.s.DeleteWebhook(f.ctx, w.ID, f.user.ID); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := f.s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1`, w.ID).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d delivery records left, %v", left, err)
	}
	if err := f.s.DeleteWebhook(f.ctx, w.ID, f.user.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}
