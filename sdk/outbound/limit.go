package outbound

import (
	"context"
	"fmt"
	"sync"
)

// Limiter bounds how many requests are in flight at once, across every
// call that shares it. It is safe for concurrent use. Create it with
// NewLimiter.
type Limiter struct {
	slots chan struct{}
}

// NewLimiter returns a Limiter of n slots (at least 1).
func NewLimiter(n int) *Limiter {
	return &Limiter{slots: make(chan struct{}, max(n, 1))}
}

// Cap returns how many slots l has.
func (l *Limiter) Cap() int { return cap(l.slots) }

// Acquire takes a slot, waiting until one is free. When ctx ends first, or
// had ended already (even with a slot free), it takes none and returns
// ctx's error.
func (l *Limiter) Acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil { // the select below would pick at random
		return err
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release frees a slot Acquire took.
func (l *Limiter) Release() { <-l.slots }

// Each calls do(i) for every i from 0 to n-1, each in a goroutine of its
// own once it holds a slot (so the calls start in order of i, and with one
// slot run in that order), and returns when they all have. A call that
// has no slot yet when ctx ends is not made: skipped(i, ctx.Err()) is
// called instead, from Each's goroutine.
func (l *Limiter) Each(ctx context.Context, n int, do func(i int), skipped func(i int, err error)) {
	var wg sync.WaitGroup
	for i := range n {
		if err := l.Acquire(ctx); err != nil {
			skipped(i, err)
			continue
		}
		wg.Go(func() {
			defer l.Release()
			do(i)
		})
	}
	wg.Wait()
}

// MaxConcurrency reads the max_concurrency attribute of a sender's config
// block, how many requests may be in flight at once: nil means def, else it
// must be between 1 and upper. Its error names the attribute:
// "max_concurrency = 0: must be between 1 and 64".
func MaxConcurrency(n *int, def, upper int) (int, error) {
	if n == nil {
		return def, nil
	}
	if *n < 1 || *n > upper {
		return 0, fmt.Errorf("max_concurrency = %d: must be between 1 and %d", *n, upper)
	}
	return *n, nil
}
