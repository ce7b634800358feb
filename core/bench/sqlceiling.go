package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wisehosting/wisehosting/core/store"
)

// ceiling is the raw SQL ceiling of scheduling on this database: the
// exact statements the scheduling loop runs (claim with SKIP LOCKED, read
// the eligible workers, set-based assign with the capacity guard and the
// reservations) with a trivial in-process placement, no plugin and no
// push, batch jobs per transaction, conc transactions at once (the loop's
// scheduler.concurrency). s holds seedScheduling's fleet; the jobs are reset
// before each run but the first.
type ceiling struct {
	rate    float64 // placements/s, median
	batchMs float64 // one transaction, median
	phases  map[string][]float64
}

func measureCeiling(ctx context.Context, env *Env, s *store.Store, jobs, batch, conc int) (ceiling, error) {
	var rates, batchMs []float64
	phases := &phaseLog{m: map[string][]float64{}}
	for run := 0; run < env.Runs; run++ {
		if run > 0 {
			if err := resetScheduling(ctx, s); err != nil {
				return ceiling{}, err
			}
		}
		start := time.Now()
		var mu sync.Mutex
		assigned := 0
		g, gctx := errgroup.WithContext(ctx)
		for range conc {
			g.Go(func() error {
				for {
					t0 := time.Now()
					n, err := ceilingPass(gctx, s, batch, phases)
					if err != nil || n == 0 {
						return err
					}
					mu.Lock()
					assigned += n
					batchMs = append(batchMs, float64(time.Since(t0).Microseconds())/1000)
					mu.Unlock()
				}
			})
		}
		if err := g.Wait(); err != nil {
			return ceiling{}, err
		}
		el := time.Since(start)
		if assigned != jobs {
			return ceiling{}, fmt.Errorf("ceiling assigned %d of %d jobs: capacity was meant to fit all", assigned, jobs)
		}
		if bad, err := store.CheckCapacity(ctx, s.Pool()); err != nil || len(bad) > 0 {
			return ceiling{}, fmt.Errorf("capacity invariant after run: %v %v", bad, err)
		}
		rates = append(rates, float64(assigned)/el.Seconds())
		env.Log.Info("sql ceiling run", "run", run+1, "jobs", assigned, "took", el)
	}
	return ceiling{rate: median(rates), batchMs: median(batchMs), phases: phases.m}, nil
}

// phaseLog collects phase durations (ms) from concurrent passes.
type phaseLog struct {
	mu sync.Mutex
	m  map[string][]float64
}

func (p *phaseLog) add(name string, ms float64) {
	p.mu.Lock()
	p.m[name] = append(p.m[name], ms)
	p.mu.Unlock()
}

// ceilingPass schedules one batch with round-robin placement, adding each
// phase's duration to phases.
func ceilingPass(ctx context.Context, s *store.Store, batch int, phases *phaseLog) (int, error) {
	var n int
	lap := func(name string, t0 time.Time) time.Time {
		now := time.Now()
		phases.add(name, float64(now.Sub(t0).Microseconds())/1000)
		return now
	}
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	t := time.Now()
	err = func() error {
		claimed, err := store.ClaimPendingJobs(ctx, tx, batch)
		if err != nil || len(claimed) == 0 {
			return err
		}
		t = lap("claim", t)
		ws, err := store.EligibleWorkers(ctx, tx, time.Hour)
		if err != nil {
			return err
		}
		t = lap("workers", t)
		if len(ws) == 0 {
			return fmt.Errorf("no eligible workers")
		}
		place := make([]store.Placement, len(claimed))
		for i, j := range claimed {
			place[i] = store.Placement{JobID: j.ID, WorkerID: ws[int(j.ID)%len(ws)].ID}
		}
		got, err := store.AssignJobs(ctx, tx, ws, claimed, place)
		n = len(got)
		t = lap("assign", t)
		return err
	}()
	if err != nil || n == 0 {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	lap("commit", t)
	return n, nil
}

// seedScheduling creates workers with room for every job, and one app with
// one pending 100 mCPU / 64 MiB deploy job per job, in set-based SQL.
func seedScheduling(ctx context.Context, s *store.Store, workers, jobs int, withJobs bool) error {
	perWorker := (jobs + workers - 1) / workers * 2
	stmts := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (email) VALUES ('bench@example.com')`, nil},
		{`INSERT INTO workers (name, api_key_hash, key_id, envelope_key, status, capacity_cpu, capacity_memory, last_heartbeat, address)
			SELECT 'bench-' || g, lpad(to_hex(g), 64, '0'), 'kid-' || g, 'v1:bench', 'online', $1 * 100, $1::bigint * 64 * 1048576,
				now(), '10.0.' || (g / 256) || '.' || (g % 256)
			FROM generate_series(1, $2) g`, []any{perWorker, workers}},
		{`INSERT INTO apps (uuid, user_id, name, subdomain)
			SELECT gen_random_uuid(), 1, 'bench-app-' || g, 'bench-app-' || g FROM generate_series(1, $1) g`, []any{jobs}},
		{`INSERT INTO jobs (type, app_id, cpu, memory) SELECT 'deploy', id, 100, 64 * 1048576 FROM apps ORDER BY id`, nil},
		{`VACUUM ANALYZE`, nil},
	}
	if !withJobs {
		stmts = append(stmts[:3], stmts[4:]...)
	}
	for _, st := range stmts {
		if _, err := s.Pool().Exec(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// resetScheduling puts every job back to pending and frees all capacity.
func resetScheduling(ctx context.Context, s *store.Store) error {
	for _, q := range []string{
		`UPDATE jobs SET status = 'pending', worker_id = NULL, assigned_at = NULL`,
		`DELETE FROM app_reservations`,
		`UPDATE workers SET used_cpu = 0, used_memory = 0`,
		`VACUUM ANALYZE jobs`, `VACUUM ANALYZE workers`, `VACUUM ANALYZE app_reservations`,
	} {
		if _, err := s.Pool().Exec(ctx, q); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	return nil
}
