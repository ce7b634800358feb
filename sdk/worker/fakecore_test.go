package worker

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// fakeCore is an in-test core: the worker endpoints and the WebSocket hub,
// verifying what the worker sends with the same rules as the real hub
// (MAC, clock, replay window, known type, strictly decoded payload) and
// answering failures with error frames.
type fakeCore struct {
	apiKey string
	key    []byte
	srv    *httptest.Server

	registers, refreshes, expiredBearers atomic.Int32

	mu              sync.Mutex
	ttl             time.Duration
	heartbeatMS     int64
	tokens          map[string]time.Time
	nextTok         int
	acceptRawKey    bool
	registerStatus  int // answer register with this status...
	registerFails   int // ...this many times (<0: always)
	refreshStatus   int // answer refresh-token with this status
	upgradeStatus   int // answer the upgrade with this status
	mute            bool
	discard         bool // benchmark: count frames, verify nothing
	multi           bool // many workers share the key: no replacing
	registered      wsproto.RegisterRequest
	registerToken   string
	upgradeAttempts []time.Time
	conns           []*fakeConn
	connCh          chan *fakeConn
	wg              sync.WaitGroup
}

func newFakeCore(tb testing.TB) *fakeCore {
	fc := startFakeCore(false)
	if tb != nil {
		tb.Cleanup(fc.Close)
	}
	return fc
}

// newFakeCoreTLS is newFakeCore over HTTPS; fc.srv.Client() trusts it.
func newFakeCoreTLS(tb testing.TB) *fakeCore {
	fc := startFakeCore(true)
	tb.Cleanup(fc.Close)
	return fc
}

func startFakeCore(tls bool) *fakeCore {
	fc := &fakeCore{
		apiKey:       "whk_fake-worker-key-0123456789abcdefghijklmnopqrstuv",
		ttl:          15 * time.Minute,
		tokens:       map[string]time.Time{},
		acceptRawKey: true,
		connCh:       make(chan *fakeConn, 64),
	}
	fc.key = wsproto.EnvelopeKey(fc.apiKey)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/workers/register", fc.handleRegister)
	mux.HandleFunc("POST /v1/workers/refresh-token", fc.handleRefresh)
	mux.HandleFunc("GET /v1/workers/ws", fc.handleWS)
	if tls {
		fc.srv = httptest.NewTLSServer(mux)
	} else {
		fc.srv = httptest.NewServer(mux)
	}
	return fc
}

// Close stops the server and every hijacked connection, and waits for
// their goroutines.
func (fc *fakeCore) Close() {
	fc.srv.Close()
	fc.mu.Lock()
	conns := fc.conns
	fc.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	fc.wg.Wait()
}

func (fc *fakeCore) set(f func(fc *fakeCore)) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	f(fc)
}

func writeAPIError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":"fake core says %s"}}`+"\n", code, code)
}

func bearer(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

func (fc *fakeCore) rawKeyOK(r *http.Request) bool {
	return subtle.ConstantTimeCompare([]byte(bearer(r)), []byte(fc.apiKey)) == 1
}

// issueLocked mints a fake JWT (three dot-separated segments, like the
// real one) valid for ttl.
func (fc *fakeCore) issueLocked() wsproto.TokenResponse {
	fc.nextTok++
	tok := "eyJmYWtl." + strconv.Itoa(fc.nextTok) + ".c2ln"
	exp := time.Now().Add(fc.ttl)
	fc.tokens[tok] = exp
	return wsproto.TokenResponse{Token: tok, TokenExpiresAt: exp}
}

func (fc *fakeCore) handleRegister(w http.ResponseWriter, r *http.Request) {
	fc.registers.Add(1)
	fc.mu.Lock()
	status := 0
	if fc.registerStatus != 0 && fc.registerFails != 0 {
		status = fc.registerStatus
		fc.registerFails--
	}
	fc.mu.Unlock()
	if status != 0 {
		writeAPIError(w, status, "forced")
		return
	}
	if !fc.rawKeyOK(r) {
		writeAPIError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	var in wsproto.RegisterRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || r.Header.Get("Content-Type") != "application/json" {
		writeAPIError(w, http.StatusBadRequest, "bad_json")
		return
	}
	fc.mu.Lock()
	fc.registered = in
	tr := fc.issueLocked()
	fc.registerToken = tr.Token
	hb := fc.heartbeatMS
	fc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(wsproto.RegisterResponse{
		Worker: wsproto.WorkerInfo{ID: 42, Name: in.Name, Address: in.Address, Zone: "default", Status: "online",
			Capacity: in.Capacity, Runtimes: in.Runtimes},
		TokenResponse:       tr,
		HeartbeatIntervalMS: hb,
	})
}

func (fc *fakeCore) handleRefresh(w http.ResponseWriter, r *http.Request) {
	fc.refreshes.Add(1)
	fc.mu.Lock()
	status := fc.refreshStatus
	fc.mu.Unlock()
	if status != 0 {
		writeAPIError(w, status, "forced")
		return
	}
	if !fc.rawKeyOK(r) {
		writeAPIError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	fc.mu.Lock()
	tr := fc.issueLocked()
	fc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(tr)
}

func (fc *fakeCore) handleWS(w http.ResponseWriter, r *http.Request) {
	tok := bearer(r)
	fc.mu.Lock()
	fc.upgradeAttempts = append(fc.upgradeAttempts, time.Now())
	status := fc.upgradeStatus
	exp, known := fc.tokens[tok]
	rawOK := fc.acceptRawKey && fc.rawKeyOK(r)
	fc.mu.Unlock()
	if status != 0 {
		writeAPIError(w, status, "forced")
		return
	}
	if known && !time.Now().Before(exp) {
		fc.expiredBearers.Add(1)
	}
	if !rawOK && !(known && time.Now().Before(exp)) {
		writeAPIError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	nc, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	c := &fakeConn{fc: fc, nc: nc, token: tok, msgs: make(chan *wsproto.Envelope, 8192),
		rejects: make(chan string, 1024), done: make(chan struct{})}
	fc.mu.Lock()
	// A new connection replaces the worker's previous one, as in the hub.
	var old []*fakeConn
	if !fc.multi {
		old = fc.conns
	}
	fc.conns = append(fc.conns, c)
	fc.wg.Add(1)
	fc.mu.Unlock()
	for _, o := range old {
		o.close()
	}
	select {
	case fc.connCh <- c:
	default:
	}
	go func() {
		defer fc.wg.Done()
		c.readLoop(rw.Reader)
	}()
}

// waitConn returns the next connection the client opens.
func (fc *fakeCore) waitConn(tb testing.TB) *fakeConn {
	tb.Helper()
	select {
	case c := <-fc.connCh:
		return c
	case <-time.After(10 * time.Second):
		tb.Fatal("the client did not connect")
		return nil
	}
}

func (fc *fakeCore) attempts() []time.Time {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]time.Time(nil), fc.upgradeAttempts...)
}

// fakeConn is the core's side of one connection.
type fakeConn struct {
	fc      *fakeCore
	nc      net.Conn
	token   string
	wmu     sync.Mutex
	seq     uint64
	win     wsproto.Window
	msgs    chan *wsproto.Envelope // verified messages
	rejects chan string            // error codes sent back
	frames  atomic.Int64           // data frames read
	pings   atomic.Int32
	pongs   atomic.Int32
	closeRx atomic.Int32 // close code received
	once    sync.Once
	done    chan struct{}
}

func (c *fakeConn) close() {
	c.once.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

type lockedWriter struct{ c *fakeConn }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	return w.c.nc.Write(p)
}

func (c *fakeConn) readLoop(src *bufio.Reader) {
	defer c.close()
	rd := wsutil.Reader{Source: src, State: ws.StateServerSide,
		MaxFrameSize: wsproto.MaxFrameSize, MaxMessageSize: wsproto.MaxFrameSize}
	ctl := wsutil.ControlFrameHandler(lockedWriter{c}, ws.StateServerSide)
	rd.OnIntermediate = ctl
	var buf bytes.Buffer
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			return
		}
		switch hdr.OpCode {
		case ws.OpPing:
			c.pings.Add(1)
			c.fc.mu.Lock()
			mute := c.fc.mute
			c.fc.mu.Unlock()
			if mute {
				_, _ = io.Copy(io.Discard, &rd)
				continue
			}
			if ctl(hdr, &rd) != nil {
				return
			}
		case ws.OpPong:
			c.pongs.Add(1)
			_, _ = io.Copy(io.Discard, &rd)
		case ws.OpClose:
			var body [125]byte
			n, _ := io.ReadFull(&rd, body[:hdr.Length])
			code, _ := ws.ParseCloseFrameData(body[:n])
			c.closeRx.Store(int32(code))
			return
		default:
			buf.Reset()
			if _, err := buf.ReadFrom(&rd); err != nil {
				return
			}
			c.frames.Add(1)
			c.fc.mu.Lock()
			discard := c.fc.discard
			c.fc.mu.Unlock()
			if !discard {
				c.verify(buf.Bytes())
			}
		}
	}
}

// payloadTypes maps each worker → core type to its payload.
var payloadTypes = map[string]func() any{
	wsproto.TypeHeartbeat:  func() any { return new(wsproto.Heartbeat) },
	wsproto.TypeJobStatus:  func() any { return new(wsproto.JobStatus) },
	wsproto.TypeJobResult:  func() any { return new(wsproto.JobResult) },
	wsproto.TypeAppStats:   func() any { return new(wsproto.AppStats) },
	wsproto.TypeAppStatus:  func() any { return new(wsproto.AppStatus) },
	wsproto.TypeViolation:  func() any { return new(wsproto.Violation) },
	wsproto.TypeRuntimeLog: func() any { return new(wsproto.RuntimeLog) },
	wsproto.TypeBuildLog:   func() any { return new(wsproto.BuildLog) },
}

// verify applies the hub's rules to one frame.
func (c *fakeConn) verify(frame []byte) {
	e, err := wsproto.Decode(frame)
	if err != nil {
		c.refuse(0, wsproto.CodeBadFrame)
		return
	}
	if wsproto.Open(c.fc.key, wsproto.WorkerToCore, e) != nil {
		c.refuse(e.Seq, wsproto.CodeBadMAC)
		return
	}
	if wsproto.CheckClock(e.TS, time.Now()) != nil {
		c.refuse(e.Seq, wsproto.CodeBadClock)
		return
	}
	if !c.win.Accept(e.Seq) {
		c.refuse(e.Seq, wsproto.CodeReplayed)
		return
	}
	mk, ok := payloadTypes[e.Type]
	if !ok {
		c.refuse(e.Seq, wsproto.CodeUnknownType)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(e.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(mk()); err != nil {
		c.refuse(e.Seq, wsproto.CodeBadPayload)
		return
	}
	c.msgs <- e
}

func (c *fakeConn) refuse(seq uint64, code string) {
	select {
	case c.rejects <- code:
	default:
	}
	_ = c.send(wsproto.TypeError, seq, wsproto.Error{Code: code, Message: "refused by the fake core"})
}

// seal builds a sealed core → worker envelope with the next seq.
func (c *fakeConn) seal(typ string, replyTo uint64, payload any) *wsproto.Envelope {
	c.wmu.Lock()
	c.seq++
	seq := c.seq
	c.wmu.Unlock()
	p, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	e := &wsproto.Envelope{Type: typ, Seq: seq, TS: time.Now().UnixMilli(), ReplyTo: replyTo, Payload: p}
	wsproto.Seal(c.fc.key, wsproto.CoreToWorker, e)
	return e
}

func (c *fakeConn) send(typ string, replyTo uint64, payload any) error {
	return c.sendEnvelope(c.seal(typ, replyTo, payload))
}

func (c *fakeConn) sendEnvelope(e *wsproto.Envelope) error {
	b, err := wsproto.Encode(e)
	if err != nil {
		return err
	}
	return c.sendRaw(ws.OpText, b)
}

func (c *fakeConn) sendRaw(op ws.OpCode, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return wsutil.WriteServerMessage(c.nc, op, b)
}

func (c *fakeConn) ping() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return ws.WriteFrame(c.nc, ws.NewPingFrame([]byte("are you there")))
}

// next returns the next verified message.
func (c *fakeConn) next(tb testing.TB) *wsproto.Envelope {
	tb.Helper()
	select {
	case e := <-c.msgs:
		return e
	case code := <-c.rejects:
		tb.Fatalf("the fake core refused a message: %s", code)
	case <-time.After(10 * time.Second):
		tb.Fatal("no message reached the fake core")
	}
	return nil
}
