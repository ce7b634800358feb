package userapi

import (
	"context"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
)

// TestAppCache: a load is cached until its user is invalidated or the TTL
// passes, and a load that raced an invalidation of its user is not kept
// (other users' invalidations do not stop it).
func TestAppCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newAppCache(time.Minute, func() time.Time { return now })
	ctx := context.Background()
	loads := 0
	load := func(context.Context, int64) ([]*store.App, error) {
		loads++
		return []*store.App{{Name: "a"}}, nil
	}
	get := func(user int64, l func(context.Context, int64) ([]*store.App, error)) {
		t.Helper()
		if _, err := c.apps(ctx, user, l); err != nil {
			t.Fatal(err)
		}
	}
	get(1, load)
	get(1, load)
	if loads != 1 {
		t.Fatalf("loads = %d, want 1 (the second from the cache)", loads)
	}
	c.invalidate(2) // another user
	get(1, load)
	if loads != 1 {
		t.Fatalf("another user's invalidation dropped user 1's apps: %d loads", loads)
	}
	c.invalidate(1)
	get(1, load)
	if loads != 2 {
		t.Fatalf("loads = %d after an invalidation, want 2", loads)
	}
	now = now.Add(2 * time.Minute)
	get(1, load)
	if loads != 3 {
		t.Fatalf("loads = %d after the TTL, want 3", loads)
	}
	// A load during which the user's apps change is served, not kept.
	racing := func(ctx context.Context, id int64) ([]*store.App, error) {
		c.invalidate(3)
		return load(ctx, id)
	}
	get(3, racing)
	get(3, load)
	if loads != 5 {
		t.Fatalf("loads = %d, want 5: the raced load must not be cached", loads)
	}
	c.flush()
	get(3, load)
	if loads != 6 {
		t.Fatalf("loads = %d after a flush, want 6", loads)
	}
}
