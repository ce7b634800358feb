package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wisehosting/wisehosting/core/store"
)

// The references the scheduler writes in bulk (jobs.worker_id,
// app_reservations.app_id and .worker_id) are checked per statement by
// triggers (migration 005), not by foreign keys. These tests hold them to
// what the foreign keys guaranteed.

// wantForeignKeyViolation fails unless err is SQLSTATE 23503 naming
// constraint, mapped by the store to ErrInvalid.
func wantForeignKeyViolation(t *testing.T, err error, constraint string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23503" || pgErr.ConstraintName != constraint {
		t.Fatalf("err = %v, want foreign_key_violation on %s", err, constraint)
	}
	if !errors.Is(mapped(err), store.ErrInvalid) {
		t.Fatalf("store maps %v to %v, want ErrInvalid", err, mapped(err))
	}
}

func TestReferencesRefuseMissingRows(t *testing.T) {
	f := newFixture(t)
	const missing = 987654
	f.exec(t, `INSERT INTO jobs (type, app_id) VALUES ('deploy', $1)`, f.app.ID)
	jobID := int64(f.count(t, `SELECT max(id) FROM jobs`))
	other := f.mustApp(t, f.user.ID, "other-app")
	f.exec(t, `INSERT INTO app_reservations (app_id, worker_id, cpu, memory) VALUES ($1, $2, 0, 0)`, other.ID, f.worker.ID)
	cases := []struct {
		name, sql  string
		args       []any
		constraint string
	}{
		{"reservation for a missing app", `INSERT INTO app_reservations (app_id, worker_id, cpu, memory) VALUES ($1, $2, 1, 1)`,
			[]any{missing, f.worker.ID}, "app_reservations_app_reference"},
		{"reservation on a missing worker", `INSERT INTO app_reservations (app_id, worker_id, cpu, memory) VALUES ($1, $2, 1, 1)`,
			[]any{f.app.ID, missing}, "app_reservations_worker_reference"},
		{"one bad row among good ones", `INSERT INTO app_reservations (app_id, worker_id, cpu, memory)
			SELECT a, $2, 1, 1 FROM unnest(ARRAY[$1::bigint, $3::bigint]) a`,
			[]any{f.app.ID, f.worker.ID, missing}, "app_reservations_app_reference"},
		{"reservation moved to a missing worker", `UPDATE app_reservations SET worker_id = $2 WHERE app_id = $1`,
			[]any{other.ID, missing}, "app_reservations_worker_reference"},
		{"job assigned to a missing worker", `UPDATE jobs SET worker_id = $2, status = 'assigned' WHERE id = $1`,
			[]any{jobID, missing}, "jobs_worker_reference"},
		{"job created pinned to a missing worker", `INSERT INTO jobs (type, app_id, worker_id, pinned) VALUES ('stop', $1, $2, true)`,
			[]any{other.ID, missing}, "jobs_worker_reference"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.s.Pool().Exec(f.ctx, c.sql, c.args...)
			wantForeignKeyViolation(t, err, c.constraint)
		})
	}
	// Nothing was written.
	if n := f.count(t, `SELECT count(*) FROM app_reservations`); n != 1 {
		t.Fatalf("%d reservations, want only the valid one", n)
	}
	if n := f.count(t, `SELECT count(*) FROM jobs WHERE worker_id IS NOT NULL OR app_id = $1`, other.ID); n != 0 {
		t.Fatalf("%d jobs point at a worker", n)
	}
	// Valid references pass, and unrelated updates of a job keep working.
	f.exec(t, `UPDATE jobs SET worker_id = $2, status = 'assigned' WHERE id = $1`, jobID, f.worker.ID)
	f.exec(t, `UPDATE jobs SET progress = 50 WHERE id = $1`, jobID)
}

func TestDeletingAWorkerReleasesItsReferences(t *testing.T) {
	f := newFixture(t)
	w2 := f.mustWorker(t, "w2", 1000, 1<<30)
	f.exec(t, `INSERT INTO jobs (type, app_id, worker_id, status) VALUES ('deploy', $1, $2, 'assigned')`, f.app.ID, w2.ID)
	f.exec(t, `INSERT INTO app_reservations (app_id, worker_id, cpu, memory) VALUES ($1, $2, 0, 0), ($1, $3, 0, 0)`,
		f.app.ID, w2.ID, f.worker.ID)
	f.exec(t, `DELETE FROM workers WHERE id = $1`, w2.ID)
	if n := f.count(t, `SELECT count(*) FROM app_reservations WHERE worker_id = $1`, w2.ID); n != 0 {
		t.Fatalf("%d reservations survived their worker", n)
	}
	if n := f.count(t, `SELECT count(*) FROM app_reservations WHERE worker_id = $1`, f.worker.ID); n != 1 {
		t.Fatalf("another worker's reservation went with it (%d left)", n)
	}
	if n := f.count(t, `SELECT count(*) FROM jobs WHERE worker_id IS NOT NULL`); n != 0 {
		t.Fatalf("%d jobs still point at the deleted worker", n)
	}
	// The app cannot be deleted while it holds the other reservation.
	_, err := f.s.Pool().Exec(f.ctx, `DELETE FROM apps WHERE id = $1`, f.app.ID)
	wantForeignKeyViolation(t, err, "app_reservations_app_reference")
}

// A reference written by an open transaction holds its row, as a foreign
// key's KEY SHARE lock does: deleting the row waits for the writer, then
// finds the committed reference; and a writer that comes second to a
// committed delete fails instead of leaving an orphan.
func TestReferencesHoldTheirRowsUntilCommit(t *testing.T) {
	t.Run("reference first", func(t *testing.T) {
		f := newFixture(t)
		w2 := f.mustWorker(t, "w2", 1000, 1<<30)
		tx, err := f.s.Pool().Begin(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(f.ctx)
		if _, err := tx.Exec(f.ctx, `INSERT INTO app_reservations (app_id, worker_id, cpu, memory) VALUES ($1, $2, 0, 0)`,
			f.app.ID, w2.ID); err != nil {
			t.Fatal(err)
		}
		deleted := make(chan error, 1)
		go func() {
			_, err := f.s.Pool().Exec(f.ctx, `DELETE FROM workers WHERE id = $1`, w2.ID)
			deleted <- err
		}()
		select {
		case err := <-deleted:
			t.Fatalf("worker deleted (%v) while an open transaction references it", err)
		case <-time.After(300 * time.Millisecond):
		}
		if err := tx.Commit(f.ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-deleted; err != nil {
			t.Fatal(err)
		}
		if n := f.count(t, `SELECT count(*) FROM app_reservations WHERE worker_id = $1`, w2.ID); n != 0 {
			t.Fatalf("the committed reservation outlived its worker (%d rows)", n)
		}
	})
	t.Run("delete first", func(t *testing.T) {
		f := newFixture(t)
		w2 := f.mustWorker(t, "w2", 1000, 1<<30)
		tx, err := f.s.Pool().Begin(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(f.ctx)
		if _, err := tx.Exec(f.ctx, `DELETE FROM workers WHERE id = $1`, w2.ID); err != nil {
			t.Fatal(err)
		}
		inserted := make(chan error, 1)
		go func() {
			err := pgx.BeginFunc(f.ctx, f.s.Pool(), func(tx pgx.Tx) error {
				_, err := tx.Exec(f.ctx, `INSERT INTO app_reservations (app_id, worker_id, cpu, memory) VALUES ($1, $2, 0, 0)`,
					f.app.ID, w2.ID)
				return err
			})
			inserted <- err
		}()
		select {
		case err := <-inserted:
			t.Fatalf("reservation written (%v) while the worker's delete is open", err)
		case <-time.After(300 * time.Millisecond):
		}
		if err := tx.Commit(f.ctx); err != nil {
			t.Fatal(err)
		}
		wantForeignKeyViolation(t, <-inserted, "app_reservations_worker_reference")
		if n := f.count(t, `SELECT count(*) FROM app_reservations`); n != 0 {
			t.Fatalf("%d orphan reservations", n)
		}
	})
}
