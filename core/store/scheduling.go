package store

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// The scheduling and reservation statements run with QueryExecModeExec:
// planned at every execution against the tables' current size. A cached
// generic plan made while app_reservations was nearly empty (a fresh install,
// or right after a large release) keeps sequential-scanning it per probe as
// it grows to 100k rows, turning a 1,000-job batch quadratic.

// Held is capacity an app already holds on a worker.
type Held struct {
	WorkerID    int64
	CPU, Memory int64
}

// ClaimedJob is a pending job claimed by a scheduling pass. Claimed jobs are
// always deploy, restart or start jobs: stop and delete jobs are created
// pinned to the worker that runs the app.
type ClaimedJob struct {
	ID       int64
	AppID    int64
	Type     string
	Priority int64
	CPU      int64 // millicores
	Memory   int64 // bytes
	Runtime  string
	Zone     string
	// CurrentWorkerID is where the app runs now (nil if nowhere).
	CurrentWorkerID *int64
	// Reserved lists the capacity the app already holds: placing the job on
	// one of those workers costs only the growth, if any.
	Reserved  []Held
	CreatedAt time.Time
}

// HeldOn returns what the app holds on worker w.
func (j ClaimedJob) HeldOn(w int64) (Held, bool) {
	for _, h := range j.Reserved {
		if h.WorkerID == w {
			return h, true
		}
	}
	return Held{}, false
}

// ClaimPendingJobs locks up to limit pending jobs, highest priority then
// oldest first, skipping rows another scheduler holds (FOR UPDATE SKIP
// LOCKED), so any number of cores can schedule at once without taking the
// same job twice. The locks last until tx ends. With one active job per app
// (a unique index), nothing else changes a claimed app's reservations but a
// worker going offline, which AssignJobs re-checks.
func ClaimPendingJobs(ctx context.Context, tx pgx.Tx, limit int) ([]ClaimedJob, error) {
	rows, err := tx.Query(ctx, `
		SELECT j.id, j.app_id, j.type, j.priority, j.cpu, j.memory, j.runtime, j.zone, a.worker_id, j.created_at
		FROM jobs j JOIN apps a ON a.id = j.app_id
		WHERE j.status = 'pending'
		ORDER BY j.priority DESC, j.created_at, j.id
		LIMIT $1
		FOR UPDATE OF j SKIP LOCKED`, pgx.QueryExecModeExec, limit)
	if err != nil {
		return nil, mapErr("claim pending jobs", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ClaimedJob, error) {
		var j ClaimedJob
		err := r.Scan(&j.ID, &j.AppID, &j.Type, &j.Priority, &j.CPU, &j.Memory, &j.Runtime, &j.Zone,
			&j.CurrentWorkerID, &j.CreatedAt)
		return j, err
	})
	if err != nil {
		return nil, mapErr("claim pending jobs", err)
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	// What the claimed apps already hold: one probe for the batch (a
	// correlated subquery would cost a subplan per row).
	appIDs := make([]int64, len(jobs))
	for i, j := range jobs {
		appIDs[i] = j.AppID
	}
	rows, err = tx.Query(ctx, `SELECT app_id, worker_id, cpu, memory FROM app_reservations
		WHERE app_id = ANY($1) ORDER BY app_id, worker_id`, pgx.QueryExecModeExec, appIDs)
	if err != nil {
		return nil, mapErr("claim pending jobs: reservations", err)
	}
	held := map[int64][]Held{}
	var app int64
	var h Held
	_, err = pgx.ForEachRow(rows, []any{&app, &h.WorkerID, &h.CPU, &h.Memory}, func() error {
		held[app] = append(held[app], h)
		return nil
	})
	if err != nil {
		return nil, mapErr("claim pending jobs: reservations", err)
	}
	for i := range jobs {
		jobs[i].Reserved = held[jobs[i].AppID]
	}
	return jobs, nil
}

// WorkerLoad is an online worker as placement sees it.
type WorkerLoad struct {
	ID             int64
	Zone           string
	Runtimes       []string
	CapacityCPU    int64
	CapacityMemory int64
	UsedCPU        int64
	UsedMemory     int64
	CPUPercent     float64
	MemoryPercent  float64
	RunningApps    int64
}

// EligibleWorkers returns the online workers whose last heartbeat is newer
// than freshWithin, ordered by id. Full workers are included: a job for an
// app already reserved on one needs no new capacity there.
func EligibleWorkers(ctx context.Context, q Querier, freshWithin time.Duration) ([]WorkerLoad, error) {
	rows, err := q.Query(ctx, `
		SELECT id, zone, runtimes, capacity_cpu, capacity_memory, used_cpu, used_memory,
			cpu_percent, memory_percent, running_apps
		FROM workers
		WHERE status = 'online' AND last_heartbeat > now() - $1::interval
		ORDER BY id`, freshWithin)
	if err != nil {
		return nil, mapErr("eligible workers", err)
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WorkerLoad, error) {
		var w WorkerLoad
		err := r.Scan(&w.ID, &w.Zone, &w.Runtimes, &w.CapacityCPU, &w.CapacityMemory, &w.UsedCPU, &w.UsedMemory,
			&w.CPUPercent, &w.MemoryPercent, &w.RunningApps)
		return w, err
	})
	if err != nil {
		return nil, mapErr("eligible workers", err)
	}
	return ws, nil
}

// Placement is a proposal to run a claimed job on a worker.
type Placement struct {
	JobID    int64
	WorkerID int64
}

// AssignedJob is a job AssignJobs assigned; push it to its worker after commit.
type AssignedJob struct {
	JobID    int64
	WorkerID int64
}

// AssignJobs applies a batch of placements inside the scheduling transaction
// that claimed the jobs (jobs is what ClaimPendingJobs returned, loads what
// EligibleWorkers read in the same transaction). The core is the truth, the
// placements only suggestions: a placement on a worker that is not in loads,
// lacks the job's runtime or is outside its zone is ignored. Going through
// the jobs in claim order (priority, then age), each worker takes the
// longest prefix of new capacity that fits what loads says it has left; then
// the workers are locked in id order, one statement adds the reservations,
// raises the used counters under a guard re-checked against each current row
// (used + amount ≤ capacity) and marks the jobs assigned. A job that does
// not fit, or whose worker lost its guard to a concurrent scheduler, stays
// pending for the next pass. A reservation that must grow (a bigger plan) is
// taken through ReserveApp; one the app already holds in full costs nothing,
// provided it still exists.
func AssignJobs(ctx context.Context, tx pgx.Tx, loads []WorkerLoad, jobs []ClaimedJob, place []Placement) ([]AssignedJob, error) {
	p := planAssignments(loads, jobs, place)
	if err := lockWorkers(ctx, tx, p.lockOrder); err != nil {
		return nil, err
	}
	// Growth of existing reservations is rare (plan changes): one guarded
	// statement each; a job whose growth does not fit stays pending.
	for _, g := range p.grow {
		if err := ReserveApp(ctx, tx, g.app, g.worker, g.cpu, g.memory); err != nil {
			if errors.Is(err, ErrCapacity) {
				continue
			}
			return nil, err
		}
		p.addJob(g.job, g.worker, false, false)
	}
	if len(p.jobIDs) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `
		WITH upd AS (
			UPDATE workers w SET used_cpu = w.used_cpu + s.cpu, used_memory = w.used_memory + s.memory,
				updated_at = now()
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS s(id, cpu, memory)
			WHERE w.id = s.id AND w.used_cpu + s.cpu <= w.capacity_cpu
			  AND w.used_memory + s.memory <= w.capacity_memory
			RETURNING w.id
		), ins AS (
			INSERT INTO app_reservations (app_id, worker_id, cpu, memory)
			SELECT r.app_id, r.worker_id, r.cpu, r.memory
			FROM unnest($4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS r(app_id, worker_id, cpu, memory)
			WHERE r.worker_id IN (SELECT id FROM upd)
		)
		-- j.id = ANY($8) repeats the join key so the planner probes the
		-- primary key per job: joining on u alone, it hashed every pending
		-- job (20 ms per 1,000-job batch at 80,000 pending).
		UPDATE jobs j SET status = 'assigned', worker_id = u.worker_id, assigned_at = now(), updated_at = now()
		FROM unnest($8::bigint[], $9::bigint[], $10::bool[], $11::bool[]) AS u(id, worker_id, guarded, held)
		WHERE j.id = u.id AND j.id = ANY($8) AND j.status = 'pending'
		  AND (NOT u.guarded OR u.worker_id IN (SELECT id FROM upd))
		  AND (NOT u.held OR EXISTS (SELECT 1 FROM app_reservations r
			WHERE r.app_id = j.app_id AND r.worker_id = u.worker_id))
		RETURNING j.id, j.worker_id`, pgx.QueryExecModeExec,
		p.sumWorker, p.sumCPU, p.sumMemory,
		p.resApp, p.resWorker, p.resCPU, p.resMemory,
		p.jobIDs, p.jobWorker, p.jobGuarded, p.jobHeld)
	if err != nil {
		return nil, mapErr("assign jobs", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AssignedJob, error) {
		var a AssignedJob
		err := r.Scan(&a.JobID, &a.WorkerID)
		return a, err
	})
	if err != nil {
		return nil, mapErr("assign jobs", err)
	}
	return out, nil
}

// assignPlan is AssignJobs' batch as column arrays.
type assignPlan struct {
	sumWorker, sumCPU, sumMemory         []int64 // per worker: capacity the batch adds
	resApp, resWorker, resCPU, resMemory []int64 // new reservations
	jobIDs, jobWorker                    []int64
	jobGuarded                           []bool // depends on its worker passing the guard
	jobHeld                              []bool // relies on a reservation that must still exist
	grow                                 []growth
	lockOrder                            []int64 // workers to lock, ascending
}

// growth is an existing reservation a job needs larger.
type growth struct{ job, app, worker, cpu, memory int64 }

func (p *assignPlan) addJob(job, worker int64, guarded, held bool) {
	p.jobIDs = append(p.jobIDs, job)
	p.jobWorker = append(p.jobWorker, worker)
	p.jobGuarded = append(p.jobGuarded, guarded)
	p.jobHeld = append(p.jobHeld, held)
}

// planAssignments decides, from the workers' snapshot, which placements fit.
func planAssignments(loads []WorkerLoad, jobs []ClaimedJob, place []Placement) *assignPlan {
	type room struct {
		load                     *WorkerLoad
		cpu, mem, addCPU, addMem int64
		listed                   bool
	}
	rooms := make(map[int64]*room, len(loads))
	for i := range loads {
		w := &loads[i]
		rooms[w.ID] = &room{load: w, cpu: w.CapacityCPU - w.UsedCPU, mem: w.CapacityMemory - w.UsedMemory}
	}
	target := make(map[int64]int64, len(place))
	for _, pl := range place {
		target[pl.JobID] = pl.WorkerID
	}
	p := &assignPlan{}
	locked := map[int64]bool{}
	lock := func(w int64) {
		if !locked[w] {
			locked[w] = true
			p.lockOrder = append(p.lockOrder, w)
		}
	}
	type pair struct{ app, worker int64 }
	inBatch := map[pair]bool{}
	var order []int64
	for _, j := range jobs {
		wid, ok := target[j.ID]
		r := rooms[wid]
		if !ok || r == nil || !slices.Contains(r.load.Runtimes, j.Runtime) || (j.Zone != "" && j.Zone != r.load.Zone) {
			continue // no valid placement: stays pending
		}
		key := pair{j.AppID, wid}
		if inBatch[key] {
			continue // a second job for the same app in one batch cannot happen (one active job per app)
		}
		if h, held := j.HeldOn(wid); held {
			if j.CPU > h.CPU || j.Memory > h.Memory {
				p.grow = append(p.grow, growth{job: j.ID, app: j.AppID, worker: wid, cpu: j.CPU, memory: j.Memory})
				lock(wid)
			} else {
				p.addJob(j.ID, wid, false, true)
			}
			continue
		}
		if j.CPU > r.cpu || j.Memory > r.mem {
			continue // does not fit: stays pending
		}
		r.cpu, r.mem = r.cpu-j.CPU, r.mem-j.Memory
		r.addCPU, r.addMem = r.addCPU+j.CPU, r.addMem+j.Memory
		if !r.listed {
			r.listed = true
			order = append(order, wid)
		}
		inBatch[key] = true
		lock(wid)
		p.resApp = append(p.resApp, j.AppID)
		p.resWorker = append(p.resWorker, wid)
		p.resCPU = append(p.resCPU, j.CPU)
		p.resMemory = append(p.resMemory, j.Memory)
		p.addJob(j.ID, wid, true, false)
	}
	for _, id := range order {
		r := rooms[id]
		p.sumWorker = append(p.sumWorker, id)
		p.sumCPU = append(p.sumCPU, r.addCPU)
		p.sumMemory = append(p.sumMemory, r.addMem)
	}
	slices.Sort(p.lockOrder)
	return p
}

// RefreshJobStats runs ANALYZE on jobs when at least minChanged rows
// changed since its statistics were taken and they are more than half the
// rows it believes it has, and reports whether it did. A burst of pending
// jobs into a table analysed while (nearly) empty leaves the planner
// believing it holds a row or two: the claim query then reads every pending
// job per batch (measured: ~95 ms per 1,000-job pass at 100,000 pending,
// instead of ~5 ms) until autovacuum gets to it, up to a minute later. The
// scheduler calls it while a backlog lasts.
func (s *Store) RefreshJobStats(ctx context.Context, minChanged int64) (bool, error) {
	var changed int64
	var tuples float64
	err := s.pool.QueryRow(ctx, `
		SELECT coalesce(st.n_mod_since_analyze, 0), c.reltuples
		FROM pg_class c LEFT JOIN pg_stat_user_tables st ON st.relid = c.oid
		WHERE c.oid = 'jobs'::regclass`).Scan(&changed, &tuples)
	if err != nil {
		return false, mapErr("job statistics", err)
	}
	if changed < minChanged || float64(changed) < max(tuples, 0)/2 {
		return false, nil
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE jobs`); err != nil {
		return false, mapErr("analyze jobs", err)
	}
	return true, nil
}
