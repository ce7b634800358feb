package usage_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
	"github.com/wisehosting/wisehosting/core/hub"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/usage"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

type fakeStats struct {
	mu sync.Mutex
	m  map[int64]hub.AppStats
}

func (f *fakeStats) AppStatsLive(appID int64) (hub.AppStats, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.m[appID]
	return s, ok
}

func (f *fakeStats) set(appID int64, s hub.AppStats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[appID] = s
}

// failingStore fails its writes while fail is set.
type failingStore struct {
	*store.Store
	mu   sync.Mutex
	fail bool
}

func (f *failingStore) UpsertUsageSamples(ctx context.Context, s []store.UsageSample) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail && len(s) > 0 {
		return errors.New("database unreachable")
	}
	return f.Store.UpsertUsageSamples(ctx, s)
}

type fixture struct {
	st    *failingStore
	stats *fakeStats
	now   time.Time
	rec   *usage.Recorder
	app   *store.App
	user  *store.User
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{st: &failingStore{Store: storetest.New(t)}, stats: &fakeStats{m: map[int64]hub.AppStats{}},
		now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	var err error
	if f.user, err = f.st.CreateUser(ctx, store.NewUser{Email: "usage@example.com", Name: "U"}); err != nil {
		t.Fatal(err)
	}
	if f.app, err = f.st.CreateApp(ctx, store.NewApp{UserID: f.user.ID, Name: "usage-app"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Pool().Exec(ctx, `UPDATE apps SET status = 'running' WHERE id = $1`, f.app.ID); err != nil {
		t.Fatal(err)
	}
	f.rec, err = usage.New(usage.Options{Store: f.st, Stats: f.stats, Now: func() time.Time { return f.now }, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// sample records one reading at the fake clock, then advances it a minute.
func (f *fixture) sample(t *testing.T, cpu float64, mem int64, net float64, total int64) {
	t.Helper()
	f.stats.set(f.app.ID, hub.AppStats{CPUPercent: cpu, MemBytes: mem, MemLimit: 1 << 30, NetMbps: net, NetTotalBytes: total, UpdatedAt: f.now})
	if err := f.rec.Sample(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Minute)
}

func (f *fixture) rows(t *testing.T) []store.UsageSample {
	t.Helper()
	out, err := f.st.ListUsageSamples(t.Context(), f.app.ID, time.Time{}, f.now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBucketsAggregateAndCloseOnTime(t *testing.T) {
	f := newFixture(t)
	// Bucket 10:00: five readings, the byte counter growing by 1,000 a
	// minute after the first reading.
	for i, cpu := range []float64{10, 20, 30, 40, 50} {
		f.sample(t, cpu, int64(100+i*100)<<20, float64(i), int64(5000+i*1000))
	}
	if rows := f.rows(t); len(rows) != 0 {
		t.Fatalf("a bucket was written before it closed: %+v", rows)
	}
	// 10:05: the first reading of the next bucket closes 10:00. The
	// counter reset (the app restarted): the bytes since are the counter.
	f.sample(t, 70, 50<<20, 2, 300)
	rows := f.rows(t)
	if len(rows) != 1 {
		t.Fatalf("rows %+v", rows)
	}
	r := rows[0]
	want := store.UsageSample{AppID: f.app.ID, UserID: f.user.ID, BucketStart: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC),
		CPUAvg: 30, CPUMax: 50, MemAvg: 300 << 20, MemMax: 500 << 20, NetAvg: 2, NetMax: 4, NetBytesDelta: 4000, Samples: 5}
	if r != want {
		t.Fatalf("bucket\n got %+v\nwant %+v", r, want)
	}
	// Shutdown writes the open bucket; a restarted recorder's later
	// readings of the same bucket merge into it.
	if err := f.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	again, err := usage.New(usage.Options{Store: f.st, Stats: f.stats, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.rec = again
	f.sample(t, 30, 150<<20, 4, 1300)
	f.sample(t, 20, 100<<20, 6, 2300) // +1,000 bytes (the first reading after the restart gives none)
	if err := f.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	rows = f.rows(t)
	if len(rows) != 2 {
		t.Fatalf("rows %+v", rows)
	}
	r = rows[1]
	want = store.UsageSample{AppID: f.app.ID, UserID: f.user.ID, BucketStart: time.Date(2026, 11, 24, 10, 5, 0, 0, time.UTC),
		CPUAvg: 40, CPUMax: 70, MemAvg: 100 << 20, MemMax: 150 << 20, NetAvg: 4, NetMax: 6, NetBytesDelta: 300 + 1000, Samples: 3}
	if r != want {
		t.Fatalf("merged bucket\n got %+v\nwant %+v", r, want)
	}
}

// A write that fails keeps the closed bucket for the next write.
func TestFailedWriteIsRetried(t *testing.T) {
	f := newFixture(t)
	for range 5 {
		f.sample(t, 10, 1<<20, 1, 0)
	}
	f.st.mu.Lock()
	f.st.fail = true
	f.st.mu.Unlock()
	f.stats.set(f.app.ID, hub.AppStats{CPUPercent: 10, MemBytes: 1 << 20, UpdatedAt: f.now})
	if err := f.rec.Sample(t.Context()); err == nil {
		t.Fatal("the failing write was not reported")
	}
	f.now = f.now.Add(time.Minute)
	f.st.mu.Lock()
	f.st.fail = false
	f.st.mu.Unlock()
	f.sample(t, 10, 1<<20, 1, 0)
	if rows := f.rows(t); len(rows) != 1 || rows[0].Samples != 5 {
		t.Fatalf("rows after the retry: %+v", rows)
	}
}

func TestPrune(t *testing.T) {
	f := newFixture(t)
	old := store.UsageSample{AppID: f.app.ID, UserID: f.user.ID, BucketStart: usage.BucketStart(f.now.Add(-91 * 24 * time.Hour)), Samples: 1}
	recent := store.UsageSample{AppID: f.app.ID, UserID: f.user.ID, BucketStart: usage.BucketStart(f.now.Add(-89 * 24 * time.Hour)), Samples: 1}
	if err := f.st.UpsertUsageSamples(t.Context(), []store.UsageSample{old, recent}); err != nil {
		t.Fatal(err)
	}
	ran, n, err := f.rec.Prune(t.Context())
	if err != nil || !ran || n != 1 {
		t.Fatalf("Prune = %v, %d, %v", ran, n, err)
	}
	if rows := f.rows(t); len(rows) != 1 || !rows[0].BucketStart.Equal(recent.BucketStart) {
		t.Fatalf("rows %+v", rows)
	}
	// Another core holding the lock: this one skips.
	held := make(chan struct{})
	release := make(chan struct{})
	go func() {
		_, _ = f.st.WithTryAdvisoryLock(context.Background(), store.LockPruneUsage, func(context.Context) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	ran, _, err = f.rec.Prune(t.Context())
	close(release)
	if err != nil || ran {
		t.Fatalf("Prune while another core holds the lock: ran %v, %v", ran, err)
	}
}
