package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// Defaults of Config and of the protocol's timing (see PROTOCOL.md).
const (
	// DefaultMinBackoff is the first reconnect delay.
	DefaultMinBackoff = 500 * time.Millisecond
	// DefaultMaxBackoff caps the reconnect delay.
	DefaultMaxBackoff = 30 * time.Second
	// DefaultHeartbeatInterval is used when the core does not say how often
	// it expects a heartbeat.
	DefaultHeartbeatInterval = wsproto.DefaultHeartbeatInterval

	// WriteWait bounds every write on the WebSocket.
	WriteWait = 10 * time.Second
	// PingAfter is how long the client waits without reading anything
	// before it pings the core.
	PingAfter = 60 * time.Second
	// PongWait is how long the client waits without reading anything
	// (not even the pong to its ping) before it drops the connection.
	PongWait = 90 * time.Second

	// stableAfter is how long a connection must have lasted for the
	// backoff to start again from MinBackoff.
	stableAfter = 10 * time.Second
	// jobsBuffer and errorsBuffer size the Jobs and Errors channels (the
	// core sends jobs one at a time; a full Jobs channel pauses reading).
	jobsBuffer   = 4
	errorsBuffer = 8
)

// Errors returned by Run and Send.
var (
	// ErrUnauthorized means the core refused the API key (HTTP 401 on
	// register or refresh-token): it is wrong, or was rotated or deleted.
	// Retrying with the same key cannot succeed.
	ErrUnauthorized = errors.New("worker: the core refused the API key")
	// ErrRejected means the core refused the registration itself (an HTTP
	// 4xx other than 401, 408, 409, 425 and 429): the request must change
	// before a retry can succeed.
	ErrRejected = errors.New("worker: the core rejected the request")
	// ErrClosed is returned by Send once Run has returned.
	ErrClosed = errors.New("worker: client stopped")
	// ErrTooLarge is returned by Send for a message that would not fit in
	// wsproto.MaxFrameSize.
	ErrTooLarge = errors.New("worker: message exceeds the frame size limit")
)

// Config configures a Client.
type Config struct {
	// CoreURL is the core's base URL, "http://127.0.0.1:8443" or https.
	// A path prefix is kept.
	CoreURL string
	// APIKey is the worker's own key (whk_…), minted by `wisehosting
	// worker add`. It authenticates registration and token refresh, and
	// the envelope key is derived from it. It is never logged.
	APIKey string
	// Registration is what the worker reports about itself.
	Registration wsproto.RegisterRequest
	// HTTPClient makes the register and refresh-token requests; when its
	// Transport is an *http.Transport, its TLSClientConfig also configures
	// the WebSocket's TLS. Default: a client shared by all Clients with a
	// 30 s timeout.
	HTTPClient *http.Client
	// Logger receives the client's logs (never a secret). Default: none.
	Logger hclog.Logger
	// MinBackoff and MaxBackoff bound the reconnect delay; it doubles
	// after each failed attempt, with jitter (each delay is drawn from
	// [d/2, d]). Defaults 500 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// Dialer dials the WebSocket's TCP connection (for instance with a
	// LocalAddr, to spread load-generator connections over 127.0.0.x
	// source addresses). HTTP requests go through HTTPClient. Default: a
	// dialer with a 10 s timeout.
	Dialer *net.Dialer
}

// Stats are a client's counters since New.
type Stats struct {
	// Connects counts WebSocket connections established.
	Connects uint64
	// Sent counts messages written.
	Sent uint64
	// Received counts verified messages received.
	Received uint64
	// Rejected counts frames from the core that were dropped: malformed,
	// forged, reflected, outside the clock bound, replayed, or of a type
	// the client does not know.
	Rejected uint64
	// ErrorsDropped counts error frames dropped because Errors() was full.
	ErrorsDropped uint64
	// Refreshes counts JWTs fetched from refresh-token.
	Refreshes uint64
}

// Client is one worker's connection to the core. Its methods are safe for
// concurrent use; Run may be called once.
type Client struct {
	cfg    Config
	key    []byte // envelope key
	base   string // CoreURL without a trailing slash
	wsURL  string
	http   *http.Client
	log    hclog.Logger
	jobs   chan wsproto.Job
	errs   chan wsproto.Error
	dialer *net.Dialer

	// Test knobs; zero means the protocol's value.
	pingAfter, pongWait time.Duration

	mu           sync.Mutex
	started      bool
	stopped      bool
	cur          *conn
	ready        chan struct{} // closed while connected or once stopped
	token        string
	tokenFrom    time.Time // when token was obtained
	tokenExp     time.Time
	forceRefresh bool
	worker       wsproto.WorkerInfo
	hbInterval   time.Duration
	refresh      *time.Timer
	cancel       context.CancelCauseFunc
	runCtx       context.Context
	cb           sync.WaitGroup // timer callbacks in flight

	connects, sent, received, rejected, errorsDropped, refreshes atomic.Uint64
}

// defaultHTTP is shared by every Client without an HTTPClient, so that a
// process running thousands of clients keeps one small idle-connection pool.
var defaultHTTP = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 20 * time.Second,
	},
}

var defaultDialer = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}

// New checks cfg and returns a Client; nothing is sent before Run.
func New(cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("worker: APIKey is required")
	}
	u, err := url.Parse(cfg.CoreURL)
	if err != nil {
		return nil, fmt.Errorf("worker: CoreURL: %w", err)
	}
	var wsScheme string
	switch u.Scheme {
	case "http":
		wsScheme = "ws"
	case "https":
		wsScheme = "wss"
	default:
		return nil, fmt.Errorf("worker: CoreURL %q: scheme must be http or https", cfg.CoreURL)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("worker: CoreURL %q must be scheme://host[:port][/prefix]", cfg.CoreURL)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return nil, fmt.Errorf("worker: MaxBackoff %v is below MinBackoff %v", cfg.MaxBackoff, cfg.MinBackoff)
	}
	key := wsproto.EnvelopeKey(cfg.APIKey)
	if key == nil {
		return nil, errors.New("worker: cannot derive the envelope key from APIKey")
	}
	c := &Client{
		cfg:    cfg,
		key:    key,
		http:   cfg.HTTPClient,
		log:    cfg.Logger,
		dialer: cfg.Dialer,
		jobs:   make(chan wsproto.Job, jobsBuffer),
		errs:   make(chan wsproto.Error, errorsBuffer),
		ready:  make(chan struct{}),
	}
	path := strings.TrimRight(u.Path, "/")
	c.base = u.Scheme + "://" + u.Host + path
	c.wsURL = wsScheme + "://" + u.Host + path + "/v1/workers/ws"
	if c.http == nil {
		c.http = defaultHTTP
	}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	if c.dialer == nil {
		c.dialer = defaultDialer
	}
	return c, nil
}

// Jobs delivers the jobs the core pushes. The core may send a job again
// (it replays assigned jobs on every connect and after every job result):
// consumers dedup by JobID. While the channel is full the client stops
// reading from the core, so read it promptly. The channel is never
// closed.
func (c *Client) Jobs() <-chan wsproto.Job { return c.jobs }

// Errors delivers the error frames the core sends about refused messages.
// Reading it is optional: when it is full, errors are dropped (and counted
// in Stats().ErrorsDropped), never blocking the client. The channel is
// never closed.
func (c *Client) Errors() <-chan wsproto.Error { return c.errs }

// Connected reports whether the WebSocket is currently open.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil
}

// Worker returns the core's view of this worker from the last
// registration (zero before it).
func (c *Client) Worker() wsproto.WorkerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.worker
}

// HeartbeatInterval is how often the core expects a heartbeat: its answer
// to the registration, or DefaultHeartbeatInterval.
func (c *Client) HeartbeatInterval() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hbInterval <= 0 {
		return DefaultHeartbeatInterval
	}
	return c.hbInterval
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Connects:      c.connects.Load(),
		Sent:          c.sent.Load(),
		Received:      c.received.Load(),
		Rejected:      c.rejected.Load(),
		ErrorsDropped: c.errorsDropped.Load(),
		Refreshes:     c.refreshes.Load(),
	}
}

// Run registers the worker, connects, keeps the JWT fresh and reconnects
// with jittered exponential backoff until ctx ends (it then returns
// ctx.Err()) or the core refuses the key or the registration for good (an
// error wrapping ErrUnauthorized or ErrRejected). Transient failures (the
// network, HTTP 5xx, 408, 409, 425, 429) are retried forever. When Run
// returns, every goroutine and timer it started has ended.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("worker: Run called twice")
	}
	c.started = true
	runCtx, cancel := context.WithCancelCause(ctx)
	c.runCtx, c.cancel = runCtx, cancel
	c.mu.Unlock()

	// Cancelling ctx interrupts the read of the open connection.
	stopInterrupt := context.AfterFunc(runCtx, func() {
		c.mu.Lock()
		cn := c.cur
		c.mu.Unlock()
		if cn != nil {
			cn.interrupt()
		}
	})
	err := c.run(runCtx)

	stopInterrupt()
	cancel(nil)
	c.mu.Lock()
	c.stopped = true
	if c.refresh != nil {
		c.refresh.Stop()
	}
	select {
	case <-c.ready:
	default:
		close(c.ready) // wake Senders: they see stopped
	}
	c.mu.Unlock()
	c.cb.Wait()

	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (c *Client) run(ctx context.Context) error {
	bo := backoff{min: c.cfg.MinBackoff, max: c.cfg.MaxBackoff}
	for {
		var err error
		onFreshStack(func() { err = c.register(ctx) })
		if err == nil {
			break
		}
		if permanent(err) || ctx.Err() != nil {
			return c.stopErr(ctx, err)
		}
		d := bo.next()
		c.log.Warn("registration failed; retrying", "error", err, "retry_in", d)
		if !sleep(ctx, d) {
			return c.stopErr(ctx, err)
		}
	}
	bo.reset()
	for {
		connectedFor, err := c.session(ctx)
		if ctx.Err() != nil {
			return c.stopErr(ctx, err)
		}
		if permanent(err) {
			return err
		}
		if connectedFor >= stableAfter {
			bo.reset()
		}
		d := bo.next()
		c.log.Warn("disconnected from the core; reconnecting", "error", err, "retry_in", d)
		if !sleep(ctx, d) {
			return c.stopErr(ctx, err)
		}
	}
}

// stopErr is what run returns once ctx is done: the permanent error that
// cancelled it (a refused key found by the refresh timer) or err.
func (c *Client) stopErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	if err == nil {
		return ctx.Err()
	}
	return err
}

// enter admits a timer callback unless Run is returning; the caller must
// call c.cb.Done() when entered.
func (c *Client) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	c.cb.Add(1)
	return true
}

// backoff is an exponential backoff with "equal jitter": each delay is
// uniform in [d/2, d] where d doubles from min to max.
type backoff struct {
	min, max, d time.Duration
}

func (b *backoff) next() time.Duration {
	if b.d < b.min {
		b.d = b.min
	}
	d := b.d
	b.d *= 2
	if b.d > b.max {
		b.d = b.max
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

func (b *backoff) reset() { b.d = 0 }

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
