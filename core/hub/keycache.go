package hub

import (
	"context"
	"sync"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/workerauth"
)

// KeyCacheTTL is how long a resolved API key stays cached (the seed's 30 s).
const KeyCacheTTL = 30 * time.Second

// KeyCache is a workerauth.Store that caches raw-key lookups (by the key's
// lookup hash) for a TTL, so a reconnect storm of workers presenting their
// raw keys does not cost one query each. Only keys that resolved are
// cached. Rotation invalidates: DropWorker (the hub calls it on the
// ChannelWorkerKeys notification) and Flush (when the listener reconnects,
// having possibly missed notifications). JWT lookups by worker id go
// straight to the store: the JWT path must see the current key id.
type KeyCache struct {
	st  workerauth.Store
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]keyEntry
	// gen changes on every invalidation: a lookup that started before one
	// does not store its (possibly stale) result.
	gen       uint64
	lastSweep time.Time
}

type keyEntry struct {
	wa  *store.WorkerAuth
	exp time.Time
}

var _ workerauth.Store = (*KeyCache)(nil)

// NewKeyCache wraps st; ttl ≤ 0 means KeyCacheTTL.
func NewKeyCache(st workerauth.Store, ttl time.Duration) *KeyCache {
	if ttl <= 0 {
		ttl = KeyCacheTTL
	}
	return &KeyCache{st: st, ttl: ttl, now: time.Now, m: map[string]keyEntry{}}
}

// FindWorkerAuthByKeyHash implements workerauth.Store with the cache.
func (k *KeyCache) FindWorkerAuthByKeyHash(ctx context.Context, apiKeyHash string) (*store.WorkerAuth, error) {
	now := k.now()
	k.mu.Lock()
	e, ok := k.m[apiKeyHash]
	gen := k.gen
	k.mu.Unlock()
	if ok && now.Before(e.exp) {
		return e.wa, nil
	}
	wa, err := k.st.FindWorkerAuthByKeyHash(ctx, apiKeyHash)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.gen == gen {
		if now.Sub(k.lastSweep) > k.ttl {
			k.lastSweep = now
			for h, e := range k.m {
				if !now.Before(e.exp) {
					delete(k.m, h)
				}
			}
		}
		k.m[apiKeyHash] = keyEntry{wa: wa, exp: now.Add(k.ttl)}
	}
	k.mu.Unlock()
	return wa, nil
}

// FindWorkerAuthByID implements workerauth.Store without caching.
func (k *KeyCache) FindWorkerAuthByID(ctx context.Context, id int64) (*store.WorkerAuth, error) {
	return k.st.FindWorkerAuthByID(ctx, id)
}

// DropWorker forgets every cached key of the worker.
func (k *KeyCache) DropWorker(workerID int64) {
	k.mu.Lock()
	k.gen++
	for h, e := range k.m {
		if e.wa.ID == workerID {
			delete(k.m, h)
		}
	}
	k.mu.Unlock()
}

// Flush forgets everything.
func (k *KeyCache) Flush() {
	k.mu.Lock()
	k.gen++
	clear(k.m)
	k.mu.Unlock()
}

// Len returns how many keys are cached.
func (k *KeyCache) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
