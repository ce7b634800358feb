// Package email is the built-in "email" alert sink: it sends each event as
// one e-mail, with an HTML and a plain-text body, to the configured
// recipients over SMTP (sdk/mail). One mail per event, not a digest: it is
// what people expect of an alert, and a retry then resends exactly the
// event that failed.
//
// The subject is compact, "[WiseHosting] ❌ Deployment failed — shop"
// (subject_prefix, the event's emoji and title, the app's name); the body
// lists the details the event carries: app, deployment, branch, commit
// (short SHA and the first line of its message), error, reason, value
// against threshold, restarts, other data fields, and a link to the app
// (data.url, else https://<subdomain>). Every value is HTML-escaped. Each
// mail carries Auto-Submitted: auto-generated (RFC 3834: no
// vacation auto-replies), X-WiseHosting-Event and X-WiseHosting-Event-ID
// headers, and a Message-ID made from the event's id, so a retried event
// that did arrive twice is recognisable as the same message.
//
// Each event gets one result:
//
//   - the server accepted the mail for every recipient: delivered;
//   - a 4xx reply, a network error, a timeout: retried;
//   - a 5xx reply (a refused recipient included: all or nothing, nobody
//     gets the mail then), a certificate that does not verify, a server
//     without STARTTLS (unless starttls = false) or AUTH PLAIN (with a
//     username), an address the guard refuses: failed.
//
// Security: STARTTLS is required by default, and a server that does not
// offer it fails the delivery rather than getting the mail in clear text;
// tls = true (or port 465) speaks TLS from the first byte instead; only
// starttls = false sends in clear text, and then a username and password
// only to a loopback relay. The server's certificate is verified against
// the system's roots, or ca_file's, for server_name (default: host). The
// password never appears in a log or a result's message.
//
// Unless allow_private is set, the plugin refuses (sdk/netguard) to connect
// to loopback, private, link-local and other non-public addresses, checked
// on the address the host name resolves to when connecting; a literal such
// address in host is already rejected by Configure.
//
// Configuration:
//
//	plugin "alerts" "ops-mail" {
//	  source = "email"
//	  events = ["deployment.failed", "app.*"]
//	  config {
//	    host     = "smtp.example.com"            # required
//	    port     = 587                           # default 587, 465 with tls = true
//	    username = "alerts@example.com"
//	    password = env("SMTP_PASSWORD")          # with username; never logged
//	    from     = "WiseHosting <alerts@example.com>"     # required
//	    to       = ["ops@example.com", "Jane <jane@example.com>"]  # required, 1 to 50
//	    starttls = true            # require STARTTLS (false: clear text!)
//	    tls      = false           # implicit TLS (smtps); port 465 implies it
//	    timeout  = "30s"           # per mail, connecting included
//	    max_concurrency = 2        # mails being sent at once
//	    subject_prefix  = "[WiseHosting]"   # "" for none
//	    server_name     = "smtp.example.com" # name the certificate is checked for
//	    ca_file         = "/etc/wisehosting/smtp-ca.pem"  # PEM roots instead of the system's
//	    allow_private   = false    # true lets host reach private and loopback addresses
//	  }
//	}
package email

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"html/template"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/mail"
	"github.com/wisehosting/wisehosting/sdk/netguard"
	"github.com/wisehosting/wisehosting/sdk/outbound"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/units"
)

// Name is the plugin's name: plugin "alerts" "<instance>" { source = "email" … }.
const Name = "email"

// Version is the plugin's release version.
const Version = "0.1.0"

// Defaults and bounds of the config block.
const (
	// DefaultTimeout bounds the sending of one mail, connecting included.
	DefaultTimeout = 30 * time.Second
	// MinTimeout and MaxTimeout bound timeout.
	MinTimeout = 100 * time.Millisecond
	MaxTimeout = 5 * time.Minute
	// DefaultMaxConcurrency is how many mails may be sent at once.
	DefaultMaxConcurrency = 2
	// MaxMaxConcurrency bounds max_concurrency.
	MaxMaxConcurrency = 16
	// MaxRecipients bounds to.
	MaxRecipients = 50
	// DefaultSubjectPrefix starts every subject.
	DefaultSubjectPrefix = "[WiseHosting]"
	// MaxSubjectPrefix bounds subject_prefix, in bytes.
	MaxSubjectPrefix = 64
)

// Config is the plugin's decoded config block.
type Config struct {
	// Host is the SMTP server's host name or IP address. Required.
	Host string `json:"host"`
	// Port is the server's port; nil means 587, or 465 with TLS.
	Port *int `json:"port"`
	// Username and Password log in with AUTH PLAIN; both or neither. The
	// password is never logged.
	Username string `json:"username"`
	Password string `json:"password"`
	// From is the sender address. Required.
	From string `json:"from"`
	// To are the recipients, 1 to MaxRecipients.
	To []string `json:"to"`
	// StartTLS requires STARTTLS; nil means true. false sends in clear
	// text (unless TLS).
	StartTLS *bool `json:"starttls"`
	// TLS speaks TLS from the first byte (smtps); port 465 implies it.
	TLS bool `json:"tls"`
	// Timeout of one mail (a units.ParseDuration string); "" means
	// DefaultTimeout.
	Timeout string `json:"timeout"`
	// AllowPrivate lets the plugin connect to loopback, private,
	// link-local and other non-public addresses.
	AllowPrivate bool `json:"allow_private"`
	// MaxConcurrency is how many mails may be sent at once; nil means
	// DefaultMaxConcurrency.
	MaxConcurrency *int `json:"max_concurrency"`
	// SubjectPrefix starts every subject; nil means DefaultSubjectPrefix,
	// "" none.
	SubjectPrefix *string `json:"subject_prefix"`
	// ServerName is the name the server's certificate is verified for; ""
	// means Host.
	ServerName string `json:"server_name"`
	// CAFile is an absolute path to PEM certificates that verify the
	// server instead of the system's roots.
	CAFile string `json:"ca_file"`
}

// Spec returns the schema of the plugin's config block.
func Spec() *pluginv1.Spec {
	return hclspec.Object(map[string]*pluginv1.Spec{
		"host": hclspec.Attr("host", "string", true, "SMTP server: a host name or IP address, without scheme or port."),
		"port": hclspec.Attr("port", "number", false,
			"SMTP port; default 587 (submission, STARTTLS), or 465 with tls = true. Port 465 always speaks implicit TLS."),
		"username": hclspec.Attr("username", "string", false, "Login for AUTH PLAIN (with password)."),
		"password": hclspec.Attr("password", "string", false, "Password for AUTH PLAIN. Sensitive: never logged."),
		"from":     hclspec.Attr("from", "string", true, `Sender address, e.g. "WiseHosting <alerts@example.com>".`),
		"to":       hclspec.Attr("to", "list(string)", true, "Recipient addresses, 1 to 50; each event is one mail to all of them."),
		"starttls": hclspec.Default(
			hclspec.Attr("starttls", "bool", false,
				"Require STARTTLS (a server that does not offer it fails the delivery). false sends mail, and credentials to a loopback relay, in clear text."),
			hclspec.Literal("true")),
		"tls": hclspec.Default(
			hclspec.Attr("tls", "bool", false, "Speak TLS from the first byte (smtps, usually port 465) instead of STARTTLS."),
			hclspec.Literal("false")),
		"timeout": hclspec.Default(
			hclspec.Attr("timeout", "string", false, "Time limit of sending one mail, connecting included."),
			hclspec.Literal(strconv.Quote(units.FormatDuration(DefaultTimeout)))),
		"allow_private": hclspec.Default(
			hclspec.Attr("allow_private", "bool", false,
				"Allow connections to loopback, private, link-local and other non-public addresses."),
			hclspec.Literal("false")),
		"max_concurrency": hclspec.Default(
			hclspec.Attr("max_concurrency", "number", false, "How many mails may be sent at once."),
			hclspec.Literal(strconv.Itoa(DefaultMaxConcurrency))),
		"subject_prefix": hclspec.Default(
			hclspec.Attr("subject_prefix", "string", false, `Start of every subject; "" for none.`),
			hclspec.Literal(strconv.Quote(DefaultSubjectPrefix))),
		"server_name": hclspec.Attr("server_name", "string", false,
			"Name the server's certificate must be valid for; default: host."),
		"ca_file": hclspec.Attr("ca_file", "string", false,
			"Absolute path of PEM certificates that verify the server instead of the system's roots (a private CA)."),
	})
}

// settings are the validated config Deliver uses. A new configuration
// makes new settings; deliveries in flight finish with the old ones.
type settings struct {
	server mail.Server
	from   string
	to     []string
	domain string // of from, for Message-IDs
	prefix string
	tmpl   *template.Template // the HTML body's
	// limit bounds the mails being sent, across concurrent Deliver calls.
	limit *outbound.Limiter
}

// Plugin is the email alert sink. Create it with New.
type Plugin struct {
	sdk.Base

	cfg      Config
	settings atomic.Pointer[settings] // nil until configured
	log      hclog.Logger
	tmpl     *template.Template // parsed once; safe for concurrent use
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
			Description: "Sends each event as an e-mail (HTML and text) to fixed recipients over SMTP, STARTTLS required by default.",
			Spec:        Spec(),
		},
		log:  l,
		tmpl: newHTMLTemplate(),
	}
	p.Config = &p.cfg
	p.Validate = p.validate
	return p
}

func (p *Plugin) validate() error {
	c := &p.cfg
	s := &settings{prefix: DefaultSubjectPrefix, tmpl: p.tmpl}

	if strings.TrimSpace(c.Host) == "" {
		return errors.New("host is required: the SMTP server's host name, e.g. smtp.example.com")
	}
	srv := mail.Server{
		Host:         c.Host,
		Username:     c.Username,
		Password:     c.Password,
		ServerName:   c.ServerName,
		AllowPrivate: c.AllowPrivate,
	}
	if c.Port != nil {
		if *c.Port < 1 || *c.Port > 65535 {
			return fmt.Errorf("port = %d: must be between 1 and 65535", *c.Port)
		}
		srv.Port = *c.Port
	}
	switch {
	case c.TLS || srv.Port == mail.SubmissionsPort:
		srv.Security = mail.ImplicitTLS
	case c.StartTLS == nil || *c.StartTLS:
		srv.Security = mail.StartTLS
	default:
		srv.Security = mail.Plain
	}
	var err error
	if srv.Timeout, err = units.DurationSetting("timeout", c.Timeout, DefaultTimeout, MinTimeout, MaxTimeout); err != nil {
		return err
	}
	if c.CAFile != "" {
		pool, err := loadCAFile(c.CAFile)
		if err != nil {
			return err
		}
		srv.RootCAs = pool
	}
	if addr, err := netip.ParseAddr(c.Host); err == nil && !c.AllowPrivate {
		if why := netguard.Reason(addr); why != "" {
			return fmt.Errorf("host: %s is %s; set allow_private = true to send mail there", addr, why)
		}
	}
	if srv.Security == mail.Plain && c.Username != "" && !isLoopback(c.Host) {
		return errors.New("username and password with starttls = false and tls = false would cross the network in clear text: " +
			"turn starttls or tls on, or send through a relay on loopback")
	}
	if err := srv.Validate(); err != nil {
		return err
	}
	if (srv.Security == mail.Plain) && (c.CAFile != "" || c.ServerName != "") {
		return errors.New("ca_file and server_name verify a TLS server, but starttls = false and tls = false: no TLS is spoken")
	}
	s.server = srv

	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return fmt.Errorf("from: %w", err)
	}
	s.from = from.String()
	s.domain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	if len(c.To) == 0 {
		return errors.New("to: at least one recipient is required")
	}
	if len(c.To) > MaxRecipients {
		return fmt.Errorf("to: at most %d recipients, not %d", MaxRecipients, len(c.To))
	}
	seen := map[string]int{}
	for i, raw := range c.To {
		a, err := mail.ParseAddress(raw)
		if err != nil {
			return fmt.Errorf("to[%d]: %w", i, err)
		}
		key := strings.ToLower(a.Address)
		if j, dup := seen[key]; dup {
			return fmt.Errorf("to[%d]: %s is already to[%d]", i, a.Address, j)
		}
		seen[key] = i
		s.to = append(s.to, a.String())
	}

	conc, err := outbound.MaxConcurrency(c.MaxConcurrency, DefaultMaxConcurrency, MaxMaxConcurrency)
	if err != nil {
		return err
	}
	if c.SubjectPrefix != nil {
		prefix := *c.SubjectPrefix
		if len(prefix) > MaxSubjectPrefix {
			return fmt.Errorf("subject_prefix: at most %d bytes", MaxSubjectPrefix)
		}
		if oneLine(prefix, MaxSubjectPrefix) != strings.TrimSpace(prefix) {
			return errors.New("subject_prefix: must be one line without control characters or runs of white space")
		}
		s.prefix = strings.TrimSpace(prefix)
	}
	s.limit = outbound.NewLimiter(conc)
	p.settings.Store(s)
	return nil
}

// isLoopback reports whether host names this machine as net/smtp judges
// it: localhost, 127.0.0.1 or ::1.
func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// loadCAFile reads the PEM certificates of ca_file.
func loadCAFile(path string) (*x509.CertPool, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("ca_file = %q: must be an absolute path (the plugin's working directory is not the config file's)", path)
	}
	pool, err := mail.LoadCertPool(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	return pool, nil
}

// Deliver implements sdk.AlertSink: one mail per event, at most
// max_concurrency at once (across concurrent calls), one result per event
// in the order of the request. Events still waiting for a slot when ctx
// ends are left to be retried.
func (p *Plugin) Deliver(ctx context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
	events := req.GetEvents()
	results := make([]*pluginv1.DeliveryResult, len(events))
	s := p.settings.Load()
	if s == nil {
		for i, ev := range events {
			results[i] = result(ev, retry, "not sent: the email sink is not configured")
		}
		return &pluginv1.DeliverResponse{Results: results}, nil
	}
	s.limit.Each(ctx, len(events),
		func(i int) { results[i] = p.send(ctx, s, events[i]) },
		func(i int, err error) {
			results[i] = result(events[i], retry, "not sent: the delivery was cancelled ("+err.Error()+")")
		})
	return &pluginv1.DeliverResponse{Results: results}, nil
}

// Outcomes, shorter.
const (
	delivered = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED
	retry     = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_RETRY
	failed    = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED
)

func result(ev *pluginv1.Event, o pluginv1.DeliveryOutcome, msg string) *pluginv1.DeliveryResult {
	return &pluginv1.DeliveryResult{EventId: ev.GetId(), Outcome: o, Message: msg}
}

// send mails one event and says how it went.
func (p *Plugin) send(ctx context.Context, s *settings, ev *pluginv1.Event) *pluginv1.DeliveryResult {
	start := time.Now()
	res := s.mail(ctx, ev, start)
	res.Message = outbound.Scrub(res.GetMessage(), []string{s.server.Password})
	kv := []any{"id", ev.GetId(), "type", ev.GetType(), "attempt", ev.GetAttempt(), "server", s.server.Address(),
		"recipients", len(s.to), "outcome", res.GetOutcome().String(), "took", time.Since(start).Round(time.Millisecond).String(),
		"message", res.GetMessage()}
	if res.GetOutcome() == failed {
		p.log.Warn("e-mail not delivered", kv...)
	} else {
		p.log.Debug("e-mail sent", kv...)
	}
	return res
}

func (s *settings) mail(ctx context.Context, ev *pluginv1.Event, now time.Time) *pluginv1.DeliveryResult {
	if err := checkEventID(ev.GetId()); err != nil {
		return result(ev, failed, "not sent: "+err.Error())
	}
	c, err := compose(ev, s.prefix, s.tmpl, now)
	if err != nil {
		return result(ev, failed, "not sent: "+err.Error())
	}
	m := mail.Message{
		From:    s.from,
		To:      s.to,
		Subject: c.subject,
		Text:    c.text,
		HTML:    c.html,
		Date:    c.at,
		Headers: map[string]string{"Auto-Submitted": "auto-generated", "X-WiseHosting-Event-ID": ev.GetId()},
	}
	if typ := ev.GetType(); validEventType(typ) {
		m.Headers["X-WiseHosting-Event"] = typ
	}
	if id := "<" + ev.GetId() + ".alert@" + s.domain + ">"; !strings.Contains(ev.GetId(), "@") && len(id) <= 250 {
		m.MessageID = id
	}
	err = mail.Send(ctx, s.server, m)
	if err == nil {
		n := "recipient"
		if len(s.to) > 1 {
			n = "recipients"
		}
		return result(ev, delivered, fmt.Sprintf("sent to %d %s via %s", len(s.to), n, s.server.Address()))
	}
	var me *mail.Error
	if !errors.As(err, &me) {
		return result(ev, retry, err.Error())
	}
	msg := err.Error()
	switch {
	case me.Temporary:
		return result(ev, retry, msg)
	case me.Stage == mail.StageConnect:
		msg += " (a configuration problem, not retried: point host at a public address, or set allow_private = true)"
	case me.Code == 0 && me.Stage != mail.StageMessage:
		msg += " (a configuration problem, not retried)"
	}
	return result(ev, failed, msg)
}

// maxEventID bounds the length of an event id put in a header.
const maxEventID = 200

// checkEventID checks that an event id can go into a header and a
// Message-ID: printable ASCII without spaces or angle brackets.
func checkEventID(id string) error {
	if id == "" {
		return errors.New("the event has no id")
	}
	if len(id) > maxEventID {
		return fmt.Errorf("the event id is longer than %d bytes", maxEventID)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '<' || c == '>' {
			return fmt.Errorf("the event id %q is not printable ASCII without spaces or angle brackets", oneLine(id, 80))
		}
	}
	return nil
}

// validEventType reports whether typ can go into a header as it is: 1 to
// 100 bytes of a-z, 0-9, '_', '.' and '-'.
func validEventType(typ string) bool {
	if typ == "" || len(typ) > 100 {
		return false
	}
	for i := 0; i < len(typ); i++ {
		if c := typ[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
