package pgtest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func connect(t *testing.T, connString string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), connString)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	var n int
	if err := connect(t, Cluster(t).ConnString("postgres")).QueryRow(t.Context(),
		"SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestParallelDatabases(t *testing.T) {
	var setups atomic.Int32
	setup := func(ctx context.Context, connString string) error {
		setups.Add(1)
		time.Sleep(100 * time.Millisecond) // widen the window for a racing second setup
		conn, err := pgx.Connect(ctx, connString)
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close(ctx) }()
		_, err = conn.Exec(ctx, "CREATE TABLE migrated (v text); INSERT INTO migrated VALUES ('from template')")
		return err
	}
	key := fmt.Sprintf("parallel-%d", time.Now().UnixNano()) // fresh template under -count=N
	var mu sync.Mutex
	names := map[string]bool{}
	t.Run("group", func(t *testing.T) {
		for i := range 8 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				connString := NewDatabase(t, key, setup)
				cfg, err := pgx.ParseConfig(connString)
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				names[cfg.Database] = true
				mu.Unlock()

				conn := connect(t, connString)
				var v string
				if err := conn.QueryRow(t.Context(), "SELECT v FROM migrated").Scan(&v); err != nil || v != "from template" {
					t.Fatalf("template content: %q, %v", v, err)
				}
				// Same table name in every database: they must be isolated.
				if _, err := conn.Exec(t.Context(), "CREATE TABLE same_name (n int)"); err != nil {
					t.Fatal(err)
				}
				if _, err := conn.Exec(t.Context(), "INSERT INTO same_name VALUES ($1)", i); err != nil {
					t.Fatal(err)
				}
				var n, count int
				if err := conn.QueryRow(t.Context(), "SELECT max(n), count(*) FROM same_name").Scan(&n, &count); err != nil || n != i || count != 1 {
					t.Fatalf("same_name: n=%d count=%d err=%v", n, count, err)
				}
			})
		}
	})
	if got := setups.Load(); got != 1 {
		t.Fatalf("setup ran %d times, want once", got)
	}
	if len(names) != 8 {
		t.Fatalf("%d distinct database names for 8 tests", len(names))
	}
	for name := range names {
		if databaseExists(t, name) {
			t.Errorf("database %s not dropped after its test", name)
		}
	}
}

func TestCloneCost(t *testing.T) {
	setup := func(ctx context.Context, connString string) error {
		conn, err := pgx.Connect(ctx, connString)
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close(ctx) }()
		// A schema of the size of a real migration set.
		var b strings.Builder
		for i := range 20 {
			fmt.Fprintf(&b, "CREATE TABLE t%d (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now(), data jsonb);", i)
			fmt.Fprintf(&b, "CREATE INDEX ON t%d (created_at);", i)
		}
		_, err = conn.Exec(ctx, b.String())
		return err
	}
	NewDatabase(t, "clone-cost", setup) // template creation is not part of the per-test cost

	const n = 20
	var create, drop time.Duration
	for i := range n {
		var began time.Time
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			began = time.Now()
			NewDatabase(t, "clone-cost", setup)
			create += time.Since(began)
			began = time.Now()
		})
		drop += time.Since(began)
	}
	t.Logf("per-test database: create %s, drop %s (mean of %d, template of 20 tables)", create/n, drop/n, n)
	if create/n > 2*time.Second {
		t.Errorf("creating a database takes %s on average; cloning should cost milliseconds", create/n)
	}
}

func TestLeakedConnectionStillDropped(t *testing.T) {
	var name string
	var leaked *pgx.Conn
	t.Run("leaky", func(t *testing.T) {
		var err error
		leaked, err = pgx.Connect(t.Context(), NewDatabase(t, "", nil)) // still open when the test ends
		if err != nil {
			t.Fatal(err)
		}
		name = leaked.Config().Database
	})
	defer func() { _ = leaked.Close(context.Background()) }()
	if databaseExists(t, name) {
		t.Fatalf("database %s with a leaked connection not dropped", name)
	}
}

func TestSetupFailureFailsTest(t *testing.T) {
	boom := func(context.Context, string) error { return fmt.Errorf("migration 007 is broken") }
	for range 2 { // the error is remembered for later tests with the same key
		f := runFake(func(tb testing.TB) { NewDatabase(tb, "broken", boom) })
		if f.skipped || !strings.Contains(f.fatal, "migration 007 is broken") {
			t.Fatalf("fatal=%q skipped=%v; want a failure with the setup error", f.fatal, f.skipped)
		}
	}
}

func TestMissingBinariesFail(t *testing.T) {
	h := &harness{binDir: t.TempDir()}
	f := runFake(func(tb testing.TB) { h.clusterFor(tb) })
	if f.skipped {
		t.Fatal("missing binaries skipped the test; they must fail it")
	}
	if !strings.Contains(f.fatal, "apt-get install postgresql") {
		t.Fatalf("fatal = %q, want an install hint", f.fatal)
	}
	t.Logf("failure: %s", f.fatal)
}

func TestDBName(t *testing.T) {
	for _, tc := range []struct{ prefix, readable, unique, want string }{
		{"t", "TestFoo/sub_case#01", "7", "t_testfoo_sub_case_01_7"},
		{"tmpl", "", "ab12", "tmpl__ab12"},
	} {
		if got := dbName(tc.prefix, tc.readable, tc.unique); got != tc.want {
			t.Errorf("dbName(%q, %q, %q) = %q, want %q", tc.prefix, tc.readable, tc.unique, got, tc.want)
		}
	}
	if got := dbName("t", strings.Repeat("x", 200), "123"); len(got) > 63 || !strings.HasSuffix(got, "_123") {
		t.Errorf("long name %q (%d bytes)", got, len(got))
	}
}

// fakeTB records Fatal and Skip instead of ending the real test.
type fakeTB struct {
	testing.TB
	fatal   string
	skipped bool
}

func runFake(fn func(testing.TB)) *fakeTB {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Name() string                      { return "Fake" }
func (f *fakeTB) Context() context.Context          { return context.Background() }
func (f *fakeTB) Cleanup(func())                    {}
func (f *fakeTB) Logf(string, ...any)               {}
func (f *fakeTB) Errorf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }
func (f *fakeTB) Fatal(args ...any)                 { f.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Skip(...any)          { f.skipped = true; runtime.Goexit() }
func (f *fakeTB) Skipf(string, ...any) { f.skipped = true; runtime.Goexit() }
func (f *fakeTB) SkipNow()             { f.skipped = true; runtime.Goexit() }
