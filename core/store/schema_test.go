package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
)

// The 18 tables of the seed's data layer, plus what this design adds.
var wantTables = []string{
	"users", "workers", "apps", "deployments", "jobs", "app_env_vars", "git_provider_tokens",
	"webhooks", "webhook_deliveries", "sessions", "audit_events", "app_alert_rules", "alerts",
	"usage_samples", "backup_codes", "pending_totps", "domains", "runtime_logs",
	"event_outbox", "app_reservations", "api_tokens",
}

func TestMigrateCreatesEveryTable(t *testing.T) {
	ctx := context.Background()
	cs := storetest.ConnString(t)
	conn, err := pgx.Connect(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range wantTables {
		if !set[w] {
			t.Errorf("table %s missing after migrate (have %v)", w, have)
		}
	}
	if !set[store.VersionTable] {
		t.Errorf("version table %s missing", store.VersionTable)
	}
}

func TestMigrateIsIdempotentAndReportsStatus(t *testing.T) {
	ctx := context.Background()
	cs := storetest.ConnString(t) // already migrated once
	st, err := store.Migrate(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current != st.Latest || st.Latest < 1 || len(st.Pending) != 0 {
		t.Fatalf("status after migrate = %+v", st)
	}
	st2, err := store.Status(ctx, cs)
	if err != nil || st2.Current != st.Current {
		t.Fatalf("Status = %+v, %v", st2, err)
	}
}

func TestSchemaNewerThanBinaryFailsFast(t *testing.T) {
	ctx := context.Background()
	cs := storetest.ConnString(t)
	conn, err := pgx.Connect(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE `+store.VersionTable+` SET version = 999`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(ctx, cs); !errors.Is(err, store.ErrSchemaNewer) {
		t.Fatalf("Migrate on a newer schema = %v, want ErrSchemaNewer", err)
	}
	if _, err := store.Status(ctx, cs); !errors.Is(err, store.ErrSchemaNewer) {
		t.Fatalf("Status on a newer schema = %v, want ErrSchemaNewer", err)
	}
}

func TestConstraints(t *testing.T) {
	f := newFixture(t)
	other := f.mustUser(t, "grace@example.com")
	cases := []struct {
		name string
		run  func() error
		want error // nil = must succeed
	}{
		{"duplicate app name for the same user", func() error {
			_, err := f.s.CreateApp(f.ctx, store.NewApp{UserID: f.user.ID, Name: "hello-world", Subdomain: "hello-world-2"})
			return err
		}, store.ErrConflict},
		{"same name for another user needs another subdomain", func() error {
			_, err := f.s.CreateApp(f.ctx, store.NewApp{UserID: other.ID, Name: "hello-world"})
			return err
		}, store.ErrConflict},
		{"same name for another user with its own subdomain", func() error {
			_, err := f.s.CreateApp(f.ctx, store.NewApp{UserID: other.ID, Name: "hello-world", Subdomain: "grace-hello"})
			return err
		}, nil},
		{"app name too short", func() error {
			_, err := f.s.CreateApp(f.ctx, store.NewApp{UserID: f.user.ID, Name: "abc"})
			return err
		}, store.ErrInvalid},
		{"app name with uppercase", func() error {
			_, err := f.s.CreateApp(f.ctx, store.NewApp{UserID: f.user.ID, Name: "Hello-World"})
			return err
		}, store.ErrInvalid},
		{"subdomain with a dot", func() error {
			_, err := f.s.CreateApp(f.ctx, store.NewApp{UserID: f.user.ID, Name: "dotted-app", Subdomain: "a.b"})
			return err
		}, store.ErrInvalid},
		{"bad app status", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `UPDATE apps SET status = 'exploded' WHERE id = $1`, f.app.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"deleted status without deleted_at", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `UPDATE apps SET status = 'deleted' WHERE id = $1`, f.app.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"bad job status", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `INSERT INTO jobs (type, app_id, status) VALUES ('deploy', $1, 'bogus')`, f.app.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"bad job type", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `INSERT INTO jobs (type, app_id) VALUES ('explode', $1)`, f.app.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"bad worker status", func() error { return f.s.SetWorkerStatus(f.ctx, f.worker.ID, "asleep") }, store.ErrInvalid},
		{"unknown runtime offered", func() error {
			_, err := f.s.RegisterWorker(f.ctx, f.worker.ID, store.Registration{Runtimes: []string{"docker"}})
			return err
		}, store.ErrInvalid},
		{"duplicate worker name", func() error {
			_, err := f.s.CreateWorker(f.ctx, store.NewWorker{Name: "w1", Creds: store.WorkerCredentials{
				APIKeyHash: strings.Repeat("a", 64), KeyID: "k", SealedEnvelopeKey: "v1:x"}})
			return err
		}, store.ErrConflict},
		{"envelope key in the clear", func() error {
			_, err := f.s.CreateWorker(f.ctx, store.NewWorker{Name: "w-clear", Creds: store.WorkerCredentials{
				APIKeyHash: strings.Repeat("b", 64), KeyID: "k", SealedEnvelopeKey: "raw-key-material"}})
			return err
		}, store.ErrInvalid},
		{"duplicate email, any case", func() error {
			_, err := f.s.CreateUser(f.ctx, store.NewUser{Email: "ADA@example.com"})
			return err
		}, store.ErrConflict},
		{"bad env key", func() error { return f.s.SetAppEnvVar(f.ctx, f.app.ID, "lower", "x") }, store.ErrInvalid},
		{"negative capacity", func() error {
			_, err := f.s.RegisterWorker(f.ctx, f.worker.ID, store.Registration{CapacityCPU: -1})
			return err
		}, store.ErrInvalid},
		{"uppercase domain", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `INSERT INTO domains (app_id, user_id, hostname, verification_token)
				VALUES ($1, $2, 'Example.COM', 't')`, f.app.ID, f.user.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"domain with a backtick", func() error {
			_, err := f.s.Pool().Exec(f.ctx, "INSERT INTO domains (app_id, user_id, hostname, verification_token) VALUES ($1, $2, 'a`b.com', 't')", f.app.ID, f.user.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"usage bucket not on a 5-minute boundary", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `INSERT INTO usage_samples (app_id, user_id, bucket_start)
				VALUES ($1, $2, '2026-01-01 00:03:00+00')`, f.app.ID, f.user.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"second open alert for one source", func() error {
			q := `INSERT INTO alerts (user_id, app_id, kind, source_type, source_id) VALUES ($1, $2, 'cpu', 'app_rule', 'cpu:1')`
			if _, err := f.s.Pool().Exec(f.ctx, q, f.user.ID, f.app.ID); err != nil {
				return err
			}
			_, err := f.s.Pool().Exec(f.ctx, q, f.user.ID, f.app.ID)
			return mapped(err)
		}, store.ErrConflict},
		{"bad audit kind", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `INSERT INTO audit_events (user_id, kind) VALUES ($1, 'hacked')`, f.user.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"bad outbox event type", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `INSERT INTO event_outbox (type) VALUES ('Not An Event')`)
			return mapped(err)
		}, store.ErrInvalid},
		// Pattern rules are domains (migration 004): checked whenever the
		// column is written, by insert or update.
		{"worker renamed to a bad name", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `UPDATE workers SET name = '-bad name' WHERE id = $1`, f.worker.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"worker moved to a bad zone", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `UPDATE workers SET zone = 'Zone_1' WHERE id = $1`, f.worker.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"worker key hash not hex", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `UPDATE workers SET api_key_hash = repeat('g', 64) WHERE id = $1`, f.worker.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"subdomain updated to a bad label", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `UPDATE apps SET subdomain = 'bad-' WHERE id = $1`, f.app.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"bad plan name", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `UPDATE users SET plan = 'Gold Plan' WHERE id = $1`, f.user.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"webhook URL without a scheme", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `INSERT INTO webhooks (user_id, url, secret) VALUES ($1, 'example.com/hook', 'v1:x')`, f.user.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"session token hash not hex", func() error {
			_, err := f.s.Pool().Exec(f.ctx, `INSERT INTO sessions (user_id, token_hash) VALUES ($1, 'plaintext-token')`, f.user.ID)
			return mapped(err)
		}, store.ErrInvalid},
		{"duplicate git provider link", func() error {
			q := `INSERT INTO git_provider_tokens (user_id, provider, token) VALUES ($1, 'github', 'v1:x')`
			if _, err := f.s.Pool().Exec(f.ctx, q, f.user.ID); err != nil {
				return err
			}
			_, err := f.s.Pool().Exec(f.ctx, q, f.user.ID)
			return mapped(err)
		}, store.ErrConflict},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run()
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != nil && !errors.Is(err, c.want):
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// mapped runs a raw driver error through the store's error mapping by
// checking its SQLSTATE class, so raw-SQL cases share the sentinels.
func mapped(err error) error { return store.MapError("test", err) }

func TestSoftDeleteFreesNameAndSubdomain(t *testing.T) {
	f := newFixture(t)
	if _, err := f.s.MarkAppDeleted(f.ctx, f.app.ID); err != nil {
		t.Fatal(err)
	}
	again, err := f.s.CreateApp(f.ctx, store.NewApp{UserID: f.user.ID, Name: "hello-world"})
	if err != nil {
		t.Fatalf("recreating a deleted app's name: %v", err)
	}
	if again.Subdomain != "hello-world" || again.UUID == f.app.UUID {
		t.Fatalf("recreated app = %+v", again)
	}
	if _, err := f.s.FindAppByUUID(f.ctx, f.app.UUID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted app still found by uuid: %v", err)
	}
}

func TestCascadeDeletes(t *testing.T) {
	f := newFixture(t)
	// Give the user something in every table that hangs off users and apps.
	d, err := f.s.CreateDeployment(f.ctx, f.app.ID, store.NewDeployment{CommitSHA: "abc"}, store.NewJob{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetAppEnvVar(f.ctx, f.app.ID, "PORT", "8080"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.UpsertGitToken(f.ctx, f.user.ID, "github", "ada", "ghp_secret"); err != nil {
		t.Fatal(err)
	}
	var hookID int64
	if err := f.s.Pool().QueryRow(f.ctx, `INSERT INTO webhooks (user_id, url, secret) VALUES ($1, 'https://hooks.example/x', 'v1:s') RETURNING id`, f.user.ID).Scan(&hookID); err != nil {
		t.Fatal(err)
	}
	u, a := f.user.ID, f.app.ID
	inserts := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO webhook_deliveries (webhook_id, event_id, event) VALUES ($1, 'e1', 'app.cpu')`, []any{hookID}},
		{`INSERT INTO sessions (user_id, token_hash) VALUES ($1, repeat('a', 64))`, []any{u}},
		{`INSERT INTO audit_events (user_id, kind) VALUES ($1, 'login')`, []any{u}},
		{`INSERT INTO api_tokens (user_id, name, token_hash, prefix) VALUES ($1, 'ci', repeat('b', 64), 'wht_abcd')`, []any{u}},
		{`INSERT INTO app_alert_rules (app_id, user_id, kind) VALUES ($1, $2, 'cpu') ON CONFLICT (app_id, kind) DO NOTHING`, []any{a, u}}, // CreateApp gave it its rules
		{`INSERT INTO alerts (user_id, app_id, kind, source_type, source_id) VALUES ($1, $2, 'cpu', 'rule', '1')`, []any{u, a}},
		{`INSERT INTO usage_samples (app_id, user_id, bucket_start) VALUES ($1, $2, '2026-01-01 00:05:00+00')`, []any{a, u}},
		{`INSERT INTO backup_codes (user_id, code_hash) VALUES ($1, '$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA')`, []any{u}},
		{`INSERT INTO pending_totps (token_hash, user_id, expires_at) VALUES (repeat('c', 64), $1, now() + interval '5 minutes')`, []any{u}},
		{`INSERT INTO domains (app_id, user_id, hostname, verification_token) VALUES ($1, $2, 'example.com', 't')`, []any{a, u}},
	}
	for _, q := range inserts {
		f.exec(t, q.sql, q.args...)
	}

	// Deleting a webhook takes its deliveries with it (seed: DeleteWebhook cascades).
	f.exec(t, `DELETE FROM webhooks WHERE id = $1`, hookID)
	if n := f.count(t, `SELECT count(*) FROM webhook_deliveries`); n != 0 {
		t.Fatalf("%d deliveries survived their webhook", n)
	}

	// Deleting a worker leaves apps and jobs, unassigned.
	w2 := f.mustWorker(t, "w2", 1000, 1<<30)
	f.exec(t, `UPDATE jobs SET worker_id = $1 WHERE id = $2`, w2.ID, d.Job.ID)
	f.exec(t, `DELETE FROM workers WHERE id = $1`, w2.ID)
	j, err := f.s.FindJob(f.ctx, d.Job.ID)
	if err != nil || j.WorkerID != nil {
		t.Fatalf("job after worker delete = %+v, %v", j, err)
	}

	// Deleting the user removes everything that belongs to them.
	f.exec(t, `DELETE FROM users WHERE id = $1`, f.user.ID)
	for _, table := range []string{"apps", "deployments", "jobs", "app_env_vars", "git_provider_tokens",
		"webhooks", "sessions", "audit_events", "app_alert_rules", "alerts", "usage_samples",
		"backup_codes", "pending_totps", "domains", "api_tokens"} {
		if n := f.count(t, `SELECT count(*) FROM `+table); n != 0 {
			t.Errorf("%s: %d rows survived their user", table, n)
		}
	}
}

func TestAppHoldingCapacityCannotVanish(t *testing.T) {
	f := newFixture(t)
	if err := f.s.InTx(f.ctx, func(tx pgx.Tx) error {
		return store.ReserveApp(f.ctx, tx, f.app.ID, f.worker.ID, 500, 1<<20)
	}); err != nil {
		t.Fatal(err)
	}
	_, err := f.s.Pool().Exec(f.ctx, `DELETE FROM apps WHERE id = $1`, f.app.ID)
	if !errors.Is(store.MapError("delete", err), store.ErrInvalid) {
		t.Fatalf("raw delete of an app holding capacity = %v, want a foreign-key refusal", err)
	}
	// Nor through HardDeleteApp: something may still run there.
	if err := f.s.HardDeleteApp(f.ctx, f.app.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("HardDeleteApp of an app holding capacity = %v, want ErrConflict", err)
	}
	if err := f.s.InTx(f.ctx, func(tx pgx.Tx) error { return store.ReleaseApp(f.ctx, tx, f.app.ID) }); err != nil {
		t.Fatal(err)
	}
	if err := f.s.HardDeleteApp(f.ctx, f.app.ID); err != nil {
		t.Fatal(err)
	}
	w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID)
	if w.UsedCPU != 0 || w.UsedMemory != 0 {
		t.Fatalf("worker still holds %d mCPU / %d bytes", w.UsedCPU, w.UsedMemory)
	}
	f.assertCapacity(t)
}
