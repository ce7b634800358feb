package hub

import (
	"sync"
	"sync/atomic"
	"time"
)

// LogLine is one runtime log line as the hub accepted it (sanitized).
type LogLine struct {
	AppID    int64
	WorkerID int64
	TS       time.Time
	// Stream is stdout, stderr or system.
	Stream string
	Line   string
}

// LogBus fans runtime log lines out to in-process subscribers (log tails,
// live streams), by app. Publishing never blocks: a subscriber whose buffer
// is full misses the batch, and the loss is counted.
type LogBus struct {
	mu   sync.RWMutex
	subs map[int64]map[*Subscription]struct{}
	// onDrop is called with the number of lines a slow subscriber missed.
	onDrop func(lines int)
}

// NewLogBus returns an empty bus.
func NewLogBus() *LogBus {
	return &LogBus{subs: map[int64]map[*Subscription]struct{}{}}
}

// Subscription receives batches of lines of the apps it subscribed to, in
// the order the hub accepted them, per app. Close it when done.
type Subscription struct {
	// C delivers the batches; it is closed by Close.
	C <-chan []LogLine

	c       chan []LogLine
	bus     *LogBus
	apps    []int64
	dropped atomic.Int64
	once    sync.Once
}

// Subscribe returns a subscription to the lines of appIDs with room for
// buffer batches (at least 1).
func (b *LogBus) Subscribe(appIDs []int64, buffer int) *Subscription {
	c := make(chan []LogLine, max(buffer, 1))
	s := &Subscription{C: c, c: c, bus: b, apps: append([]int64(nil), appIDs...)}
	b.mu.Lock()
	for _, id := range s.apps {
		m := b.subs[id]
		if m == nil {
			m = map[*Subscription]struct{}{}
			b.subs[id] = m
		}
		m[s] = struct{}{}
	}
	b.mu.Unlock()
	return s
}

// Dropped returns how many lines this subscriber missed because its buffer
// was full.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// Close unsubscribes and closes C. It is idempotent.
func (s *Subscription) Close() {
	s.once.Do(func() {
		b := s.bus
		b.mu.Lock()
		for _, id := range s.apps {
			if m := b.subs[id]; m != nil {
				delete(m, s)
				if len(m) == 0 {
					delete(b.subs, id)
				}
			}
		}
		close(s.c)
		b.mu.Unlock()
	})
}

// Subscribed reports whether anyone listens to appID (so the hub builds
// LogLines only when they have a reader).
func (b *LogBus) Subscribed(appID int64) bool {
	b.mu.RLock()
	_, ok := b.subs[appID]
	b.mu.RUnlock()
	return ok
}

// Publish hands lines, all of one app, to that app's subscribers without
// blocking. Subscribers share the slice: they must not modify it.
func (b *LogBus) Publish(appID int64, lines []LogLine) {
	if len(lines) == 0 {
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs[appID] {
		select {
		case s.c <- lines:
		default:
			s.dropped.Add(int64(len(lines)))
			if b.onDrop != nil {
				b.onDrop(len(lines))
			}
		}
	}
}
