package userapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
)

// alertRoutes are the routes of the caller's alerts and their apps' alert
// rules.
func (s *Service) alertRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/alerts", handler: s.listAlerts},
		{Method: http.MethodPost, Path: "/api/v1/alerts/:alert/acknowledge", handler: s.alertStatus(store.AlertAcknowledged)},
		{Method: http.MethodPost, Path: "/api/v1/alerts/:alert/resolve", handler: s.alertStatus(store.AlertResolved)},
		{Method: http.MethodGet, Path: "/api/v1/apps/:app/alert-rules", handler: s.listAlertRules},
		{Method: http.MethodPut, Path: "/api/v1/apps/:app/alert-rules/:kind", handler: s.putAlertRule},
	}
}

const defaultAlertLimit = 50

// listAlerts serves GET /api/v1/alerts?status=&kind=&app=&limit=&before=:
// the caller's alerts, newest first, with the headline figures (of the app
// when app names one; status, kind and the cursor do not narrow them).
// next_before, present when the page is full, fetches the next page.
func (s *Service) listAlerts(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	user := userOf(ctx)
	q := req.URL.Query()
	f := store.AlertFilter{Status: q.Get("status"), Kind: q.Get("kind"), Limit: defaultAlertLimit}
	switch f.Status {
	case "", store.AlertActive, store.AlertAcknowledged, store.AlertResolved, store.AlertOpen:
	default:
		return badRequest("status must be one of active, acknowledged, resolved, open (active or acknowledged)")
	}
	if f.Kind != "" && !slices.Contains(store.AlertKinds(), f.Kind) {
		return badRequest("kind must be one of %s", strings.Join(store.AlertKinds(), ", "))
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxAlertPage {
			return badRequest("limit must be an integer within 1..%d", store.MaxAlertPage)
		}
		f.Limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return badRequest("before must be a positive integer (a previous page's next_before)")
		}
		f.Before = n
	}
	if ref := q.Get("app"); ref != "" {
		a, err := s.ownedApp(ctx, user, ref)
		if err != nil {
			return err
		}
		f.AppID = a.ID
	}
	list, stats, err := s.o.Store.ListAlerts(ctx, user.ID, f)
	if err != nil {
		return fmt.Errorf("userapi: %w", err)
	}
	if list == nil {
		list = []*store.Alert{}
	}
	body := map[string]any{"alerts": list, "stats": stats}
	if len(list) == f.Limit {
		body["next_before"] = list[len(list)-1].ID
	}
	return api.WriteJSON(w, http.StatusOK, body)
}

// alertStatus serves POST /api/v1/alerts/:alert/acknowledge and …/resolve:
// 200 with the alert. Both are idempotent (acknowledging an acknowledged
// alert, resolving a resolved one, answer it as it is); acknowledging a
// resolved alert is a 409.
func (s *Service) alertStatus(status string) bunrouter.HandlerFunc {
	return func(w http.ResponseWriter, req bunrouter.Request) error {
		id, ok := idParam(req, "alert")
		if !ok {
			return errNoAlert
		}
		a, err := s.o.Store.UpdateAlertStatus(req.Context(), id, userOf(req.Context()).ID, status)
		switch {
		case errors.Is(err, store.ErrConflict):
			return api.Errorf(http.StatusConflict, "conflict", "the alert is resolved; only an open alert can be acknowledged")
		case err != nil:
			return storeErr(err, "alert")
		}
		return api.WriteJSON(w, http.StatusOK, a)
	}
}

var errNoAlert = api.Errorf(http.StatusNotFound, "not_found", "no such alert")

// alertRuleView is an app's alert rule as the API shows it.
type alertRuleView struct {
	Kind    string `json:"kind"`
	Enabled bool   `json:"enabled"`
	// Threshold is in Unit; the offline rule has none (its window is
	// SustainMinutes).
	Threshold      float64   `json:"threshold"`
	Unit           string    `json:"unit,omitempty"`
	SustainMinutes int       `json:"sustain_minutes"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// ruleUnits are the units of the rule kinds' thresholds.
var ruleUnits = map[string]string{
	store.RuleCPU: "%", store.RuleMemory: "%", store.RuleNetwork: "Mbit/s", store.RuleDisk: "MB/s", store.RuleOffline: "",
}

var ruleKinds = []string{store.RuleCPU, store.RuleMemory, store.RuleNetwork, store.RuleDisk, store.RuleOffline}

func viewAlertRule(r store.AlertRule) alertRuleView {
	return alertRuleView{Kind: r.Kind, Enabled: r.Enabled, Threshold: r.Threshold, Unit: ruleUnits[r.Kind],
		SustainMinutes: r.SustainMinutes, UpdatedAt: r.UpdatedAt}
}

// listAlertRules serves GET /api/v1/apps/:app/alert-rules.
func (s *Service) listAlertRules(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	a, err := s.ownedApp(ctx, userOf(ctx), req.Param("app"))
	if err != nil {
		return err
	}
	rules, err := s.o.Store.ListAppAlertRules(ctx, a.ID)
	if err != nil {
		return fmt.Errorf("userapi: %w", err)
	}
	out := make([]alertRuleView, len(rules))
	for i, r := range rules {
		out[i] = viewAlertRule(r)
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"rules": out})
}

// alertRuleInput is the body of PUT /api/v1/apps/:app/alert-rules/:kind:
// the whole rule (threshold is left out for the offline rule).
type alertRuleInput struct {
	Enabled        *bool    `json:"enabled"`
	Threshold      *float64 `json:"threshold"`
	SustainMinutes *int     `json:"sustain_minutes"`
}

// Bounds of a rule.
const (
	maxRuleRate    = 100000 // Mbit/s or MB/s
	maxRuleSustain = 1440   // minutes
)

// checkAlertRule checks a rule body for kind and returns the rule to store.
func checkAlertRule(kind string, in alertRuleInput) (store.AlertRule, error) {
	r := store.AlertRule{Kind: kind}
	if in.Enabled == nil {
		return r, badRequest("enabled is required")
	}
	r.Enabled = *in.Enabled
	if in.SustainMinutes == nil || *in.SustainMinutes < 1 || *in.SustainMinutes > maxRuleSustain {
		return r, badRequest("sustain_minutes is required: how long, 1 to %d minutes, the condition must last before the alert fires", maxRuleSustain)
	}
	r.SustainMinutes = *in.SustainMinutes
	switch kind {
	case store.RuleOffline:
		if in.Threshold != nil && *in.Threshold != 0 {
			return r, badRequest("the offline rule has no threshold: it fires when the app's worker is silent for sustain_minutes")
		}
	case store.RuleCPU, store.RuleMemory:
		if in.Threshold == nil || *in.Threshold < 1 || *in.Threshold > 100 {
			return r, badRequest("threshold is required for %s: a percentage from 1 to 100", kind)
		}
		r.Threshold = *in.Threshold
	default: // network, disk
		if in.Threshold == nil || *in.Threshold <= 0 || *in.Threshold > maxRuleRate {
			return r, badRequest("threshold is required for %s: %s above 0, at most %d", kind, ruleUnits[kind], maxRuleRate)
		}
		r.Threshold = *in.Threshold
	}
	return r, nil
}

// putAlertRule serves PUT /api/v1/apps/:app/alert-rules/:kind: 200 with the
// rule as stored.
func (s *Service) putAlertRule(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	a, err := s.ownedApp(ctx, userOf(ctx), req.Param("app"))
	if err != nil {
		return err
	}
	kind := req.Param("kind")
	if !slices.Contains(ruleKinds, kind) {
		return api.Errorf(http.StatusNotFound, "not_found", "no alert rule kind %q: the kinds are %s", kind, strings.Join(ruleKinds, ", "))
	}
	var in alertRuleInput
	if err := decode(req, &in); err != nil {
		return err
	}
	r, err := checkAlertRule(kind, in)
	if err != nil {
		return err
	}
	r.AppID = a.ID
	out, err := s.o.Store.UpsertAlertRule(ctx, r)
	if err != nil {
		return storeErr(err, "app")
	}
	return api.WriteJSON(w, http.StatusOK, viewAlertRule(*out))
}
