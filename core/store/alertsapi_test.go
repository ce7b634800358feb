package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/event"
)

// openAlert opens an alert of kind on app with the given severity through
// EmitAlert (so the outbox gets its event) and returns it.
func (f *fixture) openAlert(t *testing.T, userID, appID int64, kind, severity string) *store.Alert {
	t.Helper()
	src, id := store.RuleSource(appID, kind)
	if !slices.Contains([]string{store.RuleCPU, store.RuleMemory, store.RuleNetwork, store.RuleDisk, store.RuleOffline}, kind) {
		src, id = store.EventAlertSource(appID, kind)
	}
	a, created, err := f.s.EmitAlert(f.ctx, store.NewAlert{UserID: userID, AppID: appID, Kind: kind, Severity: severity,
		SourceType: src, SourceID: id, Title: kind + " alert"}, event.Event{Type: event.AppCPU, UserID: userID, AppID: appID})
	if err != nil || !created {
		t.Fatalf("emit %s: %v (created %v)", kind, err, created)
	}
	return a
}

func ids(list []*store.Alert) []int64 {
	out := make([]int64, len(list))
	for i, a := range list {
		out[i] = a.ID
	}
	return out
}

func TestListAlertsFiltersPagesAndCounts(t *testing.T) {
	f := newFixture(t)
	other := f.mustUser(t, "eve@example.com")
	app2 := f.mustApp(t, f.user.ID, "second-app")
	evesApp := f.mustApp(t, other.ID, "eves-app")
	cpu := f.openAlert(t, f.user.ID, f.app.ID, store.RuleCPU, "warning")
	off := f.openAlert(t, f.user.ID, f.app.ID, store.RuleOffline, "critical")
	mem := f.openAlert(t, f.user.ID, app2.ID, store.RuleMemory, "warning")
	crash := f.openAlert(t, f.user.ID, app2.ID, store.AlertCrashloop, "critical")
	old := f.openAlert(t, f.user.ID, app2.ID, store.RuleDisk, "warning")
	f.openAlert(t, other.ID, evesApp.ID, store.RuleCPU, "critical")
	// mem acknowledged, crash resolved now, old resolved 3 days ago and
	// opened 4 days ago.
	if _, err := f.s.UpdateAlertStatus(f.ctx, mem.ID, f.user.ID, store.AlertAcknowledged); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.UpdateAlertStatus(f.ctx, crash.ID, f.user.ID, store.AlertResolved); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Pool().Exec(f.ctx, `UPDATE alerts SET status = 'resolved', created_at = now() - interval '4 days',
		resolved_at = now() - interval '3 days' WHERE id = $1`, old.ID); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name   string
		filter store.AlertFilter
		want   []int64
	}{
		{"all", store.AlertFilter{}, []int64{old.ID, crash.ID, mem.ID, off.ID, cpu.ID}},
		{"active", store.AlertFilter{Status: store.AlertActive}, []int64{off.ID, cpu.ID}},
		{"acknowledged", store.AlertFilter{Status: store.AlertAcknowledged}, []int64{mem.ID}},
		{"open", store.AlertFilter{Status: store.AlertOpen}, []int64{mem.ID, off.ID, cpu.ID}},
		{"resolved", store.AlertFilter{Status: store.AlertResolved}, []int64{old.ID, crash.ID}},
		{"kind", store.AlertFilter{Kind: store.RuleOffline}, []int64{off.ID}},
		{"app", store.AlertFilter{AppID: app2.ID}, []int64{old.ID, crash.ID, mem.ID}},
		{"eve's app", store.AlertFilter{AppID: evesApp.ID}, []int64{}},
		{"app and status", store.AlertFilter{AppID: app2.ID, Status: store.AlertOpen}, []int64{mem.ID}},
		{"first page", store.AlertFilter{Limit: 2}, []int64{old.ID, crash.ID}},
		{"second page", store.AlertFilter{Limit: 2, Before: crash.ID}, []int64{mem.ID, off.ID}},
		{"last page", store.AlertFilter{Limit: 2, Before: off.ID}, []int64{cpu.ID}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			list, _, err := f.s.ListAlerts(f.ctx, f.user.ID, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(list); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	_, st, err := f.s.ListAlerts(f.ctx, f.user.ID, store.AlertFilter{Status: store.AlertResolved, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := store.AlertStats{Open: 3, Active: 2, Acknowledged: 1, CriticalOpen: 1, Opened24h: 4, Resolved24h: 1, Resolved7d: 2}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	_, st, err = f.s.ListAlerts(f.ctx, f.user.ID, store.AlertFilter{AppID: app2.ID})
	if err != nil {
		t.Fatal(err)
	}
	want = store.AlertStats{Open: 1, Active: 0, Acknowledged: 1, CriticalOpen: 0, Opened24h: 2, Resolved24h: 1, Resolved7d: 2}
	if st != want {
		t.Errorf("app stats %+v, want %+v", st, want)
	}

	for _, bad := range []store.AlertFilter{{Status: "firing"}, {Kind: "bogus"}, {Limit: -1}, {Limit: store.MaxAlertPage + 1}} {
		if _, _, err := f.s.ListAlerts(f.ctx, f.user.ID, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestUpdateAlertStatus(t *testing.T) {
	f := newFixture(t)
	other := f.mustUser(t, "eve@example.com")
	if _, err := f.s.UpsertAlertRule(f.ctx, store.AlertRule{AppID: f.app.ID, Kind: store.RuleCPU, Enabled: true,
		Threshold: 75, SustainMinutes: 3}); err != nil {
		t.Fatal(err)
	}
	cpu := f.openAlert(t, f.user.ID, f.app.ID, store.RuleCPU, "warning")
	crash := f.openAlert(t, f.user.ID, f.app.ID, store.AlertCrashloop, "critical")
	outbox := func() []string {
		t.Helper()
		rows, err := f.s.Pool().Query(f.ctx, `SELECT type || ' ' || coalesce(user_id, 0) || ' ' || coalesce(app_id, 0) || ' ' || payload::text
			FROM event_outbox WHERE type LIKE '%.resolved' ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}

	// Someone else's alert, or none: not found, nothing changes.
	for _, id := range []int64{cpu.ID, 1 << 40} {
		if _, err := f.s.UpdateAlertStatus(f.ctx, id, other.ID, store.AlertResolved); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("alert %d as eve: %v, want ErrNotFound", id, err)
		}
	}
	if _, err := f.s.UpdateAlertStatus(f.ctx, cpu.ID, f.user.ID, store.AlertActive); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("back to active: %v, want ErrInvalid", err)
	}

	a, err := f.s.UpdateAlertStatus(f.ctx, cpu.ID, f.user.ID, store.AlertAcknowledged)
	if err != nil || a.Status != store.AlertAcknowledged || a.AcknowledgedAt == nil || a.ResolvedAt != nil {
		t.Fatalf("acknowledge: %+v, %v", a, err)
	}
	again, err := f.s.UpdateAlertStatus(f.ctx, cpu.ID, f.user.ID, store.AlertAcknowledged)
	if err != nil || !again.AcknowledgedAt.Equal(*a.AcknowledgedAt) || !again.UpdatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("acknowledge again: %+v, %v (want unchanged %+v)", again, err, a)
	}
	if got := outbox(); len(got) != 0 {
		t.Fatalf("acknowledging wrote %v", got)
	}

	r, err := f.s.UpdateAlertStatus(f.ctx, cpu.ID, f.user.ID, store.AlertResolved)
	if err != nil || r.Status != store.AlertResolved || r.ResolvedAt == nil || r.AcknowledgedAt == nil {
		t.Fatalf("resolve: %+v, %v", r, err)
	}
	data, _ := json.Marshal(event.AppData{AppName: f.app.Name, Subdomain: f.app.Subdomain, Threshold: 75, Reason: "resolved by its owner"})
	var canon map[string]any
	_ = json.Unmarshal(data, &canon)
	jb, _ := json.Marshal(canon) // jsonb orders keys by length, then bytes: compare decoded
	got := outbox()
	if len(got) != 1 {
		t.Fatalf("outbox after resolving %v", got)
	}
	prefix := fmt.Sprintf("%s %d %d ", event.AppCPUResolved, f.user.ID, f.app.ID)
	var gotData map[string]any
	if len(got[0]) < len(prefix) || got[0][:len(prefix)] != prefix || json.Unmarshal([]byte(got[0][len(prefix):]), &gotData) != nil {
		t.Fatalf("outbox %q, want %s…", got[0], prefix)
	}
	if gb, _ := json.Marshal(gotData); string(gb) != string(jb) {
		t.Errorf("event data %s, want %s", gb, jb)
	}

	// Resolving again: idempotent, no second event; acknowledging it: conflict.
	r2, err := f.s.UpdateAlertStatus(f.ctx, cpu.ID, f.user.ID, store.AlertResolved)
	if err != nil || !r2.ResolvedAt.Equal(*r.ResolvedAt) {
		t.Fatalf("resolve again: %+v, %v", r2, err)
	}
	if _, err := f.s.UpdateAlertStatus(f.ctx, cpu.ID, f.user.ID, store.AlertAcknowledged); !errors.Is(err, store.ErrConflict) {
		t.Errorf("acknowledge resolved: %v, want ErrConflict", err)
	}
	if got := outbox(); len(got) != 1 {
		t.Fatalf("outbox after resolving twice %v", got)
	}

	// An event-driven alert has no resolution event.
	c, err := f.s.UpdateAlertStatus(f.ctx, crash.ID, f.user.ID, store.AlertResolved)
	if err != nil || c.Status != store.AlertResolved || c.AcknowledgedAt != nil {
		t.Fatalf("resolve crash loop: %+v, %v", c, err)
	}
	if got := outbox(); len(got) != 1 {
		t.Errorf("resolving a crash loop wrote %v", got)
	}
	// A resolved source may open again (the dedup index covers open ones).
	f.openAlert(t, f.user.ID, f.app.ID, store.RuleCPU, "warning")
}
