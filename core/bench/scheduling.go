package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/scheduler"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/worker"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// scheduling measures placement: the daemon's own loop with the built-in
// least-loaded plugin in its subprocess, over 1,000 online workers and
// 100,000 pending jobs that all fit; in the same run, the raw SQL ceiling
// (the loop's statements with a trivial in-process placement) and a
// per-job baseline (the seed's design: per job, one scoring query and one
// update, in its own transaction) on 5,000 jobs; and the dispatch latency,
// job insert to job frame at a simulated worker, at a steady 1,000 jobs/s.
func scheduling(ctx context.Context, env *Env) ([]Result, error) {
	workers, jobs, batch, baselineJobs := 1000, 100_000, scheduler.DefaultBatchSize, 5000
	if env.Quick {
		workers, jobs, baselineJobs = 100, 5000, 300
	}
	// Ceiling and baseline: on a plain store, nothing else running.
	s, err := env.NewStore(ctx, 4)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := seedScheduling(ctx, s, workers, jobs, true); err != nil {
		return nil, err
	}
	ceil, err := measureCeiling(ctx, env, s, jobs, batch, scheduler.DefaultConcurrency)
	if err != nil {
		return nil, err
	}
	if err := resetScheduling(ctx, s); err != nil {
		return nil, err
	}
	base, err := perJobBaseline(ctx, env, s, baselineJobs)
	if err != nil {
		return nil, err
	}
	loop, err := loopRate(ctx, env, workers, jobs)
	if err != nil {
		return nil, err
	}
	p50, p99, rate, err := dispatchLatency(ctx, env)
	if err != nil {
		return nil, err
	}
	return []Result{
		{Metric: fmt.Sprintf("placements/s, daemon loop + least-loaded plugin subprocess, %s workers, %s jobs",
			commas(int64(workers)), commas(int64(jobs))), Value: loop, Unit: "/s",
			Compare: fmt.Sprintf("%.0f%% of the SQL ceiling, %.1f× the per-job baseline", 100*loop/ceil.rate, loop/base),
			Target:  "≥ 30,000/s; ≥ 50% of ceiling; ≥ 10× baseline"},
		{Metric: fmt.Sprintf("placements/s, raw SQL ceiling, %s/tx, %d at once", commas(int64(batch)), scheduler.DefaultConcurrency), Value: ceil.rate, Unit: "/s",
			Compare: fmt.Sprintf("one %s-job tx %.1f ms: claim %.1f, workers %.1f, assign %.1f, commit %.1f ms",
				commas(int64(batch)), ceil.batchMs, median(ceil.phases["claim"]), median(ceil.phases["workers"]), median(ceil.phases["assign"]),
				median(ceil.phases["commit"]))},
		{Metric: fmt.Sprintf("placements/s, per-job baseline (seed's design), %s jobs", commas(int64(baselineJobs))),
			Value: base, Unit: "/s", Compare: "claim, score, reserve, assign: a transaction per job"},
		{Metric: fmt.Sprintf("dispatch latency p50, insert → job frame at the worker, %.0f jobs/s", rate), Value: p50, Unit: "ms",
			Compare: fmt.Sprintf("p99 %.1f ms; the seed's 5 s poll averages 2,500 ms", p99), Target: "p99 ≤ 50 ms"},
	}, nil
}

// perJobBaseline places n of the pending jobs one transaction each, as
// the seed's scheduler did: claim one job, pick the least-loaded worker
// that fits with one scoring query, then reserve and assign. It returns
// placements per second (median of the runs).
func perJobBaseline(ctx context.Context, env *Env, s *store.Store, n int) (float64, error) {
	var rates []float64
	for run := 0; run < env.Runs; run++ {
		if run > 0 {
			if err := resetScheduling(ctx, s); err != nil {
				return 0, err
			}
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
				var job, app, cpu, mem, w int64
				if err := tx.QueryRow(ctx, `SELECT id, app_id, cpu, memory FROM jobs WHERE status = 'pending'
					ORDER BY priority DESC, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&job, &app, &cpu, &mem); err != nil {
					return fmt.Errorf("claim: %w", err)
				}
				if err := tx.QueryRow(ctx, `SELECT id FROM workers
					WHERE status = 'online' AND last_heartbeat > now() - interval '2 minutes'
					  AND capacity_cpu - used_cpu >= $1 AND capacity_memory - used_memory >= $2
					ORDER BY 0.4 * cpu_percent + 0.4 * memory_percent + 0.2 * running_apps, id
					LIMIT 1 FOR NO KEY UPDATE`, cpu, mem).Scan(&w); err != nil {
					return fmt.Errorf("score workers: %w", err)
				}
				b := &pgx.Batch{}
				b.Queue(`UPDATE workers SET used_cpu = used_cpu + $2, used_memory = used_memory + $3 WHERE id = $1`, w, cpu, mem)
				b.Queue(`INSERT INTO app_reservations (app_id, worker_id, cpu, memory) VALUES ($1, $2, $3, $4)`, app, w, cpu, mem)
				b.Queue(`UPDATE jobs SET status = 'assigned', worker_id = $2, assigned_at = now() WHERE id = $1`, job, w)
				return tx.SendBatch(ctx, b).Close()
			})
			if err != nil {
				return 0, fmt.Errorf("per-job baseline: %w", err)
			}
		}
		el := time.Since(start)
		if bad, err := store.CheckCapacity(ctx, s.Pool()); err != nil || len(bad) > 0 {
			return 0, fmt.Errorf("per-job baseline: capacity invariant: %v %v", bad, err)
		}
		rates = append(rates, float64(n)/el.Seconds())
		env.Log.Info("per-job baseline run", "run", run+1, "jobs", n, "took", el)
	}
	return median(rates), nil
}

// loopRate runs a core whose daemon schedules with the least-loaded plugin
// and measures how fast its loop places jobs inserted in one statement
// (whose NOTIFY wakes it): jobs divided by the time from the insert's
// commit to the last assignment.
func loopRate(ctx context.Context, env *Env, workers, jobs int) (float64, error) {
	c, err := env.startCore(ctx, coreOptions{scheduler: true})
	if err != nil {
		return 0, err
	}
	defer c.stop()
	st := c.store()
	if err := seedScheduling(ctx, st, workers, jobs, false); err != nil {
		return 0, err
	}
	assigned := func() float64 {
		v, _ := c.metric("wisehosting_scheduler_jobs_assigned_total")
		return v
	}
	var rates []float64
	for run := 0; run < env.Runs; run++ {
		if run > 0 {
			for _, q := range []string{`DELETE FROM jobs`, `DELETE FROM app_reservations`,
				`UPDATE workers SET used_cpu = 0, used_memory = 0, last_heartbeat = now()`, `VACUUM ANALYZE`} {
				if _, err := st.Pool().Exec(ctx, q); err != nil {
					return 0, fmt.Errorf("loop reset: %w", err)
				}
			}
		}
		base := assigned()
		if _, err := st.Pool().Exec(ctx, `INSERT INTO jobs (type, app_id, cpu, memory)
			SELECT 'deploy', id, 100, 64 * 1048576 FROM apps ORDER BY id`); err != nil {
			return 0, fmt.Errorf("loop: insert jobs: %w", err)
		}
		start := time.Now()
		if err := waitFor(ctx, 5*time.Minute, func() bool { return assigned()-base >= float64(jobs) }); err != nil {
			return 0, fmt.Errorf("loop placed %v of %d jobs: %w", assigned()-base, jobs, err)
		}
		el := time.Since(start)
		if bad, err := store.CheckCapacity(ctx, st.Pool()); err != nil || len(bad) > 0 {
			return 0, fmt.Errorf("loop: capacity invariant: %v %v", bad, err)
		}
		rates = append(rates, float64(jobs)/el.Seconds())
		env.Log.Info("scheduling loop run", "run", run+1, "jobs", jobs, "took", el)
	}
	return median(rates), nil
}

// dispatchLatency runs a core with the least-loaded plugin and ten
// simulated workers (sdk/worker clients, in this process so that receive
// times and insert times share a clock), inserts deploy jobs at a steady
// 1,000/s (ten every 10 ms) and measures, per job, the time from its
// insert's commit to its job frame reaching a worker. It returns p50 and
// p99 in milliseconds and the rate achieved.
func dispatchLatency(ctx context.Context, env *Env) (p50, p99, rate float64, err error) {
	const nWorkers, perTick, tick = 10, 10, 10 * time.Millisecond
	d := 10 * time.Second
	if env.Quick {
		d = 2 * time.Second
	}
	total := int(d/tick) * perTick
	c, err := env.startCore(ctx, coreOptions{scheduler: true})
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.stop()
	st := c.store()
	keys, err := c.seedWorkers(ctx, "dispatch", nWorkers, false)
	if err != nil {
		return 0, 0, 0, err
	}
	if _, err := st.Pool().Exec(ctx, `INSERT INTO users (email) VALUES ('latency@bench.test');
		INSERT INTO apps (uuid, user_id, name, subdomain)
		SELECT gen_random_uuid(), (SELECT id FROM users WHERE email = 'latency@bench.test'), 'lat-app-' || g, 'lat-app-' || g
		FROM generate_series(1, `+fmt.Sprint(total)+`) g`); err != nil {
		return 0, 0, 0, fmt.Errorf("dispatch: seed apps: %w", err)
	}
	// Receipts and inserts are matched at the end: a fast push can beat
	// the insert's own bookkeeping.
	var mu sync.Mutex
	inserted, received := map[int64]time.Time{}, map[int64]time.Time{}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	clients := make([]*worker.Client, nWorkers)
	for i, key := range keys {
		cl, err := worker.New(worker.Config{CoreURL: c.url, APIKey: key, Registration: wsproto.RegisterRequest{
			Address: "127.0.0.1", Capacity: wsproto.Capacity{CPU: 1_000_000, Memory: 1 << 50},
			Runtimes: []string{wsproto.RuntimeExec}}})
		if err != nil {
			return 0, 0, 0, err
		}
		clients[i] = cl
		wg.Go(func() { _ = cl.Run(wctx) })
		wg.Go(func() {
			for {
				select {
				case <-wctx.Done():
					return
				case j := <-cl.Jobs():
					now := time.Now()
					mu.Lock()
					if _, dup := received[j.JobID]; !dup {
						received[j.JobID] = now
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, cl := range clients {
		if err := waitFor(ctx, time.Minute, cl.Connected); err != nil {
			return 0, 0, 0, fmt.Errorf("dispatch: worker did not connect: %w", err)
		}
		if err := cl.SendHeartbeat(ctx, wsproto.Heartbeat{CPUPercent: 1, MemoryPercent: 1, DiskPercent: 1}); err != nil {
			return 0, 0, 0, err
		}
	}
	if err := waitFor(ctx, time.Minute, func() bool {
		var n int
		_ = st.Pool().QueryRow(ctx, `SELECT count(*) FROM workers WHERE status = 'online'
			AND last_heartbeat > now() - interval '1 minute' AND capacity_cpu > 0`).Scan(&n)
		return n == nWorkers
	}); err != nil {
		return 0, 0, 0, fmt.Errorf("dispatch: workers not online: %w", err)
	}
	var appIDs []int64
	rows, err := st.Pool().Query(ctx, `SELECT id FROM apps WHERE name LIKE 'lat-app-%' ORDER BY id`)
	if err == nil {
		appIDs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("dispatch: apps: %w", err)
	}
	start := time.Now()
	next := start
	for i := 0; i < total; i += perTick {
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
		next = next.Add(tick)
		rows, err := st.Pool().Query(ctx, `INSERT INTO jobs (type, app_id, cpu, memory)
			SELECT 'deploy', id, 1, 1048576 FROM unnest($1::bigint[]) id RETURNING id`, appIDs[i:i+perTick])
		if err != nil {
			return 0, 0, 0, fmt.Errorf("dispatch: insert: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return 0, 0, 0, fmt.Errorf("dispatch: insert: %w", err)
		}
		now := time.Now()
		mu.Lock()
		for _, id := range ids {
			inserted[id] = now
		}
		mu.Unlock()
	}
	rate = float64(total) / time.Since(start).Seconds()
	if err := waitFor(ctx, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(received) >= total
	}); err != nil {
		mu.Lock()
		got := len(received)
		mu.Unlock()
		return 0, 0, 0, fmt.Errorf("dispatch: %d of %d job frames received: %w", got, total, err)
	}
	mu.Lock()
	defer mu.Unlock()
	var lat []float64
	for id, t := range inserted {
		r, ok := received[id]
		if !ok {
			return 0, 0, 0, fmt.Errorf("dispatch: job %d never reached a worker", id)
		}
		lat = append(lat, float64(r.Sub(t).Microseconds())/1000)
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		return 0, 0, 0, errors.New("dispatch: no job received")
	}
	return lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)], rate, nil
}
