package worker

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// errConnClosed means the connection a Send picked closed before the
// message was written; Send waits for the next one.
var errConnClosed = errors.New("worker: connection closed")

// maxHeader is the largest WebSocket frame header (client frames are
// masked): frames are built after this much room and the header is put
// right before the payload.
const maxHeader = 14

// conn is one WebSocket connection to the core.
type conn struct {
	c     *Client
	nc    net.Conn
	br    *bufio.Reader // bytes the core sent right after the handshake
	start time.Time
	done  chan struct{} // closed with the connection

	// wmu serialises writes (messages, pings, pongs, close) and guards
	// seq, mac and ka.
	wmu sync.Mutex
	seq uint64
	mac hash.Hash
	ka  *time.Timer // keepalive

	closed   atomic.Bool
	once     sync.Once
	lastRead atomic.Int64 // time.Since(start) of the last frame read
	win      wsproto.Window
}

// session connects once and serves the connection until it ends; it
// reports how long the connection was up.
func (c *Client) session(ctx context.Context) (time.Duration, error) {
	var (
		nc  net.Conn
		br  *bufio.Reader
		err error
	)
	onFreshStack(func() { nc, br, err = c.connect(ctx) })
	if err != nil {
		return 0, err
	}
	cn := &conn{c: c, nc: nc, br: br, start: time.Now(), done: make(chan struct{}), mac: hmac.New(sha256.New, c.key)}
	c.mu.Lock()
	c.cur = cn
	close(c.ready)
	c.mu.Unlock()
	c.connects.Add(1)
	c.log.Info("connected to the core", "url", c.wsURL)

	cn.wmu.Lock()
	cn.ka = time.AfterFunc(c.pingAfterD(), cn.onKeepalive)
	cn.wmu.Unlock()
	if ctx.Err() == nil { // else Run's interrupt may have missed cn
		err = cn.readLoop(ctx)
	}
	cn.shutdown(ctx.Err() != nil)
	return time.Since(cn.start), err
}

// onFreshStack runs f on a short-lived goroutine and waits for it. The
// HTTP requests and the handshake need deep stacks; run on the client's
// long-lived goroutine they would grow its stack for good (about 4 KiB
// more per idle client).
func onFreshStack(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func (c *Client) pingAfterD() time.Duration {
	if c.pingAfter > 0 {
		return c.pingAfter
	}
	return PingAfter
}

func (c *Client) pongWaitD() time.Duration {
	if c.pongWait > 0 {
		return c.pongWait
	}
	return PongWait
}

// connect gets a valid token and opens the WebSocket.
func (c *Client) connect(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	tok, err := c.currentToken(ctx)
	if err != nil {
		return nil, nil, err
	}
	nc, br, err := c.dial(ctx, tok)
	if err != nil {
		var se ws.StatusError
		if errors.As(err, &se) && int(se) == http.StatusUnauthorized {
			// Expired, or minted for a rotated key: the next attempt
			// fetches a fresh one (and a 401 there stops Run).
			c.mu.Lock()
			c.forceRefresh = true
			c.mu.Unlock()
		}
		return nil, nil, fmt.Errorf("worker: connect: %w", err)
	}
	return nc, br, nil
}

func (c *Client) dial(ctx context.Context, token string) (net.Conn, *bufio.Reader, error) {
	d := ws.Dialer{
		Timeout: 15 * time.Second,
		Header:  ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + token}}),
		NetDial: c.dialer.DialContext,
	}
	if t, ok := c.http.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		d.TLSConfig = t.TLSClientConfig
	}
	nc, br, _, err := d.Dial(ctx, c.wsURL)
	if err != nil {
		return nil, nil, err
	}
	return nc, br, nil
}

// Read reads the connection, first what the handshake left buffered. It
// makes conn the wsutil.Reader's source.
func (cn *conn) Read(p []byte) (int, error) {
	if cn.br != nil {
		if n := cn.br.Buffered(); n > 0 {
			return cn.br.Read(p[:min(len(p), n)])
		}
		ws.PutReader(cn.br)
		cn.br = nil
	}
	return cn.nc.Read(p)
}

// readLoop reads frames until the connection fails, answering pings and
// dispatching verified messages.
func (cn *conn) readLoop(ctx context.Context) error {
	rd := wsutil.Reader{
		Source:         cn,
		State:          ws.StateClientSide,
		MaxFrameSize:   wsproto.MaxFrameSize,
		MaxMessageSize: wsproto.MaxFrameSize,
	}
	ctl := wsutil.ControlFrameHandler(controlWriter{cn}, ws.StateClientSide)
	rd.OnIntermediate = ctl
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			return err
		}
		cn.touch()
		if hdr.OpCode.IsControl() {
			if err := ctl(hdr, &rd); err != nil {
				return err // a close frame ends here, as wsutil.ClosedError
			}
			continue
		}
		if hdr.OpCode != ws.OpText {
			cn.c.reject("not a text frame", nil, "")
			if err := rd.Discard(); err != nil {
				return err
			}
			continue
		}
		bp := getBuf()
		frame, err := readMessage(&rd, bp)
		if err == nil {
			cn.touch()
			cn.handle(ctx, frame)
		}
		putBuf(bp)
		if err != nil {
			return err
		}
	}
}

// readMessage reads the rest of a message into *bp, growing it as bytes
// arrive (never on the length the peer declares).
func readMessage(rd *wsutil.Reader, bp *[]byte) ([]byte, error) {
	b := (*bp)[:0]
	defer func() { *bp = b }()
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// handle verifies one frame from the core and dispatches it. Anything that
// fails verification is dropped and logged, never trusted.
func (cn *conn) handle(ctx context.Context, frame []byte) {
	c := cn.c
	e, err := wsproto.Decode(frame)
	if err != nil {
		c.reject("malformed envelope", err, "")
		return
	}
	if err := wsproto.Open(c.key, wsproto.CoreToWorker, e); err != nil {
		c.reject("MAC does not verify", err, e.Type)
		return
	}
	if err := wsproto.CheckClock(e.TS, time.Now()); err != nil {
		c.reject("timestamp beyond the clock bound", err, e.Type)
		return
	}
	if !cn.win.Accept(e.Seq) {
		c.reject("sequence number replayed or too old", wsproto.ErrReplay, e.Type)
		return
	}
	switch e.Type {
	case wsproto.TypeJob:
		var j wsproto.Job
		if err := json.Unmarshal(e.Payload, &j); err != nil || j.JobID <= 0 {
			c.reject("job payload is invalid", err, e.Type)
			return
		}
		c.received.Add(1)
		c.log.Debug("job received", "job_id", j.JobID, "type", j.Type, "app_id", j.AppID)
		select {
		case c.jobs <- j:
		case <-ctx.Done():
		case <-cn.done: // dropped for silence meanwhile: the core replays it
		}
	case wsproto.TypeError:
		var m wsproto.Error
		if err := json.Unmarshal(e.Payload, &m); err != nil {
			c.reject("error payload is invalid", err, e.Type)
			return
		}
		c.received.Add(1)
		c.log.Warn("the core refused a message", "code", m.Code, "message", m.Message, "reply_to", e.ReplyTo)
		select {
		case c.errs <- m:
		default:
			c.errorsDropped.Add(1)
		}
	default:
		c.reject("unknown message type", nil, e.Type)
	}
}

// reject counts and logs a dropped frame (never its content).
func (c *Client) reject(reason string, err error, typ string) {
	c.rejected.Add(1)
	c.log.Warn("dropped a frame from the core", "reason", reason, "type", typ, "error", err)
}

// touch records that something was read.
func (cn *conn) touch() { cn.lastRead.Store(int64(time.Since(cn.start))) }

// onKeepalive pings a silent core after PingAfter, and drops the
// connection after PongWait of silence.
func (cn *conn) onKeepalive() {
	c := cn.c
	if !c.enter() {
		return
	}
	defer c.cb.Done()
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	if cn.closed.Load() {
		return
	}
	idle := time.Since(cn.start) - time.Duration(cn.lastRead.Load())
	pingAfter, pongWait := c.pingAfterD(), c.pongWaitD()
	switch {
	case idle >= pongWait:
		c.log.Warn("the core has been silent; dropping the connection", "silent_for", idle.Round(time.Millisecond))
		cn.close()
	case idle >= pingAfter:
		if err := cn.writeControlLocked(ws.OpPing, nil, WriteWait); err != nil {
			c.log.Warn("ping failed; dropping the connection", "error", err)
			cn.close()
			return
		}
		cn.ka.Reset(pongWait - idle)
	default:
		cn.ka.Reset(pingAfter - idle)
	}
}

// interrupt makes a blocked read return (Run's context ended).
func (cn *conn) interrupt() { _ = cn.nc.SetReadDeadline(time.Now()) }

// close detaches the connection from the client (Senders wait for the next
// one) and closes it. It is idempotent and safe from any goroutine.
func (cn *conn) close() {
	cn.once.Do(func() {
		c := cn.c
		c.mu.Lock()
		if c.cur == cn {
			c.cur = nil
			if !c.stopped {
				c.ready = make(chan struct{})
			}
		}
		c.mu.Unlock()
		cn.closed.Store(true)
		close(cn.done)
		_ = cn.nc.Close()
	})
}

// shutdown ends the connection when its session ends; graceful sends a
// close frame first (when no write is in progress).
func (cn *conn) shutdown(graceful bool) {
	if graceful && cn.wmu.TryLock() {
		if !cn.closed.Load() {
			_ = cn.writeControlLocked(ws.OpClose, ws.NewCloseFrameBody(ws.StatusGoingAway, "worker stopping"), time.Second)
		}
		cn.wmu.Unlock()
	}
	cn.close()
	cn.wmu.Lock()
	if cn.ka != nil {
		cn.ka.Stop()
	}
	cn.wmu.Unlock()
}

// controlWriter writes the pongs and close replies wsutil produces, under
// the connection's write lock.
type controlWriter struct{ cn *conn }

func (w controlWriter) Write(p []byte) (int, error) {
	w.cn.wmu.Lock()
	defer w.cn.wmu.Unlock()
	if w.cn.closed.Load() {
		return 0, net.ErrClosed
	}
	_ = w.cn.nc.SetWriteDeadline(time.Now().Add(WriteWait))
	return w.cn.nc.Write(p)
}

// writeControlLocked writes a masked control frame (body ≤ 125 bytes)
// within wait.
func (cn *conn) writeControlLocked(op ws.OpCode, body []byte, wait time.Duration) error {
	var f [maxHeader + 125]byte
	mask := ws.NewMask()
	n := putHeader(f[:], op, len(body), mask)
	copy(f[n:], body)
	ws.Cipher(f[n:n+len(body)], mask, 0)
	if cn.closed.Load() {
		return net.ErrClosed
	}
	_ = cn.nc.SetWriteDeadline(time.Now().Add(wait))
	_, err := cn.nc.Write(f[:n+len(body)])
	return err
}

// putHeader writes a masked, final frame header into b and returns its
// length.
func putHeader(b []byte, op ws.OpCode, n int, mask [4]byte) int {
	b[0] = 0x80 | byte(op)
	i := 2
	switch {
	case n <= 125:
		b[1] = 0x80 | byte(n)
	case n <= 0xffff:
		b[1] = 0x80 | 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		i = 4
	default:
		b[1] = 0x80 | 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		i = 10
	}
	return i + copy(b[i:], mask[:])
}

// envelopeOverhead bounds the bytes an envelope adds to its type and
// payload: field names, two 20-digit numbers, a 20-digit reply_to and the
// 43-character MAC.
const envelopeOverhead = 160

// writeMessage numbers, seals and writes one message.
func (cn *conn) writeMessage(typ string, replyTo uint64, payload []byte) error {
	bp := getBuf()
	defer putBuf(bp)
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	if cn.closed.Load() {
		return errConnClosed
	}
	cn.seq++
	e := wsproto.Envelope{Type: typ, Seq: cn.seq, TS: time.Now().UnixMilli(), ReplyTo: replyTo}

	// The MAC covers the signing input with the payload's exact bytes;
	// they are hashed in place rather than copied after the prefix.
	b := wsproto.AppendSigningInput((*bp)[:0], wsproto.WorkerToCore, &e)
	cn.mac.Reset()
	cn.mac.Write(b)
	cn.mac.Write(payload)
	var sum [wsproto.MACSize]byte
	mac := cn.mac.Sum(sum[:0])

	b = b[:maxHeader]
	b = append(b, `{"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, e.TS, 10)
	if replyTo != 0 {
		b = append(b, `,"reply_to":`...)
		b = strconv.AppendUint(b, replyTo, 10)
	}
	if len(payload) > 0 {
		b = append(b, `,"payload":`...)
		b = append(b, payload...)
	}
	b = append(b, `,"mac":"`...)
	b = base64.RawURLEncoding.AppendEncode(b, mac)
	b = append(b, `"}`...)
	*bp = b

	n := len(b) - maxHeader
	if n > wsproto.MaxFrameSize {
		cn.seq--
		return ErrTooLarge
	}
	var hdr [maxHeader]byte
	mask := ws.NewMask()
	hl := putHeader(hdr[:], ws.OpText, n, mask)
	start := maxHeader - hl
	copy(b[start:], hdr[:hl])
	ws.Cipher(b[maxHeader:], mask, 0)

	_ = cn.nc.SetWriteDeadline(time.Now().Add(WriteWait))
	if _, err := cn.nc.Write(b[start:]); err != nil {
		// A partly written frame corrupts the stream: start over.
		cn.c.log.Warn("write failed; dropping the connection", "error", err)
		cn.close()
		return fmt.Errorf("worker: send %s: %w", typ, err)
	}
	cn.c.sent.Add(1)
	return nil
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Frame buffers are shared by all clients and held only while a message is
// built or read, so an idle client holds none.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 2048)
	return &b
}}

// maxPooled is the largest buffer kept for reuse.
const maxPooled = 64 << 10

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(bp *[]byte) {
	if cap(*bp) > maxPooled {
		return
	}
	*bp = (*bp)[:0]
	bufPool.Put(bp)
}
