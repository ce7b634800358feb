// Package store is WiseHosting's Postgres data layer: the pgx pool, the tern
// migrations, and every query the core runs. Methods that must join a
// caller's transaction take a pgx.Tx explicitly; the rest use the pool.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sentinel errors. Callers test with errors.Is; the wrapped error names the
// constraint or row that caused it.
var (
	// ErrNotFound means the row does not exist or is not visible to the caller.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a uniqueness rule was broken (duplicate name, …).
	ErrConflict = errors.New("conflict")
	// ErrInvalid means a CHECK or foreign-key rule rejected the values.
	ErrInvalid = errors.New("invalid")
	// ErrCapacity means a worker has no capacity left for a reservation.
	ErrCapacity = errors.New("worker capacity exhausted")
	// ErrQuota means the user's plan allows no more of what was asked
	// (NewApp.MaxApps).
	ErrQuota = errors.New("plan limit reached")
	// ErrRetry means the transaction lost a race (deadlock or serialization
	// failure) and can be retried as a whole.
	ErrRetry = errors.New("transaction conflict, retry")
)

// Cipher encrypts and decrypts column values (core/secrets.Cipher).
type Cipher interface {
	Encrypt(plain string) (string, error)
	Decrypt(stored string) (string, error)
}

// Querier is what both *pgxpool.Pool and pgx.Tx offer; read helpers accept it
// so they run inside or outside a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Options configure Open.
type Options struct {
	// ConnString is a libpq URL or key/value string.
	ConnString string
	// MaxConns and MinConns size the pool (defaults 25 and 5).
	MaxConns, MinConns int32
	// MaxConnLifetime recycles connections (default 5 minutes).
	MaxConnLifetime time.Duration
	// Cipher encrypts sensitive columns. Required.
	Cipher Cipher
	// Logger receives the store's logs; nil means no logs.
	Logger hclog.Logger
}

// Store is the data layer. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	cipher Cipher
	log    hclog.Logger
}

// Open connects a pool and pings the database. It does not migrate: call
// Migrate first (serve does, under tern's advisory lock).
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Cipher == nil {
		return nil, errors.New("store: open: a column cipher is required")
	}
	cfg, err := pgxpool.ParseConfig(opts.ConnString)
	if err != nil {
		return nil, fmt.Errorf("store: parse connection string: %w", err)
	}
	cfg.MaxConns = orDefault(opts.MaxConns, 25)
	cfg.MinConns = orDefault(opts.MinConns, 5)
	if cfg.MinConns > cfg.MaxConns {
		cfg.MinConns = cfg.MaxConns
	}
	cfg.MaxConnLifetime = opts.MaxConnLifetime
	if cfg.MaxConnLifetime <= 0 {
		cfg.MaxConnLifetime = 5 * time.Minute
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: ping: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Store{pool: pool, cipher: opts.Cipher, log: log}, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Pool exposes the pool for subsystems that run their own statements
// (LISTEN/NOTIFY, benchmarks, pool metrics).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// InTx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise.
func (s *Store) InTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// MapError maps a driver error as the store's own methods do (ErrNotFound,
// ErrConflict, ErrInvalid), for subsystems that run their own SQL.
func MapError(op string, err error) error { return mapErr(op, err) }

// mapErr turns Postgres constraint errors into the package's sentinels and
// pgx.ErrNoRows into ErrNotFound, keeping the original for context.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return &ConstraintError{Op: op, Constraint: pgErr.ConstraintName, kind: ErrConflict, err: err}
		case "23514", "23503", "23502", "22P02", "22001", "22003": // check, foreign key, not null, bad text, too long, out of range
			return &ConstraintError{Op: op, Constraint: pgErr.ConstraintName, kind: ErrInvalid, err: err}
		case "40P01", "40001": // deadlock detected, serialization failure
			return fmt.Errorf("store: %s: %w: %w", op, ErrRetry, err)
		}
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// ConstraintError reports which database rule rejected a write. It matches
// ErrConflict (unique) or ErrInvalid (check, foreign key, not null) with
// errors.Is.
type ConstraintError struct {
	// Op names the store operation.
	Op string
	// Constraint is the Postgres constraint or index name, when known.
	Constraint string
	kind       error
	err        error
}

// Error implements error.
func (e *ConstraintError) Error() string {
	if e.Constraint != "" {
		return fmt.Sprintf("store: %s: %v (%s)", e.Op, e.kind, e.Constraint)
	}
	return fmt.Sprintf("store: %s: %v: %v", e.Op, e.kind, e.err)
}

// Is reports whether target is the error's kind (ErrConflict or ErrInvalid).
func (e *ConstraintError) Is(target error) bool { return target == e.kind }

// Unwrap returns the driver error.
func (e *ConstraintError) Unwrap() error { return e.err }
