package userapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/hub"
	"github.com/wisehosting/wisehosting/core/store"
)

type streamFrame struct {
	Lines []struct {
		App, Stream, Line string
		TS                time.Time
	}
	Error *struct{ Code, Message string }
}

// dialLogs opens a log stream as user; it fails the test on a refused
// upgrade and returns the status of one.
func (e *env) dialLogs(user *store.User, query string) (net.Conn, int) {
	e.t.Helper()
	h := http.Header{}
	if user != nil {
		h.Set("Authorization", "Bearer "+e.token[user.ID])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dialer{Header: ws.HandshakeHeaderHTTP(h)}.Dial(ctx,
		"ws"+strings.TrimPrefix(e.srv.URL, "http")+"/api/v1/logs/ws?"+query)
	if err != nil {
		var se ws.StatusError
		if errorsAs(err, &se) {
			return nil, int(se)
		}
		e.t.Fatalf("dial log stream: %v", err)
	}
	e.t.Cleanup(func() { conn.Close() })
	if br != nil {
		// Frames that arrived with the handshake response.
		return bufferedConn{Conn: conn, r: br}, http.StatusSwitchingProtocols
	}
	return conn, http.StatusSwitchingProtocols
}

// bufferedConn reads what the dialer buffered first.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func errorsAs(err error, se *ws.StatusError) bool {
	s, ok := err.(ws.StatusError)
	if ok {
		*se = s
	}
	return ok
}

// readLines reads frames until n lines arrived.
func readLines(t *testing.T, conn net.Conn, n int) []string {
	t.Helper()
	var got []string
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(got) < n {
		b, err := wsutil.ReadServerText(conn)
		if err != nil {
			t.Fatalf("read after %d of %d lines %v: %v", len(got), n, got, err)
		}
		var f streamFrame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("frame is not JSON: %s", b)
		}
		for _, l := range f.Lines {
			got = append(got, l.Stream+":"+l.Line)
		}
	}
	return got
}

func TestLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if err := e.st.SetUserPlan(ctx, e.ada.ID, "pro"); err != nil {
		t.Fatal(err)
	}
	one := e.createApp(e.ada, map[string]any{"name": "logs-one", "git_repo": "https://github.com/ada/l1", "run_command": "./l"})
	two := e.createApp(e.ada, map[string]any{"name": "logs-two", "git_repo": "https://github.com/ada/l2", "run_command": "./l"})
	a1, _ := e.st.FindAppByUUID(ctx, one["uuid"].(string))
	a2, _ := e.st.FindAppByUUID(ctx, two["uuid"].(string))
	t0 := time.Now().Add(-time.Minute)
	chunk := func(a *store.App, at time.Time, stream string, lines ...string) store.LogChunk {
		return store.LogChunk{AppID: a.ID, Stream: stream, TS: at, TSEnd: at, Lines: len(lines), Text: strings.Join(lines, "\n")}
	}
	if err := e.st.InsertRuntimeLogs(ctx, []store.LogChunk{
		chunk(a1, t0, "stdout", "one-1", "one-2"),
		chunk(a2, t0.Add(time.Second), "stderr", "two-1"),
		chunk(a1, t0.Add(2*time.Second), "stdout", "one-3"),
	}); err != nil {
		t.Fatal(err)
	}

	// The JSON tail.
	var recent struct{ Lines []map[string]any }
	e.must(e.ada, 200, "GET", "/api/v1/apps/logs-one/logs?tail=2", nil).JSON(t, &recent)
	if len(recent.Lines) != 2 || recent.Lines[0]["line"] != "one-2" || recent.Lines[1]["line"] != "one-3" {
		t.Errorf("tail 2 = %v", recent.Lines)
	}
	e.must(e.ada, 400, "GET", "/api/v1/apps/logs-one/logs?tail=-1", nil)
	e.must(e.ada, 400, "GET", "/api/v1/apps/logs-one/logs?tail=99999", nil)

	// The stream: both apps' last lines in order, then live lines from the
	// bus for an app whose worker is connected here.
	conn, code := e.dialLogs(e.ada, "apps=logs-one,"+a2.UUID+"&tail=3")
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %d", code)
	}
	if got := strings.Join(readLines(t, conn, 3), " "); got != "stdout:one-2 stderr:two-1 stdout:one-3" {
		t.Errorf("replay = %s", got)
	}
	e.logs.bus.Publish(a1.ID, []hub.LogLine{{AppID: a1.ID, TS: time.Now(), Stream: "stdout", Line: "live-1"}})
	if got := readLines(t, conn, 1); got[0] != "stdout:live-1" {
		t.Errorf("live = %v", got)
	}

	// An app whose worker is connected to another core: its lines come
	// from the store.
	w, err := e.st.CreateWorker(ctx, store.NewWorker{Name: "far-1", Creds: store.WorkerCredentials{APIKeyHash: strings.Repeat("cd", 32),
		KeyID: "kid-far-1", SealedEnvelopeKey: "v1:x"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Pool().Exec(ctx, `UPDATE apps SET worker_id = $2, status = 'running' WHERE id = $1`, a2.ID, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.InsertRuntimeLogs(ctx, []store.LogChunk{chunk(a2, time.Now(), "stdout", "far-1", "far-2")}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(readLines(t, conn, 2), " "); got != "stdout:far-1 stdout:far-2" {
		t.Errorf("lines from the store = %s", got)
	}

	// Someone else's app, or none: refused before the upgrade.
	if _, code := e.dialLogs(e.eve, "apps=logs-one"); code != http.StatusNotFound {
		t.Errorf("eve following ada's app: %d", code)
	}
	if _, code := e.dialLogs(e.ada, "apps="); code != http.StatusBadRequest {
		t.Errorf("no apps: %d", code)
	}
	if _, code := e.dialLogs(nil, "apps=logs-one"); code != http.StatusUnauthorized {
		t.Errorf("unauthenticated: %d", code)
	}
}

// TestLogStreamOrigin: a browser session may open a log stream only from
// the dashboard's own origin — an app on a sibling subdomain must not read
// its visitors' logs through their cookies.
func TestLogStreamOrigin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.ada, map[string]any{"name": "origin-app", "git_repo": "https://github.com/ada/o", "run_command": "./o"})
	tok, hash, err := accounts.NewToken("whs_")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CreateSession(context.Background(), store.NewSession{UserID: e.ada.ID, TokenHash: hash, IP: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	dial := func(origin string) int {
		h := http.Header{"Cookie": {accounts.SessionCookie + "=" + tok}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, _, _, err := ws.Dialer{Header: ws.HandshakeHeaderHTTP(h)}.Dial(ctx,
			"ws"+strings.TrimPrefix(e.srv.URL, "http")+"/api/v1/logs/ws?apps=origin-app")
		if err != nil {
			var se ws.StatusError
			if errorsAs(err, &se) {
				return int(se)
			}
			t.Fatalf("dial: %v", err)
		}
		conn.Close()
		return http.StatusSwitchingProtocols
	}
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{e.srv.URL, http.StatusSwitchingProtocols},
		{"http://evil-app-1234.apps.test", http.StatusForbidden},
		{"", http.StatusForbidden},
	} {
		if got := dial(tc.origin); got != tc.want {
			t.Errorf("session stream from origin %q: %d, want %d", tc.origin, got, tc.want)
		}
	}
}
