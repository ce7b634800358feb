package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/core/embedpg"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
)

// EmbeddedDatabase is the database the core creates in its embedded cluster.
const EmbeddedDatabase = "wisehosting"

// Database is an open, migrated store plus the embedded cluster behind it
// (nil when database.url points elsewhere).
type Database struct {
	Store      *store.Store
	Cipher     *secrets.Cipher
	ConnString string
	Cluster    *embedpg.Cluster
	Migration  store.MigrationStatus
	log        hclog.Logger
}

// ServeOwner is the embedpg.Options.Owner of a `wisehosting serve`: a
// process that requires ownership of the embedded cluster finds it recorded
// next to a cluster that another serve runs.
const ServeOwner = "wisehosting serve"

// DefaultOwnerWait is how long a process that requires ownership of the
// embedded cluster waits for a short-lived command running it to exit.
const DefaultOwnerWait = 15 * time.Second

// ownerPoll is the interval at which such a process checks again.
const ownerPoll = 100 * time.Millisecond

// OpenOptions tune OpenDatabaseWith and ConnectWith.
type OpenOptions struct {
	// RequireOwner makes this process own the embedded cluster, as `serve`
	// must: a process that merely attached to a server loses its database
	// when the process that started the server exits. A server that another
	// process runs is then not attached to: when that process is a
	// short-lived command (worker add, migrate, …) or a server on its way
	// down, the start waits up to OwnerWait for it to exit and then starts
	// the cluster itself; when it is another serve, or still runs after the
	// wait, it fails with an error naming its pid and the data directory.
	// Without RequireOwner (the CLI commands) a running server is attached
	// to. No effect with database.url.
	RequireOwner bool
	// OwnerWait bounds that wait; 0 means DefaultOwnerWait.
	OwnerWait time.Duration
}

// OpenDatabase is OpenDatabaseWith without options: the CLI commands'
// way in, which attaches to a server that `serve` runs.
func OpenDatabase(ctx context.Context, cfg *config.Config, log hclog.Logger) (*Database, error) {
	return OpenDatabaseWith(ctx, cfg, log, OpenOptions{})
}

// OpenDatabaseWith connects (see ConnectWith), applies pending migrations
// under tern's lock, and opens the pool. Every command that touches data
// goes through it, so the CLI and the daemon see the same database.
func OpenDatabaseWith(ctx context.Context, cfg *config.Config, log hclog.Logger, opts OpenOptions) (_ *Database, err error) {
	db, err := ConnectWith(ctx, cfg, log, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			db.Close(context.WithoutCancel(ctx))
		}
	}()
	db.Migration, err = store.Migrate(ctx, db.ConnString)
	if err != nil {
		return nil, err
	}
	db.Store, err = store.Open(ctx, store.Options{
		ConnString:      db.ConnString,
		MaxConns:        int32(cfg.Database.MaxConns),
		MinConns:        int32(cfg.Database.MinConns),
		MaxConnLifetime: cfg.Database.MaxConnLifetime,
		Cipher:          db.Cipher,
		Logger:          log.Named("store"),
	})
	if err != nil {
		return nil, err
	}
	return db, nil
}

// Connect is ConnectWith without options: it attaches to a server that
// `serve` runs.
func Connect(ctx context.Context, cfg *config.Config, log hclog.Logger) (*Database, error) {
	return ConnectWith(ctx, cfg, log, OpenOptions{})
}

// ConnectWith starts (or, unless opts.RequireOwner, attaches to) the
// embedded cluster when the config has no database.url and works out the
// connection string; it neither migrates nor opens a pool.
func ConnectWith(ctx context.Context, cfg *config.Config, log hclog.Logger, opts OpenOptions) (_ *Database, err error) {
	db := &Database{log: log}
	defer func() {
		if err != nil {
			db.Close(context.WithoutCancel(ctx))
		}
	}()
	db.Cipher, err = secrets.NewCipher(cfg.Server.Secret.Value(), cfg.Server.PreviousSecretValues()...)
	if err != nil {
		return nil, fmt.Errorf("daemon: column cipher: %w", err)
	}
	if cfg.Database.Embedded() {
		if err := prepareDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
		db.Cluster, err = startEmbedded(ctx, filepath.Join(cfg.DataDir, "postgres"), log, opts)
		if err != nil {
			return nil, err
		}
		if err := ensureDatabase(ctx, db.Cluster.ConnString("postgres"), EmbeddedDatabase); err != nil {
			return nil, err
		}
		db.ConnString = db.Cluster.ConnString(EmbeddedDatabase)
	} else {
		db.ConnString, err = withPassword(cfg.Database.URL.Value(), cfg.Database.Password.Value())
		if err != nil {
			return nil, err
		}
	}
	return db, nil
}

// startEmbedded starts or attaches to the embedded cluster in dir; with
// opts.RequireOwner it waits for another owner to go instead of attaching
// (see OpenOptions).
func startEmbedded(ctx context.Context, dir string, log hclog.Logger, opts OpenOptions) (*embedpg.Cluster, error) {
	eo := embedpg.Options{Dir: dir, Logger: log.Named("embedpg")}
	if !opts.RequireOwner {
		c, err := embedpg.Start(ctx, eo)
		if err != nil {
			return nil, fmt.Errorf("daemon: embedded postgres: %w", err)
		}
		return c, nil
	}
	eo.NoAttach, eo.Owner = true, ServeOwner
	wait := opts.OwnerWait
	if wait <= 0 {
		wait = DefaultOwnerWait
	}
	deadline := time.Now().Add(wait)
	waiting := false
	for {
		c, err := embedpg.Start(ctx, eo)
		var held *embedpg.HeldError
		if !errors.As(err, &held) {
			if err != nil {
				return nil, fmt.Errorf("daemon: embedded postgres: %w", err)
			}
			return c, nil
		}
		if held.Owner == ServeOwner && !held.Stopping {
			return nil, fmt.Errorf("daemon: embedded postgres: %w; another serve runs on this data_dir: "+
				"stop it, or give this one another data_dir", held)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("daemon: embedded postgres: %w; it still runs after %s, and serve must own its database: "+
				"stop that process, or give this serve another data_dir", held, wait)
		}
		if !waiting {
			waiting = true
			log.Info("the embedded postgres is run by another process; waiting for it to exit",
				"pid", held.PID, "data_dir", held.DataDir, "max_wait", wait)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("daemon: embedded postgres: waiting for process %d to exit: %w", held.PID, ctx.Err())
		case <-time.After(ownerPoll):
		}
	}
}

// Close closes the pool, then stops the embedded cluster if this process
// started it. Postgres is always the last thing to go.
func (db *Database) Close(ctx context.Context) error {
	return db.closeWithin(ctx, 0, db.log)
}

// closeWithin is Close with a bound on waiting for the pool: pgxpool.Close
// blocks until every acquired connection is released, so with wait > 0 it
// runs aside and the cluster is stopped after wait even if it has not
// returned (stopping Postgres ends the sessions, which releases them).
func (db *Database) closeWithin(ctx context.Context, wait time.Duration, log hclog.Logger) error {
	if db == nil {
		return nil
	}
	if db.Store != nil {
		st := db.Store
		db.Store = nil
		if wait <= 0 {
			st.Close()
		} else {
			done := make(chan struct{})
			go func() { st.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(wait):
				log.Warn("database connections still held after shutdown; stopping postgres under them", "waited", wait)
			}
		}
	}
	if db.Cluster != nil {
		err := db.Cluster.Stop(ctx)
		db.Cluster = nil
		if err != nil {
			return fmt.Errorf("daemon: stop embedded postgres: %w", err)
		}
	}
	return nil
}

// ensureDatabase creates name in the cluster when it does not exist yet.
func ensureDatabase(ctx context.Context, adminConn, name string) error {
	conn, err := pgx.Connect(ctx, adminConn)
	if err != nil {
		return fmt.Errorf("daemon: connect to embedded postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("daemon: look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("daemon: create database %s: %w", name, err)
	}
	return nil
}

// withPassword sets password on a libpq URL or key/value connection string.
func withPassword(conn, password string) (string, error) {
	if password == "" {
		return conn, nil
	}
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			return "", fmt.Errorf("daemon: database.url is not a valid URL")
		}
		user := ""
		if u.User != nil {
			user = u.User.Username()
		}
		u.User = url.UserPassword(user, password)
		// libpq lets a ?password= parameter win over the userinfo one: drop it
		// so database.password (or its credential) is what connects.
		q := u.Query()
		q.Del("password")
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	esc := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
	return conn + " password='" + esc + "'", nil
}

// prepareDataDir creates the data directory. When the core runs as root the
// embedded server runs as the postgres user, which must be able to traverse
// (not list) the directory to reach its own 0700 cluster directory, so the
// data directory is made 0711; files in it (the server secret) stay 0600.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("daemon: data dir: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("daemon: data dir: %w", err)
	}
	if fi.Mode().Perm()&0o001 == 0 {
		if err := os.Chmod(dir, fi.Mode().Perm()|0o011); err != nil {
			return fmt.Errorf("daemon: data dir: make traversable for the postgres user: %w", err)
		}
	}
	return nil
}
