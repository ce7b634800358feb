// Package httpplans is the built-in "http" plan-source plugin: it serves the
// plan catalogue fetched as JSON from a URL, refetched in the background on
// an interval, keeping the last good catalogue when a fetch fails.
//
// Configuration:
//
//	plugin "plans" "http" {
//	  config {
//	    url      = "https://billing.example.com/wisehosting/plans.json"  # required, http or https
//	    refresh  = "5m"        # how often to refetch, 10s to 24h
//	    timeout  = "10s"       # limit of one fetch (connecting, the answer, the body), 100ms to 5m
//	    max_size = "1MiB"      # largest document accepted, 1KiB to 64MiB
//	    headers  = { Authorization = "Bearer …" }  # extra request headers; values never logged
//	  }
//	}
//
// # The document
//
// The URL answers a JSON object mirroring the static plugin's config:
//
//	{
//	  "default_plan": "free",
//	  "plans": [
//	    {"id": "free", "name": "Free", "max_apps": 1, "cpu": 0.5,
//	     "memory": "512MiB", "disk": "1GiB", "bandwidth": "10mbit"},
//	    {"id": "pro", "name": "Pro", "max_apps": 5, "cpu": 2,
//	     "memory": "2GiB", "disk": "10GiB", "bandwidth": "100mbit"}
//	  ]
//	}
//
// Its fields:
//
//   - default_plan: the plan new users get; optional, default "free".
//   - plans: at least one plan. An empty list is refused (the static
//     plugin reads "no plan" as the default catalogue; a plan server
//     answering none is broken).
//   - id: [a-z0-9][a-z0-9_-]{0,63}, unique. Required.
//   - name: display name, at most 64 characters; default: the id.
//   - max_apps: live apps per user, a whole number, 0 = unlimited. Required.
//   - cpu: CPU per app in cores, a JSON number above 0, to the millicore
//     (0.5 = 500 mCPU). Required.
//   - memory, disk: per app, above 0: a size string ("512MiB", "1.5GiB",
//     "500MB") or a number of bytes. Required.
//   - bandwidth: per app, "10mbit" (bit, kbit, mbit, gbit, tbit); absent,
//     null, "0", 0 or "unlimited" = no limit.
//
// Unknown fields, a field given twice, a value of the wrong JSON type and
// trailing data are refused (a leading UTF-8 byte order mark is skipped). Every plan is checked exactly as the static
// plugin checks its plan blocks (same rules and messages), and plans are
// served smallest first (by cpu, memory, disk, then id).
//
// # Fetching
//
// Configure checks the config and never touches the network. The first
// Plans call (the core makes it at start and refuses to start when it
// fails) fetches the document and returns the error if that fails; later
// calls return the last good catalogue at once. A goroutine refetches every
// refresh; after a failed refetch it tries again sooner, after
// min(refresh, RetryAfter). A refetch that fails — no answer, timeout, a
// status other than 2xx or 304, a document larger than max_size, not JSON
// or not a valid catalogue — is logged as a warning and the last good
// catalogue stays; Health reports the failure until a fetch succeeds.
//
// Refetches are conditional: the ETag and Last-Modified of the catalogue
// in force are sent back as If-None-Match and If-Modified-Since, and 304
// Not Modified keeps it. (The validators of a document that was refused
// are not kept, so a fixed document is fetched in full.)
//
// Plans asks the core to re-read the catalogue every refresh/2
// (refresh_after_ms), so a change fetched by the plugin reaches the core
// within 1.5 × refresh; Plans itself is a cheap in-memory read.
//
// Requests are GETs with Accept: application/json and User-Agent:
// WiseHosting-Plans/<version> (headers may override both). No proxy from
// the environment is used. Redirects are not followed: a 3xx answer is a
// failure naming the status (set url to the final address), so the
// configured headers (credentials) are only ever sent to url's host.
// Compressed answers (gzip) are decompressed, max_size applying to the
// decompressed document.
//
// Logs and messages show the URL without its query (which may hold a
// token) and never show a header value; a message quoting the server's
// answer has every configured header value of 8 bytes or more masked.
//
// The sdk has no shutdown hook: the refresh goroutine of the configuration
// in force lives as long as the plugin process (a new configuration stops
// the previous one's; Close stops it explicitly).
package httpplans

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/outbound"
	"github.com/wisehosting/wisehosting/sdk/plans"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/units"
)

// Name is the plugin's name: plugin "plans" "http".
const Name = "http"

// Version is the plugin's release version.
const Version = "0.1.0"

// UserAgent is the default User-Agent of every request.
const UserAgent = "WiseHosting-Plans/" + Version

// Defaults and bounds of the config block.
const (
	DefaultRefresh = 5 * time.Minute
	MinRefresh     = 10 * time.Second
	MaxRefresh     = 24 * time.Hour

	DefaultTimeout = 10 * time.Second
	MinTimeout     = 100 * time.Millisecond
	MaxTimeout     = 5 * time.Minute

	DefaultMaxSize = 1 << 20
	MinMaxSize     = 1 << 10
	MaxMaxSize     = 64 << 20

	// MaxHeaders bounds headers; MaxHeaderValue bounds each value's length.
	MaxHeaders     = 32
	MaxHeaderValue = outbound.MaxHeaderValue
)

// RetryAfter bounds the wait before retrying a refetch that failed.
const RetryAfter = time.Minute

// maxQuote bounds how much of an error answer a message quotes; minRedact
// is the shortest header value masked in quoted answers (shorter ones are
// no credentials, and too common to mask).
const (
	maxQuote  = 200
	minRedact = 8
)

// Config is the plugin's decoded config block.
type Config struct {
	// URL of the catalogue document: http or https, no user info or
	// fragment. Required.
	URL string `json:"url"`
	// Refresh is how often the document is refetched (a units.ParseDuration
	// string); "" means DefaultRefresh.
	Refresh string `json:"refresh"`
	// Timeout bounds one fetch; "" means DefaultTimeout.
	Timeout string `json:"timeout"`
	// MaxSize is the largest document accepted (a units.ParseSize string);
	// "" means DefaultMaxSize.
	MaxSize string `json:"max_size"`
	// Headers are extra request headers, e.g. Authorization. Never logged.
	Headers map[string]string `json:"headers"`
}

// Spec returns the schema of the plugin's config block.
func Spec() *pluginv1.Spec {
	return hclspec.Object(map[string]*pluginv1.Spec{
		"url": hclspec.Attr("url", "string", true,
			"The http or https URL of the plan catalogue, a JSON document."),
		"refresh": hclspec.Default(
			hclspec.Attr("refresh", "string", false, "How often the catalogue is refetched, 10s to 24h."),
			hclspec.Literal(strconv.Quote(units.FormatDuration(DefaultRefresh)))),
		"timeout": hclspec.Default(
			hclspec.Attr("timeout", "string", false, "Time limit of one fetch, connecting and reading included, 100ms to 5m."),
			hclspec.Literal(strconv.Quote(units.FormatDuration(DefaultTimeout)))),
		"max_size": hclspec.Default(
			hclspec.Attr("max_size", "string", false, `Largest catalogue document accepted, e.g. "1MiB"; 1KiB to 64MiB.`),
			hclspec.Literal(strconv.Quote(units.FormatSize(DefaultMaxSize)))),
		"headers": hclspec.Attr("headers", "map(string)", false,
			"Extra request headers, e.g. Authorization. Values are never logged."),
	})
}

// settings are a validated configuration.
type settings struct {
	url     string // as configured
	logURL  string // scheme://host/path: no query, for logs and messages
	refresh time.Duration
	timeout time.Duration
	maxSize int64
	headers http.Header
	// redact are strings a message must never show (header values).
	redact []string
	client *http.Client
}

// snapshot is a good catalogue and what is needed to refetch it
// conditionally.
type snapshot struct {
	resp         *pluginv1.PlansResponse
	etag         string
	lastModified string
	// fetched is when the catalogue was last fetched or confirmed (304).
	fetched time.Time
}

// generation is the state of one configuration: its settings, its
// catalogue and its refresh goroutine. A new configuration starts a new
// generation and stops the previous one.
type generation struct {
	s      *settings
	ctx    context.Context // ends when the generation is replaced or closed
	cancel context.CancelFunc
	// fetching is held by the fetch in progress, so that fetches of a
	// generation never overlap (Plans and the refresh goroutine).
	fetching chan struct{}
	cur      atomic.Pointer[snapshot] // nil until the first good fetch

	mu        sync.Mutex
	lastErr   error // of the last fetch; nil after a good one
	lastErrAt time.Time
	failures  int // in a row
}

// Plugin is the http plan source. Create it with New.
type Plugin struct {
	sdk.Base

	cfg Config
	gen atomic.Pointer[generation] // nil until configured
	log hclog.Logger
	// now and wait are the clock and how the refresh goroutine waits
	// (false: the generation ended); tests replace them.
	now  func() time.Time
	wait func(ctx context.Context, d time.Duration) bool
}

var (
	_ sdk.PlanSource    = (*Plugin)(nil)
	_ sdk.HealthChecker = (*Plugin)(nil)
)

// New returns the unconfigured plugin, logging through sdk.Logger.
func New() *Plugin { return newWithLogger(sdk.Logger()) }

func newWithLogger(l hclog.Logger) *Plugin {
	p := &Plugin{
		Base: sdk.Base{
			Kind:        sdk.KindPlans,
			Name:        Name,
			Version:     Version,
			Description: "Serves the plan catalogue fetched as JSON from a URL, refreshed on an interval.",
			Spec:        Spec(),
		},
		log:  l,
		now:  time.Now,
		wait: sleep,
	}
	p.Config = &p.cfg
	p.Validate = p.validate
	return p
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// validate checks the decoded config and, when it is good, makes it the one
// in force: a new generation with no catalogue yet, and its refresh
// goroutine. It makes no request. sdk.Base serialises it.
func (p *Plugin) validate() error {
	s, err := newSettings(p.cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &generation{s: s, ctx: ctx, cancel: cancel, fetching: make(chan struct{}, 1)}
	if old := p.gen.Swap(g); old != nil {
		old.stop()
	}
	go p.loop(g)
	return nil
}

// Close stops the background refresh of the configuration in force. Plans
// keeps answering (with the last good catalogue, or by fetching one).
func (p *Plugin) Close() {
	if g := p.gen.Load(); g != nil {
		g.stop()
	}
}

func (g *generation) stop() {
	g.cancel()
	g.s.client.CloseIdleConnections()
}

func newSettings(c Config) (*settings, error) {
	s := &settings{}

	u, err := outbound.CheckURL(c.URL)
	if err != nil {
		return nil, err
	}
	s.url = u.String()
	s.logURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()

	if s.refresh, err = units.DurationSetting("refresh", c.Refresh, DefaultRefresh, MinRefresh, MaxRefresh); err != nil {
		return nil, err
	}
	if s.timeout, err = units.DurationSetting("timeout", c.Timeout, DefaultTimeout, MinTimeout, MaxTimeout); err != nil {
		return nil, err
	}
	if s.maxSize, err = units.SizeSetting("max_size", c.MaxSize, DefaultMaxSize, MinMaxSize, MaxMaxSize); err != nil {
		return nil, err
	}

	if s.headers, err = outbound.HeaderSetting(c.Headers, MaxHeaders, checkHeader); err != nil {
		return nil, err
	}
	for _, vs := range s.headers {
		if len(vs[0]) >= minRedact {
			s.redact = append(s.redact, vs[0])
		}
	}
	// No address guard: the catalogue is the operator's own, and is
	// commonly served from a private address. Each fetch's context bounds
	// the whole fetch (connecting, TLS, the answer, the body) to timeout,
	// so the transport sets no timeout of its own that would fire first
	// with a vaguer message.
	s.client = outbound.NewClient(outbound.ClientOptions{AllowPrivate: true})
	return s, nil
}

// checkHeader checks an extra header: what outbound.CheckHeader checks,
// refusing the reserved headers and those the plugin sets. Its errors show
// the name, never the value.
func checkHeader(name, value string) error {
	if err := outbound.CheckHeader(name, value, refuseHeader); err != nil {
		return fmt.Errorf("headers: %w", err)
	}
	return nil
}

// refuseHeader says why the config may not set the header canon, "" when
// it may: the reserved headers (outbound.ReservedHeader), those of
// conditional and range requests and Accept-Encoding, which the plugin and
// its client set, and Cookie.
func refuseHeader(canon string) string {
	switch canon {
	case "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range",
		"Accept-Encoding", "Cookie":
	default:
		if !outbound.ReservedHeader(canon) {
			return ""
		}
	}
	return "the plugin and its HTTP client set it"
}

// Plans implements sdk.PlanSource: a copy of the last good catalogue, or,
// when there is none yet, the catalogue fetched now (an error if that
// fetch fails). refresh_after_ms is refresh/2.
func (p *Plugin) Plans(ctx context.Context) (*pluginv1.PlansResponse, error) {
	g := p.gen.Load()
	if g == nil {
		return nil, errors.New("the http plan source is not configured")
	}
	if snap := g.cur.Load(); snap != nil {
		return g.response(snap), nil
	}
	if err := p.fetch(ctx, g, true); err != nil {
		return nil, err
	}
	snap := g.cur.Load()
	if snap == nil { // cannot happen: a good fetch stores one
		return nil, errors.New("no plan catalogue")
	}
	return g.response(snap), nil
}

// response is a copy of snap's catalogue for a caller.
func (g *generation) response(snap *snapshot) *pluginv1.PlansResponse {
	out := plans.Clone(snap.resp)
	out.RefreshAfterMs = (g.s.refresh / 2).Milliseconds()
	return out
}

// Health implements sdk.HealthChecker: healthy unless the last fetch
// failed. The message says whether a catalogue is served meanwhile.
func (p *Plugin) Health(context.Context) error {
	g := p.gen.Load()
	if g == nil {
		return nil
	}
	g.mu.Lock()
	err, at, n := g.lastErr, g.lastErrAt, g.failures
	g.mu.Unlock()
	if err == nil {
		return nil
	}
	snap := g.cur.Load()
	if snap == nil {
		return fmt.Errorf("no plan catalogue yet: the last fetch (%s ago) failed: %v", p.since(at), err)
	}
	return fmt.Errorf("serving the catalogue fetched %s ago: the last %d fetch(es) failed, the latest %s ago: %v",
		p.since(snap.fetched), n, p.since(at), err)
}

func (p *Plugin) since(t time.Time) string {
	return units.FormatDuration(p.now().Sub(t).Round(time.Second))
}

// loop refetches g's catalogue every refresh (after a failure, after
// min(refresh, RetryAfter)) until g ends.
func (p *Plugin) loop(g *generation) {
	wait := g.s.refresh
	for p.wait(g.ctx, wait) {
		err := p.fetch(g.ctx, g, false)
		switch {
		case err == nil:
			wait = g.s.refresh
		case g.ctx.Err() != nil:
			return
		default:
			wait = min(g.s.refresh, RetryAfter)
			kv := []any{"url", g.s.logURL, "error", err.Error(), "retry_in", units.FormatDuration(wait)}
			if snap := g.cur.Load(); snap != nil {
				p.log.Warn("plan catalogue refresh failed; keeping the last good catalogue",
					append(kv, "catalogue_age", p.since(snap.fetched))...)
			} else {
				p.log.Warn("plan catalogue fetch failed; there is no catalogue yet", kv...)
			}
		}
	}
}
