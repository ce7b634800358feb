package hub

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// Close codes the hub sends besides the standard ones.
const (
	closeReplaced   ws.StatusCode = 4001 // another connection of the same worker took over
	closeKeyRotated ws.StatusCode = 4002 // the worker's key was rotated
	closeBadMACs    ws.StatusCode = 4003 // too many envelopes failed their MAC
	closeOffline    ws.StatusCode = 4004 // the health check took the worker offline
)

// closeWriteWait bounds writing a close frame.
const closeWriteWait = time.Second

// conn is one worker's connection. It is kept small: 10,000 of them must
// fit in a few tens of MiB. The read-side fields are used by one goroutine
// at a time (the pool worker holding the EPOLLONESHOT turn, or the TLS
// reader); the write side is under wmu.
type conn struct {
	h        *Hub
	id       uint64
	workerID int64
	key      [wsproto.EnvelopeKeySize]byte
	nc       net.Conn
	raw      syscall.RawConn // nil: the connection has a reader goroutine

	// Read side.
	verifier  hash.Hash // wsproto.NewMAC(key), made on the first message
	window    wsproto.Window
	badMACs   uint8
	br        *bufio.Reader // held only while it has unread bytes
	prefix    []byte        // bytes the HTTP server read past the handshake
	logTokens int64         // log token bucket, bytes
	logAt     int64         // its last refill, Hub.mono

	own atomic.Pointer[ownership]
	// serving is 1 while a pool worker has the read turn. EPOLLONESHOT
	// already makes turns exclusive; the flag makes that visible to the Go
	// memory model (the hand-over goes through the kernel) and absorbs the
	// one extra submission a connection may get (bytes read past the
	// handshake).
	serving atomic.Uint32

	// Write side.
	wmu    sync.Mutex
	outSeq uint64

	lastRecv atomic.Int64 // Hub.mono of the last frame received
	nextPing int64        // Hub.mono; the keepalive loop's alone
	closed   atomic.Bool
}

func (c *conn) mode() string {
	if c.raw != nil {
		return "epoll"
	}
	if _, ok := c.nc.(*tls.Conn); ok {
		return "tls"
	}
	return "goroutine"
}

var errClosed = errors.New("hub: connection closed")

// close closes the connection once: it leaves the hub, gets a close frame
// (unless code is 0; a write stuck on a full socket gives up within
// closeWriteWait), and the socket is closed.
func (c *conn) close(code ws.StatusCode, text, reason string) { c.shutdown(code, text, reason, false) }

// Lingering close: bounds of the input discarded after a close frame.
const (
	lingerWait  = 2 * time.Second
	lingerBytes = 4 << 20
)

// closeLingering is close for a peer that may still be sending (a frame
// refused halfway): the socket is half-closed after the close frame and
// what keeps arriving is discarded for a moment, so that closing with
// unread input does not reset the connection and destroy the close frame
// before the peer reads it. Only the goroutine holding the read turn may
// call it.
func (c *conn) closeLingering(code ws.StatusCode, text, reason string) {
	c.shutdown(code, text, reason, true)
}

func (c *conn) shutdown(code ws.StatusCode, text, reason string, linger bool) {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	h := c.h
	h.unregister(c)
	if c.raw != nil && h.poller != nil {
		h.poller.remove(c)
	}
	if code != 0 {
		// A write in progress fails by this deadline at the latest, and
		// writers after it see closed: the lock comes within closeWriteWait.
		_ = c.nc.SetWriteDeadline(time.Now().Add(closeWriteWait))
		c.wmu.Lock()
		_ = c.nc.SetWriteDeadline(time.Now().Add(closeWriteWait))
		err := c.writeRaw(ws.OpClose, ws.NewCloseFrameBody(code, text))
		c.wmu.Unlock()
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && linger && err == nil {
			_ = cw.CloseWrite()
			_ = c.nc.SetReadDeadline(time.Now().Add(lingerWait))
			_, _ = io.CopyN(io.Discard, c.nc, lingerBytes)
		}
	}
	_ = c.nc.Close()
	h.m.connections.Dec()
	h.m.closes.WithLabelValues(reason).Inc()
	h.log.Debug("worker connection closed", "worker_id", c.workerID, "reason", reason)
}

// writeBufs pools frame buffers.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// writeRaw writes one unmasked frame; the caller holds wmu and has set the
// deadline.
func (c *conn) writeRaw(op ws.OpCode, p []byte) error {
	bp := writeBufs.Get().(*[]byte)
	b := appendFrameHeader((*bp)[:0], op, len(p))
	b = append(b, p...)
	_, err := c.nc.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		writeBufs.Put(bp)
	}
	return err
}

// appendFrameHeader appends a final, unmasked server frame header.
func appendFrameHeader(b []byte, op ws.OpCode, n int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// writeFrame writes one frame under wmu with the write deadline; a failed
// write closes the connection.
func (c *conn) writeFrame(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	err := c.writeLocked(op, p)
	c.wmu.Unlock()
	if err != nil && !errors.Is(err, errClosed) {
		c.close(0, "", "write_failed")
	}
	return err
}

func (c *conn) writeLocked(op ws.OpCode, p []byte) error {
	if c.closed.Load() {
		return errClosed
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.h.writeWait)); err != nil {
		return err
	}
	return c.writeRaw(op, p)
}

// send seals and writes an envelope of type typ carrying v.
func (c *conn) send(typ string, replyTo uint64, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("hub: encode %s: %w", typ, err)
	}
	c.wmu.Lock()
	c.outSeq++
	env := wsproto.Envelope{Type: typ, Seq: c.outSeq, TS: time.Now().UnixMilli(), ReplyTo: replyTo, Payload: payload}
	wsproto.Seal(c.key[:], wsproto.CoreToWorker, &env)
	frame, err := wsproto.Encode(&env)
	if err == nil {
		err = c.writeLocked(ws.OpText, frame)
	}
	c.wmu.Unlock()
	if err != nil && !errors.Is(err, errClosed) {
		c.close(0, "", "write_failed")
	}
	return err
}

// sendError answers the message numbered replyTo with an error envelope
// and counts the refusal.
func (c *conn) sendError(replyTo uint64, code, msg string) {
	c.h.m.rejected.WithLabelValues(code).Inc()
	_ = c.send(wsproto.TypeError, replyTo, wsproto.Error{Code: code, Message: msg})
}

// source is what frames are read from: the bytes read past the handshake
// first, then the socket.
func (c *conn) source() io.Reader {
	if c.prefix != nil {
		return prefixReader{c}
	}
	return c.nc
}

type prefixReader struct{ c *conn }

func (p prefixReader) Read(b []byte) (int, error) {
	if c := p.c; c.prefix != nil {
		n := copy(b, c.prefix)
		if c.prefix = c.prefix[n:]; len(c.prefix) == 0 {
			c.prefix = nil
		}
		return n, nil
	}
	return p.c.nc.Read(b)
}

// serve is a pool worker's turn at a readable connection: it reads the
// frames that arrived (and those already buffered), then re-arms the
// socket.
func (c *conn) serve() {
	if c.closed.Load() || !c.serving.CompareAndSwap(0, 1) {
		return // closed, or another worker has the turn and will re-arm
	}
	h := c.h
	br := c.br
	c.br = nil
	if br == nil {
		br = readerPool.Get().(*bufio.Reader)
		br.Reset(c.source())
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(frameReadTimeout))
	for n := 1; ; n++ {
		err := c.readMessage(br)
		if err == nil && c.closed.Load() {
			err = errClosed
		}
		if err != nil {
			br.Reset(nil)
			readerPool.Put(br)
			c.readFailed(err)
			c.serving.Store(0)
			return
		}
		if br.Buffered() == 0 {
			break
		}
		if n >= maxFramesPerWake {
			c.br = br // keep the buffered bytes with the connection
			c.serving.Store(0)
			if h.pool.trySubmit(task{c: c, op: opRead}) {
				return
			}
			if !c.serving.CompareAndSwap(0, 1) {
				return // cannot happen: the socket is not armed
			}
			c.br, n = nil, 0
		}
	}
	br.Reset(nil)
	readerPool.Put(br)
	c.serving.Store(0)
	if err := h.poller.rearm(c); err != nil && !c.closed.Load() {
		h.log.Warn("cannot re-arm worker connection", "worker_id", c.workerID, "error", err)
		c.close(ws.StatusInternalServerError, "internal error", "error")
	}
}

// readLoop reads the connection until it fails (goroutine-per-connection
// mode: TLS, or no epoll). Liveness is the keepalive loop's job: reads
// block without a deadline.
func (c *conn) readLoop() {
	src := c.source()
	for !c.closed.Load() {
		if err := c.readMessage(src); err != nil {
			c.readFailed(err)
			return
		}
	}
}

// errTooLarge is a frame or message beyond wsproto.MaxFrameSize.
var errTooLarge = errors.New("frame too large")

// readFailed closes the connection after a read error, with the reason.
func (c *conn) readFailed(err error) {
	switch {
	case c.closed.Load():
	case errors.Is(err, errTooLarge):
		c.sendError(0, wsproto.CodeTooLarge, fmt.Sprintf("frames are limited to %d bytes", wsproto.MaxFrameSize))
		c.closeLingering(ws.StatusMessageTooBig, "frame too large", wsproto.CodeTooLarge)
	case errors.Is(err, errPeerClosed):
		c.close(0, "", "peer_closed")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		c.close(0, "", "eof")
	case isTimeout(err):
		c.close(0, "", "read_timeout")
	default:
		var pe ws.ProtocolError
		if errors.As(err, &pe) {
			c.closeLingering(ws.StatusProtocolError, string(pe), "protocol_error")
			return
		}
		c.close(0, "", "read_error")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// frameReader is a pooled wsutil.Reader bound to the connection it reads.
type frameReader struct {
	wsutil.Reader
	c *conn
}

var frameReaders = sync.Pool{New: func() any {
	fr := &frameReader{}
	fr.OnIntermediate = fr.control
	return fr
}}

// msgBufs pools message buffers; they grow as bytes arrive, never on a
// declared length.
var msgBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// errPeerClosed means the worker sent a close frame.
var errPeerClosed = errors.New("peer closed the connection")

// readMessage reads one message (a data frame, its continuation frames if
// fragmented, and control frames met on the way) from r and handles it.
func (c *conn) readMessage(r io.Reader) error {
	fr := frameReaders.Get().(*frameReader)
	fr.Reader = wsutil.Reader{
		Source:         r,
		State:          ws.StateServerSide,
		MaxFrameSize:   wsproto.MaxFrameSize,
		MaxMessageSize: wsproto.MaxFrameSize,
		OnIntermediate: fr.OnIntermediate,
	}
	fr.c = c
	defer func() {
		fr.Reader = wsutil.Reader{OnIntermediate: fr.OnIntermediate}
		fr.c = nil
		frameReaders.Put(fr)
	}()
	hdr, err := fr.NextFrame()
	if err != nil {
		return readErr(err)
	}
	c.lastRecv.Store(c.h.mono())
	if hdr.OpCode.IsControl() {
		return fr.control(hdr, &fr.Reader)
	}
	buf := msgBufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, err = buf.ReadFrom(&fr.Reader)
	if err == nil {
		c.handleFrame(buf.Bytes())
	}
	if buf.Cap() <= 2*wsproto.MaxFrameSize {
		msgBufs.Put(buf)
	}
	return readErr(err)
}

func readErr(err error) error {
	if errors.Is(err, wsutil.ErrFrameTooLarge) || errors.Is(err, wsutil.ErrMessageTooLarge) {
		return errTooLarge
	}
	return err
}

// control handles a control frame whose payload (at most 125 bytes,
// unmasked) body yields.
func (fr *frameReader) control(hdr ws.Header, body io.Reader) error {
	c := fr.c
	var p [125]byte
	n, err := io.ReadFull(body, p[:hdr.Length])
	if err != nil {
		return err
	}
	c.lastRecv.Store(c.h.mono())
	switch hdr.OpCode {
	case ws.OpPing:
		return c.writeFrame(ws.OpPong, p[:n])
	case ws.OpClose:
		c.close(ws.StatusNormalClosure, "", "peer_closed")
		return errPeerClosed
	}
	return nil // pong
}
