// Package outboundtest is an HTTP endpoint on loopback for the tests of
// senders (sdk/stdwebhook's Client, the alert sinks): it records every
// request it accepts and how many were in flight at once, and answers as
// the test says.
//
//	rc := outboundtest.Start(t, nil)
//	rc.SetRespond(outboundtest.Reply(http.StatusTooManyRequests, map[string]string{"Retry-After": "30"}, "slow down"))
//	… send to rc.URL …
//	got := rc.Requests()
package outboundtest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// MaxBody bounds how much of a request's body a Receiver reads.
const MaxBody = 1 << 20

// Request is one request a Receiver accepted.
type Request struct {
	// Method is the request's method.
	Method string
	// URI is the request URI: the escaped path and the query.
	URI string
	// Header is the request's header.
	Header http.Header
	// Body is the request's body, at most MaxBody bytes.
	Body []byte
}

// Responder answers a request a Receiver accepted; body is the request's
// body, already read.
type Responder func(w http.ResponseWriter, r *http.Request, body []byte)

// Reply returns a Responder that answers status, with the header fields
// of header (nil for none) and body.
func Reply(status int, header map[string]string, body string) Responder {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// Stall returns a Responder that answers 204 No Content only when the
// request ends (its sender gave up: a timeout) or after most, whichever
// comes first: for tests of timeouts, with most a bound on how long a test
// can hang when the timeout does not work.
func Stall(most time.Duration) Responder {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) {
		t := time.NewTimer(most)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// Receiver is an HTTP server on 127.0.0.1 that records the requests it
// gets. It is safe for concurrent use. Create it with Start.
type Receiver struct {
	// URL is the receiver's address, http://127.0.0.1:port, without a
	// path: every path reaches it.
	URL string

	srv   *httptest.Server
	check func(r *http.Request, body []byte) error

	mu       sync.Mutex
	respond  Responder
	accepted []Request
	rejected []error

	hits, inflight, maxInflight atomic.Int32
}

// Start starts a Receiver on 127.0.0.1, closed when the test ends. check,
// when not nil, judges every request first (say, that its signature
// verifies): a request it returns an error for is answered 401
// Unauthorized with the error's text and counted in Rejected, not in
// Requests. The others are answered by the Responder (SetRespond), at
// first 204 No Content.
func Start(t testing.TB, check func(r *http.Request, body []byte) error) *Receiver {
	t.Helper()
	rc := &Receiver{check: check}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	rc.URL = rc.srv.URL
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	rc.hits.Add(1)
	n := rc.inflight.Add(1)
	defer rc.inflight.Add(-1)
	for {
		m := rc.maxInflight.Load()
		if n <= m || rc.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody))
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if rc.check != nil {
		if err := rc.check(r, body); err != nil {
			rc.mu.Lock()
			rc.rejected = append(rc.rejected, err)
			rc.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	rc.mu.Lock()
	rc.accepted = append(rc.accepted, Request{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: body})
	respond := rc.respond
	rc.mu.Unlock()
	if respond == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	respond(w, r, body)
}

// SetRespond sets how the receiver answers the requests it accepts from
// now on; nil answers 204 No Content.
func (rc *Receiver) SetRespond(f Responder) {
	rc.mu.Lock()
	rc.respond = f
	rc.mu.Unlock()
}

// Requests returns the requests the receiver accepted, in order of
// arrival.
func (rc *Receiver) Requests() []Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Request(nil), rc.accepted...)
}

// Rejected returns the errors of check for the requests it rejected, in
// order of arrival.
func (rc *Receiver) Rejected() []error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]error(nil), rc.rejected...)
}

// Hits returns how many requests reached the receiver, rejected ones
// included.
func (rc *Receiver) Hits() int { return int(rc.hits.Load()) }

// MaxInflight returns how many requests the receiver handled at once at
// the most.
func (rc *Receiver) MaxInflight() int { return int(rc.maxInflight.Load()) }

// HostPort returns the receiver's 127.0.0.1:port.
func (rc *Receiver) HostPort() string { return rc.srv.Listener.Addr().String() }

// Port returns the receiver's port, for URLs naming another host that
// resolves to loopback ("localhost").
func (rc *Receiver) Port() string {
	_, port, _ := net.SplitHostPort(rc.HostPort())
	return port
}

// ClosedAddr returns a 127.0.0.1:port nothing listens on: a port the
// system gave a listener that is closed again, for tests of a sender that
// gets no answer ("connection refused"). Another process could take the
// port meanwhile; on loopback, in a test, that is a risk worth taking.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
