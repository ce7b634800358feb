package userapi

import (
	"context"
	"sync"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
)

// Bounds of the app cache.
const (
	// appCacheTTL is the seed's 2 minutes: the longest a cached list may
	// live even if a change notification was lost.
	appCacheTTL = 2 * time.Minute
	// appCacheUsers bounds the users whose apps are cached.
	appCacheUsers = 10000
)

// appCache is the seed's in-process cache of each user's live apps; app
// lookups by UUID or name are served from it. It is invalidated on every
// write this core makes, and on every change any core or worker report
// makes (store.ChannelApps), and flushed when the notification listener
// reconnects (changes may have been missed).
type appCache struct {
	mu     sync.Mutex
	ttl    time.Duration
	now    func() time.Time
	byUser map[int64]cachedApps
	// gen counts each user's invalidations and base the flushes, so a
	// load that raced an invalidation of its user is not stored; gen is
	// bounded by a flush of its own (which bumps base).
	gen  map[int64]uint64
	base uint64
}

type stamp struct{ base, gen uint64 }

func (c *appCache) stampOf(userID int64) stamp { return stamp{c.base, c.gen[userID]} }

type cachedApps struct {
	apps []*store.App
	at   time.Time
}

func newAppCache(ttl time.Duration, now func() time.Time) *appCache {
	return &appCache{ttl: ttl, now: now, byUser: map[int64]cachedApps{}, gen: map[int64]uint64{}}
}

// apps returns the user's live apps, from the cache when fresh, else
// through load (whose result is cached unless an invalidation raced it).
// Callers must not modify the apps.
func (c *appCache) apps(ctx context.Context, userID int64, load func(context.Context, int64) ([]*store.App, error)) ([]*store.App, error) {
	c.mu.Lock()
	e, ok := c.byUser[userID]
	st := c.stampOf(userID)
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.apps, nil
	}
	at := c.now()
	apps, err := load(ctx, userID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.stampOf(userID) == st {
		if len(c.byUser) >= appCacheUsers {
			clear(c.byUser)
		}
		c.byUser[userID] = cachedApps{apps: apps, at: at}
	}
	c.mu.Unlock()
	return apps, nil
}

// invalidate drops the user's cached apps.
func (c *appCache) invalidate(userID int64) {
	c.mu.Lock()
	delete(c.byUser, userID)
	c.gen[userID]++
	if len(c.gen) > 4*appCacheUsers {
		clear(c.byUser)
		clear(c.gen)
		c.base++
	}
	c.mu.Unlock()
}

// flush drops everything.
func (c *appCache) flush() {
	c.mu.Lock()
	clear(c.byUser)
	clear(c.gen)
	c.base++
	c.mu.Unlock()
}
