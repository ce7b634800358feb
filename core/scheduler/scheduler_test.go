package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/core/scheduler"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/plugins/scheduler/leastloaded"
	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/sdktest"
)

// The placer is the real least-loaded plugin in a subprocess: this test
// binary re-executed, as the core runs a built-in.
func TestMain(m *testing.M) {
	sdktest.ServeIfChild(func() sdk.Plugin { return leastloaded.New() })
	os.Exit(pgtest.Main(m))
}

func plugin(t *testing.T) sdk.Scheduler {
	t.Helper()
	return sdktest.Start(t, sdktest.SelfCommand(), sdk.KindScheduler, "").(sdk.Scheduler)
}

// recorder is a Pusher that remembers every job pushed.
type recorder struct {
	mu     sync.Mutex
	pushed []store.AssignedJob
}

func (r *recorder) PushJobs(a []store.AssignedJob) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pushed = append(r.pushed, a...)
	return len(a)
}

func (r *recorder) all() []store.AssignedJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.AssignedJob(nil), r.pushed...)
}

// seed creates workers (online, fresh heartbeat, capacity for perWorker
// jobs of 100m / 64 MiB, runtime exec) and one app with a pending deploy
// job of that size for each of jobs, with plain SQL.
func seed(t *testing.T, st *store.Store, workers, perWorker, jobs int) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (email) VALUES ('sched@example.com') ON CONFLICT DO NOTHING`, nil},
		{`INSERT INTO workers (name, api_key_hash, key_id, envelope_key, status, capacity_cpu, capacity_memory,
				last_heartbeat, address, runtimes)
			SELECT 'w-' || g, lpad(to_hex(g), 64, '0'), 'kid-' || g, 'v1:test', 'online', $1 * 100,
				$1::bigint * 64 * 1048576, now(), '10.0.0.' || g, '{exec}'
			FROM generate_series(1, $2) g`, []any{perWorker, workers}},
		{`INSERT INTO apps (uuid, user_id, name, subdomain)
			SELECT gen_random_uuid(), (SELECT id FROM users LIMIT 1), 'sched-app-' || g, 'sched-app-' || g
			FROM generate_series(1, $1) g`, []any{jobs}},
		{`INSERT INTO jobs (type, app_id, cpu, memory) SELECT 'deploy', id, 100, 64 * 1048576 FROM apps ORDER BY id`, nil},
	} {
		if _, err := st.Pool().Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
}

func count(t *testing.T, st *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// checkInvariants is what every test ends with: no job assigned twice,
// every assigned job pushed once, and each worker's used capacity the sum
// of the reservations on it, within its capacity.
func checkInvariants(t *testing.T, st *store.Store, pushed []store.AssignedJob) {
	t.Helper()
	seen := map[int64]int64{}
	for _, p := range pushed {
		if w, dup := seen[p.JobID]; dup {
			t.Fatalf("job %d assigned twice (workers %d and %d)", p.JobID, w, p.WorkerID)
		}
		seen[p.JobID] = p.WorkerID
	}
	if n := count(t, st, `SELECT count(*) FROM jobs WHERE status = 'assigned'`); n != len(pushed) {
		t.Fatalf("%d jobs assigned in the database, %d pushed", n, len(pushed))
	}
	for id, w := range seen {
		if n := count(t, st, `SELECT count(*) FROM jobs WHERE id = $1 AND worker_id = $2 AND status = 'assigned'`, id, w); n != 1 {
			t.Fatalf("job %d was pushed to worker %d but is not assigned there", id, w)
		}
	}
	bad, err := store.CheckCapacity(context.Background(), st.Pool())
	if err != nil || len(bad) > 0 {
		t.Fatalf("capacity invariant: %+v %v", bad, err)
	}
}

func TestPassPlacesTheBatchAndPushes(t *testing.T) {
	st := storetest.New(t)
	seed(t, st, 3, 10, 25)
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	s, err := scheduler.New(scheduler.Options{Store: st, Placer: plugin(t), Pusher: rec, BatchSize: 10,
		Registry: reg, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	total := 0
	for i := 0; i < 3; i++ {
		res, err := s.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(10, 25-total); res.Claimed != want || len(res.Assigned) != want || res.Workers != 3 {
			t.Fatalf("pass %d: %+v, want %d claimed and assigned over 3 workers", i, res, want)
		}
		total += len(res.Assigned)
	}
	if res, err := s.Pass(ctx); err != nil || res.Claimed != 0 {
		t.Fatalf("pass with nothing pending: %+v %v", res, err)
	}
	checkInvariants(t, st, rec.all())
	// least-loaded uses every worker, none beyond its room for 10.
	for w := 1; w <= 3; w++ {
		if n := count(t, st, `SELECT count(*) FROM jobs j JOIN workers w ON w.id = j.worker_id WHERE w.name = $1`,
			fmt.Sprintf("w-%d", w)); n < 1 || n > 10 {
			t.Errorf("worker w-%d got %d of 25 jobs", w, n)
		}
	}
	if v, _ := metrics.Sum(reg, "wisehosting_scheduler_jobs_assigned_total"); v != 25 {
		t.Fatalf("assigned metric = %v", v)
	}
}

func TestJobsThatFitNowhereStayPending(t *testing.T) {
	st := storetest.New(t)
	seed(t, st, 2, 5, 14) // room for 10
	ctx := context.Background()
	// One job needs podman, which no worker offers.
	if _, err := st.Pool().Exec(ctx, `UPDATE jobs SET runtime = 'podman' WHERE id = (SELECT min(id) FROM jobs)`); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	s, err := scheduler.New(scheduler.Options{Store: st, Placer: plugin(t), Pusher: rec, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Claimed != 14 || len(res.Assigned) != 10 {
		t.Fatalf("pass: claimed %d, assigned %d; want 14 and 10", res.Claimed, len(res.Assigned))
	}
	if n := count(t, st, `SELECT count(*) FROM jobs WHERE status = 'pending'`); n != 4 {
		t.Fatalf("%d jobs pending, want 4", n)
	}
	if n := count(t, st, `SELECT count(*) FROM jobs WHERE runtime = 'podman' AND status = 'pending'`); n != 1 {
		t.Fatal("the podman job was placed on an exec-only worker")
	}
	if v, _ := metrics.Sum(reg, "wisehosting_scheduler_jobs_unplaced_total"); v != 4 {
		t.Fatalf("unplaced metric = %v", v)
	}
	checkInvariants(t, st, rec.all())
}

// failingPlacer fails (or hangs until its context ends) mid-transaction,
// after the jobs are claimed.
type failingPlacer struct{ hang bool }

func (f failingPlacer) Place(ctx context.Context, _ *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
	if f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, errors.New("plugin crashed")
}

func TestPassKilledMidTransactionLeavesJobsPending(t *testing.T) {
	st := storetest.New(t)
	seed(t, st, 2, 10, 8)
	for _, f := range []failingPlacer{{hang: false}, {hang: true}} {
		s, err := scheduler.New(scheduler.Options{Store: st, Placer: f})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err = s.Pass(ctx)
		cancel()
		if err == nil {
			t.Fatalf("pass with placer %+v succeeded", f)
		}
		if n := count(t, st, `SELECT count(*) FROM jobs WHERE status = 'pending' AND worker_id IS NULL`); n != 8 {
			t.Fatalf("after a failed pass %d of 8 jobs are pending", n)
		}
		checkInvariants(t, st, nil)
	}
	// The next loop places them all.
	rec := &recorder{}
	s, err := scheduler.New(scheduler.Options{Store: st, Placer: plugin(t), Pusher: rec})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Pass(context.Background()); err != nil || len(res.Assigned) != 8 {
		t.Fatalf("pass after the failures: %+v %v", res, err)
	}
	checkInvariants(t, st, rec.all())
}

// Two loops, as two cores would run them, with their own plugin processes,
// over 3,000 jobs of which 2,000 fit: no job is taken twice and no worker
// is committed beyond its capacity.
func TestTwoLoopsNeverDoubleAssign(t *testing.T) {
	st := storetest.New(t)
	seed(t, st, 40, 50, 3000)
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		s, err := scheduler.New(scheduler.Options{Store: st, Placer: plugin(t), Pusher: rec, BatchSize: 200,
			PollInterval: 20 * time.Millisecond, Logger: testutil.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = s.Run(ctx) })
	}
	testutil.WaitFor(t, 2*time.Minute, "2,000 jobs assigned", func() bool { return len(rec.all()) >= 2000 })
	time.Sleep(200 * time.Millisecond) // a few more passes with nothing left to fit
	cancel()
	wg.Wait()
	if got := len(rec.all()); got != 2000 {
		t.Fatalf("%d jobs assigned, want exactly the 2,000 that fit", got)
	}
	checkInvariants(t, st, rec.all())
}

// A job inserted while the loop sleeps is placed at once: the insert's
// NOTIFY wakes the loop, not the (hour-long) poll.
func TestInsertWakesTheLoop(t *testing.T) {
	st := storetest.New(t)
	seed(t, st, 1, 10, 0)
	l := st.NewListener(testutil.Logger(t))
	rec := &recorder{}
	s, err := scheduler.New(scheduler.Options{Store: st, Placer: plugin(t), Pusher: rec, Listener: l,
		PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = l.Run(ctx) })
	testutil.WaitFor(t, 10*time.Second, "listener up", l.Listening)
	wg.Go(func() { _ = s.Run(ctx) })
	time.Sleep(100 * time.Millisecond) // the first pass has found nothing
	for i := 1; i <= 3; i++ {
		start := time.Now()
		if _, err := st.Pool().Exec(context.Background(), `
			WITH a AS (INSERT INTO apps (uuid, user_id, name, subdomain)
				SELECT gen_random_uuid(), (SELECT id FROM users LIMIT 1), 'late-app-' || $1::int, 'late-app-' || $1::int RETURNING id)
			INSERT INTO jobs (type, app_id, cpu, memory) SELECT 'deploy', id, 100, 64 * 1048576 FROM a`, i); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 5*time.Second, "the new job pushed", func() bool { return len(rec.all()) == i })
		t.Logf("job %d: inserted to pushed in %s", i, time.Since(start).Round(time.Millisecond))
	}
	checkInvariants(t, st, rec.all())
}

// countingPlacer wraps a placer, slowing each call down and recording how
// many run at once.
type countingPlacer struct {
	scheduler.Placer
	delay                time.Duration
	mu                   sync.Mutex
	inFlight, max, calls int
}

func (c *countingPlacer) Place(ctx context.Context, req *pluginv1.PlaceRequest) (*pluginv1.PlaceResponse, error) {
	c.mu.Lock()
	c.inFlight++
	c.calls++
	c.max = max(c.max, c.inFlight)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}()
	time.Sleep(c.delay)
	return c.Placer.Place(ctx, req)
}

func (c *countingPlacer) stats() (maxInFlight, calls int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max, c.calls
}

// With concurrency 2, a backlog is worked by two passes at once (one
// consults the plugin while the other applies its batch), and once what
// is left fits nowhere the loops go quiet instead of spinning over it.
func TestConcurrentPassesOverlapAndGoQuiet(t *testing.T) {
	st := storetest.New(t)
	seed(t, st, 10, 50, 1000) // room for 500
	rec := &recorder{}
	p := &countingPlacer{Placer: plugin(t), delay: 20 * time.Millisecond}
	s, err := scheduler.New(scheduler.Options{Store: st, Placer: p, Pusher: rec, BatchSize: 50, Concurrency: 2,
		PollInterval: time.Hour, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = s.Run(ctx) })
	testutil.WaitFor(t, time.Minute, "500 jobs assigned", func() bool { return len(rec.all()) >= 500 })
	if m, _ := p.stats(); m != 2 {
		t.Fatalf("at most %d plugin calls ran at once during the backlog, want 2", m)
	}
	time.Sleep(300 * time.Millisecond) // the passes after the last placement find nothing that fits
	_, before := p.stats()
	time.Sleep(500 * time.Millisecond)
	if _, after := p.stats(); after != before {
		t.Fatalf("%d plugin calls in 500 ms over a backlog that fits nowhere: the loops spin", after-before)
	}
	if got := len(rec.all()); got != 500 {
		t.Fatalf("%d jobs assigned, want the 500 that fit", got)
	}
	checkInvariants(t, st, rec.all())
}
