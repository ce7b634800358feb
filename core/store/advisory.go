package store

import (
	"context"
	"errors"
	"fmt"
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
)

// WithTryAdvisoryLock runs fn while holding the session-level advisory lock
// key, when no other session holds it; ran reports whether fn ran. The lock
// lives on one pooled connection for the duration of fn (fn's own
// statements may use any connection) and is released before the connection
// returns to the pool, even when fn fails.
func (s *Store) WithTryAdvisoryLock(ctx context.Context, key int64, fn func(ctx context.Context) error) (ran bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, mapErr("advisory lock: acquire", err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return false, mapErr("advisory lock", err)
	}
	if !got {
		return false, nil
	}
	defer func() {
		var released bool
		uerr := conn.QueryRow(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key).Scan(&released)
		if uerr == nil && !released {
			uerr = errors.New("lock was not held")
		}
		if uerr != nil {
			// A connection that may still hold the lock must not be reused.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
			err = errors.Join(err, fmt.Errorf("store: advisory unlock %#x: %w", key, uerr))
		}
	}()
	return true, fn(ctx)
}
