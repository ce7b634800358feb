package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/store"
)

// pendingJobs creates n apps each with one pending deploy job of 1000 mCPU.
func (f *fixture) pendingJobs(t *testing.T, n int, priority int64) []int64 {
	t.Helper()
	var ids []int64
	for i := 0; i < n; i++ {
		a := f.mustApp(t, f.user.ID, fmt.Sprintf("app-p%d-%04d", priority, i))
		d, err := f.s.CreateDeployment(f.ctx, a.ID, store.NewDeployment{}, store.NewJob{CPU: 1000, Memory: 1 << 20, Priority: priority})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.Job.ID)
	}
	return ids
}

// schedule runs one scheduling pass: claim up to limit, read the workers,
// place each job with pick (nil: no placement), assign. It returns the
// assigned jobs.
func (f *fixture) schedule(t *testing.T, limit int, pick func(i int, j store.ClaimedJob, ws []store.WorkerLoad) int64) []store.AssignedJob {
	t.Helper()
	var got []store.AssignedJob
	err := f.s.InTx(f.ctx, func(tx pgx.Tx) error {
		claimed, err := store.ClaimPendingJobs(f.ctx, tx, limit)
		if err != nil || len(claimed) == 0 {
			return err
		}
		loads, err := store.EligibleWorkers(f.ctx, tx, time.Minute)
		if err != nil {
			return err
		}
		var place []store.Placement
		for i, j := range claimed {
			if w := pick(i, j, loads); w != 0 {
				place = append(place, store.Placement{JobID: j.ID, WorkerID: w})
			}
		}
		got, err = store.AssignJobs(f.ctx, tx, loads, claimed, place)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestClaimOrdersByPriorityThenAge(t *testing.T) {
	f := newFixture(t)
	low := f.pendingJobs(t, 3, 0)
	high := f.pendingJobs(t, 2, 10)
	err := f.s.InTx(f.ctx, func(tx pgx.Tx) error {
		got, err := store.ClaimPendingJobs(f.ctx, tx, 4)
		if err != nil {
			return err
		}
		want := []int64{high[0], high[1], low[0], low[1]}
		if len(got) != 4 {
			t.Fatalf("claimed %d", len(got))
		}
		for i := range want {
			if got[i].ID != want[i] {
				t.Fatalf("claim order %v, want %v", got, want)
			}
		}
		if got[0].CPU != 1000 || got[0].Type != store.JobDeploy || got[0].Runtime != "exec" {
			t.Fatalf("claimed job = %+v", got[0])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestClaimSkipsLockedJobs(t *testing.T) {
	f := newFixture(t)
	f.pendingJobs(t, 6, 0)
	tx1, err := f.s.Pool().Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback(f.ctx)
	a, err := store.ClaimPendingJobs(f.ctx, tx1, 4)
	if err != nil {
		t.Fatal(err)
	}
	err = f.s.InTx(f.ctx, func(tx2 pgx.Tx) error {
		b, err := store.ClaimPendingJobs(f.ctx, tx2, 10)
		if err != nil {
			return err
		}
		if len(a) != 4 || len(b) != 2 {
			t.Fatalf("claims overlap or block: %d and %d of 6", len(a), len(b))
		}
		seen := map[int64]bool{}
		for _, j := range append(a, b...) {
			if seen[j.ID] {
				t.Fatalf("job %d claimed twice", j.ID)
			}
			seen[j.ID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAssignJobsGuardsCapacityPerWorker(t *testing.T) {
	f := newFixture(t) // w1: 4000 mCPU, 8 GiB
	w2 := f.mustWorker(t, "w2", 2500, 8<<30)
	jobs := f.pendingJobs(t, 7, 0)
	assigned := f.schedule(t, 100, func(i int, j store.ClaimedJob, _ []store.WorkerLoad) int64 {
		if i >= 5 {
			return w2.ID // 2 jobs to w2: both fit (2000 of 2500)
		}
		return f.worker.ID // 5 to w1: only the first 4 fit
	})
	if len(assigned) != 6 {
		t.Fatalf("assigned %d jobs, want 6: %+v", len(assigned), assigned)
	}
	if j, _ := f.s.FindJob(f.ctx, jobs[4]); j.Status != store.JobPending || j.WorkerID != nil {
		t.Fatalf("job over capacity = %+v", j)
	}
	for _, id := range []int64{jobs[0], jobs[3], jobs[5], jobs[6]} {
		if j, _ := f.s.FindJob(f.ctx, id); j.Status != store.JobAssigned || j.AssignedAt == nil {
			t.Fatalf("job %d = %+v", id, j)
		}
	}
	if w1, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID); w1.UsedCPU != 4000 {
		t.Fatalf("w1 used %d", w1.UsedCPU)
	}
	f.assertCapacity(t)
}

// The core is the truth: placements on unknown workers, on workers without
// the job's runtime, or outside its zone are ignored and the jobs stay pending.
func TestAssignJobsIgnoresInvalidPlacements(t *testing.T) {
	f := newFixture(t) // w1: exec only, zone default
	podman := f.mustApp(t, f.user.ID, "podman-app")
	if _, err := f.s.CreateDeployment(f.ctx, podman.ID, store.NewDeployment{}, store.NewJob{CPU: 1, Memory: 1, Runtime: "podman"}); err != nil {
		t.Fatal(err)
	}
	zoned := f.mustApp(t, f.user.ID, "zoned-app")
	if _, err := f.s.CreateDeployment(f.ctx, zoned.ID, store.NewDeployment{}, store.NewJob{CPU: 1, Memory: 1, Zone: "eu-1"}); err != nil {
		t.Fatal(err)
	}
	plain := f.mustApp(t, f.user.ID, "plain-app")
	if _, err := f.s.CreateDeployment(f.ctx, plain.ID, store.NewDeployment{}, store.NewJob{CPU: 1, Memory: 1}); err != nil {
		t.Fatal(err)
	}
	got := f.schedule(t, 10, func(_ int, j store.ClaimedJob, _ []store.WorkerLoad) int64 {
		if j.AppID == plain.ID {
			return 999999 // not a worker
		}
		return f.worker.ID
	})
	if len(got) != 0 {
		t.Fatalf("invalid placements assigned: %+v", got)
	}
	if n := f.count(t, `SELECT count(*) FROM jobs WHERE status = 'pending'`); n != 3 {
		t.Fatalf("%d pending, want 3", n)
	}
	// Unpinned stop/delete jobs cannot exist: they run where the app runs.
	err := f.s.InTx(f.ctx, func(tx pgx.Tx) error {
		_, err := f.s.CreateJob(f.ctx, tx, store.NewJob{Type: store.JobStop, AppID: f.app.ID})
		return err
	})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("unpinned stop job = %v, want ErrInvalid", err)
	}
}

// A full worker stays eligible: a restart of an app already reserved there
// needs no new capacity and is assigned.
func TestRestartOnFullWorkerIsAssigned(t *testing.T) {
	f := newFixture(t)
	f.exec(t, `UPDATE workers SET capacity_cpu = 1000 WHERE id = $1`, f.worker.ID)
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID) // takes all 1000
	if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.CreateDeployment(f.ctx, f.app.ID, store.NewDeployment{}, store.NewJob{CPU: appCPU, Memory: appMem}); err != nil {
		t.Fatal(err)
	}
	got := f.schedule(t, 10, func(_ int, j store.ClaimedJob, ws []store.WorkerLoad) int64 {
		if _, held := j.HeldOn(f.worker.ID); !held || len(ws) != 1 {
			t.Fatalf("claim/workers do not show the app's reservation on the full worker: %+v %+v", j, ws)
		}
		return f.worker.ID
	})
	if len(got) != 1 {
		t.Fatalf("redeploy on the full worker where the app holds capacity: assigned %d", len(got))
	}
	f.assertCapacity(t)
}

// A redeploy with a bigger plan grows the reservation under the guard (and
// stays pending when the growth does not fit); success sets exactly the new
// amounts.
func TestPlanGrowthIsGuarded(t *testing.T) {
	f := newFixture(t)                            // w1: 4000 mCPU
	d := f.pinnedDeploy(t, f.app.ID, f.worker.ID) // 1000 mCPU
	if _, err := f.s.CompleteJob(f.ctx, d.Job.ID, f.worker.ID, store.Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	// Pinned: 5000 does not fit in 4000.
	if _, err := f.s.CreateRedeployment(f.ctx, f.app.ID, f.worker.ID, store.NewDeployment{}, store.NewJob{CPU: 5000, Memory: appMem}); !errors.Is(err, store.ErrCapacity) {
		t.Fatalf("pinned growth beyond capacity = %v", err)
	}
	// Scheduled: the same stays pending; 3000 fits.
	dep, err := f.s.CreateDeployment(f.ctx, f.app.ID, store.NewDeployment{}, store.NewJob{CPU: 5000, Memory: appMem})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.schedule(t, 10, func(int, store.ClaimedJob, []store.WorkerLoad) int64 { return f.worker.ID }); len(got) != 0 {
		t.Fatalf("growth beyond capacity assigned: %+v", got)
	}
	f.exec(t, `UPDATE jobs SET cpu = 3000 WHERE id = $1`, dep.Job.ID)
	if got := f.schedule(t, 10, func(int, store.ClaimedJob, []store.WorkerLoad) int64 { return f.worker.ID }); len(got) != 1 {
		t.Fatalf("growth that fits: assigned %d", len(got))
	}
	w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID)
	if w.UsedCPU != 3000 {
		t.Fatalf("in flight: used %d, want 3000 (the larger of old and new)", w.UsedCPU)
	}
	f.assertCapacity(t)
	if _, err := f.s.CompleteJob(f.ctx, dep.Job.ID, f.worker.ID, store.Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	f.assertCapacity(t)
	// A smaller plan afterwards: success shrinks the reservation to exactly it.
	r, err := f.s.CreateRedeployment(f.ctx, f.app.ID, f.worker.ID, store.NewDeployment{}, store.NewJob{CPU: 500, Memory: appMem})
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID); w.UsedCPU != 3000 {
		t.Fatalf("shrinking redeploy in flight: used %d, want 3000 (the old app still runs)", w.UsedCPU)
	}
	if _, err := f.s.CompleteJob(f.ctx, r.Job.ID, f.worker.ID, store.Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	if w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID); w.UsedCPU != 500 {
		t.Fatalf("after the smaller deploy: used %d, want 500", w.UsedCPU)
	}
	f.assertCapacity(t)
}

func TestConcurrentSchedulingPassesAssignEachJobOnce(t *testing.T) {
	f := newFixture(t)
	const jobs = 40
	f.pendingJobs(t, jobs, 0)
	// Four workers with room for 10 apps each: exactly enough.
	f.exec(t, `UPDATE workers SET capacity_cpu = 10000 WHERE id = $1`, f.worker.ID)
	for i := 2; i <= 4; i++ {
		f.mustWorker(t, fmt.Sprintf("w%d", i), 10000, 8<<30)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for loop := 0; loop < 3; loop++ {
		wg.Add(1)
		go func(loop int) {
			defer wg.Done()
			// Passes burn quickly while another loop holds the last jobs
			// (SKIP LOCKED), so loop until nothing is pending, within a budget.
			deadline := time.Now().Add(20 * time.Second)
			for pass := 0; time.Now().Before(deadline); pass++ {
				var pending int
				if err := f.s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM jobs WHERE status = 'pending'`).Scan(&pending); err != nil {
					t.Error(err)
					return
				}
				if pending == 0 {
					return
				}
				err := f.s.InTx(f.ctx, func(tx pgx.Tx) error {
					claimed, err := store.ClaimPendingJobs(f.ctx, tx, 7)
					if err != nil || len(claimed) == 0 {
						return err
					}
					loads, err := store.EligibleWorkers(f.ctx, tx, time.Minute)
					if err != nil {
						return err
					}
					// A sensible placement: the next worker (from an offset per
					// loop) that the snapshot says has room.
					var place []store.Placement
					view := append([]store.WorkerLoad(nil), loads...) // the placement's own bookkeeping
					for i, j := range claimed {
						for k := range view {
							w := &view[(i+loop+k)%len(view)]
							if w.CapacityCPU-w.UsedCPU >= j.CPU {
								w.UsedCPU += j.CPU
								place = append(place, store.Placement{JobID: j.ID, WorkerID: w.ID})
								break
							}
						}
					}
					got, err := store.AssignJobs(f.ctx, tx, loads, claimed, place)
					mu.Lock()
					total += len(got)
					mu.Unlock()
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(loop)
	}
	wg.Wait()
	if n := f.count(t, `SELECT count(*) FROM jobs WHERE status = 'assigned'`); n != total || total != jobs {
		rows, _ := f.s.Pool().Query(f.ctx, `SELECT id, name, used_cpu, capacity_cpu, status, last_heartbeat > now() - interval '1 minute' FROM workers ORDER BY id`)
		for rows.Next() {
			var id, used, cap int64
			var name, st string
			var fresh bool
			rows.Scan(&id, &name, &used, &cap, &st, &fresh)
			t.Logf("worker %d %s used %d cap %d %s fresh=%v", id, name, used, cap, st, fresh)
		}
		rows.Close()
		t.Logf("reservations %d, pending %d", f.count(t, `SELECT count(*) FROM app_reservations`), f.count(t, `SELECT count(*) FROM jobs WHERE status='pending'`))
		t.Fatalf("assigned rows %d, reported %d, jobs %d", n, total, jobs)
	}
	f.assertCapacity(t)
}

// A worker's guard is re-checked against its current row: a snapshot that
// is stale (another core filled the worker since) cannot overcommit it.
func TestAssignJobsGuardBeatsStaleSnapshot(t *testing.T) {
	f := newFixture(t) // w1: 4000 mCPU
	jobs := f.pendingJobs(t, 2, 0)
	err := f.s.InTx(f.ctx, func(tx pgx.Tx) error {
		claimed, err := store.ClaimPendingJobs(f.ctx, tx, 10)
		if err != nil {
			return err
		}
		loads, err := store.EligibleWorkers(f.ctx, tx, time.Minute)
		if err != nil {
			return err
		}
		// Meanwhile another scheduler takes 3500 mCPU of w1 and commits.
		other := f.mustApp(t, f.user.ID, "other-core-app")
		if err := f.s.InTx(f.ctx, func(tx2 pgx.Tx) error {
			return store.ReserveApp(f.ctx, tx2, other.ID, f.worker.ID, 3500, 1)
		}); err != nil {
			return err
		}
		var place []store.Placement
		for _, j := range claimed {
			place = append(place, store.Placement{JobID: j.ID, WorkerID: f.worker.ID})
		}
		got, err := store.AssignJobs(f.ctx, tx, loads, claimed, place)
		if len(got) != 0 {
			t.Fatalf("assigned %v on a worker the snapshot thought empty but is full", got)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range jobs {
		if j, _ := f.s.FindJob(f.ctx, id); j.Status != store.JobPending {
			t.Fatalf("job %d = %s, want pending", id, j.Status)
		}
	}
	f.assertCapacity(t)
}

// Apps moving between two workers in opposite directions at once lock the
// workers in one order: no deadlock, and the invariant holds.
func TestOppositeMovesDoNotDeadlock(t *testing.T) {
	f := newFixture(t)
	w2 := f.mustWorker(t, "w2", 4000, 8<<30)
	a := f.app
	b := f.mustApp(t, f.user.ID, "other-app")
	for _, p := range []struct{ app, w int64 }{{a.ID, f.worker.ID}, {b.ID, w2.ID}} {
		if err := f.s.InTx(f.ctx, func(tx pgx.Tx) error { return store.PlaceApp(f.ctx, tx, p.app, p.w, 100, 1) }); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 800)
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				app, from, to := a.ID, f.worker.ID, w2.ID
				if g == 1 {
					app, from, to = b.ID, w2.ID, f.worker.ID
				}
				if i%2 == 1 {
					from, to = to, from
				}
				_ = from
				// Assignment reserves on the target; completion moves the app.
				errs <- f.s.InTx(f.ctx, func(tx pgx.Tx) error { return store.ReserveApp(f.ctx, tx, app, to, 100, 1) })
				errs <- f.s.InTx(f.ctx, func(tx pgx.Tx) error { return store.PlaceApp(f.ctx, tx, app, to, 100, 1) })
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent moves: %v", err)
		}
	}
	f.assertCapacity(t)
}

func TestRefreshJobStats(t *testing.T) {
	f := newFixture(t)
	exec := func(sql string) {
		if _, err := f.s.Pool().Exec(f.ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`ANALYZE jobs`)
	if did, err := f.s.RefreshJobStats(f.ctx, 1000); err != nil || did {
		t.Fatalf("fresh statistics refreshed: %v %v", did, err)
	}
	exec(`INSERT INTO apps (uuid, user_id, name, subdomain)
		SELECT gen_random_uuid(), (SELECT min(id) FROM users), 'stats-app-' || g, 'stats-app-' || g FROM generate_series(1, 3000) g`)
	exec(`INSERT INTO jobs (type, app_id, cpu, memory) SELECT 'deploy', id, 1, 1 FROM apps WHERE name LIKE 'stats-app-%'`)
	// The cumulative statistics are flushed at transaction end, but may lag
	// a little: wait for them.
	var did bool
	for deadline := time.Now().Add(10 * time.Second); !did && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		if did, err = f.s.RefreshJobStats(f.ctx, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if !did {
		t.Fatal("3,000 new jobs over an empty, analysed table did not refresh its statistics")
	}
	var tuples float64
	if err := f.s.Pool().QueryRow(f.ctx, `SELECT reltuples FROM pg_class WHERE oid = 'jobs'::regclass`).Scan(&tuples); err != nil || tuples < 2500 {
		t.Fatalf("reltuples after the refresh = %v, %v", tuples, err)
	}
	if did, err := f.s.RefreshJobStats(f.ctx, 1000); err != nil || did {
		t.Fatalf("refreshed again right after: %v %v", did, err)
	}
}
