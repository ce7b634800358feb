// Package pgtest gives tests a fresh PostgreSQL database each, cloned in
// milliseconds from a template that is prepared once per test binary.
//
// Every package whose tests need PostgreSQL uses it like this:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		connString := pgtest.NewDatabase(t, "store", store.Migrate)
//		...
//	}
//
// One throwaway (Ephemeral) embedpg cluster serves the whole test binary. It
// starts on first use and Main stops it after the tests ran. Without Main the
// cluster still dies with the test binary (the server gets SIGTERM when its
// parent exits) and its directory is swept by a later run, but Main is the
// intended way: it stops the server cleanly and removes its files at once.
//
// Missing PostgreSQL binaries fail the test (they never skip it), with a hint
// on how to install them.
//
// The server log goes to stderr at the level named by WH_TEST_LOG (default
// warn), like testutil.Logger.
package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/embedpg"
	"github.com/wisehosting/wisehosting/core/testutil"
)

const (
	startTimeout = 2 * time.Minute
	setupTimeout = 5 * time.Minute
	dbTimeout    = time.Minute
	adminConns   = 4
)

// std is the harness of this test binary.
var std = &harness{}

// Main runs the tests and then stops the binary's cluster, if one was
// started. Call it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if err := std.shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
	}
	return code
}

// Cluster returns the test binary's cluster, starting it on first use. It
// fails t when the cluster cannot start.
func Cluster(t testing.TB) *embedpg.Cluster {
	t.Helper()
	return std.clusterFor(t)
}

// NewDatabase creates a database for this test only and returns its
// connection string; t.Cleanup drops it (forcibly, should the test leak
// connections). The database is a copy of a template that setup (typically
// "apply migrations") prepared once per test binary and setupKey: every call
// with the same setupKey must pass an equivalent setup, which may be nil for
// an empty database. A failed setup fails every test that uses its key.
// NewDatabase is safe for parallel tests.
func NewDatabase(t testing.TB, setupKey string, setup func(ctx context.Context, connString string) error) string {
	t.Helper()
	return std.newDatabase(t, setupKey, setup)
}

// harness holds the per-binary cluster and templates.
type harness struct {
	binDir string // overrides embedpg's lookup (tests of the harness itself)

	startOnce sync.Once
	cluster   *embedpg.Cluster
	startErr  error
	serverNum int // server_version_num

	mu        sync.Mutex
	templates map[string]*template
	closed    bool
	admin     chan *pgx.Conn
	seq       atomic.Uint64
}

// template is a database prepared once by setup and cloned by each test.
type template struct {
	once sync.Once
	name string
	err  error
}

func (h *harness) start() {
	h.startOnce.Do(func() {
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		if closed {
			h.startErr = fmt.Errorf("pgtest: cluster used after Main finished")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		h.admin = make(chan *pgx.Conn, adminConns)
		c, err := embedpg.Start(ctx, embedpg.Options{Ephemeral: true, Logger: logger(), BinDir: h.binDir})
		if err != nil {
			h.startErr = fmt.Errorf("pgtest: start PostgreSQL: %w", err)
			return
		}
		h.cluster = c
		err = h.withAdmin(ctx, func(conn *pgx.Conn) error {
			return conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&h.serverNum)
		})
		if err != nil {
			h.startErr = fmt.Errorf("pgtest: query server version: %w", err)
		}
	})
}

func (h *harness) clusterFor(t testing.TB) *embedpg.Cluster {
	t.Helper()
	h.start()
	if h.startErr != nil {
		t.Fatal(h.startErr)
	}
	return h.cluster
}

// shutdown stops the cluster, if it was started.
func (h *harness) shutdown() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.startOnce.Do(func() { h.startErr = fmt.Errorf("pgtest: cluster used after Main finished") })
	if h.cluster == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for done := false; !done; {
		select {
		case conn := <-h.admin:
			_ = conn.Close(ctx)
		default:
			done = true
		}
	}
	return h.cluster.Stop(ctx)
}

// withAdmin runs fn on a superuser connection to the "postgres" database,
// reusing a few idle connections to keep each database creation cheap.
func (h *harness) withAdmin(ctx context.Context, fn func(*pgx.Conn) error) error {
	var conn *pgx.Conn
	select {
	case conn = <-h.admin:
	default:
		var err error
		if conn, err = pgx.Connect(ctx, h.cluster.ConnString("postgres")); err != nil {
			return err
		}
	}
	err := fn(conn)
	if err != nil || conn.IsClosed() {
		_ = conn.Close(context.Background())
		return err
	}
	select {
	case h.admin <- conn:
	default:
		_ = conn.Close(context.Background())
	}
	return nil
}

func (h *harness) template(key string, setup func(context.Context, string) error) (string, error) {
	h.mu.Lock()
	if h.templates == nil {
		h.templates = make(map[string]*template)
	}
	tmpl, ok := h.templates[key]
	if !ok {
		tmpl = &template{name: dbName("tmpl", key, hashSuffix(key))}
		h.templates[key] = tmpl
	}
	h.mu.Unlock()

	// Other keys proceed concurrently; callers of this key wait for the first.
	tmpl.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		tmpl.err = h.createTemplate(ctx, tmpl.name, key, setup)
	})
	return tmpl.name, tmpl.err
}

func (h *harness) createTemplate(ctx context.Context, name, key string, setup func(context.Context, string) error) error {
	ident := pgx.Identifier{name}.Sanitize()
	if err := h.withAdmin(ctx, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0")
		return err
	}); err != nil {
		return fmt.Errorf("pgtest: create template database for %q: %w", key, err)
	}
	if setup != nil {
		if err := setup(ctx, h.cluster.ConnString(name)); err != nil {
			return fmt.Errorf("pgtest: setup %q: %w", key, err)
		}
	}
	// Cloning requires that nobody is connected to the template: lock it and
	// end sessions that setup may have left open.
	return h.withAdmin(ctx, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
			return fmt.Errorf("pgtest: seal template %q: %w", key, err)
		}
		if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
			return fmt.Errorf("pgtest: seal template %q: %w", key, err)
		}
		return nil
	})
}

func (h *harness) newDatabase(t testing.TB, key string, setup func(context.Context, string) error) string {
	t.Helper()
	c := h.clusterFor(t)
	tmpl, err := h.template(key, setup)
	if err != nil {
		t.Fatal(err)
	}

	name := dbName("t", t.Name(), fmt.Sprint(h.seq.Add(1)))
	ident := pgx.Identifier{name}.Sanitize()
	// FILE_COPY copies the template's files after a checkpoint: with fsync
	// off that beats the default WAL_LOG strategy, which writes every block
	// of the template through the WAL.
	strategy := ""
	if h.serverNum >= 150000 {
		strategy = " STRATEGY FILE_COPY"
	}
	ctx, cancel := context.WithTimeout(t.Context(), dbTimeout)
	defer cancel()
	err = h.withAdmin(ctx, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE "+pgx.Identifier{tmpl}.Sanitize()+strategy)
		return err
	})
	if err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
		defer cancel()
		drop := "DROP DATABASE IF EXISTS " + ident
		if h.serverNum >= 130000 {
			drop += " WITH (FORCE)"
		}
		if err := h.withAdmin(ctx, func(conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, drop)
			return err
		}); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return c.ConnString(name)
}

// dbName builds a database name (at most 63 bytes, the identifier limit)
// from a prefix, a readable part and a unique suffix.
func dbName(prefix, readable, unique string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(readable) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else if s := b.String(); s != "" && !strings.HasSuffix(s, "_") {
			b.WriteByte('_')
		}
	}
	mid := strings.Trim(b.String(), "_")
	if room := 63 - len(prefix) - len(unique) - 2; len(mid) > room {
		mid = mid[:room]
	}
	return prefix + "_" + mid + "_" + unique
}

func hashSuffix(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// logger writes the cluster's log to stderr; the cluster outlives any single
// test, so it cannot log through one.
func logger() hclog.Logger {
	level := hclog.Warn
	if v := os.Getenv(testutil.LogLevelEnv); v != "" {
		level = hclog.LevelFromString(v)
		if v == "off" {
			level = hclog.Off
		}
	}
	return hclog.New(&hclog.LoggerOptions{Name: "pgtest", Level: level, Output: os.Stderr})
}
