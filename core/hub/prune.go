package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
)

// pruneFirstDelay is how long after start the first retention prune runs.
const pruneFirstDelay = time.Minute

// PruneRuntimeLogs deletes the runtime logs older than the retention
// (worker.log_retention), unless another core is doing it right now (the
// job runs under a Postgres advisory lock, so the fleet of cores prunes
// once). It reports whether this core ran it and how many rows went.
func (h *Hub) PruneRuntimeLogs(ctx context.Context) (ran bool, deleted int64, err error) {
	before := h.now().Add(-h.retention)
	ran, err = h.st.WithTryAdvisoryLock(ctx, store.LockPruneRuntimeLogs, func(ctx context.Context) error {
		var err error
		deleted, err = h.st.PruneRuntimeLogs(ctx, before)
		return err
	})
	if err != nil {
		return ran, deleted, fmt.Errorf("hub: prune runtime logs: %w", err)
	}
	return ran, deleted, nil
}

func (h *Hub) pruneLoop() {
	t := time.NewTimer(min(pruneFirstDelay, h.pruneEvery))
	defer t.Stop()
	for {
		select {
		case <-h.loopCtx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(h.loopCtx, time.Hour)
		start := time.Now()
		ran, n, err := h.PruneRuntimeLogs(ctx)
		cancel()
		switch {
		case err != nil:
			h.log.Warn("runtime log pruning failed", "error", err)
		case ran:
			h.log.Info("runtime logs pruned", "rows", n, "retention", h.retention, "took", time.Since(start).Round(time.Millisecond))
		}
		t.Reset(h.pruneEvery)
	}
}
