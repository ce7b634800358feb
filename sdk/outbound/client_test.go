package outbound

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/netguard"
	"github.com/wisehosting/wisehosting/sdk/outbound/outboundtest"
)

// TestNewClientTransport: the options reach the transport; the guard is
// TestNewClientGuard's.
func TestNewClientTransport(t *testing.T) {
	tests := []struct {
		o       ClientOptions
		timeout time.Duration
		idle    int
	}{
		{ClientOptions{}, 0, DefaultMaxIdleConns},
		{ClientOptions{Timeout: 10 * time.Second, MaxIdleConns: 8}, 10 * time.Second, 8},
		{ClientOptions{Timeout: time.Second, MaxIdleConns: -1, AllowPrivate: true}, time.Second, DefaultMaxIdleConns},
	}
	for _, tt := range tests {
		c := NewClient(tt.o)
		tr := c.Transport.(*http.Transport)
		if tr.Proxy != nil {
			t.Errorf("%+v: the transport uses a proxy (from the environment)", tt.o)
		}
		if tr.TLSHandshakeTimeout != tt.timeout || tr.ResponseHeaderTimeout != tt.timeout {
			t.Errorf("%+v: TLS handshake timeout %v, response header timeout %v", tt.o, tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout)
		}
		if tr.MaxIdleConns != tt.idle || tr.MaxIdleConnsPerHost != tt.idle {
			t.Errorf("%+v: %d idle connections, %d per host", tt.o, tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
		}
		if !tr.ForceAttemptHTTP2 {
			t.Errorf("%+v: no HTTP/2", tt.o)
		}
		if c.CheckRedirect == nil || c.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
			t.Errorf("%+v: redirects are followed", tt.o)
		}
	}
}

// get makes a GET to u with c and returns the status, or the message of
// Unanswered and whether it said blocked.
func get(t *testing.T, c *http.Client, u string, timeout time.Duration) (int, string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		msg, blocked := Unanswered(context.Background(), ctx, err, timeout)
		return 0, msg, blocked
	}
	defer resp.Body.Close()
	return resp.StatusCode, "", false
}

// TestNewClientGuard: unless AllowPrivate, a host name resolving to
// loopback is refused when connecting, before any request.
func TestNewClientGuard(t *testing.T) {
	rc := outboundtest.Start(t, nil)
	u := "http://localhost:" + rc.Port() + "/sekrit-path?token=querytoken"
	code, msg, blocked := get(t, NewClient(ClientOptions{}), u, time.Second)
	if code != 0 || !blocked || !strings.HasPrefix(msg, "refused to connect to ") || !strings.HasSuffix(msg, ": a loopback address") {
		t.Fatalf("guarded: status %d, %q, blocked %v", code, msg, blocked)
	}
	if n := rc.Hits(); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}
	if code, msg, _ := get(t, NewClient(ClientOptions{AllowPrivate: true}), u, time.Second); code != http.StatusNoContent {
		t.Fatalf("with AllowPrivate: status %d, %q", code, msg)
	}
}

// TestNewClientNoRedirect: the answer to a request is the redirect itself;
// its target never gets a request.
func TestNewClientNoRedirect(t *testing.T) {
	target := outboundtest.Start(t, nil)
	rc := outboundtest.Start(t, nil)
	c := NewClient(ClientOptions{AllowPrivate: true})
	for _, status := range []int{301, 302, 303, 307, 308} {
		rc.SetRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
			http.Redirect(w, r, target.URL+"/stolen", status)
		})
		if code, msg, _ := get(t, c, rc.URL, time.Second); code != status {
			t.Errorf("%d: status %d, %q", status, code, msg)
		}
	}
	if n := target.Hits(); n != 0 {
		t.Fatalf("the redirect's target got %d requests", n)
	}
}

// TestNewClientTimeout: an answer slower than Timeout ends the request.
func TestNewClientTimeout(t *testing.T) {
	rc := outboundtest.Start(t, nil)
	rc.SetRespond(outboundtest.Stall(5 * time.Second))
	c := NewClient(ClientOptions{Timeout: 200 * time.Millisecond, AllowPrivate: true})
	start := time.Now()
	code, msg, blocked := get(t, c, rc.URL, 200*time.Millisecond)
	if code != 0 || blocked || msg != "no answer within the timeout of 200ms" {
		t.Fatalf("status %d, %q, blocked %v", code, msg, blocked)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %v", took)
	}
}

// TestUnreachable: no one listening is a failed request, described
// without the URL.
func TestUnreachable(t *testing.T) {
	addr := outboundtest.ClosedAddr(t)
	code, msg, blocked := get(t, NewClient(ClientOptions{AllowPrivate: true}), "http://"+addr+"/sekrit-path?token=querytoken", time.Second)
	if code != 0 || blocked || !strings.HasPrefix(msg, "request failed: ") || !strings.Contains(msg, "refused") {
		t.Fatalf("status %d, %q, blocked %v", code, msg, blocked)
	}
	if strings.Contains(msg, "querytoken") || strings.Contains(msg, "sekrit-path") {
		t.Fatalf("the message shows the url: %q", msg)
	}
}

// timeoutError is a net.Error that timed out.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestUnanswered(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	post := func(err error) error {
		return &url.Error{Op: "Post", URL: "https://h.example.com/sekrit-path?token=querytoken", Err: err}
	}
	tests := []struct {
		name        string
		parent, ctx context.Context
		err         error
		want        string
		blocked     bool
	}{
		{"blocked", live, live, post(&net.OpError{Op: "dial", Err: &netguard.BlockedError{Addr: "10.0.0.1", Why: "a private address"}}),
			"refused to connect to 10.0.0.1: a private address", true},
		{"blocked, even when cancelled", cancelled, cancelled, post(&netguard.BlockedError{Addr: "::1", Why: "a loopback address"}),
			"refused to connect to ::1: a loopback address", true},
		{"caller cancelled", cancelled, cancelled, post(context.Canceled), "the delivery was cancelled (context canceled)", false},
		{"caller's deadline", expired, expired, post(context.DeadlineExceeded), "the delivery was cancelled (context deadline exceeded)", false},
		{"request's deadline", live, expired, post(context.DeadlineExceeded), "no answer within the timeout of 1.5s", false},
		{"transport timeout", live, live, post(timeoutError{}), "no answer within the timeout of 1.5s", false},
		{"other", live, live, post(errors.New("EOF")), "request failed: EOF", false},
		{"quoted", live, live, post(errors.New("bad \"answer\"\n\x00from server")), "request failed: bad answer from server", false},
		{"not a url.Error", live, live, errors.New("tls: bad certificate"), "request failed: tls: bad certificate", false},
	}
	for _, tt := range tests {
		msg, blocked := Unanswered(tt.parent, tt.ctx, tt.err, 1500*time.Millisecond)
		if msg != tt.want || blocked != tt.blocked {
			t.Errorf("%s: %q, blocked %v; want %q, %v", tt.name, msg, blocked, tt.want, tt.blocked)
		}
		if strings.Contains(msg, "querytoken") || strings.Contains(msg, "sekrit-path") {
			t.Errorf("%s: the message shows the url: %q", tt.name, msg)
		}
	}
}
