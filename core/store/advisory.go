package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Advisory lock keys of the cluster-wide singleton jobs (Scale-out: every
// core runs the loop, the one that gets the lock does the work). They share
// the high 32 bits 0x57480000 ("WH") so they never meet another
// application's keys by accident.
const (
	// LockPruneRuntimeLogs guards the daily runtime log retention prune.
	LockPruneRuntimeLogs int64 = 0x5748_0000_0000_0001
	// LockPruneUsage guards the daily usage history retention prune.
	LockPruneUsage int64 = 0x5748_0000_0000_0002
	// LockCheckDomains guards the periodic DNS re-check of custom domains
	// (core/domains.Checker). 3 to 5 are taken in outbox.go and
	// sessions.go.
	LockCheckDomains int64 = 0x5748_0000_0000_0006
)

// HeldLock is a session-level advisory lock held on one pooled connection
// (HoldAdvisoryLock). Postgres releases it if that session ends, so a
// long-running holder calls Check now and then to learn that it lost it.
type HeldLock struct {
	conn *pgxpool.Conn
	key  int64
}

// HoldAdvisoryLock takes the session-level advisory lock key when no other
// session holds it and returns it held; it returns nil, nil when another
// session holds it. Release it when done.
func (s *Store) HoldAdvisoryLock(ctx context.Context, key int64) (*HeldLock, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, mapErr("advisory lock: acquire", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		conn.Release()
		return nil, mapErr("advisory lock", err)
	}
	if !got {
		conn.Release()
		return nil, nil
	}
	return &HeldLock{conn: conn, key: key}, nil
}

// Check returns nil while the lock is held: its session still answers. An
// error means the session may be gone, and the lock with it.
func (l *HeldLock) Check(ctx context.Context) error {
	if err := l.conn.Ping(ctx); err != nil {
		return fmt.Errorf("store: advisory lock %#x: session lost: %w", l.key, err)
	}
	return nil
}

// Release unlocks and returns the connection to the pool. A connection
// that may still hold the lock is closed instead.
func (l *HeldLock) Release(ctx context.Context) error {
	defer l.conn.Release()
	var released bool
	err := l.conn.QueryRow(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, l.key).Scan(&released)
	if err == nil && !released {
		err = errors.New("lock was not held")
	}
	if err != nil {
		// A connection that may still hold the lock must not be reused.
		_ = l.conn.Conn().Close(context.WithoutCancel(ctx))
		return fmt.Errorf("store: advisory unlock %#x: %w", l.key, err)
	}
	return nil
}

// WithTryAdvisoryLock runs fn while holding the session-level advisory lock
// key, when no other session holds it; ran reports whether fn ran. The lock
// lives on one pooled connection for the duration of fn (fn's own
// statements may use any connection) and is released before the connection
// returns to the pool, even when fn fails.
func (s *Store) WithTryAdvisoryLock(ctx context.Context, key int64, fn func(ctx context.Context) error) (ran bool, err error) {
	l, err := s.HoldAdvisoryLock(ctx, key)
	if err != nil || l == nil {
		return false, err
	}
	defer func() { err = errors.Join(err, l.Release(ctx)) }()
	return true, fn(ctx)
}
