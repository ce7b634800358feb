package hub

import (
	"context"
	"sync"

	"github.com/wisehosting/wisehosting/core/store"
)

// heartbeats coalesces heartbeats: the latest per worker is kept in memory
// and all of them are written with one UPDATE per flush interval, so a
// fleet of N workers costs one statement per interval, not N per beat
// interval.
type heartbeats struct {
	mu      sync.Mutex
	pending map[int64]store.Heartbeat
	spare   map[int64]store.Heartbeat
	// flushMu serializes flushes (the ticker and Close).
	flushMu sync.Mutex
	buf     []store.Heartbeat
}

func newHeartbeats() *heartbeats {
	return &heartbeats{pending: map[int64]store.Heartbeat{}, spare: map[int64]store.Heartbeat{}}
}

// add records a beat, replacing an older one of the same worker.
func (hb *heartbeats) add(b store.Heartbeat) {
	hb.mu.Lock()
	if old, ok := hb.pending[b.WorkerID]; !ok || !old.At.After(b.At) {
		hb.pending[b.WorkerID] = b
	}
	hb.mu.Unlock()
}

// flush writes every pending beat with one UpdateHeartbeats call and
// returns how many it wrote. Beats that fail to write are kept for the next
// flush unless a newer one arrived meanwhile.
func (hb *heartbeats) flush(ctx context.Context, st Store) (int, error) {
	hb.flushMu.Lock()
	defer hb.flushMu.Unlock()
	hb.mu.Lock()
	batch := hb.pending
	hb.pending, hb.spare = hb.spare, nil
	hb.mu.Unlock()
	if len(batch) == 0 {
		hb.mu.Lock()
		hb.spare = batch
		hb.mu.Unlock()
		return 0, nil
	}
	hb.buf = hb.buf[:0]
	for _, b := range batch {
		hb.buf = append(hb.buf, b)
	}
	err := st.UpdateHeartbeats(ctx, hb.buf)
	hb.mu.Lock()
	if err != nil {
		for id, b := range batch {
			if _, newer := hb.pending[id]; !newer {
				hb.pending[id] = b
			}
		}
	}
	clear(batch)
	hb.spare = batch
	hb.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return len(hb.buf), nil
}
