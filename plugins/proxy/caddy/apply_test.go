package caddy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// loadRecorder is a fake Caddy admin API: it records what POST /load
// receives and answers with status and answer.
type loadRecorder struct {
	mu          sync.Mutex
	method      string
	path        string
	contentType string
	bodies      [][]byte
	status      int
	answer      string
	delay       time.Duration
	inFlight    atomic.Int32
	maxInFlight atomic.Int32
}

func (l *loadRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := l.inFlight.Add(1)
	defer l.inFlight.Add(-1)
	for {
		m := l.maxInFlight.Load()
		if n <= m || l.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	body, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	l.method, l.path, l.contentType = r.Method, r.URL.Path, r.Header.Get("Content-Type")
	l.bodies = append(l.bodies, body)
	status, answer, delay := l.status, l.answer, l.delay
	l.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

// request returns the method, path and content type of the last request.
func (l *loadRecorder) request() (method, path, contentType string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.method, l.path, l.contentType
}

// count returns the number of requests received.
func (l *loadRecorder) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.bodies)
}

func (l *loadRecorder) last() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bodies) == 0 {
		return nil
	}
	return l.bodies[len(l.bodies)-1]
}

// fakeAdmin starts a fake admin API on 127.0.0.1 and returns it with the
// config line pointing the plugin at it.
func fakeAdmin(t *testing.T, l *loadRecorder) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	return srv, `admin = "` + srv.URL + `"`
}

func TestApply(t *testing.T) {
	rec := &loadRecorder{}
	srv, admin := fakeAdmin(t, rec)
	p, _ := newTestPlugin(t, admin+"\ntls = \"internal\"")
	ctx := context.Background()
	resp, err := p.Apply(ctx, &pluginv1.ApplyRequest{Routes: smallTable(), Generation: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetApplied() || !strings.Contains(resp.GetMessage(), "generation 7") {
		t.Errorf("response %v", resp)
	}
	if method, path, ct := rec.request(); method != http.MethodPost || path != "/load" || ct != "application/json" {
		t.Errorf("request: %s %s, content type %q", method, path, ct)
	}
	want := renderOK(t, p, smallTable())
	if !bytes.Equal(rec.last(), want) {
		t.Errorf("posted body differs from Render:\n got: %s\nwant: %s", rec.last(), want)
	}
	// The configuration keeps the admin API where the plugin reaches it.
	if got := parse(t, rec.last()).Admin.Listen; "http://"+got != srv.URL {
		t.Errorf("admin listen %q, plugin posts to %s", got, srv.URL)
	}
}

func TestApplyUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p, _ := newTestPlugin(t, `admin = "http://`+addr+`"`)
	start := time.Now()
	_, err = p.Apply(context.Background(), &pluginv1.ApplyRequest{Routes: smallTable(), Generation: 1})
	if err == nil {
		t.Fatal("Apply succeeded with nothing listening")
	}
	for _, want := range []string{"caddy: apply:", addr + "/load", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
}

func TestApplyRejected(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name, answer string
		status       int
		want         []string
		notWant      []string
	}{
		{
			name: "caddy json error", status: http.StatusBadRequest,
			answer:  `{"error":"loading config: loading new config: http app module: start: listening on 127.0.0.1:80: listen tcp 127.0.0.1:80: bind: address already in use"}`,
			want:    []string{"caddy: apply: POST http://", "/load: Caddy answered 400 Bad Request: loading config: loading new config", "address already in use"},
			notWant: []string{`{"error"`},
		},
		{
			name: "plain text 500", status: http.StatusInternalServerError, answer: "boom\nsecond line\x1b[31m",
			want: []string{"Caddy answered 500 Internal Server Error: boom second line [31m"}, notWant: []string{"\n", "\x1b"},
		},
		{
			name: "long answer cut short", status: http.StatusBadRequest, answer: `{"error":"` + long + `"}`,
			want: []string{"400 Bad Request: xxxx", "x…"}, notWant: []string{long[:maxErrorBody+1]},
		},
		{name: "empty answer", status: http.StatusBadGateway, want: []string{"502 Bad Gateway: (no message)"}},
		{name: "redirect not followed", status: http.StatusTemporaryRedirect, want: []string{"307 Temporary Redirect"}},
		{name: "invalid utf-8", status: http.StatusBadRequest, answer: "bad \xff byte", want: []string{"bad \uFFFD byte"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &loadRecorder{status: tt.status, answer: tt.answer}
			_, admin := fakeAdmin(t, rec)
			p, _ := newTestPlugin(t, admin)
			resp, err := p.Apply(context.Background(), &pluginv1.ApplyRequest{Routes: smallTable(), Generation: 3})
			if err == nil {
				t.Fatalf("Apply succeeded: %v", resp)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q contains %q", err, w)
				}
			}
			if len(err.Error()) > maxErrorBody+200 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

// The caller's deadline bounds an Apply.
func TestApplyDeadline(t *testing.T) {
	rec := &loadRecorder{delay: 10 * time.Second}
	_, admin := fakeAdmin(t, rec)
	p, _ := newTestPlugin(t, admin)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Apply(ctx, &pluginv1.ApplyRequest{Routes: smallTable(), Generation: 1})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v", took)
	}
}

// Concurrent Applies reach Caddy one at a time.
func TestApplySerialised(t *testing.T) {
	rec := &loadRecorder{delay: 20 * time.Millisecond}
	_, admin := fakeAdmin(t, rec)
	p, _ := newTestPlugin(t, admin)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := p.Apply(context.Background(), &pluginv1.ApplyRequest{Routes: smallTable(), Generation: uint64(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if m := rec.maxInFlight.Load(); m != 1 {
		t.Errorf("%d loads in flight at once", m)
	}
	if n := rec.count(); n != 8 {
		t.Errorf("%d loads", n)
	}
}
