package userapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/hub"
	"github.com/wisehosting/wisehosting/core/store"
)

// Bounds of log reads and streams.
const (
	defaultTail = 100
	maxTail     = 5000
	// maxStreamApps bounds the apps one stream follows.
	maxStreamApps = 20
	// frameLines bounds the lines of one WebSocket frame.
	frameLines = 500
	// logPoll is how often a stream reads the store for apps whose worker
	// is connected to another core, each time the chunks of the last
	// logWindow: overlapping windows catch chunks other cores commit late
	// (ids are not commit order).
	logPoll   = time.Second
	logWindow = time.Minute
	// wsPing keeps idle streams (and proxies between) alive.
	wsPing = 30 * time.Second
	// wsWriteWait bounds one frame's write: a client that does not read
	// is dropped.
	wsWriteWait = 10 * time.Second
	// maxClientFrame bounds what a log stream client may send (it sends
	// nothing but control frames).
	maxClientFrame = 4096
)

// LogSource is what live log streams need from the hub: its log bus, and
// whether a worker is connected to this core (else its apps' lines reach
// this core only through the store).
type LogSource interface {
	Bus() *hub.LogBus
	IsConnected(workerID int64) bool
}

func (s *Service) logRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/apps/:app/logs", handler: s.recentLogs},
		{Method: http.MethodGet, Path: "/api/v1/logs/ws", handler: s.streamLogs},
	}
}

// logLine is a runtime log line as the API shows it.
type logLine struct {
	App    string    `json:"app"`
	TS     time.Time `json:"ts"`
	Stream string    `json:"stream"`
	Line   string    `json:"line"`
}

func tailParam(req bunrouter.Request) (int, error) {
	v := req.URL.Query().Get("tail")
	if v == "" {
		return defaultTail, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxTail {
		return 0, badRequest("tail must be a number from 0 to %d, not %q", maxTail, v)
	}
	return n, nil
}

// recentLogs answers the app's last persisted runtime log lines.
func (s *Service) recentLogs(w http.ResponseWriter, req bunrouter.Request) error {
	_, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	tail, err := tailParam(req)
	if err != nil {
		return err
	}
	lines, err := s.o.Store.RecentRuntimeLogs(req.Context(), []int64{a.ID}, tail)
	if err != nil {
		return err
	}
	out := make([]logLine, len(lines))
	for i, l := range lines {
		out[i] = logLine{App: a.UUID, TS: l.TS, Stream: l.Stream, Line: l.Line}
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"lines": out})
}

// streamLogs follows the runtime logs of one or several of the caller's
// apps over a WebSocket (?apps=<uuid|name>,…&tail=N): first the last N
// persisted lines, then live ones, each frame a JSON {"lines": […]}.
func (s *Service) streamLogs(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	u := userOf(ctx)
	// A browser opens WebSockets to any site with its cookies and CORS
	// does not apply: a session may stream only from the dashboard's own
	// pages (an app on a sibling subdomain must not read its visitors'
	// logs). A Bearer token carries no ambient credential.
	if c := accounts.CallerFrom(ctx); c != nil && c.SessionID != 0 && !s.o.Auth.SameOrigin(req.Request) {
		return api.Errorf(http.StatusForbidden, "csrf", "cross-site request refused: the Origin header does not match this site")
	}
	refs := strings.Split(req.URL.Query().Get("apps"), ",")
	if len(refs) == 0 || refs[0] == "" {
		return badRequest("name the apps to follow: ?apps=<uuid or name>,…")
	}
	if len(refs) > maxStreamApps {
		return badRequest("follow at most %d apps at once", maxStreamApps)
	}
	tail, err := tailParam(req)
	if err != nil {
		return err
	}
	apps := map[int64]*store.App{}
	var ids []int64
	for _, ref := range refs {
		a, err := s.ownedApp(ctx, u, strings.TrimSpace(ref))
		if err != nil {
			return err
		}
		if apps[a.ID] == nil {
			apps[a.ID] = a
			ids = append(ids, a.ID)
		}
	}
	if s.o.Logs == nil {
		return api.Errorf(http.StatusServiceUnavailable, "unavailable", "log streaming is not available on this core")
	}
	// Subscribe before reading the replay so no line falls between them.
	sub := s.o.Logs.Bus().Subscribe(ids, 256)
	defer sub.Close()
	replay, err := s.o.Store.RecentRuntimeLogs(ctx, ids, tail)
	if err != nil {
		return err
	}
	up := ws.HTTPUpgrader{Timeout: wsWriteWait}
	nc, rw, _, err := up.Upgrade(req.Request, w)
	if err != nil {
		if nc != nil {
			_ = nc.Close()
		}
		return nil // the upgrader answered
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Time{})
	st := &logStream{s: s, conn: nc, apps: apps, user: u.ID, sentChunks: map[int64]time.Time{},
		replayed: map[int64]time.Time{}, fromBus: map[int64]time.Time{}}
	var rd io.Reader = nc
	if rw != nil {
		rd = rw.Reader
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer cancel()
		st.readControl(rd)
	}()
	out := make([]logLine, 0, len(replay))
	for _, l := range replay {
		out = append(out, logLine{App: apps[l.AppID].UUID, TS: l.TS, Stream: l.Stream, Line: l.Line})
		if l.TS.After(st.replayed[l.AppID]) {
			st.replayed[l.AppID], st.fromBus[l.AppID] = l.TS, l.TS
		}
	}
	if err := st.send(out); err != nil {
		return nil
	}
	st.follow(ctx, sub)
	return nil
}

// logStream is one client's log stream.
type logStream struct {
	s    *Service
	conn net.Conn
	wmu  sync.Mutex
	user int64
	apps map[int64]*store.App
	// sentChunks are the stored chunks sent from the store, by id, with
	// their time: the polls' windows overlap.
	sentChunks map[int64]time.Time
	// replayed is the newest replayed line's time per app: lines from the
	// bus older than it were in the replay. fromBus is the newest line's
	// time sent from the replay or the bus: lines read from the store
	// older than it were sent before the app's worker moved away.
	replayed, fromBus map[int64]time.Time
}

// follow sends live lines until the client goes or ctx ends: from the
// bus for apps whose worker is connected to this core, from the store for
// the others.
func (st *logStream) follow(ctx context.Context, sub *hub.Subscription) {
	poll := time.NewTicker(logPoll)
	defer poll.Stop()
	ping := time.NewTicker(wsPing)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			st.close(ws.StatusNormalClosure, "")
			return
		case <-st.s.stopping:
			st.close(ws.StatusGoingAway, "the core is shutting down")
			return
		case batch, ok := <-sub.C:
			if !ok {
				return
			}
			out := make([]logLine, 0, len(batch))
			for _, l := range batch {
				a := st.apps[l.AppID]
				if a == nil || l.TS.Before(st.replayed[l.AppID]) {
					continue
				}
				out = append(out, logLine{App: a.UUID, TS: l.TS, Stream: l.Stream, Line: l.Line})
				if l.TS.After(st.fromBus[l.AppID]) {
					st.fromBus[l.AppID] = l.TS
				}
			}
			if st.send(out) != nil {
				return
			}
		case <-poll.C:
			if st.pollStore(ctx) != nil {
				return
			}
		case <-ping.C:
			if st.write(ws.NewPingFrame(nil)) != nil {
				return
			}
		}
	}
}

// pollStore sends the stored lines, newer than the last seen chunk, of
// the apps whose worker is not connected here (one query per tick).
func (st *logStream) pollStore(ctx context.Context) error {
	apps, err := st.s.userApps(ctx, st.user)
	if err != nil {
		st.s.log.Debug("log stream: read the apps; trying again next tick", "error", err)
		return nil
	}
	var remote []int64
	for _, a := range apps {
		if st.apps[a.ID] == nil {
			continue
		}
		if a.WorkerID != nil && !st.s.o.Logs.IsConnected(*a.WorkerID) {
			remote = append(remote, a.ID)
		}
	}
	if len(remote) == 0 {
		return nil // no query while every app's lines come from the bus
	}
	since := time.Now().Add(-logWindow)
	lines, err := st.s.o.Store.RecentRuntimeLogChunks(ctx, remote, since, frameLines)
	if err != nil {
		st.s.log.Debug("log stream: read stored lines; trying again next tick", "error", err)
		return nil
	}
	for id, ts := range st.sentChunks {
		if ts.Before(since) {
			delete(st.sentChunks, id)
		}
	}
	out := make([]logLine, 0, len(lines))
	fresh := map[int64]bool{}
	for _, l := range lines {
		if _, sent := st.sentChunks[l.ID]; sent && !fresh[l.ID] {
			continue
		}
		if !fresh[l.ID] {
			fresh[l.ID] = true
			st.sentChunks[l.ID] = l.TS
		}
		if l.TS.Before(st.fromBus[l.AppID]) {
			continue // sent from the bus before the app's worker moved
		}
		out = append(out, logLine{App: st.apps[l.AppID].UUID, TS: l.TS, Stream: l.Stream, Line: l.Line})
	}
	return st.send(out)
}

// send writes lines in frames of at most frameLines.
func (st *logStream) send(lines []logLine) error {
	for len(lines) > 0 {
		n := min(len(lines), frameLines)
		b, err := json.Marshal(map[string]any{"lines": lines[:n]})
		if err != nil {
			return err
		}
		if err := st.write(ws.NewTextFrame(b)); err != nil {
			return err
		}
		lines = lines[n:]
	}
	return nil
}

func (st *logStream) write(f ws.Frame) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	_ = st.conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
	// One buffered write per frame: header and payload go out together.
	bw := bufio.NewWriterSize(st.conn, len(f.Payload)+ws.MaxHeaderSize)
	if err := ws.WriteFrame(bw, f); err != nil {
		return err
	}
	return bw.Flush()
}

func (st *logStream) close(code ws.StatusCode, reason string) {
	_ = st.write(ws.NewCloseFrame(ws.NewCloseFrameBody(code, reason)))
}

// readControl reads what the client sends — pings and a close; data
// frames are ignored — until it closes or errs.
func (st *logStream) readControl(r io.Reader) {
	for {
		h, err := ws.ReadHeader(r)
		if err != nil {
			return
		}
		if h.Length > maxClientFrame || !h.Masked {
			st.close(ws.StatusProtocolError, "unexpected frame")
			return
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(r, payload); err != nil {
			return
		}
		ws.Cipher(payload, h.Mask, 0)
		switch h.OpCode {
		case ws.OpClose:
			st.close(ws.StatusNormalClosure, "")
			return
		case ws.OpPing:
			if st.write(ws.NewPongFrame(payload)) != nil {
				return
			}
		}
	}
}
