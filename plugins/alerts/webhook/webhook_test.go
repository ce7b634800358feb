package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/outbound/outboundtest"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/stdwebhook"
)

// newSecret returns a fresh whsec_ secret.
func newSecret(t testing.TB) string {
	t.Helper()
	s, err := stdwebhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func parse(t testing.TB, s string) stdwebhook.Secret {
	t.Helper()
	k, err := stdwebhook.ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// receiver is a webhook endpoint on 127.0.0.1 that verifies every request
// with stdwebhook.Verify (401 when it does not verify, an error in
// Rejected) and answers the others 204, or as SetRespond says.
type receiver struct{ *outboundtest.Receiver }

func newReceiver(t *testing.T, secrets ...string) receiver {
	t.Helper()
	var keys []stdwebhook.Secret
	for _, s := range secrets {
		keys = append(keys, parse(t, s))
	}
	return receiver{outboundtest.Start(t, func(r *http.Request, body []byte) error {
		if err := stdwebhook.Verify(r.Header, body, time.Now(), stdwebhook.DefaultTolerance, keys...); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
		return nil
	})}
}

// count returns how many verified requests had the webhook-id id.
func (rc receiver) count(id string) int {
	n := 0
	for _, r := range rc.Requests() {
		if r.Header.Get(stdwebhook.HeaderID) == id {
			n++
		}
	}
	return n
}

// rejections returns how many requests did not verify.
func (rc receiver) rejections() int { return len(rc.Rejected()) }

// headers and bodies return those of the verified requests.
func (rc receiver) headers() []http.Header {
	var out []http.Header
	for _, r := range rc.Requests() {
		out = append(out, r.Header)
	}
	return out
}

func (rc receiver) bodies() [][]byte {
	var out [][]byte
	for _, r := range rc.Requests() {
		out = append(out, r.Body)
	}
	return out
}

// config returns a config body for url with secret, allowing private
// addresses (every test endpoint is on loopback), plus extra lines.
func config(url, secret string, extra ...string) string {
	lines := append([]string{
		fmt.Sprintf("url = %q", url),
		fmt.Sprintf("secret = %q", secret),
		"allow_private = true",
	}, extra...)
	return strings.Join(lines, "\n")
}

// newTestPlugin returns a plugin configured with src, logging JSON into
// the returned buffer.
func newTestPlugin(t *testing.T, src string) (*Plugin, *plugintest.LogBuffer) {
	return plugintest.ConfigureNew(t, newWithLogger, Spec(), src)
}

var eventTime = time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.UTC)

func testEvent(id string) *pluginv1.Event {
	return &pluginv1.Event{
		Id: id, Type: "deployment.failed", TimeUnixNano: eventTime.UnixNano(), UserId: 7, AppId: 42, Attempt: 1,
		DataJson: []byte(`{"app_name": "shop", "error": "build failed"}`),
	}
}

func TestInfo(t *testing.T) { plugintest.CheckInfo(t, New(), sdk.KindAlerts, Name, Version) }

func TestConfigure(t *testing.T) {
	secret := newSecret(t)
	old := newSecret(t)
	short := stdwebhook.SecretPrefix + "c2hvcnQ=" // "short"
	tests := []struct {
		name, hcl, wantErr string
		check              func(t *testing.T, s *settings)
	}{
		{name: "minimal", hcl: fmt.Sprintf("url = %q\nsecret = %q", "https://hooks.example.com/x?token=abc", secret),
			check: func(t *testing.T, s *settings) {
				if s.timeout != DefaultTimeout || s.concurrency != DefaultMaxConcurrency || len(s.endpoint.Secrets) != 1 {
					t.Errorf("defaults: timeout %v, concurrency %d, %d secrets", s.timeout, s.concurrency, len(s.endpoint.Secrets))
				}
				if s.endpoint.URL != "https://hooks.example.com/x?token=abc" || s.logURL != "https://hooks.example.com/x" {
					t.Errorf("url %q, log url %q", s.endpoint.URL, s.logURL)
				}
				if r := s.endpoint.Redact; len(r) != 2 || r[0] != secret || r[1] != strings.TrimPrefix(secret, "whsec_") {
					t.Errorf("%d strings to redact", len(r))
				}
			}},
		{name: "everything", hcl: config("http://127.0.0.1:8080/hook", secret,
			fmt.Sprintf("secrets_previous = [%q]", old), `timeout = "250ms"`, "max_concurrency = 2",
			`headers = { Authorization = "Bearer abc", "X-Team" = "ops", "User-Agent" = "custom" }`),
			check: func(t *testing.T, s *settings) {
				if s.timeout != 250*time.Millisecond || s.concurrency != 2 || len(s.endpoint.Secrets) != 2 {
					t.Errorf("timeout %v, concurrency %d, %d secrets", s.timeout, s.concurrency, len(s.endpoint.Secrets))
				}
				if h := s.endpoint.Headers; h.Get("Authorization") != "Bearer abc" || h.Get("X-Team") != "ops" || h.Get("User-Agent") != "custom" {
					t.Errorf("headers %v", h)
				}
			}},
		{name: "localhost passes Configure (the dial guard judges names)", hcl: fmt.Sprintf("url = %q\nsecret = %q", "http://localhost:9/", secret)},
		{name: "public literal address", hcl: fmt.Sprintf("url = %q\nsecret = %q", "https://203.0.113.7:8443/", secret)},
		{name: "public IPv6 literal", hcl: fmt.Sprintf("url = %q\nsecret = %q", "https://[2001:db8::1]/", secret)},

		{name: "no url", hcl: fmt.Sprintf("secret = %q", secret), wantErr: `"url" is required`},
		{name: "no secret", hcl: `url = "https://hooks.example.com/"`, wantErr: `"secret" is required`},
		{name: "empty url", hcl: config("", secret), wantErr: "url is required"},
		{name: "ftp", hcl: config("ftp://hooks.example.com/", secret), wantErr: "scheme must be http or https"},
		{name: "relative", hcl: config("/hook", secret), wantErr: "scheme must be http or https"},
		{name: "no host", hcl: config("https:///hook", secret), wantErr: "must be absolute"},
		{name: "opaque", hcl: config("https:hooks.example.com", secret), wantErr: "must be absolute"},
		{name: "user info", hcl: config("https://user:pass@hooks.example.com/", secret), wantErr: "must not hold a user name or password"},
		{name: "fragment", hcl: config("https://hooks.example.com/#x", secret), wantErr: "fragment"},
		{name: "bad port", hcl: config("https://hooks.example.com:99999/", secret), wantErr: "port"},
		{name: "empty port", hcl: config("https://hooks.example.com:/", secret), wantErr: "empty port"},
		{name: "white space", hcl: config(" https://hooks.example.com/", secret), wantErr: "white space"},
		{name: "unparsable", hcl: config("https://hooks.example.com/%zz", secret), wantErr: "not a valid URL"},
		{name: "loopback literal", hcl: fmt.Sprintf("url = %q\nsecret = %q", "http://127.0.0.1:8080/", secret), wantErr: "127.0.0.1 is a loopback address; set allow_private = true"},
		{name: "IPv6 loopback", hcl: fmt.Sprintf("url = %q\nsecret = %q", "http://[::1]/", secret), wantErr: "loopback"},
		{name: "mapped loopback", hcl: fmt.Sprintf("url = %q\nsecret = %q", "http://[::ffff:127.0.0.1]/", secret), wantErr: "loopback"},
		{name: "RFC 1918", hcl: fmt.Sprintf("url = %q\nsecret = %q", "http://10.1.2.3/", secret), wantErr: "private"},
		{name: "ULA", hcl: fmt.Sprintf("url = %q\nsecret = %q", "http://[fd00::1]/", secret), wantErr: "private"},
		{name: "metadata", hcl: fmt.Sprintf("url = %q\nsecret = %q", "http://169.254.169.254/latest/meta-data", secret), wantErr: "link-local"},
		{name: "IPv6 link-local with zone", hcl: fmt.Sprintf("url = %q\nsecret = %q", "http://[fe80::1%25eth0]/", secret), wantErr: "link-local"},
		{name: "CGNAT", hcl: fmt.Sprintf("url = %q\nsecret = %q", "http://100.64.1.1/", secret), wantErr: "carrier-grade NAT"},
		{name: "unspecified", hcl: fmt.Sprintf("url = %q\nsecret = %q", "http://0.0.0.0:80/", secret), wantErr: "unspecified"},
		{name: "multicast", hcl: fmt.Sprintf("url = %q\nsecret = %q", "http://224.0.0.1/", secret), wantErr: "multicast"},
		{name: "private with allow_private = false", hcl: fmt.Sprintf("url = %q\nsecret = %q\nallow_private = false", "http://192.168.0.10/", secret), wantErr: "private"},

		{name: "empty secret", hcl: config("https://hooks.example.com/", ""), wantErr: "secret is required"},
		{name: "secret without prefix", hcl: config("https://hooks.example.com/", strings.TrimPrefix(secret, "whsec_")), wantErr: `secret must start with "whsec_"`},
		{name: "short secret", hcl: config("https://hooks.example.com/", short), wantErr: "5 bytes once decoded, want 24 to 64"},
		{name: "secret not base64", hcl: config("https://hooks.example.com/", "whsec_not*base64*at*all*not*base64*at*all"), wantErr: "secret: stdwebhook: invalid secret"},
		{name: "bad previous secret", hcl: config("https://hooks.example.com/", secret, `secrets_previous = ["whsec_"]`), wantErr: "secrets_previous[0]: stdwebhook: invalid secret: empty"},
		{name: "previous equals secret", hcl: config("https://hooks.example.com/", secret, fmt.Sprintf("secrets_previous = [%q]", secret)), wantErr: "secrets_previous[0] is the same as secret"},
		{name: "previous twice", hcl: config("https://hooks.example.com/", secret, fmt.Sprintf("secrets_previous = [%q, %q]", old, old)), wantErr: "secrets_previous[1] is the same as secrets_previous[0]"},
		{name: "too many previous", hcl: config("https://hooks.example.com/", secret, fmt.Sprintf("secrets_previous = [%q, %q, %q, %q, %q]",
			newSecret(t), newSecret(t), newSecret(t), newSecret(t), newSecret(t))), wantErr: "at most 4"},

		{name: "timeout not a duration", hcl: config("https://hooks.example.com/", secret, `timeout = "soon"`), wantErr: "timeout: invalid duration"},
		{name: "timeout too short", hcl: config("https://hooks.example.com/", secret, `timeout = "10ms"`), wantErr: `timeout = "10ms": must be between 100ms and 5m`},
		{name: "timeout too long", hcl: config("https://hooks.example.com/", secret, `timeout = "1h"`), wantErr: "between"},
		{name: "concurrency 0", hcl: config("https://hooks.example.com/", secret, "max_concurrency = 0"), wantErr: "max_concurrency = 0: must be between 1 and 64"},
		{name: "concurrency 65", hcl: config("https://hooks.example.com/", secret, "max_concurrency = 65"), wantErr: "max_concurrency = 65"},
		{name: "concurrency fraction", hcl: config("https://hooks.example.com/", secret, "max_concurrency = 1.5"), wantErr: "decoding config"},

		{name: "webhook-id header", hcl: config("https://hooks.example.com/", secret, `headers = { "webhook-id" = "x" }`), wantErr: `"webhook-id" is refused`},
		{name: "webhook-signature header", hcl: config("https://hooks.example.com/", secret, `headers = { "Webhook-Signature" = "v1,x" }`), wantErr: "refused"},
		{name: "other webhook- header", hcl: config("https://hooks.example.com/", secret, `headers = { "WEBHOOK-VERSION" = "2" }`), wantErr: "refused"},
		{name: "Host header", hcl: config("https://hooks.example.com/", secret, `headers = { Host = "internal" }`), wantErr: `"Host" is refused`},
		{name: "Content-Length", hcl: config("https://hooks.example.com/", secret, `headers = { "content-length" = "1" }`), wantErr: "refused"},
		{name: "Content-Type", hcl: config("https://hooks.example.com/", secret, `headers = { "Content-Type" = "text/plain" }`), wantErr: "refused"},
		{name: "hop-by-hop", hcl: config("https://hooks.example.com/", secret, `headers = { Connection = "close" }`), wantErr: "refused"},
		{name: "transfer-encoding", hcl: config("https://hooks.example.com/", secret, `headers = { "Transfer-Encoding" = "chunked" }`), wantErr: "refused"},
		{name: "bad header name", hcl: config("https://hooks.example.com/", secret, `headers = { "X Bad" = "1" }`), wantErr: "not a valid header name"},
		{name: "header value with newline", hcl: config("https://hooks.example.com/", secret, `headers = { "X-A" = "a\r\nX-Injected: 1" }`), wantErr: "control character"},
		{name: "header twice", hcl: config("https://hooks.example.com/", secret, `headers = { "X-A" = "1", "x-a" = "2" }`), wantErr: "set twice"},
		{name: "unknown attribute", hcl: config("https://hooks.example.com/", secret, `method = "PUT"`), wantErr: "Unsupported argument"},
		{name: "wrong type", hcl: config("https://hooks.example.com/", secret, `headers = ["x"]`), wantErr: "map of string required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, buf := plugintest.JSONLogger()
			p := newWithLogger(l)
			err := plugintest.Configure(p, Spec(), tt.hcl)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if p.settings.Load() != nil {
					t.Error("a rejected config left settings behind")
				}
				for _, s := range []string{secret, strings.TrimPrefix(secret, "whsec_"), old, strings.TrimPrefix(old, "whsec_")} {
					if strings.Contains(err.Error(), s) || strings.Contains(buf.String(), s) {
						t.Fatalf("the error or log shows a secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, p.settings.Load())
			}
		})
	}
}

// TestReconfigure: a rejected config leaves the previous one in force; an
// accepted one replaces it.
func TestReconfigure(t *testing.T) {
	secret := newSecret(t)
	p, _ := newTestPlugin(t, config("https://a.example.com/", secret))
	if err := plugintest.Configure(p, Spec(), config("ftp://b.example.com/", secret)); err == nil {
		t.Fatal("ftp accepted")
	}
	if got := p.settings.Load().endpoint.URL; got != "https://a.example.com/" {
		t.Fatalf("url after a rejected config: %q", got)
	}
	if err := plugintest.Configure(p, Spec(), config("https://c.example.com/", secret, "max_concurrency = 3")); err != nil {
		t.Fatal(err)
	}
	if s := p.settings.Load(); s.endpoint.URL != "https://c.example.com/" || s.concurrency != 3 {
		t.Fatalf("url %q, concurrency %d", s.endpoint.URL, s.concurrency)
	}
}

// TestDeliverSigned: the receiver verifies every delivery, sees the
// headers the package documents, and a retry keeps the webhook-id.
func TestDeliverSigned(t *testing.T) {
	secret := newSecret(t)
	rc := newReceiver(t, secret)
	p, _ := newTestPlugin(t, config(rc.URL+"/hook?token=abc", secret, `headers = { Authorization = "Bearer sekrit-token-123" }`))

	events := []*pluginv1.Event{testEvent("ev-1"), testEvent("ev-2"), testEvent("ev-3")}
	before := time.Now()
	for i, r := range plugintest.Deliver(t, p, events...) {
		if r.GetOutcome() != delivered || r.GetRetryAfterMs() != 0 || r.GetMessage() != "the endpoint answered 204 No Content" {
			t.Errorf("result %d: %v", i, r)
		}
	}
	if rc.rejections() != 0 {
		t.Fatalf("receiver rejected %d requests: %v", rc.rejections(), rc.Rejected())
	}
	for _, ev := range events {
		if n := rc.count(ev.GetId()); n != 1 {
			t.Errorf("%s received %d times", ev.GetId(), n)
		}
	}
	h := rc.headers()[0]
	if got := h.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if got := h.Get("User-Agent"); got != "WiseHosting-Webhooks/"+Version {
		t.Errorf("User-Agent %q", got)
	}
	if got := h.Get("Authorization"); got != "Bearer sekrit-token-123" {
		t.Errorf("Authorization %q", got)
	}
	ts, err := strconv.ParseInt(h.Get("Webhook-Timestamp"), 10, 64)
	if err != nil || ts < before.Unix() || ts > time.Now().Unix() {
		t.Errorf("webhook-timestamp %q is not the send time", h.Get("Webhook-Timestamp"))
	}
	if sigs := strings.Fields(h.Get("Webhook-Signature")); len(sigs) != 1 || !strings.HasPrefix(sigs[0], "v1,") {
		t.Errorf("webhook-signature %q", h.Get("Webhook-Signature"))
	}

	// A retry of ev-2 carries the same webhook-id.
	retried := testEvent("ev-2")
	retried.Attempt = 2
	if r := plugintest.Deliver(t, p, retried)[0]; r.GetOutcome() != delivered {
		t.Fatalf("retry: %v", r)
	}
	if n := rc.count("ev-2"); n != 2 {
		t.Errorf("ev-2 received %d times, want 2 under the same webhook-id", n)
	}
}

// newTamperer returns a man in the middle on 127.0.0.1 that forwards every
// request to target with "shop" in its body changed to "shoq" (same length),
// after the plugin signed it, and relays the answer.
func newTamperer(t *testing.T, target string) *httptest.Server {
	t.Helper()
	to, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(to)
		body, err := io.ReadAll(r.In.Body)
		if err != nil {
			body = nil // the receiver rejects the empty body
		}
		body = bytes.Replace(body, []byte(`"shop"`), []byte(`"shoq"`), 1)
		r.Out.Body = io.NopCloser(bytes.NewReader(body))
		r.Out.ContentLength = int64(len(body))
	}}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv
}

// TestTamperedRejected: a body changed on the way does not verify; the
// receiver's 401 makes the event fail.
func TestTamperedRejected(t *testing.T) {
	secret := newSecret(t)
	rc := newReceiver(t, secret)
	mitm := newTamperer(t, rc.URL)
	p, _ := newTestPlugin(t, config(mitm.URL, secret))

	r := plugintest.Deliver(t, p, testEvent("ev-t"))[0]
	if r.GetOutcome() != failed || !strings.Contains(r.GetMessage(), "401 Unauthorized") ||
		!strings.Contains(r.GetMessage(), "no matching signature") {
		t.Fatalf("result %v", r)
	}
	if rc.rejections() != 1 || rc.count("ev-t") != 0 {
		t.Fatalf("receiver: %d rejected, %d accepted", rc.rejections(), rc.count("ev-t"))
	}
	if !errors.Is(rc.Rejected()[0], stdwebhook.ErrNoMatchingSignature) {
		t.Fatalf("receiver error %v", rc.Rejected()[0])
	}
}

// TestRotation: with secrets_previous, receivers knowing the old secret or
// the new one both verify; one knowing neither does not.
func TestRotation(t *testing.T) {
	cur, prev, other := newSecret(t), newSecret(t), newSecret(t)
	for _, tt := range []struct {
		name  string
		knows string
		want  pluginv1.DeliveryOutcome
	}{
		{"receiver knows only the previous secret", prev, delivered},
		{"receiver knows only the new secret", cur, delivered},
		{"receiver knows another secret", other, failed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, tt.knows)
			p, _ := newTestPlugin(t, config(rc.URL, cur, fmt.Sprintf("secrets_previous = [%q]", prev)))
			if r := plugintest.Deliver(t, p, testEvent("ev-r"))[0]; r.GetOutcome() != tt.want {
				t.Fatalf("result %v", r)
			}
			if tt.want == delivered {
				if sigs := strings.Fields(rc.headers()[0].Get("Webhook-Signature")); len(sigs) != 2 {
					t.Fatalf("signatures %q, want the new and the previous one", sigs)
				}
			}
		})
	}
}

// TestBodyShape holds the request body to its documented shape, byte for
// byte.
func TestBodyShape(t *testing.T) {
	secret := newSecret(t)
	rc := newReceiver(t, secret)
	p, _ := newTestPlugin(t, config(rc.URL, secret))
	noSubject := &pluginv1.Event{Id: "ev-2", Type: "webhook.test", TimeUnixNano: eventTime.UnixNano()}
	html := &pluginv1.Event{Id: "ev-3", Type: "app.violation", TimeUnixNano: eventTime.Add(time.Second).UnixNano(), AppId: 1,
		DataJson: []byte(" {\"reason\":\"<script>&\",\n \"n\": 9007199254740993} ")}
	plugintest.Deliver(t, p, testEvent("ev-1"))
	plugintest.Deliver(t, p, noSubject)
	plugintest.Deliver(t, p, html)
	want := []string{
		`{"id":"ev-1","type":"deployment.failed","timestamp":"2026-03-01T12:30:45.123456789Z","user_id":7,"app_id":42,"data":{"app_name":"shop","error":"build failed"}}`,
		`{"id":"ev-2","type":"webhook.test","timestamp":"2026-03-01T12:30:45.123456789Z","user_id":0,"app_id":0,"data":{}}`,
		`{"id":"ev-3","type":"app.violation","timestamp":"2026-03-01T12:30:46.123456789Z","user_id":0,"app_id":1,"data":{"reason":"<script>&","n":9007199254740993}}`,
	}
	if len(rc.bodies()) != len(want) {
		t.Fatalf("%d bodies", len(rc.bodies()))
	}
	for i, w := range want {
		if string(rc.bodies()[i]) != w {
			t.Errorf("body %d:\n got: %s\nwant: %s", i, rc.bodies()[i], w)
		}
		var m map[string]any
		if err := json.Unmarshal(rc.bodies()[i], &m); err != nil || len(m) != 6 {
			t.Errorf("body %d: %v, %d keys", i, err, len(m))
		}
	}
}

// TestBodyWithoutEventTime: an event without time_unix_nano gets the send
// time, not the Unix epoch.
func TestBodyWithoutEventTime(t *testing.T) {
	secret := newSecret(t)
	rc := newReceiver(t, secret)
	p, _ := newTestPlugin(t, config(rc.URL, secret))
	before := time.Now().UTC()
	if r := plugintest.Deliver(t, p, &pluginv1.Event{Id: "x", Type: "t"})[0]; r.GetOutcome() != delivered {
		t.Fatalf("result %v", r)
	}
	var m struct{ Timestamp time.Time }
	if err := json.Unmarshal(rc.bodies()[0], &m); err != nil {
		t.Fatal(err)
	}
	if m.Timestamp.Before(before) || m.Timestamp.After(time.Now()) || m.Timestamp.Location() != time.UTC {
		t.Fatalf("timestamp %v", m.Timestamp)
	}
}

// TestUnsendableEvents fail without a request.
func TestUnsendableEvents(t *testing.T) {
	secret := newSecret(t)
	rc := newReceiver(t, secret)
	p, _ := newTestPlugin(t, config(rc.URL, secret))
	tests := []struct {
		ev   *pluginv1.Event
		want string
	}{
		{&pluginv1.Event{Id: "", Type: "t"}, "the event has no id"},
		{&pluginv1.Event{Id: "a.b", Type: "t"}, "cannot be a webhook-id"},
		{&pluginv1.Event{Id: "a b", Type: "t"}, "cannot be a webhook-id"},
		{&pluginv1.Event{Id: "a\nb", Type: "t"}, "cannot be a webhook-id"},
		{&pluginv1.Event{Id: strings.Repeat("x", 257), Type: "t"}, "longer than 256"},
		{&pluginv1.Event{Id: "d1", Type: "t", DataJson: []byte(`[1,2]`)}, "not a JSON object"},
		{&pluginv1.Event{Id: "d2", Type: "t", DataJson: []byte(`{"a":`)}, "not a JSON object"},
		{&pluginv1.Event{Id: "d3", Type: "t", DataJson: []byte(`{"a":1} {"b":2}`)}, "not a JSON object"},
	}
	for _, tt := range tests {
		resp, err := p.Deliver(context.Background(), &pluginv1.DeliverRequest{Events: []*pluginv1.Event{tt.ev}})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.GetResults()[0]
		if r.GetOutcome() != failed || !strings.Contains(r.GetMessage(), tt.want) || !strings.HasPrefix(r.GetMessage(), "not sent: ") {
			t.Errorf("event %q: %v, want failed with %q", tt.ev.GetId(), r, tt.want)
		}
	}
	if n := rc.Hits(); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}
}

// TestOutcomes maps the receiver's answers to results: one answer of
// each kind. What every status means is sdk/stdwebhook's (its
// TestSendOutcomes); this holds the plugin to its translation into a
// DeliveryResult, retry_after_ms included.
func TestOutcomes(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		want      pluginv1.DeliveryOutcome
		afterMin  time.Duration
		afterMax  time.Duration
		msg       []string
		msgAbsent []string
	}{
		{name: "204", status: 204, want: delivered, msg: []string{"204 No Content"}},
		{name: "410 disables", status: 410, body: "endpoint deleted", want: failed,
			msg: []string{"410 Gone", "asked to be disabled", `"endpoint deleted"`}},
		{name: "429 with seconds", status: 429, header: map[string]string{"Retry-After": "30"}, want: retry,
			afterMin: 30 * time.Second, afterMax: 30 * time.Second, msg: []string{"429 Too Many Requests", "retry after 30s"}},
		{name: "503 with a date", status: 503, header: map[string]string{"Retry-After": date}, want: retry,
			afterMin: 85 * time.Second, afterMax: 90 * time.Second, msg: []string{"503"}},
		{name: "503 with a long Retry-After", status: 503, header: map[string]string{"Retry-After": "7200"}, want: retry,
			afterMin: time.Hour, afterMax: time.Hour, msg: []string{"retry after 1h0m0s"}},
		{name: "500 without Retry-After", status: 500, body: "boom\x00\x1b[31m\nstack", want: retry,
			msg: []string{`500 Internal Server Error: "boom [31m stack"`}, msgAbsent: []string{"\x00", "\x1b", "\n"}},
		{name: "400", status: 400, body: `{"error":"bad"}`, want: failed, msg: []string{`400 Bad Request: "{ error : bad }"; not retried`}},
		{name: "302", status: 302, header: map[string]string{"Location": "/elsewhere"}, want: failed, msg: []string{"302 Found", "not followed"}},
	}
	secret := newSecret(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, secret)
			rc.SetRespond(outboundtest.Reply(tt.status, tt.header, tt.body))
			p, _ := newTestPlugin(t, config(rc.URL+"/hook", secret))
			r := plugintest.Deliver(t, p, testEvent("ev-o"))[0]
			plugintest.CheckResult(t, r, plugintest.WantResult{Outcome: tt.want, RetryAfterMin: tt.afterMin, RetryAfterMax: tt.afterMax,
				Has: tt.msg, HasNot: tt.msgAbsent})
			if n := rc.Hits(); n != 1 {
				t.Errorf("the receiver got %d requests (a redirect followed?)", n)
			}
		})
	}
}

// TestTimeout: an endpoint slower than timeout makes the event retry.
func TestTimeout(t *testing.T) {
	secret := newSecret(t)
	rc := newReceiver(t, secret)
	rc.SetRespond(outboundtest.Stall(5 * time.Second))
	p, _ := newTestPlugin(t, config(rc.URL, secret, `timeout = "200ms"`))
	start := time.Now()
	r := plugintest.Deliver(t, p, testEvent("ev-slow"))[0]
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v", took)
	}
	if r.GetOutcome() != retry || !strings.Contains(r.GetMessage(), "no answer within the timeout of 200ms") {
		t.Fatalf("result %v", r)
	}
}

// TestUnreachable: no one listening makes the event retry.
func TestUnreachable(t *testing.T) {
	addr := outboundtest.ClosedAddr(t)
	secret := newSecret(t)
	p, _ := newTestPlugin(t, config("http://"+addr+"/hook?token=querytoken", secret))
	r := plugintest.Deliver(t, p, testEvent("ev-u"))[0]
	if r.GetOutcome() != retry || !strings.Contains(r.GetMessage(), "request failed") || !strings.Contains(r.GetMessage(), "refused") {
		t.Fatalf("result %v", r)
	}
	if strings.Contains(r.GetMessage(), "querytoken") {
		t.Fatalf("the message shows the url's query: %q", r.GetMessage())
	}
}

// TestCancelled: events not sent when Deliver's context ends are retried.
func TestCancelled(t *testing.T) {
	secret := newSecret(t)
	rc := newReceiver(t, secret)
	p, _ := newTestPlugin(t, config(rc.URL, secret, "max_concurrency = 1"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp, err := p.Deliver(ctx, &pluginv1.DeliverRequest{Events: []*pluginv1.Event{testEvent("a"), testEvent("b"), testEvent("c")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.GetResults() {
		if r.GetOutcome() != retry || !strings.Contains(r.GetMessage(), "cancelled") {
			t.Errorf("result %v", r)
		}
	}
}

// TestNotConfigured: before Configure every event is retried.
func TestNotConfigured(t *testing.T) {
	p := New()
	resp, err := p.Deliver(context.Background(), &pluginv1.DeliverRequest{Events: []*pluginv1.Event{testEvent("a")}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.GetResults()[0]; r.GetOutcome() != retry || !strings.Contains(r.GetMessage(), "not configured") {
		t.Fatalf("result %v", r)
	}
}

// TestConcurrencyBound: never more than max_concurrency requests in
// flight, also across concurrent Deliver calls, and more than one when
// allowed.
func TestConcurrencyBound(t *testing.T) {
	secret := newSecret(t)
	rc := newReceiver(t, secret)
	rc.SetRespond(func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		time.Sleep(40 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	})
	p, _ := newTestPlugin(t, config(rc.URL, secret, "max_concurrency = 3"))
	plugintest.DeliverAtOnce(t, p, 3, func(c int) []*pluginv1.Event {
		var events []*pluginv1.Event
		for i := range 8 {
			events = append(events, testEvent(fmt.Sprintf("c%d-ev-%d", c, i)))
		}
		return events
	})
	if m := rc.MaxInflight(); m > 3 || m < 2 {
		t.Fatalf("at most %d requests were in flight, want 2 or 3 (max_concurrency = 3)", m)
	}
	if n := rc.Hits(); n != 24 {
		t.Fatalf("%d requests", n)
	}
}

// TestPrivateRefusedAtDial: without allow_private, a host name resolving to
// loopback is refused when connecting, before any request; the event fails
// with a message saying why.
func TestPrivateRefusedAtDial(t *testing.T) {
	secret := newSecret(t)
	rc := newReceiver(t, secret)
	port := rc.Port()
	l, buf := plugintest.JSONLogger()
	p := newWithLogger(l)
	if err := plugintest.Configure(p, Spec(), fmt.Sprintf("url = %q\nsecret = %q", "http://localhost:"+port+"/hook", secret)); err != nil {
		t.Fatal(err)
	}
	r := plugintest.Deliver(t, p, testEvent("ev-p"))[0]
	if r.GetOutcome() != failed || !strings.Contains(r.GetMessage(), "refused to connect to") ||
		!strings.Contains(r.GetMessage(), "a loopback address (a configuration problem") || !strings.Contains(r.GetMessage(), "not retried") ||
		!strings.HasSuffix(r.GetMessage(), "point url at a public address, or set allow_private = true") {
		t.Fatalf("result %v", r)
	}
	if n := rc.Hits(); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}
	if !strings.Contains(buf.String(), "webhook not delivered") {
		t.Errorf("no warning logged:\n%s", buf)
	}

	// The same endpoint with allow_private = true is reached.
	if err := plugintest.Configure(p, Spec(), config("http://localhost:"+port+"/hook", secret)); err != nil {
		t.Fatal(err)
	}
	if r := plugintest.Deliver(t, p, testEvent("ev-p"))[0]; r.GetOutcome() != delivered {
		t.Fatalf("with allow_private: %v", r)
	}
}

// TestSecretsNeverShown: an endpoint echoing everything it gets (and the
// secrets themselves) gets none of the secrets or header values into
// results or the log.
func TestSecretsNeverShown(t *testing.T) {
	cur, prev := newSecret(t), newSecret(t)
	token := "Bearer sekrit-token-123"
	rc := newReceiver(t, cur)
	for _, status := range []int{200, 301, 400, 410, 503} {
		rc.SetRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
			var echo bytes.Buffer
			_ = r.Header.Write(&echo)
			w.Header().Set("Location", "https://x.example.com/?s="+cur+"&t="+token)
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, "%s %s %s %s", cur, prev, strings.TrimPrefix(prev, "whsec_"), echo.String())
		})
		p, buf := newTestPlugin(t, config(rc.URL+"/hook?token=querytoken", cur,
			fmt.Sprintf("secrets_previous = [%q]", prev), fmt.Sprintf("headers = { Authorization = %q }", token)))
		results := plugintest.Deliver(t, p, testEvent("ev-s"))
		for _, sink := range []string{results[0].GetMessage(), buf.String()} {
			for _, secret := range []string{cur, prev, strings.TrimPrefix(cur, "whsec_"), strings.TrimPrefix(prev, "whsec_"),
				"sekrit-token-123", "querytoken"} {
				if strings.Contains(sink, secret) {
					t.Fatalf("status %d: %q shows a secret", status, sink)
				}
			}
		}
		if status != 200 && !strings.Contains(results[0].GetMessage(), "[redacted]") {
			t.Errorf("status %d: message %q has nothing redacted", status, results[0].GetMessage())
		}
	}
}

// TestResultMapping maps the sender's results to the protocol's, and logs
// failures as warnings.
func TestResultMapping(t *testing.T) {
	tests := []struct {
		name  string
		res   stdwebhook.Result
		want  *pluginv1.DeliveryResult
		warns bool
	}{
		{"delivered", stdwebhook.Result{Outcome: stdwebhook.Delivered, StatusCode: 200, Message: "ok"},
			&pluginv1.DeliveryResult{EventId: "e", Outcome: delivered, Message: "ok"}, false},
		{"retry after", stdwebhook.Result{Outcome: stdwebhook.Retry, RetryAfter: 1500 * time.Millisecond, Message: "later"},
			&pluginv1.DeliveryResult{EventId: "e", Outcome: retry, RetryAfterMs: 1500, Message: "later"}, false},
		{"gone", stdwebhook.Result{Outcome: stdwebhook.Failed, Gone: true, StatusCode: 410, Message: "gone"},
			&pluginv1.DeliveryResult{EventId: "e", Outcome: failed, Message: "gone"}, true},
		{"blocked", stdwebhook.Result{Outcome: stdwebhook.Failed, Blocked: true, Message: "not sent: refused (a configuration problem, not retried)"},
			&pluginv1.DeliveryResult{EventId: "e", Outcome: failed,
				Message: "not sent: refused (a configuration problem, not retried); point url at a public address, or set allow_private = true"}, true},
		{"unknown outcome", stdwebhook.Result{Outcome: 0, Message: "?"},
			&pluginv1.DeliveryResult{EventId: "e", Outcome: retry, Message: "the sender gave the unknown outcome Outcome(0): ?"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, buf := plugintest.JSONLogger()
			p := newWithLogger(l)
			got := p.result(&settings{logURL: "https://h/p"}, &pluginv1.Event{Id: "e", Type: "t"}, tt.res)
			if got.GetEventId() != tt.want.GetEventId() || got.GetOutcome() != tt.want.GetOutcome() ||
				got.GetRetryAfterMs() != tt.want.GetRetryAfterMs() || got.GetMessage() != tt.want.GetMessage() {
				t.Fatalf("result %v, want %v", got, tt.want)
			}
			if warned := strings.Contains(buf.String(), "webhook not delivered"); warned != tt.warns {
				t.Fatalf("warned %v, want %v:\n%s", warned, tt.warns, buf)
			}
		})
	}
}

// TestDeliverInOrder: with max_concurrency = 1 the endpoint gets the events
// in the order of the request.
func TestDeliverInOrder(t *testing.T) {
	secret := newSecret(t)
	var mu sync.Mutex
	var order []string
	rc := newReceiver(t, secret)
	rc.SetRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		mu.Lock()
		order = append(order, r.Header.Get(stdwebhook.HeaderID))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	p, _ := newTestPlugin(t, config(rc.URL, secret, "max_concurrency = 1"))
	var events []*pluginv1.Event
	var want []string
	for i := range 10 {
		events = append(events, testEvent(fmt.Sprintf("ev-%d", i)))
		want = append(want, fmt.Sprintf("ev-%d", i))
	}
	for _, r := range plugintest.Deliver(t, p, events...) {
		if r.GetOutcome() != delivered {
			t.Fatalf("result %v", r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Fatalf("arrival order %q", order)
	}
}
