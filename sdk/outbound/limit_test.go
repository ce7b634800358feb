package outbound

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimiterBound: never more calls at once than slots, across
// concurrent Each calls, and more than one when allowed.
func TestLimiterBound(t *testing.T) {
	l := NewLimiter(3)
	if l.Cap() != 3 {
		t.Fatalf("Cap = %d", l.Cap())
	}
	var inflight, most, calls atomic.Int32
	do := func(int) {
		calls.Add(1)
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			l.Each(context.Background(), 6, do, func(i int, err error) { t.Errorf("call %d skipped: %v", i, err) })
		})
	}
	wg.Wait()
	if m := most.Load(); m > 3 || m < 2 {
		t.Fatalf("at most %d calls at once, want 2 or 3", m)
	}
	if n := calls.Load(); n != 18 {
		t.Fatalf("%d calls", n)
	}
}

// TestLimiterOrder: with one slot the calls run in order.
func TestLimiterOrder(t *testing.T) {
	var mu sync.Mutex
	var got []int
	NewLimiter(1).Each(context.Background(), 8, func(i int) {
		mu.Lock()
		got = append(got, i)
		mu.Unlock()
	}, func(i int, err error) { t.Errorf("call %d skipped: %v", i, err) })
	if !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("order %v", got)
	}
}

// TestLimiterCancelled: calls without a slot when ctx ends are skipped;
// an ended ctx takes no slot even when one is free.
func TestLimiterCancelled(t *testing.T) {
	l := NewLimiter(1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Acquire(ctx); err != context.Canceled {
		t.Fatalf("Acquire with an ended context: %v", err)
	}
	var skipped []int
	l.Each(ctx, 3, func(i int) { t.Errorf("call %d made", i) }, func(i int, err error) {
		if err != context.Canceled {
			t.Errorf("call %d skipped with %v", i, err)
		}
		skipped = append(skipped, i)
	})
	if !slices.Equal(skipped, []int{0, 1, 2}) {
		t.Fatalf("skipped %v", skipped)
	}

	// The first call holds the only slot until the deadline; the others
	// wait for it in vain.
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var made []int
	skipped = nil
	l.Each(ctx, 3, func(i int) {
		made = append(made, i)
		<-ctx.Done()
	}, func(i int, err error) {
		if err != context.DeadlineExceeded {
			t.Errorf("call %d skipped with %v", i, err)
		}
		skipped = append(skipped, i)
	})
	if !slices.Equal(made, []int{0}) || !slices.Equal(skipped, []int{1, 2}) {
		t.Fatalf("made %v, skipped %v", made, skipped)
	}
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatalf("the slot was not released: %v", err)
	}
	l.Release()
}

func TestNewLimiterAtLeastOne(t *testing.T) {
	for _, n := range []int{-1, 0, 1} {
		if c := NewLimiter(n).Cap(); c != 1 {
			t.Errorf("NewLimiter(%d).Cap() = %d", n, c)
		}
	}
}

func TestMaxConcurrency(t *testing.T) {
	n := func(v int) *int { return &v }
	tests := []struct {
		in      *int
		want    int
		wantErr string
	}{
		{nil, 8, ""},
		{n(1), 1, ""},
		{n(64), 64, ""},
		{n(0), 0, "max_concurrency = 0: must be between 1 and 64"},
		{n(-3), 0, "max_concurrency = -3: must be between 1 and 64"},
		{n(65), 0, "max_concurrency = 65: must be between 1 and 64"},
	}
	for _, tt := range tests {
		got, err := MaxConcurrency(tt.in, 8, 64)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if got != tt.want || msg != tt.wantErr {
			t.Errorf("MaxConcurrency(%v) = %d, %q; want %d, %q", tt.in, got, msg, tt.want, tt.wantErr)
		}
	}
}
