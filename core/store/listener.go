package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
)

// Notification channels the store NOTIFYs on.
const (
	// ChannelWorkerKeys carries the id of a worker whose key was rotated
	// (RotateWorkerKey), in decimal: caches of its credentials are stale and
	// its live connection speaks with a key that no longer exists.
	ChannelWorkerKeys = "wisehosting_worker_keys"
	// ChannelJobs is notified (empty payload) when jobs are added, capacity
	// is released or a worker's offer changes (migration 003's triggers):
	// a scheduling pass may now place something.
	ChannelJobs = "wisehosting_jobs"
	// ChannelWorkerOffline carries the id of a worker the health check
	// took offline (TakeSilentWorkersOffline), in decimal: a core still
	// holding its connection closes it, so that a worker that comes back
	// reconnects and is brought online by the connect path.
	ChannelWorkerOffline = "wisehosting_worker_offline"
	// ChannelRoutes is notified (empty payload) when the edge route table
	// may have changed (migration 006): every core reloads it.
	ChannelRoutes = "wisehosting_routes"
	// ChannelApps carries the owner's user id whenever one of their apps
	// changes (migration 011): every core drops its cached view of them.
	ChannelApps = "wisehosting_apps"
)

// Listener holds one dedicated Postgres connection, outside the pool, that
// LISTENs on a set of channels and hands every notification to the
// handlers of its channel. It reconnects with backoff; notifications sent
// while it was disconnected are lost, so subsystems that cache register an
// OnConnect callback and drop their caches there.
//
// Register handlers with Handle and OnConnect before calling Run.
type Listener struct {
	cfg *pgx.ConnConfig
	log hclog.Logger

	mu        sync.Mutex
	handlers  map[string][]func(payload string)
	onConnect []func()
	started   bool

	listening atomic.Bool

	// pingEvery is how long the connection may stay silent before the
	// listener checks it is still alive; backoff bounds reconnect waits.
	pingEvery              time.Duration
	minBackoff, maxBackoff time.Duration
}

// NewListener returns a Listener that connects like the store's pool does.
func (s *Store) NewListener(log hclog.Logger) *Listener {
	if log == nil {
		log = s.log
	}
	return &Listener{
		cfg:        s.pool.Config().ConnConfig.Copy(),
		log:        log,
		handlers:   map[string][]func(string){},
		pingEvery:  30 * time.Second,
		minBackoff: 100 * time.Millisecond,
		maxBackoff: 5 * time.Second,
	}
}

// Handle registers fn for notifications on channel. Handlers run one at a
// time on the listener's goroutine, in order of arrival: they must be
// quick and must not block.
func (l *Listener) Handle(channel string, fn func(payload string)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		panic("store: Listener.Handle called after Run")
	}
	l.handlers[channel] = append(l.handlers[channel], fn)
}

// OnConnect registers fn to run each time the listener has (re)connected
// and LISTENs on every channel, before it delivers notifications.
func (l *Listener) OnConnect(fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		panic("store: Listener.OnConnect called after Run")
	}
	l.onConnect = append(l.onConnect, fn)
}

// Listening reports whether the listener is connected and LISTENing.
func (l *Listener) Listening() bool { return l.listening.Load() }

// Run listens until ctx is done, reconnecting after failures, and returns
// nil then. Call it once.
func (l *Listener) Run(ctx context.Context) error {
	l.mu.Lock()
	if l.started {
		l.mu.Unlock()
		return errors.New("store: listener already running")
	}
	l.started = true
	channels := make([]string, 0, len(l.handlers))
	for ch := range l.handlers {
		channels = append(channels, ch)
	}
	slices.Sort(channels)
	l.mu.Unlock()

	backoff := l.minBackoff
	for {
		err := l.session(ctx, channels, func() { backoff = l.minBackoff })
		l.listening.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		l.log.Warn("notification listener disconnected; reconnecting", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, l.maxBackoff)
	}
}

// session connects, LISTENs and dispatches until the connection fails or
// ctx ends; connected runs once LISTEN succeeded.
func (l *Listener) session(ctx context.Context, channels []string, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, l.cfg.Copy())
	if err != nil {
		return fmt.Errorf("store: listener: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("store: listener: listen %s: %w", ch, err)
		}
	}
	l.listening.Store(true)
	connected()
	for _, fn := range l.onConnect {
		fn()
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, l.pingEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			for _, fn := range l.handlers[n.Channel] {
				l.dispatch(n.Channel, n.Payload, fn)
			}
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			// Silence: make sure the connection is still there.
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("store: listener: ping: %w", err)
			}
		default:
			return fmt.Errorf("store: listener: %w", err)
		}
	}
}

// dispatch runs one handler, keeping the listener alive if it panics.
func (l *Listener) dispatch(channel, payload string, fn func(string)) {
	defer func() {
		if v := recover(); v != nil {
			l.log.Error("notification handler panicked", "channel", channel, "panic", v)
		}
	}()
	fn(payload)
}
