package accounts

import (
	"container/list"
	"math"
	"sync"
	"time"
)

// Limiter is a set of token buckets keyed by string (an IP, a user), each
// holding up to Burst tokens and refilled at Burst per Window. It keeps at
// most MaxKeys buckets, dropping the least recently used one when full
// (a dropped bucket starts full again: eviction can only loosen a limit
// for a key that has been quiet the longest). It is safe for concurrent
// use.
type Limiter struct {
	burst   float64
	perSec  float64
	maxKeys int
	now     func() time.Time

	mu   sync.Mutex
	keys map[string]*list.Element
	lru  *list.List // front: most recently used
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time
}

// NewLimiter returns a limiter of burst requests per window per key,
// keeping at most maxKeys keys. now is the clock (nil: time.Now).
func NewLimiter(burst int, window time.Duration, maxKeys int, now func() time.Time) *Limiter {
	if burst < 1 {
		burst = 1
	}
	if window <= 0 {
		window = time.Minute
	}
	if maxKeys < 1 {
		maxKeys = 1
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{burst: float64(burst), perSec: float64(burst) / window.Seconds(), maxKeys: maxKeys, now: now,
		keys: map[string]*list.Element{}, lru: list.New()}
}

// Allow takes a token from every key's bucket when each has one and
// returns true; otherwise it takes none and returns how long until all of
// them would have one.
func (l *Limiter) Allow(keys ...string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	bs := make([]*bucket, len(keys))
	for i, k := range keys {
		b := l.bucket(k, now)
		bs[i] = b
		if b.tokens < 1 {
			wait := time.Duration(math.Ceil((1 - b.tokens) / l.perSec * float64(time.Second)))
			retryAfter = max(retryAfter, wait)
		}
	}
	if retryAfter > 0 {
		return false, retryAfter
	}
	for _, b := range bs {
		b.tokens--
	}
	return true, 0
}

// bucket returns key's bucket refilled to now, creating (and evicting)
// as needed.
func (l *Limiter) bucket(key string, now time.Time) *bucket {
	if e, ok := l.keys[key]; ok {
		l.lru.MoveToFront(e)
		b := e.Value.(*bucket)
		if el := now.Sub(b.at).Seconds(); el > 0 {
			b.tokens = min(l.burst, b.tokens+el*l.perSec)
		}
		b.at = now
		return b
	}
	for l.lru.Len() >= l.maxKeys {
		old := l.lru.Back()
		l.lru.Remove(old)
		delete(l.keys, old.Value.(*bucket).key)
	}
	b := &bucket{key: key, tokens: l.burst, at: now}
	l.keys[key] = l.lru.PushFront(b)
	return b
}

// Len returns how many buckets the limiter holds.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
