package hub

import (
	"sync"
	"time"
)

// StatsTTL is how long an app's live statistics stay valid after its
// worker last reported them (the seed's 45 s: three missed reports).
const StatsTTL = 45 * time.Second

// AppStats is an app's live statistics as its worker last reported them:
// what the threshold poller and the usage sampler read.
type AppStats struct {
	WorkerID   int64
	CPUPercent float64
	MemBytes   int64
	MemLimit   int64
	// NetMbps is the current network rate; NetTotalBytes the running total
	// of bytes received and sent since the app started (the usage sampler
	// derives deltas and notices resets).
	NetMbps       float64
	NetTotalBytes int64
	DiskMbps      float64
	// UpdatedAt is when the core received the report (its own clock).
	UpdatedAt time.Time
}

// statsShards spreads the apps over locks: app_stats is the most frequent
// message, from every worker at once.
const statsShards = 32

// statsStore is the in-memory TTL store of live app statistics. Entries
// expire StatsTTL after their last report; expired ones are swept lazily.
type statsStore struct {
	ttl    time.Duration
	now    func() time.Time
	shards [statsShards]statsShard
}

type statsShard struct {
	mu        sync.RWMutex
	m         map[int64]AppStats
	lastSweep time.Time
}

func newStatsStore(ttl time.Duration, now func() time.Time) *statsStore {
	s := &statsStore{ttl: ttl, now: now}
	for i := range s.shards {
		s.shards[i].m = map[int64]AppStats{}
	}
	return s
}

func (s *statsStore) shard(appID int64) *statsShard {
	return &s.shards[uint64(appID)%statsShards]
}

// put stores a report; it sweeps the shard's expired entries at most once
// per TTL.
func (s *statsStore) put(appID int64, st AppStats) {
	sh := s.shard(appID)
	sh.mu.Lock()
	sh.m[appID] = st
	if st.UpdatedAt.Sub(sh.lastSweep) > s.ttl {
		sh.lastSweep = st.UpdatedAt
		for id, v := range sh.m {
			if st.UpdatedAt.Sub(v.UpdatedAt) > s.ttl {
				delete(sh.m, id)
			}
		}
	}
	sh.mu.Unlock()
}

// get returns the app's statistics unless missing or expired.
func (s *statsStore) get(appID int64) (AppStats, bool) {
	sh := s.shard(appID)
	sh.mu.RLock()
	st, ok := sh.m[appID]
	sh.mu.RUnlock()
	if !ok || s.now().Sub(st.UpdatedAt) > s.ttl {
		return AppStats{}, false
	}
	return st, true
}

// drop forgets an app (it stopped or moved).
func (s *statsStore) drop(appID int64) {
	sh := s.shard(appID)
	sh.mu.Lock()
	delete(sh.m, appID)
	sh.mu.Unlock()
}

// Len counts the entries held, expired ones not yet swept included.
func (s *statsStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
