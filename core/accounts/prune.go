package accounts

import (
	"context"
	"fmt"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
)

// PruneInterval is how often RunPrune prunes.
const PruneInterval = 6 * time.Hour

// Prune deletes revoked and idle sessions and expired pending 2FA
// challenges, unless another core is doing it (store.LockPruneSessions);
// ran says whether this one did.
func (s *Service) Prune(ctx context.Context) (ran bool, err error) {
	return s.o.Store.WithTryAdvisoryLock(ctx, store.LockPruneSessions, func(ctx context.Context) error {
		sessions, err := s.o.Store.PruneSessions(ctx, s.o.SessionTTL)
		if err != nil {
			return fmt.Errorf("accounts: prune: %w", err)
		}
		totps, err := s.o.Store.PrunePendingTOTPs(ctx)
		if err != nil {
			return fmt.Errorf("accounts: prune: %w", err)
		}
		if sessions+totps > 0 {
			s.log.Info("pruned sessions", "sessions", sessions, "pending_totps", totps)
		}
		return nil
	})
}

// RunPrune prunes now and every PruneInterval until ctx is done.
func (s *Service) RunPrune(ctx context.Context) {
	t := time.NewTicker(PruneInterval)
	defer t.Stop()
	for {
		if _, err := s.Prune(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("pruning sessions failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
