package clitest

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wisehosting/wisehosting/core/cliclient"
)

// subscriber is one connected log stream.
type subscriber struct {
	apps map[string]bool // UUIDs
	ch   chan []cliclient.LogLine
	end  chan struct{} // closed by CloseStreams: close normally
}

// Emit has the app (by name) write live lines: they are persisted and sent
// to every stream that follows the app.
func (s *Server) Emit(name string, lines ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.findAppLocked(name)
	batch := make([]cliclient.LogLine, 0, len(lines))
	for _, l := range lines {
		batch = append(batch, cliclient.LogLine{App: a.UUID, TS: ts(), Stream: "stdout", Line: l})
	}
	s.logs[a.UUID] = append(s.logs[a.UUID], batch...)
	for sub := range s.subs {
		if sub.apps[a.UUID] {
			select {
			case sub.ch <- batch:
			default: // a stream this far behind loses lines
			}
		}
	}
}

// CloseStreams ends every connected log stream with a normal close.
func (s *Server) CloseStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		close(sub.end)
		delete(s.subs, sub)
	}
}

// lockedConn serializes writes: the reader answers pings while the writer
// sends lines.
type lockedConn struct {
	net.Conn
	mu sync.Mutex
}

func (c *lockedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *lockedConn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return wsutil.WriteServerText(c.Conn, b)
}

func (c *lockedConn) close(code ws.StatusCode, reason string) {
	c.mu.Lock()
	_ = wsutil.WriteServerMessage(c.Conn, ws.OpClose, ws.NewCloseFrameBody(code, reason))
	c.mu.Unlock()
	_ = c.Conn.Close()
}

// logStream is GET /api/v1/logs/ws?apps=a,b&tail=N.
func (s *Server) logStream(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		s.mu.Unlock()
		writeErr(w, http.StatusUnauthorized, "unauthorized", "missing or invalid credentials")
		return
	}
	n, ok := tail(w, r)
	if !ok {
		s.mu.Unlock()
		return
	}
	sub := &subscriber{apps: map[string]bool{}, ch: make(chan []cliclient.LogLine, 64), end: make(chan struct{})}
	var backlog []cliclient.LogLine
	for _, ref := range strings.Split(r.URL.Query().Get("apps"), ",") {
		a := s.findAppLocked(ref)
		if a == nil {
			s.mu.Unlock()
			writeErr(w, http.StatusNotFound, "not_found", "no such app: %s", ref)
			return
		}
		sub.apps[a.UUID] = true
		ls := s.logs[a.UUID]
		backlog = append(backlog, ls[max(0, len(ls)-n):]...)
	}
	wsErr := s.wsError
	s.mu.Unlock()

	nc, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	conn := &lockedConn{Conn: nc}
	if wsErr != nil {
		_ = conn.send(map[string]any{"error": map[string]string{"code": wsErr.Code, "message": wsErr.Message}})
		conn.close(ws.StatusPolicyViolation, wsErr.Code)
		return
	}
	if len(backlog) > 0 {
		if err := conn.send(map[string]any{"lines": backlog}); err != nil {
			_ = nc.Close()
			return
		}
	}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()

	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			if _, _, err := wsutil.ReadClientData(conn); err != nil {
				return
			}
		}
	}()
	for {
		select {
		case batch := <-sub.ch:
			if err := conn.send(map[string]any{"lines": batch}); err != nil {
				_ = nc.Close()
				return
			}
		case <-sub.end:
			conn.close(ws.StatusNormalClosure, "")
			<-gone
			return
		case <-gone:
			_ = nc.Close()
			return
		case <-s.closing:
			conn.close(ws.StatusGoingAway, "server stopping")
			<-gone
			return
		}
	}
}
