package userapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/events"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/stdwebhook"
)

// Bounds of a webhook's fields.
const (
	maxWebhookURL         = 2048
	maxWebhookDescription = 500
	maxWebhookEvents      = 50
	// Delivery pages: default and largest limits.
	defaultDeliveryLimit = 50
	maxDeliveryLimit     = 1000
)

// webhookRoutes are the routes of the caller's webhooks.
func (s *Service) webhookRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/webhooks", handler: s.listWebhooks},
		{Method: http.MethodPost, Path: "/api/v1/webhooks", Limited: true, handler: s.createWebhook},
		{Method: http.MethodGet, Path: "/api/v1/webhooks/stats", handler: s.webhookStats},
		{Method: http.MethodGet, Path: "/api/v1/webhooks/:webhook", handler: s.getWebhook},
		{Method: http.MethodPatch, Path: "/api/v1/webhooks/:webhook", Limited: true, handler: s.updateWebhook},
		{Method: http.MethodDelete, Path: "/api/v1/webhooks/:webhook", handler: s.deleteWebhook},
		{Method: http.MethodGet, Path: "/api/v1/webhooks/:webhook/deliveries", handler: s.listWebhookDeliveries},
		{Method: http.MethodPost, Path: "/api/v1/webhooks/:webhook/test", Limited: true, handler: s.testWebhook},
	}
}

// webhookView is a webhook as the API shows it: never its stored secret;
// Secret is the plain whsec_ secret, set only in the answer that made it
// (creation, rotation).
type webhookView struct {
	ID               int64      `json:"id"`
	URL              string     `json:"url"`
	Events           []string   `json:"events"`
	Description      string     `json:"description"`
	Active           bool       `json:"active"`
	DisabledReason   string     `json:"disabled_reason,omitempty"`
	TotalDeliveries  int64      `json:"total_deliveries"`
	FailedDeliveries int64      `json:"failed_deliveries"`
	LastDeliveryAt   *time.Time `json:"last_delivery_at"`
	LastStatusCode   *int       `json:"last_status_code"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	Secret           string     `json:"secret,omitempty"`
}

func viewWebhook(w *store.Webhook) webhookView {
	evs := w.Events
	if evs == nil {
		evs = []string{}
	}
	return webhookView{ID: w.ID, URL: w.URL, Events: evs, Description: w.Description, Active: w.Active,
		DisabledReason: w.DisabledReason, TotalDeliveries: w.TotalDeliveries, FailedDeliveries: w.FailedDeliveries,
		LastDeliveryAt: w.LastDeliveryAt, LastStatusCode: w.LastStatusCode, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
}

// listWebhooks serves GET /api/v1/webhooks: the caller's webhooks, oldest
// first.
func (s *Service) listWebhooks(w http.ResponseWriter, req bunrouter.Request) error {
	list, err := s.o.Store.ListWebhooks(req.Context(), userOf(req.Context()).ID)
	if err != nil {
		return fmt.Errorf("userapi: %w", err)
	}
	out := make([]webhookView, len(list))
	for i, h := range list {
		out[i] = viewWebhook(h)
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"webhooks": out})
}

// webhookCreate is the body of POST /api/v1/webhooks.
type webhookCreate struct {
	URL string `json:"url"`
	// Events are subscription patterns; none (or omitted) means every
	// event.
	Events      []string `json:"events"`
	Description string   `json:"description"`
	// Active defaults to true.
	Active *bool `json:"active"`
}

// createWebhook serves POST /api/v1/webhooks: 201 with the webhook and its
// new whsec_ secret, shown this once.
func (s *Service) createWebhook(w http.ResponseWriter, req bunrouter.Request) error {
	var in webhookCreate
	if err := decode(req, &in); err != nil {
		return err
	}
	url, err := s.checkWebhookURL(in.URL)
	if err != nil {
		return err
	}
	evs, err := checkEventPatterns(in.Events)
	if err != nil {
		return err
	}
	if err := checkWebhookDescription(in.Description); err != nil {
		return err
	}
	plain, sealed, err := s.newWebhookSecret()
	if err != nil {
		return err
	}
	h, err := s.o.Store.CreateWebhook(req.Context(), store.NewWebhook{UserID: userOf(req.Context()).ID, URL: url,
		Secret: sealed, Events: evs, Description: in.Description, Disabled: in.Active != nil && !*in.Active})
	if err != nil {
		return storeErr(err, "webhook")
	}
	v := viewWebhook(h)
	v.Secret = plain
	return api.WriteJSON(w, http.StatusCreated, v)
}

// newWebhookSecret makes a whsec_ secret: plain for the caller, sealed
// (the column cipher's) for the store.
func (s *Service) newWebhookSecret() (plain, sealed string, err error) {
	plain, err = stdwebhook.NewSecret()
	if err != nil {
		return "", "", fmt.Errorf("userapi: %w", err)
	}
	sealed, err = s.o.Cipher.Encrypt(plain)
	if err != nil {
		return "", "", fmt.Errorf("userapi: encrypt a webhook secret: %w", err)
	}
	return plain, sealed, nil
}

// ownedWebhook returns the caller's webhook the :webhook parameter names;
// anything else (not a number, missing, someone else's) is a 404.
func (s *Service) ownedWebhook(req bunrouter.Request) (*store.Webhook, error) {
	id, ok := idParam(req, "webhook")
	if !ok {
		return nil, errNoWebhook
	}
	h, err := s.o.Store.FindWebhook(req.Context(), id, userOf(req.Context()).ID)
	if err != nil {
		return nil, storeErr(err, "webhook")
	}
	return h, nil
}

var errNoWebhook = api.Errorf(http.StatusNotFound, "not_found", "no such webhook")

// idParam parses the positive integer id of the route parameter name.
func idParam(req bunrouter.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(req.Param(name), 10, 64)
	return id, err == nil && id > 0
}

// getWebhook serves GET /api/v1/webhooks/:webhook.
func (s *Service) getWebhook(w http.ResponseWriter, req bunrouter.Request) error {
	h, err := s.ownedWebhook(req)
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, viewWebhook(h))
}

// webhookPatch is the body of PATCH /api/v1/webhooks/:webhook: the fields
// given change, the others stay.
type webhookPatch struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
	Active      *bool     `json:"active"`
	// RotateSecret replaces the secret at once (no overlap: the old one
	// stops signing); the answer shows the new one, this once.
	RotateSecret bool `json:"rotate_secret"`
}

// updateWebhook serves PATCH /api/v1/webhooks/:webhook.
func (s *Service) updateWebhook(w http.ResponseWriter, req bunrouter.Request) error {
	id, ok := idParam(req, "webhook")
	if !ok {
		return errNoWebhook
	}
	var in webhookPatch
	if err := decode(req, &in); err != nil {
		return err
	}
	if in.URL == nil && in.Events == nil && in.Description == nil && in.Active == nil && !in.RotateSecret {
		return badRequest("nothing to change: give url, events, description, active or rotate_secret")
	}
	u := store.WebhookUpdate{Description: in.Description, Active: in.Active}
	if in.URL != nil {
		url, err := s.checkWebhookURL(*in.URL)
		if err != nil {
			return err
		}
		u.URL = &url
	}
	if in.Events != nil {
		evs, err := checkEventPatterns(*in.Events)
		if err != nil {
			return err
		}
		u.Events = &evs
	}
	if in.Description != nil {
		if err := checkWebhookDescription(*in.Description); err != nil {
			return err
		}
	}
	var plain string
	if in.RotateSecret {
		var sealed string
		var err error
		if plain, sealed, err = s.newWebhookSecret(); err != nil {
			return err
		}
		u.Secret = &sealed
	}
	h, err := s.o.Store.UpdateWebhook(req.Context(), id, userOf(req.Context()).ID, u)
	if err != nil {
		return storeErr(err, "webhook")
	}
	v := viewWebhook(h)
	v.Secret = plain
	return api.WriteJSON(w, http.StatusOK, v)
}

// deleteWebhook serves DELETE /api/v1/webhooks/:webhook: 204.
func (s *Service) deleteWebhook(w http.ResponseWriter, req bunrouter.Request) error {
	id, ok := idParam(req, "webhook")
	if !ok {
		return errNoWebhook
	}
	if err := s.o.Store.DeleteWebhook(req.Context(), id, userOf(req.Context()).ID); err != nil {
		return storeErr(err, "webhook")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// webhookDeliveryView is one delivery attempt as the API shows it.
type webhookDeliveryView struct {
	ID         int64     `json:"id"`
	EventID    string    `json:"event_id"`
	Event      string    `json:"event"`
	Attempt    int       `json:"attempt"`
	StatusCode *int      `json:"status_code"`
	Success    bool      `json:"success"`
	DurationMS int       `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// listWebhookDeliveries serves GET /api/v1/webhooks/:webhook/deliveries?limit=:
// the newest attempts first.
func (s *Service) listWebhookDeliveries(w http.ResponseWriter, req bunrouter.Request) error {
	id, ok := idParam(req, "webhook")
	if !ok {
		return errNoWebhook
	}
	limit := defaultDeliveryLimit
	if v := req.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeliveryLimit {
			return badRequest("limit must be an integer within 1..%d", maxDeliveryLimit)
		}
		limit = n
	}
	list, err := s.o.Store.ListWebhookDeliveries(req.Context(), id, userOf(req.Context()).ID, limit)
	if err != nil {
		return storeErr(err, "webhook")
	}
	out := make([]webhookDeliveryView, len(list))
	for i, d := range list {
		out[i] = webhookDeliveryView{ID: d.ID, EventID: d.EventID, Event: d.Event, Attempt: d.Attempt, StatusCode: d.StatusCode,
			Success: d.Success, DurationMS: d.DurationMS, Error: d.Error, CreatedAt: d.CreatedAt}
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

// webhookStatsView is GET /api/v1/webhooks/stats's answer.
type webhookStatsView struct {
	Total    int64      `json:"total"`
	Active   int64      `json:"active"`
	Failed7d int64      `json:"failed_7d"`
	LastAt   *time.Time `json:"last_at"`
}

// webhookStats serves GET /api/v1/webhooks/stats: the caller's headline
// figures.
func (s *Service) webhookStats(w http.ResponseWriter, req bunrouter.Request) error {
	st, err := s.o.Store.WebhookStats(req.Context(), userOf(req.Context()).ID)
	if err != nil {
		return fmt.Errorf("userapi: %w", err)
	}
	return api.WriteJSON(w, http.StatusOK, webhookStatsView{Total: st.Total, Active: st.Active, Failed7d: st.Failed7d, LastAt: st.LastAt})
}

// webhookTestResult is POST /api/v1/webhooks/:webhook/test's answer: how sending
// the test event went.
type webhookTestResult struct {
	EventID   string `json:"event_id"`
	Delivered bool   `json:"delivered"`
	// Outcome is delivered, retry (the endpoint answered 408, 429 or 5xx,
	// or not at all) or failed.
	Outcome    string `json:"outcome"`
	StatusCode *int   `json:"status_code"`
	DurationMS int64  `json:"duration_ms"`
	// Blocked: the address is one users' webhooks may not reach.
	Blocked bool `json:"blocked,omitempty"`
	// Gone: the endpoint answered 410, and the webhook is now disabled.
	Gone bool `json:"gone,omitempty"`
	// Error says what went wrong; "" when delivered.
	Error string `json:"error,omitempty"`
}

// testWebhook serves POST /api/v1/webhooks/:webhook/test: it sends a
// webhook.test event to the webhook now (active or not), through the
// sender and address guard of the dispatcher, records the delivery as the
// dispatcher does, and answers 200 with the outcome whatever the endpoint
// answered.
func (s *Service) testWebhook(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	user := userOf(ctx)
	h, err := s.ownedWebhook(req)
	if err != nil {
		return err
	}
	data, err := json.Marshal(map[string]any{"webhook_id": h.ID,
		"message": "a test event sent from the WiseHosting dashboard; no action is needed"})
	if err != nil {
		return fmt.Errorf("userapi: %w", err)
	}
	ev := event.Event{ID: uuid.NewString(), Type: event.WebhookTest, Time: s.o.Now().UTC(), UserID: user.ID, Data: data}
	sender := events.NewWebhooks(s.o.Cipher, stdwebhook.ClientOptions{Timeout: s.o.WebhookTimeout, MaxConcurrency: 1,
		AllowPrivate: s.o.AllowPrivateTargets})
	defer sender.Close()
	r := sender.SendWebhook(ctx, h, ev)

	res := webhookTestResult{EventID: ev.ID, Delivered: r.Outcome == stdwebhook.Delivered, Outcome: r.Outcome.String(),
		DurationMS: r.Duration.Milliseconds(), Blocked: r.Blocked, Gone: r.Gone}
	if r.StatusCode != 0 {
		res.StatusCode = new(r.StatusCode)
	}
	if !res.Delivered {
		res.Error = r.Message
		if res.Error == "" {
			res.Error = "the endpoint asked for a retry"
		}
	}
	d := store.WebhookDelivery{WebhookID: h.ID, EventID: ev.ID, Event: ev.Type, Attempt: 1, StatusCode: res.StatusCode,
		Success: res.Delivered, DurationMS: int(min(res.DurationMS, 1<<31-1)), Error: res.Error}
	// The request happened: record it even when the caller went away.
	if err := s.o.Store.RecordWebhookDelivery(context.WithoutCancel(ctx), user.ID, d, r.Gone); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNoWebhook // deleted meanwhile
		}
		s.log.Error("recording a webhook test delivery failed", "webhook_id", h.ID, "error", err)
	}
	return api.WriteJSON(w, http.StatusOK, res)
}

// checkWebhookURL checks a webhook's URL (stdwebhook.CheckURL): https
// and a public literal address unless private targets are allowed.
func (s *Service) checkWebhookURL(raw string) (string, error) {
	if raw == "" {
		return "", badRequest("url is required: the https:// address that receives the events")
	}
	if len(raw) > maxWebhookURL {
		return "", badRequest("url is longer than %d bytes", maxWebhookURL)
	}
	u, err := stdwebhook.CheckURL(raw, s.o.AllowPrivateTargets)
	if err != nil {
		var ae *stdwebhook.AddressError
		if errors.As(err, &ae) {
			return "", badRequest("url: %s is %s; webhooks may reach only public addresses", ae.Addr, ae.Why)
		}
		return "", badRequest("%v", err)
	}
	if u.Scheme != "https" && !s.o.AllowPrivateTargets {
		return "", badRequest("url must be https://: events are signed, not encrypted")
	}
	return raw, nil
}

// checkEventPatterns checks subscription patterns against the catalogue:
// each an event name or a pattern (app.*) matching at least one. It
// returns them without duplicates, never nil.
func checkEventPatterns(in []string) ([]string, error) {
	if len(in) > maxWebhookEvents {
		return nil, badRequest("events: at most %d patterns", maxWebhookEvents)
	}
	out := make([]string, 0, len(in))
	var bad []string
	for _, p := range in {
		if slices.Contains(out, p) {
			continue
		}
		if event.ValidPattern(p) != nil || !matchesCatalogue(p) {
			bad = append(bad, strconv.Quote(p))
			continue
		}
		out = append(out, p)
	}
	if len(bad) > 0 {
		return nil, badRequest("events: %s matches no event; valid events are %s, or a pattern such as app.* or * (omit events for every event)",
			strings.Join(bad, ", "), strings.Join(event.All(), ", "))
	}
	return out, nil
}

func matchesCatalogue(p string) bool {
	return slices.ContainsFunc(event.All(), func(name string) bool { return event.Match(p, name) })
}

func checkWebhookDescription(d string) error {
	if len(d) > maxWebhookDescription {
		return badRequest("description is longer than %d bytes", maxWebhookDescription)
	}
	return nil
}
