package cliclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// maxLogMessage bounds one WebSocket message of the log stream.
const maxLogMessage = 16 << 20

// LogConn is an open runtime log stream (GET /api/v1/logs/ws). Next reads
// it; Close ends it. Next must not be called concurrently with itself.
type LogConn struct {
	nc   net.Conn
	rd   *wsutil.Reader
	ctl  wsutil.FrameHandlerFunc
	stop func() bool
	once sync.Once
	wmu  sync.Mutex // pongs and the close frame
}

// DialLogs opens the runtime log stream of apps (UUIDs or names): first
// the last tail persisted lines of each (negative: the server's default;
// 0: none), then live ones. A refused handshake (401, 404 for an unknown app…) is an
// *APIError. The stream ends with ctx, Close, or the server.
func (c *Client) DialLogs(ctx context.Context, apps []string, tail int) (*LogConn, error) {
	if len(apps) == 0 {
		return nil, errors.New("logs: no app given")
	}
	u := *c.base
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = c.base.Path + "/api/v1/logs/ws"
	u.RawPath = ""
	q := url.Values{"apps": {strings.Join(apps, ",")}}
	if tail >= 0 {
		q.Set("tail", strconv.Itoa(tail))
	}
	u.RawQuery = q.Encode()

	h := http.Header{}
	c.authorize(h)
	h.Del("Accept")
	var refused *APIError
	d := ws.Dialer{
		Timeout: c.hc.Timeout,
		Header:  ws.HandshakeHeaderHTTP(h),
		OnStatusError: func(status int, _ []byte, resp io.Reader) {
			var body []byte
			if r, err := http.ReadResponse(bufio.NewReader(resp), nil); err == nil {
				body, _ = io.ReadAll(io.LimitReader(r.Body, 64<<10))
				_ = r.Body.Close()
			}
			refused = apiError(status, body)
		},
	}
	if d.Timeout == 0 {
		d.Timeout = DefaultTimeout
	}
	if t, ok := c.hc.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		d.TLSConfig = t.TLSClientConfig
	}
	nc, br, _, err := d.Dial(ctx, u.String())
	if refused != nil {
		return nil, refused
	}
	if err != nil {
		return nil, fmt.Errorf("logs: connect to %s: %w", u.Redacted(), err)
	}
	var src io.Reader = nc
	if br != nil && br.Buffered() > 0 {
		// Frames that came with the handshake's answer come first.
		src = io.MultiReader(io.LimitReader(br, int64(br.Buffered())), nc)
	}
	lc := &LogConn{nc: nc}
	lc.rd = &wsutil.Reader{
		Source:         src,
		State:          ws.StateClientSide,
		CheckUTF8:      true,
		MaxFrameSize:   maxLogMessage,
		MaxMessageSize: maxLogMessage,
	}
	lc.ctl = wsutil.ControlFrameHandler(lockedWriter{lc}, ws.StateClientSide)
	lc.rd.OnIntermediate = lc.ctl
	lc.stop = context.AfterFunc(ctx, func() { _ = nc.Close() })
	return lc, nil
}

// lockedWriter serializes writes to the connection (control frames).
type lockedWriter struct{ lc *LogConn }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.lc.wmu.Lock()
	defer w.lc.wmu.Unlock()
	return w.lc.nc.Write(p)
}

// logFrame is one message of the stream: lines, or an error before the
// server closes.
type logFrame struct {
	Lines []LogLine `json:"lines"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Next returns the next batch of lines. It returns io.EOF when the server
// closed the stream normally, an *APIError (Status 0) for an error the
// server sent, and the connection's error otherwise (after Close or the
// end of the context given to DialLogs, a "use of closed network
// connection" error).
func (lc *LogConn) Next() ([]LogLine, error) {
	for {
		hdr, err := lc.rd.NextFrame()
		if err != nil {
			return nil, lc.readErr(err)
		}
		if hdr.OpCode.IsControl() {
			if err := lc.ctl(hdr, lc.rd); err != nil {
				return nil, lc.readErr(err)
			}
			continue
		}
		msg, err := io.ReadAll(lc.rd)
		if err != nil {
			return nil, lc.readErr(err)
		}
		if hdr.OpCode != ws.OpText {
			continue
		}
		var f logFrame
		if err := json.Unmarshal(msg, &f); err != nil {
			return nil, fmt.Errorf("logs: decode a message: %w", err)
		}
		if f.Error != nil {
			return nil, &APIError{Code: f.Error.Code, Message: f.Error.Message}
		}
		if len(f.Lines) > 0 {
			return f.Lines, nil
		}
	}
}

// readErr maps the end of the connection: a normal close frame is io.EOF.
func (lc *LogConn) readErr(err error) error {
	var closed wsutil.ClosedError
	if errors.As(err, &closed) {
		if closed.Code == ws.StatusNormalClosure || closed.Code == ws.StatusNoStatusRcvd {
			return io.EOF
		}
		return fmt.Errorf("logs: the server closed the stream: %d %s", closed.Code, closed.Reason)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("logs: the connection was cut: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("logs: read: %w", err)
}

// Close sends a close frame (best effort) and closes the connection.
func (lc *LogConn) Close() error {
	var err error
	lc.once.Do(func() {
		lc.stop()
		lc.wmu.Lock()
		_ = wsutil.WriteClientMessage(lc.nc, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
		lc.wmu.Unlock()
		err = lc.nc.Close()
	})
	return err
}

// LogStream streams the runtime logs of apps (UUIDs or names) on a
// channel: the last tail persisted lines (as DialLogs), then live ones. The lines
// channel closes when the stream ends; the error channel then yields one
// value and closes: nil when the server ended the stream normally,
// ctx.Err() when ctx ended it, the failure otherwise (an *APIError when
// the server refused or reported an error).
func (c *Client) LogStream(ctx context.Context, apps []string, tail int) (<-chan LogLine, <-chan error) {
	lines := make(chan LogLine, 256)
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		err := c.pump(ctx, apps, tail, lines)
		close(lines)
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		errc <- err
	}()
	return lines, errc
}

func (c *Client) pump(ctx context.Context, apps []string, tail int, out chan<- LogLine) error {
	lc, err := c.DialLogs(ctx, apps, tail)
	if err != nil {
		return err
	}
	defer lc.Close()
	for {
		batch, err := lc.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, l := range batch {
			select {
			case out <- l:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}
