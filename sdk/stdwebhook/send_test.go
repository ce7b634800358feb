package stdwebhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/outbound"
	"github.com/wisehosting/wisehosting/sdk/outbound/outboundtest"
)

// newReceiver starts a webhook endpoint on 127.0.0.1 that verifies every
// request with Verify (401 when it does not verify) and answers the others
// 204, or as SetRespond says.
func newReceiver(t *testing.T, secrets ...string) *outboundtest.Receiver {
	t.Helper()
	var keys []Secret
	for _, s := range secrets {
		keys = append(keys, mustSecret(t, s))
	}
	return outboundtest.Start(t, func(r *http.Request, body []byte) error {
		if err := Verify(r.Header, body, time.Now(), DefaultTolerance, keys...); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
		return nil
	})
}

// verified returns the webhook-ids of the requests rc verified, in arrival
// order.
func verified(rc *outboundtest.Receiver) []string {
	var ids []string
	for _, r := range rc.Requests() {
		ids = append(ids, r.Header.Get(HeaderID))
	}
	return ids
}

// endpoint returns an endpoint at url signing with the secrets (the first
// one current), listing their spellings to redact.
func endpoint(t *testing.T, url string, secrets ...string) *Endpoint {
	t.Helper()
	ep := &Endpoint{URL: url}
	for _, s := range secrets {
		ep.Secrets = append(ep.Secrets, mustSecret(t, s))
		ep.Redact = append(ep.Redact, SecretForms(s)...)
	}
	return ep
}

// privateClient returns a client that may reach loopback, where every test
// endpoint is, closed when the test ends.
func privateClient(t *testing.T, o ClientOptions) *Client {
	t.Helper()
	o.AllowPrivate = true
	c := NewClient(o)
	t.Cleanup(c.Close)
	return c
}

var eventTime = time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.UTC)

func testEvent(id string) event.Event {
	return event.Event{
		ID: id, Type: event.DeploymentFailed, Time: eventTime, UserID: 7, AppID: 42,
		Data: json.RawMessage(`{"app_name": "shop", "error": "build failed"}`),
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Delivered: "delivered", Retry: "retry", Failed: "failed", 0: "Outcome(0)", 9: "Outcome(9)"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}

func TestNewClientDefaults(t *testing.T) {
	c := NewClient(ClientOptions{})
	defer c.Close()
	if c.timeout != DefaultTimeout || c.limit.Cap() != DefaultMaxConcurrency || c.userAgent != DefaultUserAgent || c.allowPrivate {
		t.Errorf("timeout %v, concurrency %d, user agent %q, allow private %v", c.timeout, c.limit.Cap(), c.userAgent, c.allowPrivate)
	}
	tr := c.http.Transport.(*http.Transport)
	if tr.Proxy != nil {
		t.Error("the transport uses a proxy (from the environment)")
	}
	if tr.TLSHandshakeTimeout != DefaultTimeout || tr.ResponseHeaderTimeout != DefaultTimeout {
		t.Errorf("TLS handshake timeout %v, response header timeout %v", tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout)
	}
	c2 := NewClient(ClientOptions{Timeout: time.Second, MaxConcurrency: 2, UserAgent: "x/1", AllowPrivate: true})
	defer c2.Close()
	if c2.timeout != time.Second || c2.limit.Cap() != 2 || c2.userAgent != "x/1" || !c2.allowPrivate {
		t.Errorf("timeout %v, concurrency %d, user agent %q, allow private %v", c2.timeout, c2.limit.Cap(), c2.userAgent, c2.allowPrivate)
	}
}

// TestSendSigned: the receiver verifies the delivery under the current
// and the previous secret, sees the documented headers and the body of
// Body, and a retry keeps the webhook-id.
func TestSendSigned(t *testing.T) {
	cur, prev := secretOf(1, 32), secretOf(2, 32)
	for _, knows := range []string{cur, prev} {
		rc := newReceiver(t, knows)
		c := privateClient(t, ClientOptions{})
		ep := endpoint(t, rc.URL+"/hook?token=abc", cur, prev)
		ep.Headers = http.Header{"Authorization": {"Bearer sekrit-token-123"}, "x-lower": {"kept"}}
		before := time.Now()
		r := c.Send(context.Background(), ep, testEvent("ev-1"))
		if r.Outcome != Delivered || r.StatusCode != http.StatusNoContent || r.RetryAfter != 0 || r.Gone || r.Blocked ||
			r.Message != "the endpoint answered 204 No Content" || r.Duration <= 0 {
			t.Fatalf("result %+v", r)
		}
		got := rc.Requests()
		h, body := got[0].Header, got[0].Body
		want, err := Body(testEvent("ev-1"), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, want) {
			t.Errorf("body %s, want %s", body, want)
		}
		for k, v := range map[string]string{
			"Content-Type": "application/json", "User-Agent": DefaultUserAgent, "Authorization": "Bearer sekrit-token-123",
			"X-Lower": "kept", "Webhook-Id": "ev-1",
		} {
			if got := h.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
		ts, err := strconv.ParseInt(h.Get("Webhook-Timestamp"), 10, 64)
		if err != nil || ts < before.Unix() || ts > time.Now().Unix() {
			t.Errorf("webhook-timestamp %q is not the send time", h.Get("Webhook-Timestamp"))
		}
		if sigs := strings.Fields(h.Get("Webhook-Signature")); len(sigs) != 2 {
			t.Errorf("webhook-signature %q: want the current and the previous one", sigs)
		}
		if r := c.Send(context.Background(), ep, testEvent("ev-1")); r.Outcome != Delivered {
			t.Fatalf("retry: %+v", r)
		}
		if ids := verified(rc); len(ids) != 2 || ids[1] != "ev-1" {
			t.Errorf("verified %q, want ev-1 twice", ids)
		}
	}

	// A receiver knowing neither secret answers 401: Failed.
	rc := newReceiver(t, secretOf(3, 32))
	c := privateClient(t, ClientOptions{})
	r := c.Send(context.Background(), endpoint(t, rc.URL, cur, prev), testEvent("ev-2"))
	if r.Outcome != Failed || r.StatusCode != 401 || !strings.Contains(r.Message, "no matching signature") {
		t.Fatalf("result %+v", r)
	}
}

// TestUserAgent: ClientOptions.UserAgent, and an endpoint's own.
func TestUserAgent(t *testing.T) {
	secret := secretOf(1, 32)
	rc := newReceiver(t, secret)
	c := privateClient(t, ClientOptions{UserAgent: "Sink/2"})
	ep := endpoint(t, rc.URL, secret)
	c.Send(context.Background(), ep, testEvent("a"))
	ep.Headers = http.Header{"User-Agent": {"Mine/3"}}
	c.Send(context.Background(), ep, testEvent("b"))
	got := rc.Requests()
	if len(got) != 2 || got[0].Header.Get("User-Agent") != "Sink/2" || got[1].Header.Get("User-Agent") != "Mine/3" {
		t.Fatalf("user agents: %d requests, %v", len(got), got)
	}
}

// TestBody holds the body to its documented shape, byte for byte.
func TestBody(t *testing.T) {
	tests := []struct {
		ev   event.Event
		want string
	}{
		{testEvent("ev-1"),
			`{"id":"ev-1","type":"deployment.failed","timestamp":"2026-03-01T12:30:45.123456789Z","user_id":7,"app_id":42,"data":{"app_name":"shop","error":"build failed"}}`},
		{event.Event{ID: "ev-2", Type: event.WebhookTest, Time: eventTime},
			`{"id":"ev-2","type":"webhook.test","timestamp":"2026-03-01T12:30:45.123456789Z","user_id":0,"app_id":0,"data":{}}`},
		{event.Event{ID: "ev-3", Type: event.AppViolation, Time: eventTime.Add(time.Second).In(time.FixedZone("X", 3600)), AppID: 1,
			Data: json.RawMessage(" {\"reason\":\"<script>&\",\n \"n\": 9007199254740993} ")},
			`{"id":"ev-3","type":"app.violation","timestamp":"2026-03-01T12:30:46.123456789Z","user_id":0,"app_id":1,"data":{"reason":"<script>&","n":9007199254740993}}`},
		{event.Event{ID: "ev-4", Type: "t", Data: json.RawMessage("  ")},
			`{"id":"ev-4","type":"t","timestamp":"2026-03-01T12:00:00Z","user_id":0,"app_id":0,"data":{}}`},
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, tt := range tests {
		b, err := Body(tt.ev, now)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("body %d:\n got: %s\nwant: %s", i, b, tt.want)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || len(m) != 6 {
			t.Errorf("body %d: %v, %d keys", i, err, len(m))
		}
	}
	for _, data := range []string{`[1,2]`, `{"a":`, `{"a":1} {"b":2}`, `null`, `"x"`} {
		if _, err := Body(event.Event{ID: "x", Data: json.RawMessage(data)}, now); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
			t.Errorf("data %s: %v", data, err)
		}
	}
}

// TestUnsendable: endpoints and events that cannot be sent fail without a
// request.
func TestUnsendable(t *testing.T) {
	secret := secretOf(1, 32)
	rc := newReceiver(t, secret)
	good := func() *Endpoint { return endpoint(t, rc.URL, secret) }
	with := func(f func(*Endpoint)) *Endpoint { ep := good(); f(ep); return ep }
	tests := []struct {
		name string
		ep   *Endpoint
		ev   event.Event
		want string
	}{
		{"no endpoint", nil, testEvent("a"), "not sent: no endpoint"},
		{"bad url", with(func(ep *Endpoint) { ep.URL = "ftp://x/" }), testEvent("a"), "not sent: url: the scheme must be http or https"},
		{"no secret", with(func(ep *Endpoint) { ep.Secrets = nil }), testEvent("a"), "not sent: the endpoint has no signing secret"},
		{"empty secret", with(func(ep *Endpoint) { ep.Secrets = []Secret{{}} }), testEvent("a"), "no signing secret"},
		{"refused header", with(func(ep *Endpoint) { ep.Headers = http.Header{"Webhook-Id": {"x"}} }), testEvent("a"), `not sent: headers: "Webhook-Id" is refused`},
		{"bad header value", with(func(ep *Endpoint) { ep.Headers = http.Header{"X-A": {"ok", "a\nb"}} }), testEvent("a"), "control character"},
		{"no id", good(), event.Event{Type: "t"}, "not sent: the event has no id"},
		{"dot in id", good(), event.Event{ID: "a.b", Type: "t"}, "cannot be a webhook-id"},
		{"space in id", good(), event.Event{ID: "a b", Type: "t"}, "cannot be a webhook-id"},
		{"newline in id", good(), event.Event{ID: "a\nb", Type: "t"}, "cannot be a webhook-id"},
		{"non-ASCII id", good(), event.Event{ID: "é", Type: "t"}, "cannot be a webhook-id"},
		{"long id", good(), event.Event{ID: strings.Repeat("x", MaxEventID+1), Type: "t"}, "longer than 256"},
		{"data not an object", good(), event.Event{ID: "d1", Type: "t", Data: json.RawMessage(`[1,2]`)}, "not sent: the event's data is not a JSON object"},
	}
	c := privateClient(t, ClientOptions{})
	for _, tt := range tests {
		r := c.Send(context.Background(), tt.ep, tt.ev)
		if r.Outcome != Failed || !strings.Contains(r.Message, tt.want) || r.StatusCode != 0 || r.Blocked || r.Gone {
			t.Errorf("%s: %+v, want failed with %q", tt.name, r, tt.want)
		}
	}
	long := event.Event{ID: strings.Repeat("x", MaxEventID), Type: "t"}
	if c.Send(context.Background(), good(), long).Outcome != Delivered {
		t.Error("an id of MaxEventID bytes was not delivered")
	}
	if n := rc.Hits(); n != 1 {
		t.Fatalf("the receiver got %d requests, want only the last one", n)
	}
}

// TestOutcome maps answers to results without a network.
func TestOutcome(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		code   int
		header http.Header
		answer string
		want   Result
	}{
		{200, nil, "ok", Result{Outcome: Delivered, StatusCode: 200, Message: "the endpoint answered 200 OK"}},
		{299, nil, "", Result{Outcome: Delivered, StatusCode: 299, Message: "the endpoint answered 299"}},
		{301, http.Header{"Location": {"https://new.example.com/\x00hook"}}, "moved", Result{Outcome: Failed, StatusCode: 301,
			Message: `the endpoint answered 301 Moved Permanently, a redirect to "https://new.example.com/ hook"; redirects are not followed: set url to the endpoint's current address`}},
		{304, nil, "", Result{Outcome: Failed, StatusCode: 304,
			Message: "the endpoint answered 304 Not Modified; redirects are not followed: set url to the endpoint's current address"}},
		{410, nil, "bye", Result{Outcome: Failed, StatusCode: 410, Gone: true,
			Message: `the endpoint answered 410 Gone: "bye"; it asked to be disabled and not to be sent webhooks any more: remove this webhook or change its url`}},
		{429, http.Header{"Retry-After": {"30"}}, "", Result{Outcome: Retry, StatusCode: 429, RetryAfter: 30 * time.Second,
			Message: "the endpoint answered 429 Too Many Requests; retry after 30s"}},
		{408, nil, "", Result{Outcome: Retry, StatusCode: 408, Message: "the endpoint answered 408 Request Timeout"}},
		{500, http.Header{"Retry-After": {"Sun, 01 Mar 2026 12:01:30 GMT"}}, "boom", Result{Outcome: Retry, StatusCode: 500, RetryAfter: 90 * time.Second,
			Message: `the endpoint answered 500 Internal Server Error: "boom"; retry after 1m30s`}},
		{599, http.Header{"Retry-After": {"soon"}}, "", Result{Outcome: Retry, StatusCode: 599, Message: "the endpoint answered 599"}},
		{400, nil, `{"error":"bad"}`, Result{Outcome: Failed, StatusCode: 400, Message: `the endpoint answered 400 Bad Request: "{ error : bad }"; not retried`}},
		{404, nil, "", Result{Outcome: Failed, StatusCode: 404, Message: "the endpoint answered 404 Not Found; not retried"}},
		{100, nil, "", Result{Outcome: Failed, StatusCode: 100, Message: "the endpoint answered 100 Continue; not retried"}},
		{600, nil, "", Result{Outcome: Failed, StatusCode: 600, Message: "the endpoint answered 600; not retried"}},
	}
	for _, tt := range tests {
		if got := outcome(outbound.Answer{Code: tt.code, Header: tt.header, Body: []byte(tt.answer)}, now); got != tt.want {
			t.Errorf("outcome(%d):\n got %+v\nwant %+v", tt.code, got, tt.want)
		}
	}
}

// TestSendOutcomes maps a real endpoint's answers to results.
func TestSendOutcomes(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	huge := strings.Repeat("x", 100<<10)
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		want      Outcome
		gone      bool
		afterMin  time.Duration
		afterMax  time.Duration
		msg       []string
		msgAbsent []string
	}{
		{name: "200", status: 200, body: "ok", want: Delivered, msg: []string{"200 OK"}},
		{name: "201", status: 201, want: Delivered, msg: []string{"201 Created"}},
		{name: "204", status: 204, want: Delivered, msg: []string{"204 No Content"}},
		{name: "410 disables", status: 410, body: "endpoint deleted", want: Failed, gone: true,
			msg: []string{"410 Gone", "asked to be disabled", `"endpoint deleted"`}},
		{name: "429 with seconds", status: 429, header: map[string]string{"Retry-After": "30"}, want: Retry,
			afterMin: 30 * time.Second, afterMax: 30 * time.Second, msg: []string{"429 Too Many Requests", "retry after 30s"}},
		{name: "429 with a date", status: 429, header: map[string]string{"Retry-After": date}, want: Retry,
			afterMin: 85 * time.Second, afterMax: 90 * time.Second, msg: []string{"429"}},
		{name: "429 without Retry-After", status: 429, want: Retry},
		{name: "500", status: 500, body: "boom\x00\x1b[31m\nstack", want: Retry,
			msg: []string{`500 Internal Server Error: "boom [31m stack"`}, msgAbsent: []string{"\x00", "\x1b", "\n"}},
		{name: "502", status: 502, want: Retry, msg: []string{"502 Bad Gateway"}},
		{name: "503 with a long Retry-After", status: 503, header: map[string]string{"Retry-After": "7200"}, want: Retry,
			afterMin: time.Hour, afterMax: time.Hour, msg: []string{"503 Service Unavailable", "retry after 1h0m0s"}},
		{name: "503 with a bad Retry-After", status: 503, header: map[string]string{"Retry-After": "soon"}, want: Retry},
		{name: "504", status: 504, want: Retry},
		{name: "408", status: 408, want: Retry, msg: []string{"408 Request Timeout"}},
		{name: "400", status: 400, body: `{"error":"bad"}`, want: Failed, msg: []string{`400 Bad Request: "{ error : bad }"; not retried`}},
		{name: "401", status: 401, want: Failed},
		{name: "404", status: 404, want: Failed, msg: []string{"404 Not Found"}},
		{name: "413", status: 413, want: Failed},
		{name: "huge body is cut", status: 400, body: huge, want: Failed, msg: []string{"xxx…"}},
		{name: "301", status: 301, header: map[string]string{"Location": "https://new.example.com/hook"}, want: Failed,
			msg: []string{"301 Moved Permanently", `a redirect to "https://new.example.com/hook"`, "redirects are not followed"}},
		{name: "307", status: 307, want: Failed, msg: []string{"307 Temporary Redirect"}},
		{name: "unknown status", status: 299, want: Delivered, msg: []string{"answered 299"}},
		{name: "nonstandard 4xx", status: 499, want: Failed, msg: []string{"answered 499;"}},
	}
	secret := secretOf(1, 32)
	c := privateClient(t, ClientOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, secret)
			rc.SetRespond(outboundtest.Reply(tt.status, tt.header, tt.body))
			r := c.Send(context.Background(), endpoint(t, rc.URL+"/hook", secret), testEvent("ev-o"))
			if r.Outcome != tt.want || r.StatusCode != tt.status || r.Gone != tt.gone || r.Blocked {
				t.Fatalf("result %+v, want %v, status %d, gone %v", r, tt.want, tt.status, tt.gone)
			}
			if r.RetryAfter < tt.afterMin || r.RetryAfter > tt.afterMax {
				t.Errorf("retry after %v, want %v to %v", r.RetryAfter, tt.afterMin, tt.afterMax)
			}
			for _, m := range tt.msg {
				if !strings.Contains(r.Message, m) {
					t.Errorf("message %q lacks %q", r.Message, m)
				}
			}
			for _, m := range tt.msgAbsent {
				if strings.Contains(r.Message, m) {
					t.Errorf("message %q has %q", r.Message, m)
				}
			}
			if len(r.Message) > 1024 {
				t.Errorf("message of %d bytes", len(r.Message))
			}
			if n := rc.Hits(); n != 1 {
				t.Errorf("the receiver got %d requests", n)
			}
		})
	}
}

// TestRedirectNotFollowed: a redirect to another endpoint is not followed:
// that endpoint never gets the signed event.
func TestRedirectNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer other.Close()
	secret := secretOf(1, 32)
	rc := newReceiver(t, secret)
	c := privateClient(t, ClientOptions{})
	for _, status := range []int{301, 302, 303, 307, 308} {
		rc.SetRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
			http.Redirect(w, r, other.URL+"/stolen", status)
		})
		r := c.Send(context.Background(), endpoint(t, rc.URL, secret), testEvent("ev-r"))
		if r.Outcome != Failed || r.StatusCode != status || !strings.Contains(r.Message, `a redirect to "`+other.URL+`/stolen"`) ||
			!strings.Contains(r.Message, "redirects are not followed") {
			t.Errorf("%d: result %+v", status, r)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
}

// TestTimeout: an endpoint slower than the timeout makes the event retry.
func TestTimeout(t *testing.T) {
	secret := secretOf(1, 32)
	rc := newReceiver(t, secret)
	rc.SetRespond(outboundtest.Stall(5 * time.Second))
	c := privateClient(t, ClientOptions{Timeout: 200 * time.Millisecond})
	start := time.Now()
	r := c.Send(context.Background(), endpoint(t, rc.URL, secret), testEvent("ev-slow"))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v", took)
	}
	if r.Outcome != Retry || r.StatusCode != 0 || r.Message != "no answer within the timeout of 200ms" || r.Duration < 200*time.Millisecond {
		t.Fatalf("result %+v", r)
	}
}

// TestUnreachable: no one listening makes the event retry; the message
// does not show the URL.
func TestUnreachable(t *testing.T) {
	addr := outboundtest.ClosedAddr(t)
	secret := secretOf(1, 32)
	c := privateClient(t, ClientOptions{})
	r := c.Send(context.Background(), endpoint(t, "http://"+addr+"/sekrit-path?token=querytoken", secret), testEvent("ev-u"))
	if r.Outcome != Retry || r.StatusCode != 0 || !strings.HasPrefix(r.Message, "request failed: ") || !strings.Contains(r.Message, "refused") {
		t.Fatalf("result %+v", r)
	}
	if strings.Contains(r.Message, "querytoken") || strings.Contains(r.Message, "sekrit-path") {
		t.Fatalf("the message shows the url: %q", r.Message)
	}
}

// TestCancelled: an event whose context ends before it has a slot is not
// sent; one whose context ends while it waits for the answer is retried.
func TestCancelled(t *testing.T) {
	secret := secretOf(1, 32)
	rc := newReceiver(t, secret)
	c := privateClient(t, ClientOptions{MaxConcurrency: 1})
	ep := endpoint(t, rc.URL, secret)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := c.Send(ctx, ep, testEvent("a")); r.Outcome != Retry || r.Message != "not sent: the delivery was cancelled (context canceled)" {
		t.Errorf("Send: %+v", r)
	}
	for _, r := range c.SendAll(ctx, []Delivery{{ep, testEvent("b")}, {ep, testEvent("c")}}) {
		if r.Outcome != Retry || r.Message != "not sent: the delivery was cancelled (context canceled)" {
			t.Errorf("SendAll: %+v", r)
		}
	}
	if n := rc.Hits(); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}

	// The first event holds the only slot until the deadline; the others
	// wait for it in vain.
	release := make(chan struct{})
	defer close(release)
	rc.SetRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := c.SendAll(ctx, []Delivery{{ep, testEvent("d")}, {ep, testEvent("e")}, {ep, testEvent("f")}})
	if r := res[0]; r.Outcome != Retry || r.Message != "the delivery was cancelled (context deadline exceeded)" {
		t.Errorf("the event in flight: %+v", r)
	}
	for _, r := range res[1:] {
		if r.Outcome != Retry || r.Message != "not sent: the delivery was cancelled (context deadline exceeded)" {
			t.Errorf("an event waiting for a slot: %+v", r)
		}
	}
	if n := rc.Hits(); n != 1 {
		t.Fatalf("the receiver got %d requests, want 1", n)
	}
}

// TestPrivateRefused: without AllowPrivate, a host name resolving to
// loopback is refused when connecting and a literal loopback address
// before; both fail, Blocked, without a request. With AllowPrivate the same
// endpoint is reached.
func TestPrivateRefused(t *testing.T) {
	secret := secretOf(1, 32)
	rc := newReceiver(t, secret)
	port := rc.Port()
	guarded := NewClient(ClientOptions{})
	defer guarded.Close()
	for _, tt := range []struct{ url, want string }{
		{"http://localhost:" + port + "/hook", "not sent: refused to connect to 127.0.0.1: a loopback address (a configuration problem, not retried)"},
		{"http://127.0.0.1:" + port + "/hook", "not sent: url: 127.0.0.1 is a loopback address, which webhooks may not be sent to (a configuration problem, not retried)"},
	} {
		r := guarded.Send(context.Background(), endpoint(t, tt.url, secret), testEvent("ev-p"))
		if r.Outcome != Failed || !r.Blocked || r.StatusCode != 0 || r.Message != tt.want {
			t.Errorf("%s: result %+v", tt.url, r)
		}
	}
	if n := rc.Hits(); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}
	open := privateClient(t, ClientOptions{})
	if r := open.Send(context.Background(), endpoint(t, "http://localhost:"+port+"/hook", secret), testEvent("ev-p")); r.Outcome != Delivered {
		t.Fatalf("with AllowPrivate: %+v", r)
	}
}

// TestSecretsNeverShown: an endpoint echoing everything it gets (and the
// secrets themselves) gets none of the secrets, header values or listed
// strings into the message, even without the secrets' spellings listed
// in Redact.
func TestSecretsNeverShown(t *testing.T) {
	cur, prev := secretOf(0x11, 32), secretOf(0x22, 33) // 33 bytes: unpadded base64 too
	rawPrev := strings.TrimRight(strings.TrimPrefix(prev, SecretPrefix), "=")
	token := "Bearer sekrit-token-123"
	rc := newReceiver(t, cur)
	c := privateClient(t, ClientOptions{})
	for _, listed := range []bool{true, false} {
		for _, status := range []int{200, 301, 400, 410, 503} {
			rc.SetRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
				var echo bytes.Buffer
				_ = r.Header.Write(&echo)
				w.Header().Set("Location", "https://x.example.com/?s="+cur+"&t="+token)
				w.WriteHeader(status)
				_, _ = fmt.Fprintf(w, "%s %s %s also-listed %s", cur, prev, rawPrev, echo.String())
			})
			ep := endpoint(t, rc.URL+"/hook?token=querytoken", cur, prev)
			if !listed {
				ep.Redact = nil
			}
			ep.Redact = append(ep.Redact, "also-listed")
			ep.Headers = http.Header{"Authorization": {token}, "A-Short": {"ops"}}
			r := c.Send(context.Background(), ep, testEvent("ev-s"))
			for _, secret := range []string{strings.TrimPrefix(cur, SecretPrefix), strings.TrimPrefix(prev, SecretPrefix), rawPrev,
				"sekrit-token-123", "querytoken", "also-listed"} {
				if strings.Contains(r.Message, secret) {
					t.Fatalf("status %d, listed %v: %q shows %q", status, listed, r.Message, secret)
				}
			}
			if status != 200 && !strings.Contains(r.Message, "[redacted]") {
				t.Errorf("status %d: message %q has nothing redacted", status, r.Message)
			}
			if status == 400 && !strings.Contains(r.Message, "A-Short: ops") {
				t.Errorf("a short header value was redacted: %q", r.Message)
			}
		}
	}
}

func TestScrub(t *testing.T) {
	ep := &Endpoint{
		Secrets: []Secret{bytes.Repeat([]byte{0xfb}, 24)},
		Headers: http.Header{"A": {"Bearer abcdefgh"}, "B": {"abcdefgh"}, "C": {"short"}},
		Redact:  []string{"", "listed"},
	}
	b64 := base64.StdEncoding.EncodeToString(ep.Secrets[0])
	got := outbound.Scrub("x Bearer abcdefgh y abcdefgh short listed "+b64+" whsec_"+b64, ep.redactions())
	if want := "x [redacted] y [redacted] short [redacted] [redacted] whsec_[redacted]"; got != want {
		t.Fatalf("scrub = %q, want %q", got, want)
	}
}

// TestConcurrencyBound: never more than MaxConcurrency requests in flight
// across concurrent Send and SendAll calls, and more than one when allowed.
func TestConcurrencyBound(t *testing.T) {
	secret := secretOf(1, 32)
	rc := newReceiver(t, secret)
	rc.SetRespond(func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		time.Sleep(40 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	})
	c := privateClient(t, ClientOptions{MaxConcurrency: 3})
	ep := endpoint(t, rc.URL, secret)
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			var ds []Delivery
			for i := range 6 {
				ds = append(ds, Delivery{ep, testEvent(fmt.Sprintf("g%d-ev-%d", g, i))})
			}
			for _, r := range c.SendAll(context.Background(), ds) {
				if r.Outcome != Delivered {
					t.Errorf("SendAll: %+v", r)
				}
			}
		})
		wg.Go(func() {
			for i := range 2 {
				if r := c.Send(context.Background(), ep, testEvent(fmt.Sprintf("s%d-ev-%d", g, i))); r.Outcome != Delivered {
					t.Errorf("Send: %+v", r)
				}
			}
		})
	}
	wg.Wait()
	if m := rc.MaxInflight(); m > 3 || m < 2 {
		t.Fatalf("at most %d requests were in flight, want 2 or 3 (MaxConcurrency 3)", m)
	}
	if n := rc.Hits(); n != 24 {
		t.Fatalf("%d requests", n)
	}
}

// TestSendAllOrder: SendAll starts the deliveries in order and returns
// their results in order; with one slot the endpoints get them in order.
func TestSendAllOrder(t *testing.T) {
	secret := secretOf(1, 32)
	rc := newReceiver(t, secret)
	failing := newReceiver(t, secret)
	failing.SetRespond(outboundtest.Reply(http.StatusBadRequest, nil, ""))
	c := privateClient(t, ClientOptions{MaxConcurrency: 1})
	ok, bad := endpoint(t, rc.URL, secret), endpoint(t, failing.URL, secret)
	var ds []Delivery
	var want []string
	for i := range 12 {
		id := fmt.Sprintf("ev-%02d", i)
		ep := ok
		if i%3 == 2 {
			ep = bad
		} else {
			want = append(want, id)
		}
		ds = append(ds, Delivery{ep, testEvent(id)})
	}
	for i, r := range c.SendAll(context.Background(), ds) {
		if wantOK := i%3 != 2; (r.Outcome == Delivered) != wantOK {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if got := verified(rc); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("arrival order %q, want %q", got, want)
	}
}

// TestClose: a closed client still sends.
func TestClose(t *testing.T) {
	secret := secretOf(1, 32)
	rc := newReceiver(t, secret)
	c := privateClient(t, ClientOptions{})
	ep := endpoint(t, rc.URL, secret)
	for i := range 2 {
		if r := c.Send(context.Background(), ep, testEvent(fmt.Sprintf("ev-%d", i))); r.Outcome != Delivered {
			t.Fatalf("send %d: %+v", i, r)
		}
		c.Close()
	}
}
