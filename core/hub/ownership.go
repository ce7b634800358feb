package hub

import (
	"context"
	"time"
)

// Ownership cache: a worker may speak only for the apps placed or reserved
// on it. The set is loaded once per connection (store.WorkerAppIDs) and
// dropped when placements change under the hub's eyes (a job pushed or
// replayed, a job result, an app stopping); as a safety net against changes
// made elsewhere (another core's scheduler) it expires after ownTTL, and an
// app missing from it triggers a reload at most every ownMissRefresh.
const (
	ownTTL         = time.Minute
	ownMissRefresh = 5 * time.Second
)

// ownership is an immutable snapshot of the apps a worker owns.
type ownership struct {
	apps   map[int64]struct{}
	loaded int64 // Hub.mono
}

// invalidateOwnership makes the next check reload the set.
func (c *conn) invalidateOwnership() { c.own.Store(nil) }

// owns reports whether the worker may speak for appID, reloading the set
// when it is missing, expired, or stale enough to retry a miss.
func (c *conn) owns(ctx context.Context, appID int64) (bool, error) {
	now := c.h.mono()
	o := c.own.Load()
	if o != nil && now-o.loaded < int64(ownTTL) {
		if _, ok := o.apps[appID]; ok {
			return true, nil
		}
		if now-o.loaded < int64(ownMissRefresh) {
			return false, nil
		}
	}
	ids, err := c.h.st.WorkerAppIDs(ctx, c.workerID)
	if err != nil {
		return false, err
	}
	n := &ownership{apps: make(map[int64]struct{}, len(ids)), loaded: now}
	for _, id := range ids {
		n.apps[id] = struct{}{}
	}
	c.own.CompareAndSwap(o, n) // lost to an invalidation: next check reloads
	_, ok := n.apps[appID]
	return ok, nil
}
