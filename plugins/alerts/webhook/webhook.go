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
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/outbound"
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
const ContentType = stdwebhook.ContentType

// Defaults and bounds of the config block.
const (
	// DefaultTimeout bounds one request: connecting, sending, the answer.
	DefaultTimeout = stdwebhook.DefaultTimeout
	// MinTimeout and MaxTimeout bound timeout.
	MinTimeout = 100 * time.Millisecond
	MaxTimeout = 5 * time.Minute
	// DefaultMaxConcurrency is how many requests may be in flight at once.
	DefaultMaxConcurrency = stdwebhook.DefaultMaxConcurrency
	// MaxMaxConcurrency bounds max_concurrency.
	MaxMaxConcurrency = 64
	// MaxPreviousSecrets bounds secrets_previous.
	MaxPreviousSecrets = 4
	// MaxHeaders bounds headers; MaxHeaderValue bounds each value's length.
	MaxHeaders     = 32
	MaxHeaderValue = stdwebhook.MaxHeaderValue
)

// MaxRetryAfter caps the retry delay a Retry-After header asks for.
const MaxRetryAfter = stdwebhook.MaxRetryAfter

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
	logURL      string // scheme://host/path: no query, for logs
	timeout     time.Duration
	concurrency int
	// endpoint is where every event goes: url, secrets, headers, and the
	// secrets' spellings to redact.
	endpoint *stdwebhook.Endpoint
	// client sends, at most concurrency requests at once across
	// concurrent Deliver calls.
	client *stdwebhook.Client
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
	s := &settings{}
	var err error
	if s.timeout, err = units.DurationSetting("timeout", c.Timeout, DefaultTimeout, MinTimeout, MaxTimeout); err != nil {
		return err
	}
	if s.concurrency, err = outbound.MaxConcurrency(c.MaxConcurrency, DefaultMaxConcurrency, MaxMaxConcurrency); err != nil {
		return err
	}

	ep := &stdwebhook.Endpoint{}
	u, err := stdwebhook.CheckURL(c.URL, c.AllowPrivate)
	if err != nil {
		var ae *stdwebhook.AddressError
		if errors.As(err, &ae) {
			return fmt.Errorf("url: %s is %s; set allow_private = true to send webhooks there", ae.Addr, ae.Why)
		}
		return err
	}
	ep.URL = u.String()
	s.logURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()

	key, err := stdwebhook.ParseSecretAttr("secret", c.Secret)
	if err != nil {
		return err
	}
	ep.Secrets = append(ep.Secrets, key)
	ep.Redact = append(ep.Redact, stdwebhook.SecretForms(c.Secret)...)
	if len(c.SecretsPrevious) > MaxPreviousSecrets {
		return fmt.Errorf("secrets_previous: at most %d secrets, not %d", MaxPreviousSecrets, len(c.SecretsPrevious))
	}
	for i, raw := range c.SecretsPrevious {
		attr := fmt.Sprintf("secrets_previous[%d]", i)
		key, err := stdwebhook.ParseSecretAttr(attr, raw)
		if err != nil {
			return err
		}
		for j, prev := range ep.Secrets {
			if bytes.Equal(prev, key) {
				if j == 0 {
					return fmt.Errorf("%s is the same as secret", attr)
				}
				return fmt.Errorf("%s is the same as secrets_previous[%d]", attr, j-1)
			}
		}
		ep.Secrets = append(ep.Secrets, key)
		ep.Redact = append(ep.Redact, stdwebhook.SecretForms(raw)...)
	}

	// Header values of 8 bytes or more are redacted by Send.
	if ep.Headers, err = outbound.HeaderSetting(c.Headers, MaxHeaders, stdwebhook.CheckHeader); err != nil {
		return err
	}

	s.endpoint = ep
	s.client = stdwebhook.NewClient(stdwebhook.ClientOptions{
		Timeout:        s.timeout,
		MaxConcurrency: s.concurrency,
		AllowPrivate:   c.AllowPrivate,
		UserAgent:      UserAgent,
	})
	if old := p.settings.Swap(s); old != nil {
		old.client.Close()
	}
	return nil
}

// Deliver implements sdk.AlertSink: one POST per event, at most
// max_concurrency at once (across concurrent calls), started in the order
// of the request, one result per event in that order. Events still
// waiting for a slot when ctx ends are left to be retried.
func (p *Plugin) Deliver(ctx context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
	events := req.GetEvents()
	results := make([]*pluginv1.DeliveryResult, len(events))
	s := p.settings.Load()
	if s == nil {
		for i, ev := range events {
			results[i] = &pluginv1.DeliveryResult{EventId: ev.GetId(), Outcome: retry,
				Message: "not sent: the webhook sink is not configured"}
		}
		return &pluginv1.DeliverResponse{Results: results}, nil
	}
	ds := make([]stdwebhook.Delivery, len(events))
	for i, ev := range events {
		ds[i] = stdwebhook.Delivery{Endpoint: s.endpoint, Event: toEvent(ev)}
	}
	for i, res := range s.client.SendAll(ctx, ds) {
		results[i] = p.result(s, events[i], res)
	}
	return &pluginv1.DeliverResponse{Results: results}, nil
}

// toEvent is ev as the sdk's event: Time from time_unix_nano (the zero
// time when 0, so Body uses the send time), Data from data_json.
func toEvent(ev *pluginv1.Event) event.Event {
	var at time.Time
	if ns := ev.GetTimeUnixNano(); ns != 0 {
		at = time.Unix(0, ns)
	}
	return event.Event{
		ID: ev.GetId(), Type: ev.GetType(), Time: at,
		UserID: ev.GetUserId(), AppID: ev.GetAppId(), Data: ev.GetDataJson(),
	}
}

// Outcomes, shorter.
const (
	delivered = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED
	retry     = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_RETRY
	failed    = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED
)

// outcome maps the sender's outcome to the plugin protocol's.
func outcome(o stdwebhook.Outcome) (pluginv1.DeliveryOutcome, bool) {
	switch o {
	case stdwebhook.Delivered:
		return delivered, true
	case stdwebhook.Retry:
		return retry, true
	case stdwebhook.Failed:
		return failed, true
	}
	return retry, false
}

// blockedHint follows the message of an event whose address the guard
// refused.
const blockedHint = "; point url at a public address, or set allow_private = true"

// result maps how ev's delivery went to its DeliveryResult, and logs it:
// a warning when it failed.
func (p *Plugin) result(s *settings, ev *pluginv1.Event, res stdwebhook.Result) *pluginv1.DeliveryResult {
	o, ok := outcome(res.Outcome)
	if !ok { // cannot happen; retrying loses nothing
		res.Message = fmt.Sprintf("the sender gave the unknown outcome %v: %s", res.Outcome, res.Message)
	}
	if res.Blocked {
		res.Message += blockedHint
	}
	r := &pluginv1.DeliveryResult{EventId: ev.GetId(), Outcome: o, Message: res.Message}
	if o == retry {
		r.RetryAfterMs = res.RetryAfter.Milliseconds()
	}
	kv := []any{"id", ev.GetId(), "type", ev.GetType(), "attempt", ev.GetAttempt(), "url", s.logURL,
		"outcome", o.String(), "took", res.Duration.Round(time.Millisecond).String(), "message", r.GetMessage()}
	if o == failed {
		p.log.Warn("webhook not delivered", kv...)
	} else {
		p.log.Debug("webhook sent", kv...)
	}
	return r
}
