// Package chat is the built-in "chat" alert sink: it posts every event as
// a short chat message to a Discord, Slack, ntfy, Telegram or Gotify
// target, or as a small JSON document to any HTTP endpoint, all named by
// one shoutrrr-style URL.
//
// # Messages
//
// A message is the seed's compact form, a headline, up to three detail
// lines and the app's link:
//
//	❌ Deployment failed — shop
//	Commit 3f9c2ab on main: Fix the checkout redirect
//	Error: build failed: exit status 1
//	https://shop.apps.example.com
//
// The headline is the event type's emoji and title ("🔥 CPU high", "🟢 CPU
// back to normal", …; a type outside the catalogue shows itself under 📣)
// and the app's name. The details depend on the type: the commit (7-char
// SHA, branch, first line of its message) of a deployment, the first line
// of the error of a failure, the reason of a stop or a violation, the
// restart count of a crash loop, the value against the threshold of a
// metric alert. The link is data.url when it is an http(s) URL, else
// https://{subdomain} when subdomain is a full host name, else left out.
// Every part is one line, without control characters, with credentials in
// URLs (scheme://user:password@…) replaced, and bounded: a whole message
// is at most 938 characters, within every service's limit (Discord's is
// 2000). Discord messages allow no mentions and Slack text is escaped, so
// a commit message saying @everyone or <!channel> pings no one.
//
// # URLs
//
// The url attribute uses shoutrrr's formats (https://containrrr.dev/shoutrrr/):
//
//   - discord://TOKEN@WEBHOOK_ID, from the webhook URL
//     https://discord.com/api/webhooks/WEBHOOK_ID/TOKEN. Parameters:
//     thread_id, username. POSTs {"content": message} to
//     https://discord.com/api/webhooks/WEBHOOK_ID/TOKEN.
//   - slack://hook:A-B-C@webhook, or the older slack://[botname@]A/B/C,
//     from the incoming webhook URL https://hooks.slack.com/services/A/B/C.
//     Parameter: botname (or username). POSTs {"text": message} to
//     https://hooks.slack.com/services/A/B/C. Slack API tokens (xoxb-…)
//     are not supported.
//   - ntfy://[USER:PASSWORD@]HOST[:PORT]/TOPIC. Parameters: scheme (http or
//     https, the default), token (an access token, sent as a Bearer
//     token; not with USER:PASSWORD), priority (1 to 5 or min, low,
//     default, high, max/urgent), tags (comma-separated). POSTs the message
//     as text to https://HOST/TOPIC, with the app's link as Click.
//   - telegram://BOT_ID:SECRET@telegram?chats=@channel,12345 (the token
//     BotFather gives, then the chats: ids or @names; channels is an alias
//     of chats). Parameters: preview (no turns off link previews),
//     notification (no sends silently). POSTs {"chat_id": chat, "text":
//     message} to https://api.telegram.org/botBOT_ID:SECRET/sendMessage,
//     once per chat.
//   - gotify://HOST[:PORT][/PATH]/TOKEN, the application token last.
//     Parameters: priority (0 to 10, default 5), disabletls (yes for http).
//     POSTs {"title": headline, "message": the rest, "priority": n} to
//     https://HOST/PATH/message with the token in the X-Gotify-Key header
//     (not in the query, where proxies would log it).
//   - generic+https://[USER:PASSWORD@]HOST[:PORT]/PATH?…, generic+http://…
//     and generic://… (https unless disabletls=yes). POSTs the JSON object
//     {"title": headline, "message": whole message} to
//     https://HOST/PATH?…, with basic auth from USER:PASSWORD. Parameters:
//     titlekey and messagekey rename the two fields, @Name=value sets a
//     request header, $name=value adds a string field, template=json is
//     accepted (the body is always JSON; title, contenttype and method are
//     refused), and every other parameter stays in the query sent.
//
// Unknown parameters are errors, so a typo does not go unnoticed. Errors
// about the URL name at most its scheme and its parameters' names, never
// its tokens, hosts, paths or values; only the address guard's name the
// literal IP address they refuse.
//
// base_url replaces the scheme, host and port of every request (keeping
// the service's API path after its own path, if it has one): for tests, a
// self-hosted Bot API server or a relay. "discord://…" with base_url =
// "http://127.0.0.1:8080" posts to http://127.0.0.1:8080/api/webhooks/….
//
// # Results
//
// Each event gets one result:
//
//   - 2xx: delivered.
//   - 408, 429 and 5xx: retried, no sooner than the answer's Retry-After
//     (seconds or an HTTP date; for 429 without one, Discord's and
//     Telegram's retry_after in the body), at most MaxRetryAfter.
//   - 3xx: failed: redirects are not followed.
//   - other statuses: failed.
//   - no answer (network errors, timeouts): retried.
//   - a connection the address guard refused: failed (see below).
//
// A telegram URL with several chats sends to each of them in turn. The
// event is delivered when every chat took it; it fails when one of them
// failed for good (an unknown chat is a configuration problem); otherwise
// it is retried, and the retry sends to every chat again, so the chats
// that took it see it twice.
//
// Messages quote at most a few hundred bytes of the answer; the URL's
// tokens, passwords and (generic) header and query values of 8 bytes or
// more are replaced by [redacted] in results and logs, which name the
// target by its service and the scheme and host of its API only.
//
// # Address guard
//
// Unless allow_private is set, the plugin refuses (sdk/netguard) to
// connect to loopback, private, link-local (where cloud metadata services
// answer), unspecified, multicast, carrier-grade NAT and reserved
// addresses. The check runs when the connection is made, on the address
// the host name resolved to, so a name resolving to a private address is
// refused too; a literal address of that kind in url (ntfy, gotify,
// generic) or base_url is already rejected by Configure. No proxy from the
// environment is used.
//
// # Configuration
//
//	plugin "alerts" "team-chat" {
//	  source = "chat"
//	  events = ["deployment.*", "app.offline"]
//	  config {
//	    url             = "discord://TOKEN@WEBHOOK_ID"   # required; holds tokens
//	    timeout         = "10s"    # per request, connection included
//	    max_concurrency = 4        # requests in flight at once
//	    allow_private   = false    # true lets requests reach private and loopback addresses
//	    base_url        = ""       # e.g. "http://127.0.0.1:8080": replaces the API's scheme and host
//	  }
//	}
package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/netguard"
	"github.com/wisehosting/wisehosting/sdk/outbound"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/units"
)

// Name is the plugin's name: plugin "alerts" "<instance>" { source = "chat" … }.
const Name = "chat"

// Version is the plugin's release version.
const Version = "0.1.0"

// UserAgent is the User-Agent of every request.
const UserAgent = "WiseHosting-Chat/" + Version

// Defaults and bounds of the config block.
const (
	// DefaultTimeout bounds one request: connecting, sending, the answer.
	DefaultTimeout = 10 * time.Second
	// MinTimeout and MaxTimeout bound timeout.
	MinTimeout = 100 * time.Millisecond
	MaxTimeout = 5 * time.Minute
	// DefaultMaxConcurrency is how many requests may be in flight at once.
	DefaultMaxConcurrency = 4
	// MaxMaxConcurrency bounds max_concurrency.
	MaxMaxConcurrency = 64
)

// MaxRetryAfter caps the retry delay an answer asks for.
const MaxRetryAfter = outbound.MaxRetryAfter

// maxShownParts bounds how many undelivered requests (telegram chats) a
// result describes.
const maxShownParts = 3

// Config is the plugin's decoded config block.
type Config struct {
	// URL is the shoutrrr-style URL of the chat target (see the package
	// comment). Required; it holds tokens and is never logged.
	URL string `json:"url"`
	// Timeout of one request (a units.ParseDuration string); "" means
	// DefaultTimeout.
	Timeout string `json:"timeout"`
	// MaxConcurrency is how many requests may be in flight at once; nil
	// means DefaultMaxConcurrency.
	MaxConcurrency *int `json:"max_concurrency"`
	// AllowPrivate lets requests reach loopback, private, link-local and
	// other non-public addresses.
	AllowPrivate bool `json:"allow_private"`
	// BaseURL, when set, replaces the scheme, host and port requests go to
	// (http or https, an optional path prefix, no user info, query or
	// fragment).
	BaseURL string `json:"base_url"`
}

// Spec returns the schema of the plugin's config block.
func Spec() *pluginv1.Spec {
	return hclspec.Object(map[string]*pluginv1.Spec{
		"url": hclspec.Attr("url", "string", true,
			"Chat target as a shoutrrr-style URL: discord://, slack://, ntfy://, telegram://, gotify://, generic+https://. Sensitive: it holds tokens."),
		"timeout": hclspec.Default(
			hclspec.Attr("timeout", "string", false, "Time limit of one request, connecting included."),
			hclspec.Literal(strconv.Quote(units.FormatDuration(DefaultTimeout)))),
		"max_concurrency": hclspec.Default(
			hclspec.Attr("max_concurrency", "number", false, "How many requests may be in flight at once."),
			hclspec.Literal(strconv.Itoa(DefaultMaxConcurrency))),
		"allow_private": hclspec.Default(
			hclspec.Attr("allow_private", "bool", false,
				"Allow connections to loopback, private, link-local and other non-public addresses."),
			hclspec.Literal("false")),
		"base_url": hclspec.Attr("base_url", "string", false,
			"Replaces the scheme, host and port of the service's API, e.g. http://127.0.0.1:8080 for a local relay."),
	})
}

// settings are the validated config Deliver uses. A new configuration
// makes new settings; deliveries in flight finish with the old ones.
type settings struct {
	target *target
	// base is where requests go: the target's API origin or base_url.
	base *url.URL
	// endpoint is base's scheme://host, the only part of the target logs
	// and messages name.
	endpoint string
	timeout  time.Duration
	// redact are strings a message must never show, longest first.
	redact []string
	client *http.Client
	// limit bounds the requests in flight, across concurrent Deliver
	// calls.
	limit *outbound.Limiter
}

// Plugin is the chat alert sink. Create it with New.
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
			Description: "Posts each event as a short chat message to Discord, Slack, ntfy, Telegram, Gotify or a generic JSON endpoint (shoutrrr-style URLs).",
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
	conc, err := outbound.MaxConcurrency(c.MaxConcurrency, DefaultMaxConcurrency, MaxMaxConcurrency)
	if err != nil {
		return err
	}

	t, err := parseURL(c.URL)
	if err != nil {
		return err
	}
	s.target, s.base = t, t.base
	attr := "url"
	if c.BaseURL != "" {
		if s.base, err = parseBaseURL(c.BaseURL); err != nil {
			return err
		}
		attr = "base_url"
	}
	if addr, err := netip.ParseAddr(s.base.Hostname()); err == nil && !c.AllowPrivate {
		if why := netguard.Reason(addr); why != "" {
			return fmt.Errorf("%s: %s is %s; set allow_private = true to send messages there", attr, addr, why)
		}
	}
	s.endpoint = s.base.Scheme + "://" + s.base.Host
	s.redact = redactions(t.secrets)
	s.client = outbound.NewClient(outbound.ClientOptions{Timeout: s.timeout, MaxIdleConns: conc, AllowPrivate: c.AllowPrivate})
	s.limit = outbound.NewLimiter(conc)
	if old := p.settings.Swap(s); old != nil {
		old.client.CloseIdleConnections()
	}
	return nil
}

// parseBaseURL checks base_url. Its errors do not show it.
func parseBaseURL(raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) != raw {
		return nil, errors.New("base_url has leading or trailing white space")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("base_url is not a valid URL: %s", parseProblem(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("base_url: the scheme must be http or https")
	case u.Opaque != "" || u.Hostname() == "":
		return nil, errors.New("base_url must be absolute: http(s)://host[:port][/path]")
	case u.User != nil:
		return nil, errors.New("base_url must not hold a user name or password")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, errors.New("base_url must not have a query")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, errors.New("base_url must not have a #fragment")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, errors.New("base_url: the port is not between 1 and 65535")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, errors.New("base_url: empty port")
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimRight(u.Path, "/"),
		RawPath: strings.TrimRight(u.RawPath, "/")}, nil
}

// redactions are the spellings of the secrets a message must never show:
// as they are and escaped for a path or a query.
func redactions(secrets []string) []string {
	var out []string
	for _, s := range secrets {
		for _, form := range []string{s, url.PathEscape(s), url.QueryEscape(s)} {
			if form != "" && !slices.Contains(out, form) {
				out = append(out, form)
			}
		}
	}
	return out
}

// Deliver implements sdk.AlertSink: one message per event, at most
// max_concurrency requests at once (across concurrent calls), one result
// per event in the order of the request. Events still waiting for a slot
// when ctx ends are left to be retried.
func (p *Plugin) Deliver(ctx context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
	events := req.GetEvents()
	results := make([]*pluginv1.DeliveryResult, len(events))
	s := p.settings.Load()
	if s == nil {
		for i, ev := range events {
			results[i] = result(ev, retry, 0, "not sent: the chat sink is not configured")
		}
		return &pluginv1.DeliverResponse{Results: results}, nil
	}
	s.limit.Each(ctx, len(events),
		func(i int) { results[i] = p.send(ctx, s, events[i]) },
		func(i int, err error) {
			results[i] = result(events[i], retry, 0, "not sent: the delivery was cancelled ("+err.Error()+")")
		})
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

// send delivers one event and says how it went.
func (p *Plugin) send(ctx context.Context, s *settings, ev *pluginv1.Event) *pluginv1.DeliveryResult {
	start := time.Now()
	res := p.post(ctx, s, ev)
	res.Message = outbound.Scrub(res.GetMessage(), s.redact)
	kv := []any{"id", ev.GetId(), "type", ev.GetType(), "attempt", ev.GetAttempt(), "service", s.target.service,
		"endpoint", s.endpoint, "outcome", res.GetOutcome().String(), "took", time.Since(start).Round(time.Millisecond).String(),
		"message", res.GetMessage()}
	if res.GetOutcome() == failed {
		p.log.Warn("chat message not delivered", kv...)
	} else {
		p.log.Debug("chat message sent", kv...)
	}
	return res
}

// attempt is how one request went.
type attempt struct {
	outcome pluginv1.DeliveryOutcome
	after   time.Duration
	msg     string
}

// post sends the requests of one event and folds their attempts into the
// event's result: delivered when all were, failed when one failed, else
// retried no sooner than the longest delay asked for.
func (p *Plugin) post(ctx context.Context, s *settings, ev *pluginv1.Event) *pluginv1.DeliveryResult {
	reqs, err := s.target.build(formatMessage(ev))
	if err != nil {
		return result(ev, failed, 0, "not sent: "+err.Error())
	}
	atts := make([]attempt, len(reqs))
	for i, rq := range reqs {
		if err := ctx.Err(); err != nil {
			atts[i] = attempt{retry, 0, "not sent: the delivery was cancelled (" + err.Error() + ")"}
			continue
		}
		atts[i] = s.do(ctx, rq)
	}
	if len(atts) == 1 {
		return result(ev, atts[0].outcome, atts[0].after, atts[0].msg)
	}
	out, after := delivered, time.Duration(0)
	var parts []string
	ok, shown := 0, 0
	for i, a := range atts {
		switch a.outcome {
		case delivered:
			ok++
			continue
		case failed:
			out = failed
		case retry:
			if out != failed {
				out = retry
			}
			after = max(after, a.after)
		}
		if shown++; shown <= maxShownParts {
			parts = append(parts, fmt.Sprintf("%s (%d of %d): %s", reqs[i].label, i+1, len(reqs), a.msg))
		}
	}
	if shown > maxShownParts {
		parts = append(parts, fmt.Sprintf("%d more not delivered", shown-maxShownParts))
	}
	switch out {
	case delivered:
		return result(ev, delivered, 0, fmt.Sprintf("%s took it in all %d chats", s.target.service, len(reqs)))
	case failed:
		after = 0
		parts = append(parts, fmt.Sprintf("%d of %d delivered; failed: not retried, as at least one chat failed for good", ok, len(reqs)))
	default:
		parts = append(parts, fmt.Sprintf("%d of %d delivered; retried, and the retry sends to every chat again", ok, len(reqs)))
	}
	return result(ev, out, after, strings.Join(parts, "; "))
}

// do sends one request.
func (s *settings) do(parent context.Context, rq request) attempt {
	ctx, cancel := context.WithTimeout(parent, s.timeout)
	defer cancel()
	target, err := s.requestURL(rq)
	if err != nil {
		return attempt{failed, 0, "not sent: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(rq.body))
	if err != nil {
		return attempt{failed, 0, "not sent: building the request failed"}
	}
	for k, v := range rq.header {
		req.Header[k] = slices.Clone(v)
	}
	if req.Header.Get("User-Agent") == "" { // a generic URL may set its own
		req.Header.Set("User-Agent", UserAgent)
	}

	resp, err := s.client.Do(req)
	if err != nil {
		msg, blocked := outbound.Unanswered(parent, ctx, err, s.timeout)
		if blocked {
			return attempt{failed, 0, "not sent: " + msg +
				" (a configuration problem, not retried: use a public address, or set allow_private = true)"}
		}
		return attempt{retry, 0, msg}
	}
	defer resp.Body.Close()
	return outcome(s.target.service, outbound.ReadAnswer(resp, s.redact), time.Now())
}

// requestURL is where rq goes: the base (its path included), then rq's
// path and query. Built as a url.URL, so that a host with an IPv6 zone is
// escaped again.
func (s *settings) requestURL(rq request) (string, error) {
	escaped := s.base.EscapedPath() + rq.path
	path, err := url.PathUnescape(escaped)
	if err != nil {
		return "", errors.New("the request path is not a valid escaped path")
	}
	u := &url.URL{Scheme: s.base.Scheme, Host: s.base.Host, Path: path, RawPath: escaped, RawQuery: rq.query}
	return u.String(), nil
}

// outcome maps an answer of service (its status, headers and the start of
// its body, scrubbed) to an attempt (see the package comment).
func outcome(service string, a outbound.Answer, now time.Time) attempt {
	answered := service + " answered " + a.Status()
	switch code := a.Code; {
	case code >= 200 && code <= 299:
		return attempt{delivered, 0, answered}
	case code >= 300 && code <= 399:
		return attempt{failed, 0, answered + a.Redirect() + "; redirects are not followed: check the url (or base_url)"}
	case a.Retryable():
		after := a.RetryAfter(now)
		if after == 0 && code == http.StatusTooManyRequests {
			after = bodyRetryAfter(a.Body)
		}
		msg := a.Quoted(answered)
		if after > 0 {
			msg += "; retry after " + after.String()
		}
		return attempt{retry, after, msg}
	case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusNotFound:
		return attempt{failed, 0, a.Quoted(answered) + "; not retried: check the url's token (or base_url)"}
	default:
		return attempt{failed, 0, a.Quoted(answered) + "; not retried"}
	}
}

// bodyRetryAfter reads the delay a 429 answer's JSON body asks for, in
// seconds: Discord's {"retry_after": 1.5} or Telegram's
// {"parameters": {"retry_after": 30}}; capped at MaxRetryAfter, 0 when
// there is none.
func bodyRetryAfter(answer []byte) time.Duration {
	var b struct {
		RetryAfter *float64 `json:"retry_after"`
		Parameters struct {
			RetryAfter *float64 `json:"retry_after"`
		} `json:"parameters"`
	}
	if json.Unmarshal(answer, &b) != nil {
		return 0
	}
	secs := b.RetryAfter
	if secs == nil {
		secs = b.Parameters.RetryAfter
	}
	switch {
	case secs == nil || *secs <= 0:
		return 0
	case *secs >= MaxRetryAfter.Seconds():
		return MaxRetryAfter
	}
	return time.Duration(*secs * float64(time.Second)).Round(time.Millisecond)
}
