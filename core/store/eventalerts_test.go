package store_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/event"
)

// alertsOf returns the app's alerts of kind as "status severity title |
// message", oldest first.
func (f *fixture) alertsOf(t *testing.T, appID int64, kind string) []string {
	t.Helper()
	rows, err := f.s.Pool().Query(f.ctx, `SELECT status || ' ' || severity || ' ' || title || ' | ' || message ||
		CASE WHEN status = 'resolved' AND resolved_at IS NULL THEN ' (no resolved_at)' ELSE '' END
		FROM alerts WHERE app_id = $1 AND kind = $2 ORDER BY id`, appID, kind)
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

func (f *fixture) expectAlerts(t *testing.T, when, kind string, want ...string) {
	t.Helper()
	if got := f.alertsOf(t, f.app.ID, kind); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: %s alerts\n%s\nwant\n%s", when, kind, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Crash loops, failed deployments and violations open their alert in the
// transaction of the change that reports them, one open per app and kind;
// recovery, a stop or a successful deployment resolve them.
func TestEventDrivenAlerts(t *testing.T) {
	f := newFixture(t)
	f.running(t, f.app.ID, f.worker.ID)
	report := func(status string, restarts int64) {
		t.Helper()
		if _, err := f.s.ReportAppStatus(f.ctx, f.worker.ID, f.app.ID, status, restarts, "exit 1"); err != nil {
			t.Fatal(err)
		}
	}
	const crash = "active critical hello-world keeps crashing | exit 1"
	const crashed = "resolved critical hello-world keeps crashing | exit 1"
	report("crashloop", 3)
	f.expectAlerts(t, "a crash loop", store.AlertCrashloop, crash)
	report("crashloop", 5)
	f.expectAlerts(t, "still crash-looping", store.AlertCrashloop, crash)
	report("running", 5)
	f.expectAlerts(t, "back up", store.AlertCrashloop, crashed)
	report("crashloop", 8)
	report("stopped", 0)
	f.expectAlerts(t, "a second loop, then stopped", store.AlertCrashloop, crashed, crashed)

	// Failed deployments: one open alert however many fail, with the first
	// line of the error; the next successful deployment resolves it.
	fail := func(msg string) {
		t.Helper()
		d := f.pinnedDeploy(t, f.app.ID, f.worker.ID)
		if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Error: msg}); err != nil {
			t.Fatal(err)
		}
	}
	fail("build failed: exit 2\nnpm ERR! missing script")
	fail("build failed: exit 3")
	f.expectAlerts(t, "two failed deployments", store.AlertDeploymentFailed,
		"active warning hello-world deployment failed | build failed: exit 2")
	f.running(t, f.app.ID, f.worker.ID)
	f.expectAlerts(t, "a successful deployment", store.AlertDeploymentFailed,
		"resolved warning hello-world deployment failed | build failed: exit 2")

	// A violation, resolved by the next release.
	if _, err := f.s.ReportViolation(f.ctx, f.worker.ID, f.app.ID, "memory over 512MiB"); err != nil {
		t.Fatal(err)
	}
	f.expectAlerts(t, "a violation", store.AlertViolation, "active critical hello-world broke a resource limit | memory over 512MiB")
	f.running(t, f.app.ID, f.worker.ID)
	f.expectAlerts(t, "redeployed", store.AlertViolation, "resolved critical hello-world broke a resource limit | memory over 512MiB")
	if n := f.count(t, `SELECT count(*) FROM alerts WHERE source_type = 'app_event' AND status <> 'resolved'`); n != 0 {
		t.Fatalf("%d event-driven alerts still open", n)
	}
}

// An event about an app that no longer exists (events outlive apps) is
// written without an alert, and does not fail its transaction.
func TestEventAlertForGoneApp(t *testing.T) {
	f := newFixture(t)
	err := f.s.InTx(f.ctx, func(tx pgx.Tx) error {
		return store.EmitEvents(f.ctx, tx, []event.Event{
			{Type: event.DeploymentFailed, UserID: f.user.ID, AppID: 1 << 40},
			{Type: event.AppCrashloop, UserID: 1 << 40, AppID: f.app.ID},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, `SELECT count(*) FROM alerts`); n != 0 {
		t.Fatalf("%d alerts for a gone app or a stranger's", n)
	}
	if n := f.count(t, `SELECT count(*) FROM event_outbox`); n != 2 {
		t.Fatalf("%d events written, want 2", n)
	}
}
