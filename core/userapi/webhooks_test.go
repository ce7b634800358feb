package userapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/userapi"
	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/outbound/outboundtest"
	"github.com/wisehosting/wisehosting/sdk/stdwebhook"
)

// Markers of ada's webhook fixture.
const (
	adaHookURL   = "https://ada-hooks.example.com/in/ada-hook-token-51c2"
	adaHookEvent = "ada-delivery-event-7f3e"
)

func init() {
	fixtureBuilders = append(fixtureBuilders, func(e *env, f *fixture) {
		var h hookReply
		e.must(e.ada, http.StatusCreated, http.MethodPost, "/api/v1/webhooks",
			map[string]any{"url": adaHookURL, "events": []string{"app.*"}, "description": "ada's hook"}).JSON(e.t, &h)
		f.params["webhook"] = strconv.FormatInt(h.ID, 10)
		f.markers = append(f.markers, adaHookURL, "ada-hook-token-51c2", h.Secret, strings.TrimPrefix(h.Secret, "whsec_"), adaHookEvent)
		if err := e.st.RecordWebhookDelivery(context.Background(), e.ada.ID, store.WebhookDelivery{WebhookID: h.ID,
			EventID: adaHookEvent, Event: event.AppCPU, StatusCode: new(500), Error: "ada's endpoint failed"}, false); err != nil {
			e.t.Fatal(err)
		}
	})
	snapshotters = append(snapshotters, func(ctx context.Context, e *env) any {
		return obsDump(e, `SELECT w.*, (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id) AS deliveries
			FROM webhooks w WHERE user_id = $1 ORDER BY id`, e.ada.ID)
	})
	ownershipBodies["POST /api/v1/webhooks"] = map[string]any{"url": "https://eve.example.com/hook", "events": []string{"deployment.*"}}
	ownershipBodies["PATCH /api/v1/webhooks/:webhook"] = map[string]any{"description": "eve was here", "rotate_secret": true}
}

// obsDump returns the rows of a query as JSON objects, for snapshots.
func obsDump(e *env, sql string, args ...any) any {
	var out json.RawMessage
	if err := e.st.Pool().QueryRow(context.Background(), `SELECT coalesce(json_agg(t), '[]') FROM (`+sql+`) t`, args...).Scan(&out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// hookReply is a webhook as the API answers it.
type hookReply struct {
	ID               int64    `json:"id"`
	URL              string   `json:"url"`
	Events           []string `json:"events"`
	Description      string   `json:"description"`
	Active           bool     `json:"active"`
	DisabledReason   string   `json:"disabled_reason"`
	TotalDeliveries  int64    `json:"total_deliveries"`
	FailedDeliveries int64    `json:"failed_deliveries"`
	LastStatusCode   *int     `json:"last_status_code"`
	Secret           string   `json:"secret"`
}

func TestWebhooksCRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var h hookReply
	r := e.must(e.ada, http.StatusCreated, http.MethodPost, "/api/v1/webhooks",
		map[string]any{"url": "https://hooks.example.com/a?token=xyz", "events": []string{"app.*", "deployment.failed", "app.*"}, "description": "ops"})
	r.JSON(t, &h)
	key, err := stdwebhook.ParseSecretAttr("secret", h.Secret)
	if err != nil || len(key) != 32 {
		t.Fatalf("the created webhook's secret %q: %v", h.Secret, err)
	}
	if !h.Active || h.URL != "https://hooks.example.com/a?token=xyz" || strings.Join(h.Events, ",") != "app.*,deployment.failed" || h.Description != "ops" {
		t.Errorf("created %+v", h)
	}
	// Stored encrypted, never shown again.
	var stored string
	if err := e.st.Pool().QueryRow(context.Background(), `SELECT secret FROM webhooks WHERE id = $1`, h.ID).Scan(&stored); err != nil ||
		strings.Contains(stored, strings.TrimPrefix(h.Secret, "whsec_")) {
		t.Errorf("stored secret %q (%v) is not encrypted", stored, err)
	}
	if plain, err := storetest.Cipher(t).Decrypt(stored); err != nil || plain != h.Secret {
		t.Errorf("the stored secret decrypts to %q, %v", plain, err)
	}
	base64 := strings.TrimPrefix(h.Secret, "whsec_")
	path := fmt.Sprintf("/api/v1/webhooks/%d", h.ID)
	for _, p := range []string{"/api/v1/webhooks", path, "/api/v1/webhooks/stats", path + "/deliveries"} {
		if b := string(e.must(e.ada, http.StatusOK, http.MethodGet, p, nil).Body); strings.Contains(b, base64) || strings.Contains(b, `"secret"`) {
			t.Errorf("GET %s shows the secret: %s", p, b)
		}
	}
	var list struct{ Webhooks []hookReply }
	e.must(e.ada, http.StatusOK, http.MethodGet, "/api/v1/webhooks", nil).JSON(t, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].ID != h.ID {
		t.Errorf("list %+v", list)
	}

	// Patch: only the given fields; disabling; rotating shows the new secret once.
	var p hookReply
	e.must(e.ada, http.StatusOK, http.MethodPatch, path, map[string]any{"events": []string{}, "active": false}).JSON(t, &p)
	if p.Active || p.DisabledReason != "disabled by its owner" || len(p.Events) != 0 || p.URL != h.URL || p.Description != "ops" || p.Secret != "" {
		t.Errorf("patched %+v", p)
	}
	e.must(e.ada, http.StatusOK, http.MethodPatch, path, map[string]any{"rotate_secret": true, "active": true, "url": "https://new.example.com/x"}).JSON(t, &p)
	if p.Secret == "" || p.Secret == h.Secret || !p.Active || p.URL != "https://new.example.com/x" {
		t.Errorf("rotated %+v", p)
	}
	if b := string(e.must(e.ada, http.StatusOK, http.MethodGet, path, nil).Body); strings.Contains(b, strings.TrimPrefix(p.Secret, "whsec_")) {
		t.Errorf("GET shows the rotated secret: %s", b)
	}

	// Stats.
	var st struct {
		Total, Active int64
		Failed7d      int64      `json:"failed_7d"`
		LastAt        *time.Time `json:"last_at"`
	}
	e.must(e.ada, http.StatusOK, http.MethodGet, "/api/v1/webhooks/stats", nil).JSON(t, &st)
	if st.Total != 1 || st.Active != 1 || st.Failed7d != 0 || st.LastAt != nil {
		t.Errorf("stats %+v", st)
	}

	// Delete; afterwards it is gone.
	e.must(e.ada, http.StatusNoContent, http.MethodDelete, path, nil)
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		if r := e.do(e.ada, m, path, nil); r.Status != http.StatusNotFound {
			t.Errorf("%s after delete: %d", m, r.Status)
		}
	}
	for _, p := range []string{"/api/v1/webhooks/abc", "/api/v1/webhooks/0", "/api/v1/webhooks/-1/deliveries"} {
		if r := e.do(e.ada, http.MethodGet, p, nil); r.Status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, r.Status)
		}
	}
	// Created inactive.
	var off hookReply
	e.must(e.ada, http.StatusCreated, http.MethodPost, "/api/v1/webhooks", map[string]any{"url": "https://h.example.com/", "active": false}).JSON(t, &off)
	if off.Active || len(off.Events) != 0 {
		t.Errorf("created inactive %+v", off)
	}
}

func TestWebhookValidation(t *testing.T) {
	t.Parallel()
	strict := newEnv(t)
	lax := newEnvWith(t, func(_ *env, o *userapi.Options) { o.AllowPrivateTargets = true })
	long := "https://h.example.com/" + strings.Repeat("a", 2048)
	for _, tt := range []struct {
		name string
		lax  bool // with AllowPrivateTargets
		body any
		want int
		msg  string // in the error message
	}{
		{"ok", false, map[string]any{"url": "https://h.example.com/x", "events": []string{"*", "webhook.test"}}, 201, ""},
		{"no url", false, map[string]any{"events": []string{"app.*"}}, 400, "url is required"},
		{"http", false, map[string]any{"url": "http://h.example.com/x"}, 400, "https"},
		{"http allowed", true, map[string]any{"url": "http://h.example.com/x"}, 201, ""},
		{"loopback", false, map[string]any{"url": "https://127.0.0.1:8443/x"}, 400, "127.0.0.1 is a loopback address"},
		{"private", false, map[string]any{"url": "https://10.1.2.3/x"}, 400, "10.1.2.3"},
		{"loopback allowed", true, map[string]any{"url": "http://127.0.0.1:9/x"}, 201, ""},
		{"ftp", false, map[string]any{"url": "ftp://h.example.com/x"}, 400, "url"},
		{"user info", false, map[string]any{"url": "https://u:p@h.example.com/x"}, 400, "url"},
		{"too long", false, map[string]any{"url": long}, 400, "longer than 2048"},
		{"unknown event", false, map[string]any{"url": "https://h.example.com/x", "events": []string{"app.*", "app.exploded"}}, 400, `matches no event; valid events are deployment.succeeded`},
		{"unknown pattern", false, map[string]any{"url": "https://h.example.com/x", "events": []string{"billing.*"}}, 400, `billing.*`},
		{"bad pattern", false, map[string]any{"url": "https://h.example.com/x", "events": []string{"App.CPU"}}, 400, "webhook.test"},
		{"description", false, map[string]any{"url": "https://h.example.com/x", "description": strings.Repeat("d", 501)}, 400, "description"},
		{"unknown field", false, map[string]any{"url": "https://h.example.com/x", "secret": "whsec_mine"}, 400, "unknown field"},
		{"rotate on create", false, map[string]any{"url": "https://h.example.com/x", "rotate_secret": true}, 400, "unknown field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := strict
			if tt.lax {
				e = lax
			}
			r := e.do(e.ada, http.MethodPost, "/api/v1/webhooks", tt.body)
			if r.Status != tt.want || !strings.Contains(string(r.Body), tt.msg) {
				t.Errorf("status %d, want %d with %q\n%s", r.Status, tt.want, tt.msg, r.Body)
			}
		})
	}
	var h hookReply
	strict.must(strict.ada, http.StatusCreated, http.MethodPost, "/api/v1/webhooks", map[string]any{"url": "https://h.example.com/y"}).JSON(t, &h)
	path := fmt.Sprintf("/api/v1/webhooks/%d", h.ID)
	for _, tt := range []struct {
		name string
		body any
		msg  string
	}{
		{"nothing", map[string]any{}, "nothing to change"},
		{"http", map[string]any{"url": "http://h.example.com/"}, "https"},
		{"event", map[string]any{"events": []string{"nope"}}, `nope\" matches no event`},
		{"description", map[string]any{"description": strings.Repeat("d", 501)}, "description"},
	} {
		if r := strict.do(strict.ada, http.MethodPatch, path, tt.body); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), tt.msg) {
			t.Errorf("patch %s: %d\n%s", tt.name, r.Status, r.Body)
		}
	}
	for _, q := range []string{"0", "1001", "x"} {
		if r := strict.do(strict.ada, http.MethodGet, path+"/deliveries?limit="+q, nil); r.Status != http.StatusBadRequest {
			t.Errorf("deliveries limit=%s: %d", q, r.Status)
		}
	}
}

// hookTestReply is POST /api/v1/webhooks/:webhook/test's answer.
type hookTestReply struct {
	EventID    string `json:"event_id"`
	Delivered  bool   `json:"delivered"`
	Outcome    string `json:"outcome"`
	StatusCode *int   `json:"status_code"`
	DurationMS int64  `json:"duration_ms"`
	Blocked    bool   `json:"blocked"`
	Gone       bool   `json:"gone"`
	Error      string `json:"error"`
}

type hookDeliveryReply struct {
	EventID    string `json:"event_id"`
	Event      string `json:"event"`
	Attempt    int    `json:"attempt"`
	StatusCode *int   `json:"status_code"`
	Success    bool   `json:"success"`
	Error      string `json:"error"`
}

func TestWebhookTestSend(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(_ *env, o *userapi.Options) { o.AllowPrivateTargets = true })
	rc := outboundtest.Start(t, nil)
	var h hookReply
	e.must(e.ada, http.StatusCreated, http.MethodPost, "/api/v1/webhooks",
		map[string]any{"url": rc.URL + "/hooks/ada", "events": []string{"deployment.*"}}).JSON(t, &h)
	key, err := stdwebhook.ParseSecret(h.Secret)
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/api/v1/webhooks/%d", h.ID)

	// Delivered: the receiver gets a signed webhook.test event.
	var res hookTestReply
	e.must(e.ada, http.StatusOK, http.MethodPost, path+"/test", nil).JSON(t, &res)
	if !res.Delivered || res.Outcome != "delivered" || res.StatusCode == nil || *res.StatusCode != 204 || res.Error != "" || res.EventID == "" {
		t.Fatalf("test send %+v", res)
	}
	reqs := rc.Requests()
	if len(reqs) != 1 || reqs[0].URI != "/hooks/ada" {
		t.Fatalf("the receiver got %+v", reqs)
	}
	if err := stdwebhook.Verify(reqs[0].Header, reqs[0].Body, time.Now(), 0, key); err != nil {
		t.Errorf("signature: %v", err)
	}
	var body struct {
		Type string
		Data struct {
			WebhookID int64 `json:"webhook_id"`
		}
	}
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil || body.Type != event.WebhookTest || body.Data.WebhookID != h.ID ||
		reqs[0].Header.Get("webhook-id") != res.EventID {
		t.Errorf("body %s (%v), webhook-id %q", reqs[0].Body, err, reqs[0].Header.Get("webhook-id"))
	}

	// A 500: retry, the answer quoted, recorded as failed.
	rc.SetRespond(outboundtest.Reply(http.StatusInternalServerError, nil, "database down"))
	e.must(e.ada, http.StatusOK, http.MethodPost, path+"/test", nil).JSON(t, &res)
	if res.Delivered || res.Outcome != "retry" || *res.StatusCode != 500 || !strings.Contains(res.Error, "database down") {
		t.Errorf("test send to a failing endpoint %+v", res)
	}
	var got hookReply
	e.must(e.ada, http.StatusOK, http.MethodGet, path, nil).JSON(t, &got)
	if got.TotalDeliveries != 2 || got.FailedDeliveries != 1 || *got.LastStatusCode != 500 || !got.Active {
		t.Errorf("after two tests %+v", got)
	}
	var ds struct{ Deliveries []hookDeliveryReply }
	e.must(e.ada, http.StatusOK, http.MethodGet, path+"/deliveries?limit=1", nil).JSON(t, &ds)
	if len(ds.Deliveries) != 1 || ds.Deliveries[0].Success || *ds.Deliveries[0].StatusCode != 500 || ds.Deliveries[0].Event != event.WebhookTest ||
		ds.Deliveries[0].EventID != res.EventID || !strings.Contains(ds.Deliveries[0].Error, "database down") {
		t.Errorf("deliveries %+v", ds)
	}
	e.must(e.ada, http.StatusOK, http.MethodGet, path+"/deliveries", nil).JSON(t, &ds)
	if len(ds.Deliveries) != 2 || !ds.Deliveries[1].Success {
		t.Errorf("all deliveries %+v", ds)
	}

	// A 410: the webhook is disabled, as the dispatcher does.
	rc.SetRespond(outboundtest.Reply(http.StatusGone, nil, ""))
	e.must(e.ada, http.StatusOK, http.MethodPost, path+"/test", nil).JSON(t, &res)
	if res.Delivered || !res.Gone || res.Outcome != "failed" {
		t.Errorf("test send to a gone endpoint %+v", res)
	}
	e.must(e.ada, http.StatusOK, http.MethodGet, path, nil).JSON(t, &got)
	if got.Active || !strings.Contains(got.DisabledReason, "410 Gone") || got.TotalDeliveries != 3 {
		t.Errorf("after a 410 %+v", got)
	}
	var st struct {
		Total, Active int64
		Failed7d      int64      `json:"failed_7d"`
		LastAt        *time.Time `json:"last_at"`
	}
	e.must(e.ada, http.StatusOK, http.MethodGet, "/api/v1/webhooks/stats", nil).JSON(t, &st)
	if st.Total != 1 || st.Active != 0 || st.Failed7d != 2 || st.LastAt == nil {
		t.Errorf("stats %+v", st)
	}
}

// Without AllowPrivateTargets a webhook at a loopback address (created
// when they were allowed, or a host name resolving there) is refused at
// connect time: nothing reaches it, the refusal is recorded.
func TestWebhookTestRefusesPrivate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := outboundtest.Start(t, nil)
	secret, err := stdwebhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := storetest.Cipher(t).Encrypt(secret)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, url := range []string{rc.URL + "/x", "https://localhost:" + rc.Port() + "/x"} {
		w, err := e.st.CreateWebhook(ctx, store.NewWebhook{UserID: e.ada.ID, URL: url, Secret: sealed})
		if err != nil {
			t.Fatal(err)
		}
		var res hookTestReply
		e.must(e.ada, http.StatusOK, http.MethodPost, fmt.Sprintf("/api/v1/webhooks/%d/test", w.ID), nil).JSON(t, &res)
		if res.Delivered || !res.Blocked || res.Outcome != "failed" || res.StatusCode != nil || !strings.Contains(res.Error, "allow_private_targets") {
			t.Errorf("%s: %+v", url, res)
		}
		got, err := e.st.FindWebhook(ctx, w.ID, e.ada.ID)
		if err != nil || got.TotalDeliveries != 1 || got.FailedDeliveries != 1 || !got.Active {
			t.Errorf("%s: after the refusal %+v, %v", url, got, err)
		}
	}
	if rc.Hits() != 0 {
		t.Errorf("the loopback receiver got %d requests", rc.Hits())
	}
}
