package hub_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
	"github.com/wisehosting/wisehosting/core/hub"
	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

func TestMain(m *testing.M) {
	if os.Getenv(loadEnv) != "" {
		os.Exit(runLoadClients())
	}
	os.Exit(pgtest.Main(m))
}

// waitLong bounds every wait of these tests (race detector, busy CI).
const waitLong = 10 * time.Second

// clock is the hub's clock in tests: real time plus an offset.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// countingStore counts the statements the hub's hot paths cost.
type countingStore struct {
	*store.Store
	heartbeatCalls atomic.Int64
	heartbeatBeats atomic.Int64
	appIDLoads     atomic.Int64
}

func (s *countingStore) UpdateHeartbeats(ctx context.Context, beats []store.Heartbeat) error {
	s.heartbeatCalls.Add(1)
	s.heartbeatBeats.Add(int64(len(beats)))
	return s.Store.UpdateHeartbeats(ctx, beats)
}

func (s *countingStore) WorkerAppIDs(ctx context.Context, workerID int64) ([]int64, error) {
	s.appIDLoads.Add(1)
	return s.Store.WorkerAppIDs(ctx, workerID)
}

// env is a hub over a fresh database, served by an httptest server.
type env struct {
	t        *testing.T
	ctx      context.Context
	st       *store.Store
	cs       *countingStore
	cipher   *secrets.Cipher
	jwt      *secrets.JWTIssuer
	clock    *clock
	reg      *prometheus.Registry
	hub      *hub.Hub
	keys     *hub.KeyCache
	listener *store.Listener
	srv      *httptest.Server
	url      string
	user     *store.User
	apps     int
}

type envOpts struct {
	goroutines bool
	tls        bool
	tweak      func(*hub.Options)
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), st: storetest.New(t), cipher: storetest.Cipher(t), clock: &clock{},
		reg: prometheus.NewRegistry()}
	e.cs = &countingStore{Store: e.st}
	var err error
	if e.jwt, err = secrets.NewJWTIssuer(storetest.Secret, nil); err != nil {
		t.Fatal(err)
	}
	e.keys = hub.NewKeyCache(e.st, 0)
	e.listener = e.st.NewListener(testutil.Logger(t))
	opts := hub.Options{
		Store: e.cs, Auth: workerauth.New(e.keys, e.cipher, e.jwt), KeyCache: e.keys, Listener: e.listener,
		Logger: testutil.Logger(t), Registry: e.reg, Now: e.clock.now, Goroutines: o.goroutines,
		LogFlush: 20 * time.Millisecond, HeartbeatFlush: time.Hour, PruneEvery: -1,
	}
	if o.tweak != nil {
		o.tweak(&opts)
	}
	if e.hub, err = hub.New(opts); err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = e.listener.Run(lctx) }()
	a, err := api.New(api.Options{Logger: testutil.Logger(t), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	e.hub.Register(a.Group())
	if o.tls {
		e.srv = httptest.NewTLSServer(a)
		e.url = "wss" + strings.TrimPrefix(e.srv.URL, "https") + hub.Path
	} else {
		e.srv = httptest.NewServer(a)
		e.url = "ws" + strings.TrimPrefix(e.srv.URL, "http") + hub.Path
	}
	t.Cleanup(func() {
		e.srv.Close()
		cctx, ccancel := context.WithTimeout(context.Background(), waitLong)
		defer ccancel()
		if err := e.hub.Close(cctx); err != nil {
			t.Errorf("hub close: %v", err)
		}
		cancel()
		<-done
	})
	testutil.WaitFor(t, waitLong, "listener to LISTEN", e.listener.Listening)
	if e.user, err = e.st.CreateUser(e.ctx, store.NewUser{Email: "ada@example.com", Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// worker creates a registered, online worker and returns it with its raw key.
func (e *env) worker(name string) (*store.Worker, string) {
	e.t.Helper()
	w, key, err := workerauth.AddWorker(e.ctx, e.st, e.cipher, name, "", "")
	if err != nil {
		e.t.Fatal(err)
	}
	if w, err = e.st.RegisterWorker(e.ctx, w.ID, store.Registration{Address: "10.0.0.1", CapacityCPU: 8000, CapacityMemory: 16 << 30}); err != nil {
		e.t.Fatal(err)
	}
	return w, key
}

// token mints a JWT for w.
func (e *env) token(w *store.Worker) string {
	e.t.Helper()
	tok, _, err := e.jwt.Sign(w.ID, w.KeyID)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// app creates an app of the test user.
func (e *env) app() *store.App {
	e.t.Helper()
	e.apps++
	a, err := e.st.CreateApp(e.ctx, store.NewApp{UserID: e.user.ID, Name: fmt.Sprintf("test-app-%03d", e.apps),
		GitRepo: "https://git.example/x.git", GitBranch: "main"})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// deploy creates a deployment of a new app with a deploy job pinned to w.
func (e *env) deploy(w *store.Worker) *store.Deployed {
	e.t.Helper()
	a := e.app()
	payload, _ := json.Marshal(wsproto.DeployPayload{AppID: a.ID, AppName: a.Name, Runtime: "exec", GitRepo: a.GitRepo,
		GitToken: "ghp_secret", Limits: wsproto.Limits{CPU: 500, Memory: 256 << 20}})
	d, err := e.st.CreateDeployment(e.ctx, a.ID, store.NewDeployment{CommitSHA: "abc1234", Branch: "main"},
		store.NewJob{WorkerID: &w.ID, CPU: 500, Memory: 256 << 20, Payload: payload})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// runningApp returns an app running on w (deployed through the store).
func (e *env) runningApp(w *store.Worker) *store.App {
	e.t.Helper()
	d := e.deploy(w)
	c, err := e.st.CompleteJob(e.ctx, d.Job.ID, w.ID, store.Outcome{Success: true, Port: 20001})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.App
}

// metric reads a counter or gauge of the hub's registry; labels are
// name=value pairs.
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	return gather(e.t, e.reg, name, labels...)
}

func gather(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	v, err := metrics.Sum(reg, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// scalar reads one value with SQL.
func scalar[T any](e *env, sql string, args ...any) T {
	e.t.Helper()
	var v T
	if err := e.st.Pool().QueryRow(e.ctx, sql, args...).Scan(&v); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// incoming is what a test worker receives: an envelope, or the end of the
// connection.
type incoming struct {
	env       *wsproto.Envelope
	closed    bool
	closeCode ws.StatusCode
	err       error
}

// client is a test worker: a real WebSocket connection that seals
// envelopes with wsproto. A reader goroutine answers pings and queues what
// arrives.
type client struct {
	t      testing.TB
	conn   net.Conn
	key    []byte
	mu     sync.Mutex
	seq    uint64
	events chan incoming
}

// dialErr connects with bearer as the Authorization header.
func dialErr(url, bearer string, key []byte) (*client, error) {
	d := ws.Dialer{Timeout: waitLong, TLSConfig: &tls.Config{InsecureSkipVerify: true}}
	if bearer != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + bearer}})
	}
	conn, br, _, err := d.Dial(context.Background(), url)
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, key: key, events: make(chan incoming, 1024)}
	var src io.Reader = conn
	if br != nil {
		src = io.MultiReader(br, conn)
	}
	go c.read(src)
	return c, nil
}

// dial connects or fails the test.
func dial(t testing.TB, url, bearer string, key []byte) *client {
	t.Helper()
	c, err := dialErr(url, bearer, key)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.t = t
	t.Cleanup(func() { c.conn.Close() })
	return c
}

func (c *client) read(src io.Reader) {
	rw := struct {
		io.Reader
		io.Writer
	}{src, writerFunc(c.writeLocked)}
	for {
		b, _, err := wsutil.ReadServerData(rw)
		if err != nil {
			var ce wsutil.ClosedError
			if errors.As(err, &ce) {
				c.events <- incoming{closed: true, closeCode: ce.Code}
			} else {
				c.events <- incoming{closed: true, err: err}
			}
			close(c.events)
			return
		}
		env, err := wsproto.Decode(b)
		if err == nil {
			err = wsproto.Open(c.key, wsproto.CoreToWorker, env)
		}
		if err != nil {
			c.events <- incoming{err: fmt.Errorf("bad envelope from the core: %w: %s", err, b)}
			continue
		}
		c.events <- incoming{env: env}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// writeLocked writes b whole, serialized with the client's other writes.
func (c *client) writeLocked(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn.Write(b)
}

// frame writes one masked frame.
func (c *client) frame(op ws.OpCode, p []byte) error {
	b, err := ws.CompileFrame(ws.MaskFrame(ws.NewFrame(op, true, p)))
	if err != nil {
		return err
	}
	_, err = c.writeLocked(b)
	return err
}

// envelope builds a sealed envelope with the next sequence number.
func (c *client) envelope(typ string, payload any) *wsproto.Envelope {
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.mu.Unlock()
	var p json.RawMessage
	if payload != nil {
		var err error
		if p, err = json.Marshal(payload); err != nil {
			panic(err)
		}
	}
	env := &wsproto.Envelope{Type: typ, Seq: seq, TS: time.Now().UnixMilli(), Payload: p}
	wsproto.Seal(c.key, wsproto.WorkerToCore, env)
	return env
}

// sendEnv writes env as it is.
func (c *client) sendEnv(env *wsproto.Envelope) {
	c.t.Helper()
	b, err := wsproto.Encode(env)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.frame(ws.OpText, b); err != nil {
		c.t.Fatalf("send %s: %v", env.Type, err)
	}
}

// send seals and writes a message; it returns its sequence number.
func (c *client) send(typ string, payload any) uint64 {
	c.t.Helper()
	env := c.envelope(typ, payload)
	c.sendEnv(env)
	return env.Seq
}

// next returns the next envelope, failing on a close or a timeout.
func (c *client) next() *wsproto.Envelope {
	c.t.Helper()
	select {
	case ev, ok := <-c.events:
		switch {
		case !ok || ev.closed:
			c.t.Fatalf("connection closed (code %d, %v) while waiting for a message", ev.closeCode, ev.err)
		case ev.err != nil:
			c.t.Fatal(ev.err)
		}
		return ev.env
	case <-time.After(waitLong):
		c.t.Fatal("timed out waiting for a message from the core")
	}
	return nil
}

// expectError waits for an error envelope with code answering seq (0:
// any).
func (c *client) expectError(code string, seq uint64) wsproto.Error {
	c.t.Helper()
	env := c.next()
	var e wsproto.Error
	if env.Type != wsproto.TypeError || json.Unmarshal(env.Payload, &e) != nil || e.Code != code || (seq != 0 && env.ReplyTo != seq) {
		c.t.Fatalf("want error %s replying to %d, got %s reply_to=%d %s", code, seq, env.Type, env.ReplyTo, env.Payload)
	}
	return e
}

// expectJob waits for a job envelope.
func (c *client) expectJob() wsproto.Job {
	c.t.Helper()
	env := c.next()
	var j wsproto.Job
	if env.Type != wsproto.TypeJob || json.Unmarshal(env.Payload, &j) != nil {
		c.t.Fatalf("want a job, got %s %s", env.Type, env.Payload)
	}
	return j
}

// expectClosed waits for the core to close the connection; it returns the
// close code (0 when the socket just ended).
func (c *client) expectClosed() ws.StatusCode {
	c.t.Helper()
	deadline := time.After(waitLong)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return 0
			}
			if ev.closed {
				if ev.err != nil {
					c.t.Logf("connection ended without a close frame: %v", ev.err)
				}
				return ev.closeCode
			}
		case <-deadline:
			c.t.Fatal("timed out waiting for the core to close the connection")
		}
	}
}

// sync proves the core has handled everything sent before: it sends a
// message of an unknown type and expects its unknown_type error next, so
// any answer to an earlier message would show up first.
func (c *client) sync() {
	c.t.Helper()
	seq := c.send("sync.barrier", nil)
	c.expectError(wsproto.CodeUnknownType, seq)
}

// connect dials as w with its raw key.
func (e *env) connect(w *store.Worker, key string) *client {
	e.t.Helper()
	c := dial(e.t, e.url, key, wsproto.EnvelopeKey(key))
	testutil.WaitFor(e.t, waitLong, "worker registered with the hub", func() bool { return e.hub.IsConnected(w.ID) })
	return c
}

// bytesOf returns a string of n printable bytes.
func bytesOf(n int, fill byte) string { return string(bytes.Repeat([]byte{fill}, n)) }
