package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The capacity model: a worker's used_cpu/used_memory is the sum of the
// app_reservations on it. Every function here changes both in the same
// transaction, so the invariant holds at every commit (CheckCapacity
// verifies it). Like the scheduling statements they are planned at every
// execution (see scheduling.go).
//
// Lock order, everywhere in the store: jobs, then apps (FOR NO KEY UPDATE,
// which does not block the KEY SHARE locks of foreign-key checks), then
// workers in ascending id order (lockWorkers). Keeping one order means two
// cores, or a scheduler and a job result, never deadlock on each other.

// lockWorkers locks the given workers in ascending id order.
func lockWorkers(ctx context.Context, tx pgx.Tx, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT 1 FROM workers WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`,
		pgx.QueryExecModeExec, ids)
	return mapErr("lock workers", err)
}

// lockReservationWorkers locks the workers of the app's reservations plus
// extra, in ascending id order.
func lockReservationWorkers(ctx context.Context, tx pgx.Tx, appIDs []int64, extra ...int64) error {
	_, err := tx.Exec(ctx, `
		SELECT 1 FROM workers
		WHERE id IN (SELECT worker_id FROM app_reservations WHERE app_id = ANY($1)) OR id = ANY($2)
		ORDER BY id FOR NO KEY UPDATE`, pgx.QueryExecModeExec, appIDs, extra)
	return mapErr("lock workers", err)
}

// ReserveApp makes sure the app holds at least cpu/memory on the worker,
// under a capacity guard (used + growth ≤ capacity, checked against the
// locked worker row). A reservation the app already holds there that is
// large enough adds nothing; a smaller one grows to the new amounts (a
// redeploy with a bigger plan keeps the larger of old and new until it
// succeeds, never less than what runs). It returns ErrCapacity when the
// worker cannot take the growth.
func ReserveApp(ctx context.Context, tx pgx.Tx, appID, workerID, cpu, memory int64) error {
	if err := lockWorkers(ctx, tx, []int64{workerID}); err != nil {
		return err
	}
	var held, ok bool
	err := tx.QueryRow(ctx, `
		WITH cur AS (
			SELECT cpu, memory FROM app_reservations WHERE app_id = $1 AND worker_id = $2 FOR UPDATE
		), d AS (
			SELECT EXISTS (SELECT 1 FROM cur) AS held,
				GREATEST($3 - coalesce((SELECT cpu FROM cur), 0), 0) AS dcpu,
				GREATEST($4 - coalesce((SELECT memory FROM cur), 0), 0) AS dmem
		), upd AS (
			UPDATE workers w SET used_cpu = w.used_cpu + d.dcpu, used_memory = w.used_memory + d.dmem,
				updated_at = now()
			FROM d
			WHERE w.id = $2 AND (d.dcpu > 0 OR d.dmem > 0 OR NOT d.held)
			  AND w.used_cpu + d.dcpu <= w.capacity_cpu AND w.used_memory + d.dmem <= w.capacity_memory
			RETURNING 1
		), ins AS (
			INSERT INTO app_reservations (app_id, worker_id, cpu, memory)
			SELECT $1, $2, $3, $4 FROM d WHERE NOT d.held AND EXISTS (SELECT 1 FROM upd)
			RETURNING 1
		), grow AS (
			UPDATE app_reservations SET cpu = GREATEST(cpu, $3), memory = GREATEST(memory, $4)
			WHERE app_id = $1 AND worker_id = $2 AND EXISTS (SELECT 1 FROM upd)
			  AND EXISTS (SELECT 1 FROM d WHERE d.held)
			RETURNING 1
		)
		SELECT d.held, EXISTS (SELECT 1 FROM upd) OR (d.held AND d.dcpu = 0 AND d.dmem = 0) FROM d`,
		pgx.QueryExecModeExec, appID, workerID, cpu, memory).Scan(&held, &ok)
	if err != nil {
		return mapErr("reserve app", err)
	}
	if !ok {
		return fmt.Errorf("store: reserve app %d on worker %d (%d mCPU, %d bytes): %w", appID, workerID, cpu, memory, ErrCapacity)
	}
	return nil
}

// PlaceApp records that the app now runs on the worker with exactly
// cpu/memory: it becomes the app's worker_id, its reservation there is set
// to those amounts (created if missing), and every reservation it holds
// elsewhere is released. No guard applies: the app runs there, and
// accounting must follow reality.
func PlaceApp(ctx context.Context, tx pgx.Tx, appID, workerID, cpu, memory int64) error {
	if err := lockReservationWorkers(ctx, tx, []int64{appID}, workerID); err != nil {
		return err
	}
	if err := releaseWhere(ctx, tx, "place app", `r.app_id = $1 AND r.worker_id <> $2`, appID, workerID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `
		WITH cur AS (
			SELECT cpu, memory FROM app_reservations WHERE app_id = $1 AND worker_id = $2 FOR UPDATE
		), d AS (
			SELECT $3 - coalesce((SELECT cpu FROM cur), 0) AS dcpu, $4 - coalesce((SELECT memory FROM cur), 0) AS dmem
		), up AS (
			INSERT INTO app_reservations (app_id, worker_id, cpu, memory) VALUES ($1, $2, $3, $4)
			ON CONFLICT (app_id, worker_id) DO UPDATE SET cpu = EXCLUDED.cpu, memory = EXCLUDED.memory
		)
		UPDATE workers w SET used_cpu = GREATEST(w.used_cpu + d.dcpu, 0),
			used_memory = GREATEST(w.used_memory + d.dmem, 0), updated_at = now()
		FROM d WHERE w.id = $2 AND (d.dcpu <> 0 OR d.dmem <> 0)`,
		pgx.QueryExecModeExec, appID, workerID, cpu, memory)
	if err != nil {
		return mapErr("place app: reserve", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE apps SET worker_id = $2, updated_at = now() WHERE id = $1`, appID, workerID); err != nil {
		return mapErr("place app", err)
	}
	return nil
}

// ReleaseApp releases every reservation the app holds.
func ReleaseApp(ctx context.Context, tx pgx.Tx, appID int64) error {
	if err := lockReservationWorkers(ctx, tx, []int64{appID}); err != nil {
		return err
	}
	return releaseWhere(ctx, tx, "release app", `r.app_id = $1`, appID)
}

// ReleaseAppOn releases the app's reservation on one worker, if any.
func ReleaseAppOn(ctx context.Context, tx pgx.Tx, appID, workerID int64) error {
	if err := lockWorkers(ctx, tx, []int64{workerID}); err != nil {
		return err
	}
	return releaseWhere(ctx, tx, "release app on worker", `r.app_id = $1 AND r.worker_id = $2`, appID, workerID)
}

// ReleaseApps releases every reservation of the given apps in one statement
// (bulk stops when a worker goes offline).
func ReleaseApps(ctx context.Context, tx pgx.Tx, appIDs []int64) error {
	if len(appIDs) == 0 {
		return nil
	}
	if err := lockReservationWorkers(ctx, tx, appIDs); err != nil {
		return err
	}
	return releaseWhere(ctx, tx, "release apps", `r.app_id = ANY($1)`, appIDs)
}

// releaseWhere deletes the reservations matching cond (over alias r) and
// subtracts them from their workers, set-based, with GREATEST(…, 0) guards.
// Callers lock the workers first (lock order).
func releaseWhere(ctx context.Context, tx pgx.Tx, op, cond string, args ...any) error {
	_, err := tx.Exec(ctx, `
		WITH del AS (
			DELETE FROM app_reservations r WHERE `+cond+` RETURNING r.worker_id, r.cpu, r.memory
		), sums AS (
			SELECT worker_id, sum(cpu) AS cpu, sum(memory) AS memory FROM del GROUP BY worker_id
		)
		UPDATE workers w SET used_cpu = GREATEST(w.used_cpu - sums.cpu, 0),
			used_memory = GREATEST(w.used_memory - sums.memory, 0), updated_at = now()
		FROM sums WHERE w.id = sums.worker_id`, append([]any{pgx.QueryExecModeExec}, args...)...)
	return mapErr(op, err)
}

// CapacityMismatch is a worker whose used counters disagree with the sum of
// the reservations on it.
type CapacityMismatch struct {
	WorkerID                    int64
	UsedCPU, ReservedCPU        int64
	UsedMemory, ReservedMemory  int64
	CapacityCPU, CapacityMemory int64
}

// CheckCapacity returns every worker whose used_cpu/used_memory is not the
// sum of its reservations, or exceeds its capacity. Empty means the invariant
// holds. Tests share this one query; operators can run it as a health check.
func CheckCapacity(ctx context.Context, q Querier) ([]CapacityMismatch, error) {
	rows, err := q.Query(ctx, `
		SELECT w.id, w.used_cpu, coalesce(r.cpu, 0), w.used_memory, coalesce(r.memory, 0),
			w.capacity_cpu, w.capacity_memory
		FROM workers w
		LEFT JOIN (SELECT worker_id, sum(cpu) AS cpu, sum(memory) AS memory
			FROM app_reservations GROUP BY worker_id) r ON r.worker_id = w.id
		WHERE w.used_cpu <> coalesce(r.cpu, 0) OR w.used_memory <> coalesce(r.memory, 0)
		   OR w.used_cpu > w.capacity_cpu OR w.used_memory > w.capacity_memory
		ORDER BY w.id`)
	if err != nil {
		return nil, mapErr("check capacity", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CapacityMismatch, error) {
		var m CapacityMismatch
		err := r.Scan(&m.WorkerID, &m.UsedCPU, &m.ReservedCPU, &m.UsedMemory, &m.ReservedMemory,
			&m.CapacityCPU, &m.CapacityMemory)
		return m, err
	})
	if err != nil {
		return nil, mapErr("check capacity", err)
	}
	return out, nil
}
