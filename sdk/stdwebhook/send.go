package stdwebhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/outbound"
)

// ContentType is the content type of every request's body.
const ContentType = "application/json"

// DefaultUserAgent is the User-Agent of a Client whose options name none.
// Its version is that of the request this package sends (body and
// headers); it changes when they do.
const DefaultUserAgent = "WiseHosting-Webhooks/1"

// Defaults of ClientOptions.
const (
	// DefaultTimeout bounds one request: connecting, sending, the answer.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxConcurrency is how many requests a Client has in flight
	// at once.
	DefaultMaxConcurrency = 8
)

// MaxRetryAfter caps the retry delay a Retry-After header asks for.
const MaxRetryAfter = outbound.MaxRetryAfter

// MaxEventID bounds the length of an event id, sent as webhook-id.
const MaxEventID = 256

// minRedact is the length from which a header value is redacted from
// messages (shorter ones are no credentials, and too common to redact).
const minRedact = 8

// Outcome is how one delivery went.
type Outcome int

// Outcomes of a delivery.
const (
	// Delivered: the endpoint answered 2xx.
	Delivered Outcome = iota + 1
	// Retry: the endpoint answered 408, 429 or 5xx, or did not answer
	// (network error, timeout, cancelled delivery): try again later, no
	// sooner than Result.RetryAfter when the answer said so.
	Retry
	// Failed: anything else (3xx, which is not followed; 410; other 4xx;
	// an address the guard refused; an event or endpoint that cannot be
	// sent): never retried.
	Failed
)

// String returns "delivered", "retry" or "failed".
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case Failed:
		return "failed"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Result says how one delivery went.
type Result struct {
	// Outcome is Delivered, Retry or Failed.
	Outcome Outcome
	// RetryAfter is the delay the answer's Retry-After asked for, capped
	// at MaxRetryAfter; 0 when none (or not a Retry).
	RetryAfter time.Duration
	// StatusCode is the answer's status; 0 when there was no answer.
	StatusCode int
	// Gone: the endpoint answered 410 and asked to be disabled; Outcome
	// is Failed.
	Gone bool
	// Blocked: the endpoint's address is one the address guard refuses
	// (sdk/netguard), a literal one in the URL or the one its host name
	// resolved to; Outcome is Failed. A configuration problem: the
	// endpoint needs another URL or AllowPrivate.
	Blocked bool
	// Duration is how long sending took, the answer included; about 0
	// when nothing was sent.
	Duration time.Duration
	// Message says what happened, for people: at most a few hundred
	// bytes of the answer, control characters removed, never a secret,
	// a header value, or the URL's path or query (see Endpoint.Redact).
	Message string
}

// Endpoint is where one webhook goes.
type Endpoint struct {
	// URL is the endpoint's address, as accepted by CheckURL.
	URL string
	// Secrets sign every request: Secrets[0] is the current secret, more
	// sign too during a rotation (see Sign). At least one is required.
	Secrets []Secret
	// Headers are extra request headers, each accepted by CheckHeader.
	// A User-Agent here replaces the Client's.
	Headers http.Header
	// Redact are strings a Result's message must never show, such as the
	// secrets as configured (see SecretForms). Header values of 8 bytes
	// or more and the base64 forms of Secrets are redacted as well
	// without being listed.
	Redact []string
}

// redactions returns every string a message about ep must not show:
// ep.Redact, its header values of minRedact bytes or more, the base64 of
// its secrets.
func (ep *Endpoint) redactions() []string {
	out := slices.Clone(ep.Redact)
	for _, vs := range ep.Headers {
		for _, v := range vs {
			if len(v) >= minRedact {
				out = append(out, v)
			}
		}
	}
	for _, s := range ep.Secrets {
		if len(s) > 0 {
			out = append(out, base64.StdEncoding.EncodeToString(s), base64.RawStdEncoding.EncodeToString(s))
		}
	}
	return out
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// Timeout bounds one request, connecting included; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxConcurrency bounds the requests in flight at once, across all
	// Send and SendAll calls; 0 means DefaultMaxConcurrency.
	MaxConcurrency int
	// AllowPrivate lets requests reach loopback, private, link-local and
	// other addresses the address guard (sdk/netguard) refuses.
	AllowPrivate bool
	// UserAgent is the User-Agent of every request whose endpoint sets
	// none; "" means DefaultUserAgent.
	UserAgent string
}

// Client sends webhooks: an HTTP client that uses no proxy from the
// environment, follows no redirect (it would let an endpoint send the
// signed event elsewhere), and unless AllowPrivate refuses, when
// connecting, every address the address guard refuses, so a host name
// resolving to a private address (DNS rebinding included) is refused as
// surely as a literal one. It is safe for concurrent use. Create it with
// NewClient.
type Client struct {
	http         *http.Client
	timeout      time.Duration
	allowPrivate bool
	userAgent    string
	// limit bounds the requests in flight.
	limit *outbound.Limiter
}

// NewClient returns a Client with the options o (zero values take the
// defaults). Close it when done with it.
func NewClient(o ClientOptions) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = DefaultMaxConcurrency
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	return &Client{
		http: outbound.NewClient(outbound.ClientOptions{
			Timeout: o.Timeout, MaxIdleConns: o.MaxConcurrency, AllowPrivate: o.AllowPrivate,
		}),
		timeout:      o.Timeout,
		allowPrivate: o.AllowPrivate,
		userAgent:    o.UserAgent,
		limit:        outbound.NewLimiter(o.MaxConcurrency),
	}
}

// Close closes the client's idle connections. Requests in flight finish;
// the client stays usable.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Send POSTs ev to ep, signed, once a request slot is free (see
// ClientOptions.MaxConcurrency), and says how it went. The body is
// Body(ev, now); the headers are Content-Type, User-Agent, ep.Headers and
// the Standard Webhooks headers: webhook-id is ev.ID (the same on every
// retry, so receivers can deduplicate), webhook-timestamp the time of this
// attempt, webhook-signature one signature per secret of ep.
//
// An endpoint or event that cannot be sent (bad URL or header, no secret,
// an ID that cannot be a webhook-id, Data that is not a JSON object) is
// Failed without a request. When ctx ends before a slot is free the event
// is not sent: Retry.
func (c *Client) Send(ctx context.Context, ep *Endpoint, ev event.Event) Result {
	if err := c.limit.Acquire(ctx); err != nil {
		return cancelled(err)
	}
	defer c.limit.Release()
	return c.send(ctx, ep, ev)
}

// Delivery is one event for one endpoint, for SendAll.
type Delivery struct {
	// Endpoint is where Event goes.
	Endpoint *Endpoint
	// Event is what is sent.
	Event event.Event
}

// SendAll sends every delivery as Send does, as many at once as the
// client allows, starting them in the order given (so with a
// MaxConcurrency of 1 an endpoint gets them in that order), and returns
// one result per delivery in the same order. Deliveries still waiting for
// a slot when ctx ends are not sent: Retry.
func (c *Client) SendAll(ctx context.Context, ds []Delivery) []Result {
	results := make([]Result, len(ds))
	c.limit.Each(ctx, len(ds),
		func(i int) { results[i] = c.send(ctx, ds[i].Endpoint, ds[i].Event) },
		func(i int, err error) { results[i] = cancelled(err) })
	return results
}

// cancelled is the result of an event left unsent because err ended its
// context before a request slot was free.
func cancelled(err error) Result {
	return Result{Outcome: Retry, Message: "not sent: the delivery was cancelled (" + err.Error() + ")"}
}

// send posts one event, holding a slot, and scrubs the result's message.
func (c *Client) send(ctx context.Context, ep *Endpoint, ev event.Event) Result {
	if ep == nil {
		return Result{Outcome: Failed, Message: "not sent: no endpoint"}
	}
	redact := ep.redactions()
	start := time.Now()
	r := c.post(ctx, ep, ev, redact, start)
	r.Duration = time.Since(start)
	r.Message = outbound.Scrub(r.Message, redact)
	return r
}

// unsendable is the result of a delivery refused before any request.
func unsendable(why string) Result {
	return Result{Outcome: Failed, Message: "not sent: " + why}
}

// post checks and posts one event; redact are ep's redactions, now stands
// in for a missing event time.
func (c *Client) post(parent context.Context, ep *Endpoint, ev event.Event, redact []string, now time.Time) Result {
	u, err := CheckURL(ep.URL, c.allowPrivate)
	if err != nil {
		var ae *AddressError
		if errors.As(err, &ae) {
			r := unsendable(err.Error() + " (a configuration problem, not retried)")
			r.Blocked = true
			return r
		}
		return unsendable(err.Error())
	}
	secrets := nonEmpty(ep.Secrets)
	if len(secrets) == 0 {
		return unsendable("the endpoint has no signing secret")
	}
	for _, name := range slices.Sorted(maps.Keys(ep.Headers)) { // the same problem first every time
		for _, v := range ep.Headers[name] {
			if err := CheckHeader(name, v); err != nil {
				return unsendable(err.Error())
			}
		}
	}
	if err := checkEventID(ev.ID); err != nil {
		return unsendable(err.Error())
	}
	body, err := Body(ev, now)
	if err != nil {
		return unsendable(err.Error())
	}

	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return unsendable("building the request failed")
	}
	for k, v := range ep.Headers {
		req.Header[http.CanonicalHeaderKey(k)] = slices.Clone(v)
	}
	req.Header.Set("Content-Type", ContentType)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	for k, v := range Headers(ev.ID, time.Now(), body, secrets...) {
		req.Header[k] = v
	}

	resp, err := c.http.Do(req)
	if err != nil {
		msg, blocked := outbound.Unanswered(parent, ctx, err, c.timeout)
		if blocked {
			return Result{Outcome: Failed, Blocked: true, Message: "not sent: " + msg + " (a configuration problem, not retried)"}
		}
		return Result{Outcome: Retry, Message: msg}
	}
	defer resp.Body.Close()
	return outcome(outbound.ReadAnswer(resp, redact), time.Now())
}

// checkEventID checks that an event id can be sent as webhook-id: printable
// ASCII without spaces and without '.', the separator of the signed content.
func checkEventID(id string) error {
	if id == "" {
		return errors.New("the event has no id")
	}
	if len(id) > MaxEventID {
		return fmt.Errorf("the event id is longer than %d bytes", MaxEventID)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '.' {
			return fmt.Errorf("the event id %q cannot be a webhook-id (printable ASCII without spaces or '.')", outbound.Quote(id))
		}
	}
	return nil
}

// wireBody is the JSON of one event.
type wireBody struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	UserID    int64           `json:"user_id"`
	AppID     int64           `json:"app_id"`
	Data      json.RawMessage `json:"data"`
}

// Body returns the request body Send posts for ev:
//
//	{"id":"0b7e…","type":"deployment.failed","timestamp":"2026-03-01T12:30:45.123456789Z",
//	 "user_id":7,"app_id":42,"data":{"app_name":"shop","error":"build failed"}}
//
// timestamp is ev.Time (RFC 3339, UTC, nanoseconds), or now when ev has no
// time; user_id and app_id are 0 when ev has no such subject; data is
// ev.Data as given, without surrounding white space ({} when empty). HTML
// characters are not escaped. It fails when ev.Data is not a JSON object.
func Body(ev event.Event, now time.Time) ([]byte, error) {
	at := ev.Time
	if at.IsZero() {
		at = now
	}
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 {
		data = []byte("{}")
	} else if data[0] != '{' || !json.Valid(data) {
		return nil, errors.New("the event's data is not a JSON object")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(wireBody{
		ID: ev.ID, Type: ev.Type, Timestamp: at.UTC().Format(time.RFC3339Nano),
		UserID: ev.UserID, AppID: ev.AppID, Data: data,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the event: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// outcome maps an answer (its status, headers and the start of its body,
// scrubbed) to a result: see Outcome.
func outcome(a outbound.Answer, now time.Time) Result {
	answered := "the endpoint answered " + a.Status()
	r := Result{StatusCode: a.Code}
	switch code := a.Code; {
	case code >= 200 && code <= 299:
		r.Outcome, r.Message = Delivered, answered
	case code >= 300 && code <= 399:
		r.Outcome, r.Message = Failed, answered+a.Redirect()+"; redirects are not followed: set url to the endpoint's current address"
	case code == http.StatusGone:
		r.Outcome, r.Gone = Failed, true
		r.Message = a.Quoted(answered) +
			"; it asked to be disabled and not to be sent webhooks any more: remove this webhook or change its url"
	case a.Retryable():
		r.Outcome, r.RetryAfter = Retry, a.RetryAfter(now)
		r.Message = a.Quoted(answered)
		if r.RetryAfter > 0 {
			r.Message += "; retry after " + r.RetryAfter.String()
		}
	default:
		r.Outcome, r.Message = Failed, a.Quoted(answered)+"; not retried"
	}
	return r
}
