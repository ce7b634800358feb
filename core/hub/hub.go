// Package hub is the core's end of the worker protocol (sdk/wsproto): the
// WebSocket endpoint GET /v1/workers/ws, one authenticated connection per
// worker, envelope verification, the handlers of every worker message, the
// in-memory live statistics, the heartbeat coalescer, the runtime log
// writer and log bus, and job delivery.
//
// # Design
//
// The hub is built to hold 10,000 idle workers on a small machine, within a
// few KiB each. A plain (non-TLS) connection has no goroutine of its own:
// its socket sits in an epoll set (EPOLLONESHOT) and, when it becomes
// readable, a small pool of goroutines reads the frames that arrived with
// pooled buffers, verifies and dispatches them, then re-arms the socket.
// Writes are made by whoever sends (a handler, the job pusher, the
// keepalive loop), under a per-connection mutex with a write deadline: no
// writer goroutine, no per-connection queue. One keepalive goroutine pings
// every connection every PingPeriod and closes those silent for PongWait.
// Per-connection state is a few hundred bytes (the replay window is 40).
//
// TLS connections (server.tls_cert set) cannot be polled that way: the
// kernel's readiness says nothing about records tls.Conn has buffered. They
// get one reader goroutine each (writes are still made by the sender), as
// do all connections off Linux or with Options.Goroutines.
//
// Heartbeats are coalesced: the latest per worker is kept and all are
// written with one UPDATE per HeartbeatFlush. Live app statistics stay in
// memory (StatsTTL). Runtime logs are batched across messages and workers
// and written with COPY, in chunks of lines (see store.LogChunk).
package hub

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// Path is the worker WebSocket endpoint.
const Path = "/v1/workers/ws"

// Protocol timings (the seed's).
const (
	// WriteWait bounds every write to a worker.
	WriteWait = 10 * time.Second
	// PongWait is how long a connection may stay silent (no frame at all,
	// pongs included) before it is closed.
	PongWait = 90 * time.Second
	// PingPeriod is how often the hub pings each worker.
	PingPeriod = 72 * time.Second
)

// Defaults of Options.
const (
	DefaultHeartbeatFlush = time.Second
	DefaultLogRetention   = 7 * 24 * time.Hour
	DefaultPruneEvery     = 24 * time.Hour
	DefaultPoolSize       = 64
	DefaultLogFlush       = 200 * time.Millisecond
	DefaultLogQueueBytes  = 32 << 20
	DefaultLogWriters     = 2
)

// Limits the hub applies beyond the protocol's.
const (
	// maxBadMACs is how many envelopes in a row may fail their MAC before
	// the connection is closed.
	maxBadMACs = 10
	// frameReadTimeout bounds reading a frame that has started to arrive.
	frameReadTimeout = 30 * time.Second
	// storeTimeout bounds each store call a handler makes.
	storeTimeout = 15 * time.Second
	// maxFramesPerWake is how many buffered frames one pool turn reads from
	// a connection before letting others go first.
	maxFramesPerWake = 64
	// maxText bounds free-text fields (job messages, errors, reasons).
	maxText = 8 << 10
)

// Store is what the hub reads and writes (*store.Store).
type Store interface {
	MarkWorkerOnline(ctx context.Context, workerID int64) (bool, error)
	NextAssignedJob(ctx context.Context, workerID int64) (*store.Job, error)
	AssignedJobs(ctx context.Context, placed []store.AssignedJob) ([]*store.Job, error)
	UpdateJobStatus(ctx context.Context, jobID, workerID int64, status, message string, progress int64) error
	CompleteJob(ctx context.Context, jobID, workerID int64, out store.Outcome) (*store.Completion, error)
	UpdateHeartbeats(ctx context.Context, beats []store.Heartbeat) error
	WorkerAppIDs(ctx context.Context, workerID int64) ([]int64, error)
	ReportAppStatus(ctx context.Context, workerID, appID int64, status string, restartCount int64, message string) (*store.AppReport, error)
	ReportViolation(ctx context.Context, workerID, appID int64, reason string) (*store.AppReport, error)
	SetDeploymentBuildLogs(ctx context.Context, deploymentID, workerID int64, logs string) error
	InsertRuntimeLogs(ctx context.Context, chunks []store.LogChunk) error
	PruneRuntimeLogs(ctx context.Context, before time.Time) (int64, error)
	WithTryAdvisoryLock(ctx context.Context, key int64, fn func(ctx context.Context) error) (bool, error)
}

var _ Store = (*store.Store)(nil)

// Authenticator resolves a worker's bearer credential: a JWT bound to its
// current key id, or its raw API key (core/workerauth).
type Authenticator interface {
	Authenticate(ctx context.Context, bearer string) (*workerauth.Identity, error)
}

// Options configure a Hub. Store and Auth are required.
type Options struct {
	Store Store
	Auth  Authenticator
	// KeyCache, when the authenticator reads through one, is invalidated on
	// key rotation.
	KeyCache *KeyCache
	// Listener, when set, delivers ChannelWorkerKeys notifications: the hub
	// drops the worker's cached credentials and closes its connection. The
	// caller runs it.
	Listener *store.Listener
	Logger   hclog.Logger
	// Registry receives the hub's metrics; nil means a private registry.
	Registry prometheus.Registerer
	// Bus receives runtime log lines; nil creates one (see Hub.Bus).
	Bus *LogBus
	// Now is the clock of envelope timestamps, heartbeats and statistics;
	// nil means time.Now.
	Now func() time.Time

	// HeartbeatFlush is how often coalesced heartbeats are written.
	HeartbeatFlush time.Duration
	// LogRetention is how long runtime logs are kept (worker.log_retention);
	// PruneEvery how often the pruning runs (the first run is one minute
	// after New). A negative PruneEvery disables pruning.
	LogRetention, PruneEvery time.Duration
	// LogFlush bounds how long accepted log lines wait for their COPY;
	// LogQueueBytes bounds the bytes waiting (a handler finding it full
	// waits for room, then drops and counts); LogWriters is the number of
	// concurrent COPY writers.
	LogFlush      time.Duration
	LogQueueBytes int64
	LogWriters    int

	// PoolSize is the number of goroutines reading and dispatching frames.
	PoolSize int
	// Goroutines gives every connection its own reader goroutine instead of
	// the epoll loop (the design TLS connections always use).
	Goroutines bool
	// PingPeriod, PongWait and WriteWait override the protocol timings
	// (tests).
	PingPeriod, PongWait, WriteWait time.Duration
}

// Hub holds the workers' connections on this core.
type Hub struct {
	st       Store
	auth     Authenticator
	keys     *KeyCache
	log      hclog.Logger
	now      func() time.Time
	epoch    time.Time
	m        *hubMetrics
	recv     map[string]prometheus.Counter
	bus      *LogBus
	stats    *statsStore
	hb       *heartbeats
	logs     *logWriter
	pool     *pool
	poller   *poller
	upgrader ws.HTTPUpgrader

	pingPeriod, pongWait, writeWait time.Duration
	hbFlush                         time.Duration
	retention, pruneEvery           time.Duration

	mu      sync.RWMutex
	conns   map[int64]*conn  // by worker id: the current connection
	byID    map[uint64]*conn // by connection id: every open connection
	nextID  atomic.Uint64
	closing bool

	// opCtx bounds handler I/O; it ends after the pool has drained at Close.
	opCtx    context.Context
	opCancel context.CancelFunc
	// loopCtx ends the background loops at Close.
	loopCtx    context.Context
	loopCancel context.CancelFunc
	loops      sync.WaitGroup
	// async tracks TLS readers and job pushes.
	async     sync.WaitGroup
	closeOnce sync.Once
}

// New builds a hub and starts its background loops (readiness loop, pool,
// keepalive, heartbeat flusher, log writers, pruner). Mount its endpoint
// with Register; stop it with Close.
func New(opts Options) (*Hub, error) {
	if opts.Store == nil || opts.Auth == nil {
		return nil, errors.New("hub: Store and Auth are required")
	}
	h := &Hub{
		st:         opts.Store,
		auth:       opts.Auth,
		keys:       opts.KeyCache,
		log:        opts.Logger,
		now:        opts.Now,
		epoch:      time.Now(),
		bus:        opts.Bus,
		hb:         newHeartbeats(),
		pingPeriod: orDur(opts.PingPeriod, PingPeriod),
		pongWait:   orDur(opts.PongWait, PongWait),
		writeWait:  orDur(opts.WriteWait, WriteWait),
		hbFlush:    orDur(opts.HeartbeatFlush, DefaultHeartbeatFlush),
		retention:  orDur(opts.LogRetention, DefaultLogRetention),
		pruneEvery: orDur(opts.PruneEvery, DefaultPruneEvery),
		conns:      map[int64]*conn{},
		byID:       map[uint64]*conn{},
	}
	if h.log == nil {
		h.log = hclog.NewNullLogger()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.bus == nil {
		h.bus = NewLogBus()
	}
	h.upgrader = ws.HTTPUpgrader{Timeout: h.writeWait}
	h.stats = newStatsStore(StatsTTL, h.now)
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	h.logs = newLogWriter(h, orDur(opts.LogFlush, DefaultLogFlush), orInt(opts.LogQueueBytes, DefaultLogQueueBytes),
		int(orInt(int64(opts.LogWriters), DefaultLogWriters)))
	var err error
	if h.m, err = newMetrics(reg, h); err != nil {
		return nil, err
	}
	h.recv = make(map[string]prometheus.Counter, len(knownTypes))
	for _, t := range knownTypes {
		h.recv[t] = h.m.received.WithLabelValues(t)
	}
	h.bus.onDrop = func(n int) { h.m.busDrops.Add(float64(n)) }

	if !opts.Goroutines {
		if h.poller, err = newPoller(); err != nil {
			h.log.Warn("epoll unavailable; every worker connection gets a reader goroutine", "error", err)
			h.poller = nil
		}
	}
	h.opCtx, h.opCancel = context.WithCancel(context.Background())
	h.loopCtx, h.loopCancel = context.WithCancel(context.Background())
	h.pool = newPool(int(orInt(int64(opts.PoolSize), DefaultPoolSize)))
	if h.poller != nil {
		h.loops.Go(func() {
			h.poller.run(h.ready, func(err error) { h.log.Error("worker readiness loop failed", "error", err) })
		})
	}
	h.loops.Go(h.keepalive)
	h.loops.Go(h.flushLoop)
	if h.pruneEvery > 0 {
		h.loops.Go(h.pruneLoop)
	}
	h.logs.start()

	if opts.Listener != nil {
		opts.Listener.Handle(store.ChannelWorkerKeys, h.onKeyRotated)
		opts.Listener.Handle(store.ChannelWorkerOffline, h.onWorkerOffline)
		if h.keys != nil {
			opts.Listener.OnConnect(h.keys.Flush)
		}
	}
	return h, nil
}

func orDur(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

func orInt(v, def int64) int64 {
	if v <= 0 {
		return def
	}
	return v
}

// Register mounts GET /v1/workers/ws.
func (h *Hub) Register(m api.Mux) { m.Handle(http.MethodGet, Path, h.handleUpgrade) }

// Bus returns the log bus runtime log lines are published on.
func (h *Hub) Bus() *LogBus { return h.bus }

// Connected returns how many workers hold a connection to this core.
func (h *Hub) Connected() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns)
}

// IsConnected reports whether the worker holds a connection to this core.
func (h *Hub) IsConnected(workerID int64) bool { return h.current(workerID) != nil }

// AppStatsLive returns an app's live statistics, if its worker reported
// them within StatsTTL (to this core).
func (h *Hub) AppStatsLive(appID int64) (AppStats, bool) { return h.stats.get(appID) }

// PushJob sends job jobID to its worker if the worker is connected here,
// in the background, and reports whether it is (PushJobs of one).
func (h *Hub) PushJob(workerID, jobID int64) bool {
	return h.PushJobs([]store.AssignedJob{{JobID: jobID, WorkerID: workerID}}) == 1
}

// PushJobs sends each assigned job to its worker if the worker is connected
// here, in the background, with one query for the whole batch, and returns
// how many jobs had their worker here. The others get their jobs when they
// connect (replay), as do workers connected to another core. The scheduler
// calls it after committing a pass.
func (h *Hub) PushJobs(assigned []store.AssignedJob) int {
	var here []store.AssignedJob
	h.mu.RLock()
	if h.closing {
		h.mu.RUnlock()
		return 0
	}
	for _, a := range assigned {
		if h.conns[a.WorkerID] != nil {
			here = append(here, a)
		}
	}
	if len(here) == 0 {
		h.mu.RUnlock()
		return 0
	}
	h.async.Add(1)
	h.mu.RUnlock()
	go func() {
		defer h.async.Done()
		ctx, cancel := context.WithTimeout(h.opCtx, storeTimeout)
		defer cancel()
		h.pushJobs(ctx, here)
	}()
	return len(here)
}

// FlushHeartbeats writes the coalesced heartbeats now (the flush loop does
// it every HeartbeatFlush).
func (h *Hub) FlushHeartbeats(ctx context.Context) error {
	n, err := h.hb.flush(ctx, h.st)
	if err != nil {
		return fmt.Errorf("hub: flush heartbeats: %w", err)
	}
	if n > 0 {
		h.m.hbFlushes.Inc()
		h.m.hbBeats.Add(float64(n))
	}
	return nil
}

func (h *Hub) flushLoop() {
	t := time.NewTicker(h.hbFlush)
	defer t.Stop()
	for {
		select {
		case <-h.loopCtx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(h.opCtx, storeTimeout)
			if err := h.FlushHeartbeats(ctx); err != nil {
				h.log.Warn("heartbeat flush failed; retrying at the next interval", "error", err)
			}
			cancel()
		}
	}
}

// current returns the worker's connection, if any.
func (h *Hub) current(workerID int64) *conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.conns[workerID]
}

// handleUpgrade authenticates the bearer (a 401 JSON error before any
// upgrade), brings an offline worker online, upgrades, registers the
// connection (closing the worker's previous one) and replays its next
// assigned job.
func (h *Hub) handleUpgrade(w http.ResponseWriter, req bunrouter.Request) error {
	h.mu.RLock()
	closing := h.closing
	if !closing {
		h.async.Add(1) // Close waits for upgrades in flight
	}
	h.mu.RUnlock()
	if closing {
		h.m.upgrades.WithLabelValues("error").Inc()
		return api.Errorf(http.StatusServiceUnavailable, "shutting_down", "the core is shutting down; reconnect to another")
	}
	defer h.async.Done()
	id, err := h.auth.Authenticate(req.Context(), api.Bearer(req.Request))
	if err != nil {
		if workerauth.IsFailure(err) {
			h.m.upgrades.WithLabelValues("unauthorized").Inc()
			return api.ErrUnauthorized.WithCause(err)
		}
		h.m.upgrades.WithLabelValues("error").Inc()
		return api.ErrInternal.WithCause(err)
	}
	if len(id.EnvelopeKey) != wsproto.EnvelopeKeySize {
		h.m.upgrades.WithLabelValues("error").Inc()
		return api.ErrInternal.WithCause(fmt.Errorf("hub: worker %d: envelope key has %d bytes", id.Worker.ID, len(id.EnvelopeKey)))
	}
	wid := id.Worker.ID
	if online, err := h.st.MarkWorkerOnline(req.Context(), wid); err != nil {
		h.m.upgrades.WithLabelValues("error").Inc()
		return api.ErrInternal.WithCause(err)
	} else if online {
		h.log.Info("worker online", "worker", id.Worker.Name, "worker_id", wid)
	}

	nc, rw, _, err := h.upgrader.Upgrade(req.Request, w)
	if err != nil {
		// The upgrader answered on the hijacked connection, if it got one.
		h.m.upgrades.WithLabelValues("handshake").Inc()
		if nc != nil {
			_ = nc.Close()
		}
		h.log.Debug("worker websocket handshake failed", "worker_id", wid, "error", err)
		return nil
	}
	// The HTTP server set read/write deadlines on the connection: the
	// socket now lives as long as the worker does.
	_ = nc.SetDeadline(time.Time{})

	c := h.newConn(wid, id.EnvelopeKey, nc)
	if rw != nil && rw.Reader.Buffered() > 0 {
		// Frames the worker sent right behind its handshake.
		b, _ := rw.Reader.Peek(rw.Reader.Buffered())
		c.prefix = append([]byte(nil), b...)
	}
	if !h.register(c) {
		h.m.upgrades.WithLabelValues("error").Inc()
		c.close(ws.StatusGoingAway, "core shutting down", "shutdown")
		return nil
	}
	h.m.upgrades.WithLabelValues("ok").Inc()
	h.log.Debug("worker connected", "worker", id.Worker.Name, "worker_id", wid, "method", id.Method, "mode", c.mode())

	ctx, cancel := context.WithTimeout(h.opCtx, storeTimeout)
	defer cancel()
	h.replay(ctx, c)
	return nil
}

// newConn wraps an upgraded connection.
func (h *Hub) newConn(workerID int64, key []byte, nc net.Conn) *conn {
	c := &conn{h: h, id: h.nextID.Add(1), workerID: workerID, nc: nc}
	copy(c.key[:], key)
	c.logTokens = wsproto.LogBurst
	c.logAt = h.mono()
	now := h.mono()
	c.lastRecv.Store(now)
	c.nextPing = now + int64(h.pingPeriod)
	if _, isTLS := nc.(*tls.Conn); !isTLS && h.poller != nil {
		if sc, ok := nc.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				c.raw = raw
			}
		}
	}
	return c
}

// mono is the hub's monotonic clock in nanoseconds, for liveness and rate
// limits.
func (h *Hub) mono() int64 { return int64(time.Since(h.epoch)) }

// register makes c the worker's connection, closes the one it replaces,
// and starts reading c. It returns false when the hub is closing.
func (h *Hub) register(c *conn) bool {
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return false
	}
	old := h.conns[c.workerID]
	h.conns[c.workerID] = c
	h.byID[c.id] = c
	if c.raw == nil {
		h.async.Add(1)
	}
	h.mu.Unlock()
	h.m.connections.Inc()
	if old != nil {
		old.close(closeReplaced, "replaced by a new connection of the same worker", "replaced")
	}
	if c.raw == nil {
		go func() {
			defer h.async.Done()
			c.readLoop()
		}()
		return true
	}
	if err := h.poller.add(c); err != nil {
		h.log.Warn("cannot watch worker connection", "worker_id", c.workerID, "error", err)
		c.close(ws.StatusInternalServerError, "internal error", "error")
		return true
	}
	if c.prefix != nil {
		h.pool.submit(task{c: c, op: opRead})
	}
	return true
}

// unregister forgets c (closing).
func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	delete(h.byID, c.id)
	if h.conns[c.workerID] == c {
		delete(h.conns, c.workerID)
	}
	h.mu.Unlock()
}

// ready is the readiness loop's callback: the connection has bytes.
func (h *Hub) ready(id uint64) {
	h.mu.RLock()
	c := h.byID[id]
	h.mu.RUnlock()
	if c != nil {
		h.pool.submit(task{c: c, op: opRead})
	}
}

// keepalive pings every connection every pingPeriod and closes those that
// were silent for pongWait. Its tick is a fraction of both, so a
// connection's ping is at most that late.
func (h *Hub) keepalive() {
	tick := min(time.Second, h.pingPeriod/4, h.pongWait/4)
	t := time.NewTicker(tick)
	defer t.Stop()
	var dead, due []*conn
	for {
		select {
		case <-h.loopCtx.Done():
			return
		case <-t.C:
		}
		now := h.mono()
		dead, due = dead[:0], due[:0]
		h.mu.RLock()
		for _, c := range h.byID {
			switch {
			case now-c.lastRecv.Load() > int64(h.pongWait):
				dead = append(dead, c)
			case now >= c.nextPing:
				c.nextPing = now + int64(h.pingPeriod)
				due = append(due, c)
			}
		}
		h.mu.RUnlock()
		for _, c := range dead {
			c.close(0, "", "pong_timeout") // a silent peer does not read a close frame
		}
		for _, c := range due {
			if !h.pool.trySubmit(task{c: c, op: opPing}) {
				c.nextPing = now // pool saturated: retry next tick
			}
		}
		clear(dead)
		clear(due)
	}
}

// onKeyRotated handles a ChannelWorkerKeys notification: the worker's
// cached credentials go, and so does its connection, whose envelope key
// no longer exists.
func (h *Hub) onKeyRotated(payload string) {
	var id int64
	if _, err := fmt.Sscan(payload, &id); err != nil || id <= 0 {
		h.log.Warn("ignoring malformed worker key notification", "payload", payload)
		if h.keys != nil {
			h.keys.Flush()
		}
		return
	}
	if h.keys != nil {
		h.keys.DropWorker(id)
	}
	if c := h.current(id); c != nil {
		h.log.Info("worker key rotated; closing its connection", "worker_id", id)
		go c.close(closeKeyRotated, "worker key rotated; reconnect with the new key", "key_rotated")
	}
}

// onWorkerOffline closes the connection of a worker the health check took
// offline: it was silent, and if it is in fact alive it reconnects, which
// brings it online again.
func (h *Hub) onWorkerOffline(payload string) {
	var id int64
	if _, err := fmt.Sscan(payload, &id); err != nil || id <= 0 {
		h.log.Warn("ignoring malformed worker offline notification", "payload", payload)
		return
	}
	if c := h.current(id); c != nil {
		h.log.Info("worker taken offline after its silence; closing its connection", "worker_id", id)
		go c.close(closeOffline, "marked offline after silence; reconnect", "offline")
	}
}

// Close stops the hub: every connection gets a close frame (going away),
// the readers and the pool stop, coalesced heartbeats and queued runtime
// logs are written, and the background loops end. Call it before the store
// closes. ctx bounds the wait for handlers and writers still busy.
func (h *Hub) Close(ctx context.Context) error {
	var err error
	h.closeOnce.Do(func() { err = h.close(ctx) })
	return err
}

func (h *Hub) close(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	all := make([]*conn, 0, len(h.byID))
	for _, c := range h.byID {
		all = append(all, c)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4*runtime.GOMAXPROCS(0))
	for _, c := range all {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.close(ws.StatusGoingAway, "core shutting down", reasonShutdown)
		})
	}
	wg.Wait()
	if h.poller != nil {
		h.poller.close()
	}
	// Handlers still running finish (within ctx), then their I/O context
	// ends.
	waited := make(chan struct{})
	go func() {
		h.pool.stop()
		h.async.Wait()
		close(waited)
	}()
	var errs []error
	select {
	case <-waited:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("hub: close: handlers still running: %w", ctx.Err()))
	}
	h.loopCancel()
	h.loops.Wait()
	// The final writes get until ctx's deadline, but at least a moment.
	wait := storeTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = max(time.Until(dl), 2*time.Second)
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait)
	defer cancel()
	if err := h.FlushHeartbeats(fctx); err != nil {
		errs = append(errs, err)
	}
	if err := h.logs.close(fctx); err != nil {
		errs = append(errs, err)
	}
	h.opCancel()
	return errors.Join(errs...)
}

// readerPool holds the bufio.Readers pool workers read sockets through;
// a connection holds one only while it has buffered bytes left.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}
