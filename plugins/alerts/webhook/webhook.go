// Package webhook is the built-in "webhook" alert sink: it POSTs every
// event to an HTTP endpoint as JSON, signed the Standard Webhooks way
// (https://www.standardwebhooks.com/, see sdk/stdwebhook), so a receiver can
// check that the platform sent it and that nothing changed on the way.
//
// The body of each request is one event:
//
//	{"id":"0b7e…","type":"deployment.failed","timestamp":"2026-03-01T12:30:45.123456789Z",
//	 "user_id":7,"app_id":42,"data":{"app_name":"shop","error":"build failed"}}
//
// timestamp is when the event happened (RFC 3339, UTC, nanoseconds; the
// send time if the event has none), user_id and app_id are 0 when the event
// has no such subject, data is the event's details (a JSON object, {} when
// empty). The request carries Content-Type: application/json, User-Agent:
// WiseHosting-Webhooks/<version>, and the Standard Webhooks headers:
// webhook-id is the event's id, the same on every retry (deduplicate on
// it); webhook-timestamp is the time of this attempt; webhook-signature
// holds "v1,<signature>" with secret and, during a rotation, one more per
// secrets_previous entry.
//
// Each event gets one result:
//
//   - 2xx: delivered.
//   - 410 Gone: failed, never retried: the endpoint asked to be disabled.
//   - 408, 429 and 5xx: retried, no sooner than the answer's Retry-After
//     (seconds or an HTTP date, at most MaxRetryAfter).
//   - 3xx: failed: redirects are not followed (they would let the endpoint
//     send the signed event elsewhere); set url to the new address.
//   - other statuses: failed.
//   - no answer (network errors, timeouts): retried.
//   - a connection the address guard refused: failed (see below).
//
// Messages quote at most a few hundred bytes of the answer (control
// characters removed); at most 64 KiB of it is read.
//
// Unless allow_private is set, the plugin refuses (sdk/netguard) to connect to loopback,
// private (RFC 1918, fc00::/7), link-local (169.254.0.0/16, where cloud
// metadata services answer, and fe80::/10), unspecified, multicast,
// carrier-grade NAT (100.64.0.0/10) and reserved addresses, also in their
// IPv4-mapped IPv6 forms. The check runs when the connection is made, on
// the address the host name resolved to, so a name that resolves to a
// private address (DNS rebinding included) is refused; a url with a literal
// address of that kind is already rejected by Configure. A refused address
// is a configuration problem, not a passing one, so the event fails with a
// message saying so rather than being retried. No proxy from the
// environment is used.
//
// Configuration:
//
//	plugin "alerts" "ops-webhook" {
//	  source = "webhook"
//	  events = ["deployment.*", "app.offline"]
//	  config {
//	    url              = "https://hooks.example.com/wisehosting"  # required, http or https
//	    secret           = "whsec_…"       # required: whsec_ and the base64 of 24 to 64 random bytes
//	    secrets_previous = ["whsec_…"]     # also signed with while receivers move to the new secret
//	    timeout          = "10s"           # per request, connection included
//	    max_concurrency  = 8               # requests in flight at once
//	    allow_private    = false           # true lets url reach private and loopback addresses
//	    headers          = { Authorization = "Bearer …" }  # extra request headers
//	  }
//	}
//
// secret, secrets_previous and the header values are never logged nor put
// in a result's message. A secret can be made with
// `echo "whsec_$(openssl rand -base64 32)"`.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/netguard"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/stdwebhook"
	"github.com/wisehosting/wisehosting/sdk/units"
)

// Name is the plugin's name: plugin "alerts" "<instance>" { source = "webhook" … }.
const Name = "webhook"

// Version is the plugin's release version.
const Version = "0.1.0"

// UserAgent is the User-Agent of every request.
const UserAgent = "WiseHosting-Webhooks/" + Version

// ContentType is the content type of every request's body.
const ContentType = "application/json"

// Defaults and bounds of the config block.
const (
	// DefaultTimeout bounds one request: connecting, sending, the answer.
	DefaultTimeout = 10 * time.Second
	// MinTimeout and MaxTimeout bound timeout.
	MinTimeout = 100 * time.Millisecond
	MaxTimeout = 5 * time.Minute
	// DefaultMaxConcurrency is how many requests may be in flight at once.
	DefaultMaxConcurrency = 8
	// MaxMaxConcurrency bounds max_concurrency.
	MaxMaxConcurrency = 64
	// MaxPreviousSecrets bounds secrets_previous.
	MaxPreviousSecrets = 4
	// MaxHeaders bounds headers; MaxHeaderValue bounds each value's length.
	MaxHeaders     = 32
	MaxHeaderValue = 4 << 10
)

// MaxRetryAfter caps the retry delay a Retry-After header asks for.
const MaxRetryAfter = time.Hour

// maxReadBody bounds how much of an answer is read; maxQuote how much of
// it a message quotes.
const (
	maxReadBody = 64 << 10
	maxQuote    = 256
)

// maxEventID bounds the length of an event id sent as webhook-id.
const maxEventID = 256

// Config is the plugin's decoded config block.
type Config struct {
	// URL the events are posted to: http or https, no user info or
	// fragment. Required.
	URL string `json:"url"`
	// Secret signs every request: "whsec_" and standard base64 of 24 to 64
	// bytes. Required; never logged.
	Secret string `json:"secret"`
	// SecretsPrevious are older secrets requests are also signed with, so
	// receivers still knowing one of them keep verifying during a rotation.
	SecretsPrevious []string `json:"secrets_previous"`
	// Timeout of one request (a units.ParseDuration string); "" means
	// DefaultTimeout.
	Timeout string `json:"timeout"`
	// AllowPrivate lets requests reach loopback, private, link-local and
	// other non-public addresses.
	AllowPrivate bool `json:"allow_private"`
	// MaxConcurrency is how many requests may be in flight at once; nil
	// means DefaultMaxConcurrency.
	MaxConcurrency *int `json:"max_concurrency"`
	// Headers are extra request headers. The webhook-* headers,
	// Content-Type, Content-Length, Host and hop-by-hop headers are refused.
	Headers map[string]string `json:"headers"`
}

// Spec returns the schema of the plugin's config block.
func Spec() *pluginv1.Spec {
	return hclspec.Object(map[string]*pluginv1.Spec{
		"url": hclspec.Attr("url", "string", true,
			"Where events are POSTed: an http or https URL."),
		"secret": hclspec.Attr("secret", "string", true,
			"Standard Webhooks signing secret: whsec_ followed by the base64 of 24 to 64 random bytes. Sensitive."),
		"secrets_previous": hclspec.Attr("secrets_previous", "list(string)", false,
			"Previous secrets requests are also signed with while receivers move to the new one. Sensitive."),
		"timeout": hclspec.Default(
			hclspec.Attr("timeout", "string", false, "Time limit of one request, connecting included."),
			hclspec.Literal(strconv.Quote(units.FormatDuration(DefaultTimeout)))),
		"allow_private": hclspec.Default(
			hclspec.Attr("allow_private", "bool", false,
				"Allow connections to loopback, private, link-local and other non-public addresses."),
			hclspec.Literal("false")),
		"max_concurrency": hclspec.Default(
			hclspec.Attr("max_concurrency", "number", false, "How many requests may be in flight at once."),
			hclspec.Literal(strconv.Itoa(DefaultMaxConcurrency))),
		"headers": hclspec.Attr("headers", "map(string)", false,
			"Extra request headers, e.g. Authorization. Values are never logged."),
	})
}

// settings are the validated config Deliver uses. A new configuration
// makes new settings; deliveries in flight finish with the old ones.
type settings struct {
	url     string // as configured
	logURL  string // scheme://host/path: no query, for logs
	secrets []stdwebhook.Secret
	timeout time.Duration
	headers http.Header
	// redact are strings a message must never show (secrets, header values).
	redact []string
	client *http.Client
	// sem bounds the requests in flight, across concurrent Deliver calls.
	sem chan struct{}
}

// Plugin is the webhook alert sink. Create it with New.
type Plugin struct {
	sdk.Base

	cfg      Config
	settings atomic.Pointer[settings] // nil until configured
	log      hclog.Logger
}

var _ sdk.AlertSink = (*Plugin)(nil)

// New returns the unconfigured plugin, logging through sdk.Logger.
func New() *Plugin { return newWithLogger(sdk.Logger()) }

func newWithLogger(l hclog.Logger) *Plugin {
	p := &Plugin{
		Base: sdk.Base{
			Kind:        sdk.KindAlerts,
			Name:        Name,
			Version:     Version,
			Description: "POSTs each event as JSON to an HTTP endpoint, signed the Standard Webhooks way.",
			Spec:        Spec(),
		},
		log: l,
	}
	p.Config = &p.cfg
	p.Validate = p.validate
	return p
}

func (p *Plugin) validate() error {
	c := &p.cfg
	s := &settings{timeout: DefaultTimeout, headers: http.Header{}}

	if c.Timeout != "" {
		d, err := units.ParseDuration(c.Timeout)
		if err != nil {
			return fmt.Errorf("timeout: %w", err)
		}
		if d < MinTimeout || d > MaxTimeout {
			return fmt.Errorf("timeout = %q: must be between %v and %v", c.Timeout, MinTimeout, MaxTimeout)
		}
		s.timeout = d
	}
	conc := DefaultMaxConcurrency
	if c.MaxConcurrency != nil {
		conc = *c.MaxConcurrency
		if conc < 1 || conc > MaxMaxConcurrency {
			return fmt.Errorf("max_concurrency = %d: must be between 1 and %d", conc, MaxMaxConcurrency)
		}
	}

	u, err := checkURL(c.URL, c.AllowPrivate)
	if err != nil {
		return err
	}
	s.url = u.String()
	s.logURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()

	key, err := parseSecret("secret", c.Secret)
	if err != nil {
		return err
	}
	s.secrets = append(s.secrets, key)
	s.redact = append(s.redact, secretForms(c.Secret)...)
	if len(c.SecretsPrevious) > MaxPreviousSecrets {
		return fmt.Errorf("secrets_previous: at most %d secrets, not %d", MaxPreviousSecrets, len(c.SecretsPrevious))
	}
	for i, raw := range c.SecretsPrevious {
		attr := fmt.Sprintf("secrets_previous[%d]", i)
		key, err := parseSecret(attr, raw)
		if err != nil {
			return err
		}
		for j, prev := range s.secrets {
			if bytes.Equal(prev, key) {
				if j == 0 {
					return fmt.Errorf("%s is the same as secret", attr)
				}
				return fmt.Errorf("%s is the same as secrets_previous[%d]", attr, j-1)
			}
		}
		s.secrets = append(s.secrets, key)
		s.redact = append(s.redact, secretForms(raw)...)
	}

	if len(c.Headers) > MaxHeaders {
		return fmt.Errorf("headers: at most %d headers, not %d", MaxHeaders, len(c.Headers))
	}
	names := make([]string, 0, len(c.Headers))
	for name := range c.Headers {
		names = append(names, name)
	}
	slices.Sort(names) // the first problem reported is always the same one
	for _, name := range names {
		value := c.Headers[name]
		if err := checkHeader(name, value); err != nil {
			return err
		}
		canon := http.CanonicalHeaderKey(name)
		if _, dup := s.headers[canon]; dup {
			return fmt.Errorf("headers: %q is set twice (header names are case-insensitive)", name)
		}
		s.headers[canon] = []string{value}
		if len(value) >= 8 { // shorter ones are no credentials, and too common to redact
			s.redact = append(s.redact, value)
		}
	}

	s.client = newClient(s.timeout, conc, c.AllowPrivate)
	s.sem = make(chan struct{}, conc)
	if old := p.settings.Swap(s); old != nil {
		old.client.CloseIdleConnections()
	}
	return nil
}

// checkURL parses and checks the url attribute. Its errors name the host at
// most, never the whole URL: a query may hold a token.
func checkURL(raw string, allowPrivate bool) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("url is required")
	}
	if strings.TrimSpace(raw) != raw {
		return nil, errors.New("url has leading or trailing white space")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("url is not a valid URL: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("url: the scheme must be http or https, not %q", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return nil, errors.New("url must be absolute: http(s)://host[:port]/path")
	case u.User != nil:
		return nil, errors.New("url must not hold a user name or password (they would end up in logs): send credentials with headers, e.g. Authorization")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, errors.New("url must not have a #fragment (it is never sent)")
	case u.Hostname() == "":
		return nil, errors.New("url has no host name")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("url: port %q is not between 1 and 65535", port)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, errors.New("url: empty port")
	}
	if addr, err := netip.ParseAddr(u.Hostname()); err == nil && !allowPrivate {
		if why := netguard.Reason(addr); why != "" {
			return nil, fmt.Errorf("url: %s is %s; set allow_private = true to send webhooks there", addr, why)
		}
	}
	return u, nil
}

// parseSecret parses a whsec_ secret of attribute attr. Its errors never
// show the secret.
func parseSecret(attr, raw string) (stdwebhook.Secret, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("%s is required: %s followed by the base64 of 24 to 64 random bytes", attr, stdwebhook.SecretPrefix)
	}
	if !strings.HasPrefix(strings.TrimSpace(raw), stdwebhook.SecretPrefix) {
		// Bare base64 is ambiguous (is "correcthorsebatterystaple…" a
		// password or base64?); the prefix says what the value is.
		return nil, fmt.Errorf("%s must start with %q and continue with the base64 of 24 to 64 random bytes (e.g. \"whsec_$(openssl rand -base64 32)\")", attr, stdwebhook.SecretPrefix)
	}
	key, err := stdwebhook.ParseSecret(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", attr, err)
	}
	return key, nil
}

// secretForms are the spellings of a configured secret a message must never
// show: as configured and its base64 part.
func secretForms(raw string) []string {
	raw = strings.TrimSpace(raw)
	return []string{raw, strings.TrimPrefix(raw, stdwebhook.SecretPrefix)}
}

// refusedHeaders are the extra headers the config may not set: the
// signature's own, the ones the request's framing owns, and hop-by-hop ones.
var refusedHeaders = []string{
	"Content-Type", "Content-Length", "Host", "Transfer-Encoding", "Connection", "Keep-Alive",
	"Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade", "Expect",
}

// checkHeader checks an extra header. Its errors show the name, never the
// value.
func checkHeader(name, value string) error {
	if name == "" {
		return errors.New("headers: empty header name")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("headers: %q is not a valid header name", name)
		}
	}
	canon := http.CanonicalHeaderKey(name)
	if strings.HasPrefix(canon, "Webhook-") {
		return fmt.Errorf("headers: %q is refused: the webhook-* headers carry the signature", name)
	}
	if slices.Contains(refusedHeaders, canon) {
		return fmt.Errorf("headers: %q is refused: the plugin and its HTTP client set it", name)
	}
	if len(value) > MaxHeaderValue {
		return fmt.Errorf("headers: the value of %q is longer than %d bytes", name, MaxHeaderValue)
	}
	for i := 0; i < len(value); i++ {
		if b := value[i]; b < ' ' && b != '\t' || b == 0x7f {
			return fmt.Errorf("headers: the value of %q holds a control character", name)
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an HTTP header name (RFC
// 9110 token).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// newClient returns the HTTP client of a configuration: no proxy from the
// environment, no redirects followed, the address guard on every
// connection unless allowPrivate, up to conc connections kept alive.
func newClient(timeout time.Duration, conc int, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = netguard.Control
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConns:          conc,
			MaxIdleConnsPerHost:   conc,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Deliver implements sdk.AlertSink: one POST per event, at most
// max_concurrency at once (across concurrent calls), one result per event
// in the order of the request. Events still waiting for a slot when ctx
// ends are left to be retried.
func (p *Plugin) Deliver(ctx context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
	events := req.GetEvents()
	results := make([]*pluginv1.DeliveryResult, len(events))
	s := p.settings.Load()
	if s == nil {
		for i, ev := range events {
			results[i] = result(ev, retry, 0, "not sent: the webhook sink is not configured")
		}
		return &pluginv1.DeliverResponse{Results: results}, nil
	}
	var wg sync.WaitGroup
	for i, ev := range events {
		if ctx.Err() != nil { // select below would pick at random
			results[i] = result(ev, retry, 0, "not sent: the delivery was cancelled ("+ctx.Err().Error()+")")
			continue
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			results[i] = result(ev, retry, 0, "not sent: the delivery was cancelled ("+ctx.Err().Error()+")")
			continue
		}
		wg.Go(func() {
			defer func() { <-s.sem }()
			results[i] = p.send(ctx, s, ev)
		})
	}
	wg.Wait()
	return &pluginv1.DeliverResponse{Results: results}, nil
}

// Outcomes, shorter.
const (
	delivered = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED
	retry     = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_RETRY
	failed    = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED
)

func result(ev *pluginv1.Event, o pluginv1.DeliveryOutcome, after time.Duration, msg string) *pluginv1.DeliveryResult {
	return &pluginv1.DeliveryResult{EventId: ev.GetId(), Outcome: o, RetryAfterMs: after.Milliseconds(), Message: msg}
}

// send posts one event and says how it went.
func (p *Plugin) send(ctx context.Context, s *settings, ev *pluginv1.Event) *pluginv1.DeliveryResult {
	start := time.Now()
	res := p.post(ctx, s, ev, start)
	res.Message = s.scrub(res.Message)
	kv := []any{"id", ev.GetId(), "type", ev.GetType(), "attempt", ev.GetAttempt(), "url", s.logURL,
		"outcome", res.GetOutcome().String(), "took", time.Since(start).Round(time.Millisecond).String(), "message", res.GetMessage()}
	if res.GetOutcome() == failed {
		p.log.Warn("webhook not delivered", kv...)
	} else {
		p.log.Debug("webhook sent", kv...)
	}
	return res
}

func (p *Plugin) post(parent context.Context, s *settings, ev *pluginv1.Event, now time.Time) *pluginv1.DeliveryResult {
	if err := checkEventID(ev.GetId()); err != nil {
		return result(ev, failed, 0, "not sent: "+err.Error())
	}
	body, err := payload(ev, now)
	if err != nil {
		return result(ev, failed, 0, "not sent: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(parent, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return result(ev, failed, 0, "not sent: building the request failed")
	}
	for k, v := range s.headers {
		req.Header[k] = slices.Clone(v)
	}
	req.Header.Set("Content-Type", ContentType)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", UserAgent)
	}
	for k, v := range stdwebhook.Headers(ev.GetId(), time.Now(), body, s.secrets...) {
		req.Header[k] = v
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return requestFailed(parent, ctx, ev, err, s.timeout)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxReadBody))
	// Scrubbed before outcome quotes (and cuts) them: an endpoint echoing
	// a header value must not get part of it into the message either.
	h := resp.Header
	if loc := h.Get("Location"); loc != "" {
		h = h.Clone()
		h.Set("Location", s.scrub(loc))
	}
	return outcome(ev, resp.StatusCode, h, []byte(s.scrub(string(answer))), time.Now())
}

// checkEventID checks that an event id can be sent as webhook-id: printable
// ASCII without spaces and without '.', the separator of the signed content.
func checkEventID(id string) error {
	if id == "" {
		return errors.New("the event has no id")
	}
	if len(id) > maxEventID {
		return fmt.Errorf("the event id is longer than %d bytes", maxEventID)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '.' {
			return fmt.Errorf("the event id %q cannot be a webhook-id (printable ASCII without spaces or '.')", quote([]byte(id)))
		}
	}
	return nil
}

// body is the JSON of one event.
type body struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	UserID    int64           `json:"user_id"`
	AppID     int64           `json:"app_id"`
	Data      json.RawMessage `json:"data"`
}

// payload is the request body of ev; now stands in for a missing event
// time.
func payload(ev *pluginv1.Event, now time.Time) ([]byte, error) {
	at := now
	if ns := ev.GetTimeUnixNano(); ns != 0 {
		at = time.Unix(0, ns)
	}
	data := bytes.TrimSpace(ev.GetDataJson())
	if len(data) == 0 {
		data = []byte("{}")
	} else if data[0] != '{' || !json.Valid(data) {
		return nil, errors.New("the event's data is not a JSON object")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(body{
		ID: ev.GetId(), Type: ev.GetType(), Timestamp: at.UTC().Format(time.RFC3339Nano),
		UserID: ev.GetUserId(), AppID: ev.GetAppId(), Data: data,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the event: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// requestFailed is the result of a request that got no answer: parent is
// Deliver's context, ctx the request's (parent with the timeout).
func requestFailed(parent, ctx context.Context, ev *pluginv1.Event, err error, timeout time.Duration) *pluginv1.DeliveryResult {
	var blocked *netguard.BlockedError
	if errors.As(err, &blocked) {
		return result(ev, failed, 0, "not sent: "+blocked.Error()+
			" (a configuration problem, not retried: point url at a public address, or set allow_private = true)")
	}
	if perr := parent.Err(); perr != nil {
		return result(ev, retry, 0, "the delivery was cancelled ("+perr.Error()+")")
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err) {
		return result(ev, retry, 0, fmt.Sprintf("no answer within the timeout of %v", timeout))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // without "Post <url>:": the url may hold a token
	}
	return result(ev, retry, 0, "request failed: "+quote([]byte(err.Error())))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// outcome maps an answer to a result (see the package comment).
func outcome(ev *pluginv1.Event, code int, h http.Header, answer []byte, now time.Time) *pluginv1.DeliveryResult {
	status := strconv.Itoa(code)
	if text := http.StatusText(code); text != "" {
		status += " " + text
	}
	withBody := func(msg string) string {
		if q := quote(answer); q != "" {
			msg += `: "` + q + `"`
		}
		return msg
	}
	switch {
	case code >= 200 && code <= 299:
		return result(ev, delivered, 0, "the endpoint answered "+status)
	case code >= 300 && code <= 399:
		msg := "the endpoint answered " + status
		if loc := h.Get("Location"); loc != "" {
			msg += `, a redirect to "` + quote([]byte(loc)) + `"`
		}
		return result(ev, failed, 0, msg+"; redirects are not followed: set url to the endpoint's current address")
	case code == http.StatusGone:
		return result(ev, failed, 0, withBody("the endpoint answered "+status)+
			"; it asked to be disabled and not to be sent webhooks any more: remove this webhook or change its url")
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 && code <= 599:
		after := retryAfter(h.Get("Retry-After"), now)
		msg := withBody("the endpoint answered " + status)
		if after > 0 {
			msg += "; retry after " + after.String()
		}
		return result(ev, retry, after, msg)
	default:
		return result(ev, failed, 0, withBody("the endpoint answered "+status)+"; not retried")
	}
}

// retryAfter reads a Retry-After value, delay-seconds or an HTTP date
// (relative to now), capped at MaxRetryAfter; 0 when absent, invalid or
// past.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return MaxRetryAfter
			}
			return 0
		}
		if n >= uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return 0
	case d > MaxRetryAfter:
		return MaxRetryAfter
	}
	return d.Round(time.Millisecond)
}

// quote returns b for a message: invalid UTF-8 replaced, control characters
// (and quotes, so it can sit between quotes) turned to spaces, runs of
// white space collapsed, at most maxQuote bytes.
func quote(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '"' || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxQuote {
		cut := maxQuote
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// scrub replaces in msg every secret (as configured and its base64 part)
// and every header value of 8 bytes or more.
func (s *settings) scrub(msg string) string {
	for _, r := range s.redact {
		if r != "" && strings.Contains(msg, r) {
			msg = strings.ReplaceAll(msg, r, "[redacted]")
		}
	}
	return msg
}
