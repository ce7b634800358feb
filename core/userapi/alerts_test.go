package userapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/event"
)

// Ada's app of the webhook, alert and usage fixtures, and the marker of
// her alert.
const (
	obsAppName    = "ada-obs-app"
	adaAlertTitle = "ada-alert-title-c0ffee"
)

func init() {
	fixtureBuilders = append(fixtureBuilders, func(e *env, f *fixture) {
		a := obsApp(e, f)
		al, _, err := e.st.EmitAlert(context.Background(), store.NewAlert{UserID: e.ada.ID, AppID: a.ID, Kind: store.RuleCPU,
			SourceType: "app_rule", SourceID: fmt.Sprintf("%d:cpu", a.ID), Title: adaAlertTitle, Message: "cpu at 99 %"},
			event.Event{Type: event.AppCPU, UserID: e.ada.ID, AppID: a.ID})
		if err != nil {
			e.t.Fatal(err)
		}
		f.params["alert"] = strconv.FormatInt(al.ID, 10)
		f.params["kind"] = store.RuleCPU
		f.markers = append(f.markers, adaAlertTitle)
	})
	snapshotters = append(snapshotters, func(ctx context.Context, e *env) any {
		return []any{
			obsDump(e, `SELECT * FROM alerts WHERE user_id = $1 ORDER BY id`, e.ada.ID),
			obsDump(e, `SELECT * FROM app_alert_rules WHERE user_id = $1 ORDER BY id`, e.ada.ID),
			obsDump(e, `SELECT type, app_id FROM event_outbox WHERE user_id = $1 ORDER BY id`, e.ada.ID),
		}
	})
	ownershipBodies["PUT /api/v1/apps/:app/alert-rules/:kind"] = map[string]any{"enabled": false, "threshold": 50, "sustain_minutes": 10}
	// eve has no app of that name: her filter is a 404.
	ownershipQueries["GET /api/v1/alerts"] = "app=" + obsAppName
}

// obsApp returns ada's app of these fixtures, creating it the first time
// (its UUID is a marker).
func obsApp(e *env, f *fixture) *store.App {
	ctx := context.Background()
	if _, ok := f.params["obs_app"]; !ok {
		a, err := e.st.CreateApp(ctx, store.NewApp{UserID: e.ada.ID, Name: obsAppName, GitRepo: "https://git.example.com/ada/obs.git", GitBranch: "main"})
		if err != nil {
			e.t.Fatal(err)
		}
		f.params["obs_app"] = a.UUID
		f.markers = append(f.markers, a.UUID)
	}
	a, err := e.st.FindAppByUUID(ctx, f.params["obs_app"])
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// seedApp creates an app of user.
func (e *env) seedApp(user *store.User, name string) *store.App {
	e.t.Helper()
	a, err := e.st.CreateApp(context.Background(), store.NewApp{UserID: user.ID, Name: name, GitRepo: "https://git.example.com/x.git", GitBranch: "main"})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// alertsReply is GET /api/v1/alerts's answer.
type alertsReply struct {
	Alerts     []store.Alert    `json:"alerts"`
	Stats      store.AlertStats `json:"stats"`
	NextBefore int64            `json:"next_before"`
}

func alertIDs(list []store.Alert) []int64 {
	out := make([]int64, len(list))
	for i, a := range list {
		out[i] = a.ID
	}
	return out
}

func TestAlertsRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	web := e.seedApp(e.ada, "web-frontend")
	api := e.seedApp(e.ada, "api-backend")
	evesApp := e.seedApp(e.eve, "eve-service")
	if _, err := e.st.UpsertAlertRule(ctx, store.AlertRule{AppID: web.ID, Kind: store.RuleMemory, Enabled: true, Threshold: 80, SustainMinutes: 5}); err != nil {
		t.Fatal(err)
	}
	open := func(a *store.App, kind, severity string) *store.Alert {
		t.Helper()
		src, id := store.RuleSource(a.ID, kind)
		if kind == store.AlertCrashloop {
			src, id = store.EventAlertSource(a.ID, kind)
		}
		al, _, err := e.st.EmitAlert(ctx, store.NewAlert{UserID: a.UserID, AppID: a.ID, Kind: kind, Severity: severity,
			SourceType: src, SourceID: id, Title: a.Name + " " + kind}, event.Event{Type: event.AppCPU, UserID: a.UserID, AppID: a.ID})
		if err != nil {
			t.Fatal(err)
		}
		return al
	}
	mem := open(web, store.RuleMemory, "warning")
	off := open(web, store.RuleOffline, "critical")
	crash := open(api, store.AlertCrashloop, "critical")
	open(evesApp, store.RuleCPU, "warning")

	list := func(q string) alertsReply {
		t.Helper()
		var r alertsReply
		e.must(e.ada, http.StatusOK, http.MethodGet, "/api/v1/alerts"+q, nil).JSON(t, &r)
		return r
	}
	for _, tt := range []struct {
		q    string
		want []int64
	}{
		{"", []int64{crash.ID, off.ID, mem.ID}},
		{"?status=active", []int64{crash.ID, off.ID, mem.ID}},
		{"?status=resolved", []int64{}},
		{"?kind=offline", []int64{off.ID}},
		{"?app=web-frontend", []int64{off.ID, mem.ID}},
		{"?app=" + api.UUID, []int64{crash.ID}},
		{"?app=api-backend&kind=offline", []int64{}},
		{"?limit=2", []int64{crash.ID, off.ID}},
		{fmt.Sprintf("?limit=2&before=%d", off.ID), []int64{mem.ID}},
	} {
		if got := alertIDs(list(tt.q).Alerts); !slices.Equal(got, tt.want) {
			t.Errorf("GET /api/v1/alerts%s: %v, want %v", tt.q, got, tt.want)
		}
	}
	if r := list("?limit=2"); r.NextBefore != off.ID || r.Stats != (store.AlertStats{Open: 3, Active: 3, CriticalOpen: 2, Opened24h: 3}) {
		t.Errorf("first page: next_before %d, stats %+v", r.NextBefore, r.Stats)
	}
	if r := list("?limit=3"); r.NextBefore != mem.ID || len(r.Alerts) != 3 {
		t.Errorf("a full page: next_before %d", r.NextBefore)
	}
	if r := list(fmt.Sprintf("?before=%d", mem.ID)); r.NextBefore != 0 || len(r.Alerts) != 0 {
		t.Errorf("past the end: %+v", r)
	}
	for _, tt := range []struct {
		q    string
		want int
		msg  string
	}{
		{"?status=firing", 400, "status must be one of active, acknowledged, resolved, open"},
		{"?kind=fire", 400, "kind must be one of cpu, memory, network, disk, offline, crashloop, deployment_failed, violation"},
		{"?limit=0", 400, "limit"},
		{"?limit=501", 400, "limit"},
		{"?before=x", 400, "before"},
		{"?app=no-such-app", 404, "no such app"},
		{"?app=eve-service", 404, "no such app"},
		{"?app=" + evesApp.UUID, 404, "no such app"},
	} {
		if r := e.do(e.ada, http.MethodGet, "/api/v1/alerts"+tt.q, nil); r.Status != tt.want || !strings.Contains(string(r.Body), tt.msg) {
			t.Errorf("GET /api/v1/alerts%s: %d\n%s", tt.q, r.Status, r.Body)
		}
	}

	// Acknowledge, resolve (once: again is the same), and the event.
	var a store.Alert
	e.must(e.ada, http.StatusOK, http.MethodPost, fmt.Sprintf("/api/v1/alerts/%d/acknowledge", mem.ID), nil).JSON(t, &a)
	if a.Status != "acknowledged" || a.AcknowledgedAt == nil {
		t.Errorf("acknowledged %+v", a)
	}
	e.must(e.ada, http.StatusOK, http.MethodPost, fmt.Sprintf("/api/v1/alerts/%d/acknowledge", mem.ID), nil)
	if got := alertIDs(list("?status=acknowledged").Alerts); !slices.Equal(got, []int64{mem.ID}) {
		t.Errorf("acknowledged list %v", got)
	}
	for range 2 {
		e.must(e.ada, http.StatusOK, http.MethodPost, fmt.Sprintf("/api/v1/alerts/%d/resolve", mem.ID), nil).JSON(t, &a)
		if a.Status != "resolved" || a.ResolvedAt == nil {
			t.Errorf("resolved %+v", a)
		}
	}
	if r := e.do(e.ada, http.MethodPost, fmt.Sprintf("/api/v1/alerts/%d/acknowledge", mem.ID), nil); r.Status != http.StatusConflict || r.ErrorCode() != "conflict" {
		t.Errorf("acknowledging a resolved alert: %d\n%s", r.Status, r.Body)
	}
	e.must(e.ada, http.StatusOK, http.MethodPost, fmt.Sprintf("/api/v1/alerts/%d/resolve", crash.ID), nil)
	var resolved []string
	rows, err := e.st.Pool().Query(ctx, `SELECT type || ' ' || app_id || ' ' || (payload->>'app_name') || ' ' || (payload->>'threshold')
		|| ' ' || (payload->>'reason') FROM event_outbox WHERE user_id = $1 AND type LIKE '%.resolved' ORDER BY id`, e.ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		resolved = append(resolved, s)
	}
	if want := []string{fmt.Sprintf("app.memory.resolved %d web-frontend 80 resolved by its owner", web.ID)}; !slices.Equal(resolved, want) {
		t.Errorf("resolution events %q, want %q", resolved, want)
	}
	if r := list(""); r.Stats != (store.AlertStats{Open: 1, Active: 1, CriticalOpen: 1, Opened24h: 3, Resolved24h: 2, Resolved7d: 2}) {
		t.Errorf("stats after resolving %+v", r.Stats)
	}
	for _, p := range []string{"/api/v1/alerts/x/resolve", "/api/v1/alerts/0/acknowledge", "/api/v1/alerts/99999999/resolve"} {
		if r := e.do(e.ada, http.MethodPost, p, nil); r.Status != http.StatusNotFound {
			t.Errorf("POST %s: %d", p, r.Status)
		}
	}
}

type ruleReply struct {
	Kind           string  `json:"kind"`
	Enabled        bool    `json:"enabled"`
	Threshold      float64 `json:"threshold"`
	Unit           string  `json:"unit"`
	SustainMinutes int     `json:"sustain_minutes"`
}

func TestAlertRulesRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.seedApp(e.ada, "rules-app")
	var rules struct{ Rules []ruleReply }
	e.must(e.ada, http.StatusOK, http.MethodGet, "/api/v1/apps/rules-app/alert-rules", nil).JSON(t, &rules)
	var got []string
	for _, r := range rules.Rules {
		got = append(got, fmt.Sprintf("%s %v %g%s %d", r.Kind, r.Enabled, r.Threshold, r.Unit, r.SustainMinutes))
	}
	if want := []string{"cpu true 90% 5", "disk true 200MB/s 5", "memory true 90% 5", "network true 800Mbit/s 5", "offline true 0 2"}; !slices.Equal(got, want) {
		t.Errorf("default rules %q, want %q", got, want)
	}

	path := "/api/v1/apps/" + a.UUID + "/alert-rules/"
	for _, tt := range []struct {
		kind string
		body string
		want int
		msg  string
	}{
		{"cpu", `{"enabled": true, "threshold": 75.5, "sustain_minutes": 10}`, 200, ""},
		{"memory", `{"enabled": false, "threshold": 100, "sustain_minutes": 1440}`, 200, ""},
		{"network", `{"enabled": true, "threshold": 0.5, "sustain_minutes": 1}`, 200, ""},
		{"disk", `{"enabled": true, "threshold": 50, "sustain_minutes": 3}`, 200, ""},
		{"offline", `{"enabled": true, "sustain_minutes": 7}`, 200, ""},
		{"offline", `{"enabled": true, "threshold": 0, "sustain_minutes": 7}`, 200, ""},
		{"offline", `{"enabled": true, "threshold": 5, "sustain_minutes": 7}`, 400, "the offline rule has no threshold"},
		{"cpu", `{"enabled": true, "threshold": 0.5, "sustain_minutes": 5}`, 400, "a percentage from 1 to 100"},
		{"cpu", `{"enabled": true, "threshold": 101, "sustain_minutes": 5}`, 400, "a percentage from 1 to 100"},
		{"memory", `{"enabled": true, "sustain_minutes": 5}`, 400, "threshold is required for memory"},
		{"network", `{"enabled": true, "threshold": 0, "sustain_minutes": 5}`, 400, "Mbit/s above 0"},
		{"disk", `{"enabled": true, "threshold": -1, "sustain_minutes": 5}`, 400, "MB/s above 0"},
		{"disk", `{"enabled": true, "threshold": 100001, "sustain_minutes": 5}`, 400, "at most 100000"},
		{"cpu", `{"enabled": true, "threshold": 50, "sustain_minutes": 0}`, 400, "sustain_minutes"},
		{"cpu", `{"enabled": true, "threshold": 50, "sustain_minutes": 1441}`, 400, "sustain_minutes"},
		{"cpu", `{"enabled": true, "threshold": 50}`, 400, "sustain_minutes is required"},
		{"cpu", `{"threshold": 50, "sustain_minutes": 5}`, 400, "enabled is required"},
		{"cpu", `{"enabled": true, "threshold": 50, "sustain_minutes": 5, "severity": "high"}`, 400, "unknown field"},
		{"cpu", `{"enabled": true, "threshold": "50", "sustain_minutes": 5}`, 400, "invalid JSON"},
		{"latency", `{"enabled": true, "threshold": 50, "sustain_minutes": 5}`, 404, "the kinds are cpu, memory, network, disk, offline"},
	} {
		r := e.do(e.ada, http.MethodPut, path+tt.kind, tt.body)
		if r.Status != tt.want || !strings.Contains(string(r.Body), tt.msg) {
			t.Errorf("PUT %s %s: %d, want %d with %q\n%s", tt.kind, tt.body, r.Status, tt.want, tt.msg, r.Body)
		}
	}
	e.must(e.ada, http.StatusOK, http.MethodGet, "/api/v1/apps/rules-app/alert-rules", nil).JSON(t, &rules)
	got = got[:0]
	for _, r := range rules.Rules {
		got = append(got, fmt.Sprintf("%s %v %g %d", r.Kind, r.Enabled, r.Threshold, r.SustainMinutes))
	}
	if want := []string{"cpu true 75.5 10", "disk true 50 3", "memory false 100 1440", "network true 0.5 1", "offline true 0 7"}; !slices.Equal(got, want) {
		t.Errorf("rules after the changes %q, want %q", got, want)
	}
	if r := e.do(e.ada, http.MethodGet, "/api/v1/apps/no-such-app/alert-rules", nil); r.Status != http.StatusNotFound {
		t.Errorf("unknown app: %d", r.Status)
	}
}
