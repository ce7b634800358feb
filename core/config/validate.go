package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/hostname"
	"github.com/wisehosting/wisehosting/sdk/units"
)

// MinSecretLength is the minimum length of server.secret and of each of
// server.previous_secrets, in characters.
const MinSecretLength = 16

// fromFunction stands in a diagnostic for a value computed by env() or
// file(): such values may be secrets, so no message ever quotes them.
const fromFunction = "the value from env()/file()"

var (
	pluginNameRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	envNameRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	networkNameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
)

func validPluginName(s string) bool { return pluginNameRe.MatchString(s) }

// has reports whether path was given a value (in the file or by a
// credential) that decoded without error.
func (d *decoder) has(path string) bool {
	_, ok := d.cfg.ranges[path]
	return ok && !d.failed[path]
}

// at returns the best place to report a problem with path: where its value
// came from, else the header of the innermost enclosing block, else the
// file's start.
func (d *decoder) at(path string) hcl.Range {
	if r, ok := d.cfg.ranges[path]; ok {
		return r
	}
	for p := path; p != ""; {
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
		if r, ok := d.blocks[p]; ok {
			return r
		}
	}
	return d.fileStart
}

// quote renders the string value v of path for a diagnostic: quoted, or
// fromFunction when the attribute's expression calls a function.
func (d *decoder) quote(path, v string) string {
	if d.computed[path] {
		return fromFunction
	}
	return strconv.Quote(v)
}

// show renders a value of path as the given text (e.g. "port 80", "15m"),
// or fromFunction when the attribute's expression calls a function.
func (d *decoder) show(path, text string) string {
	if d.computed[path] {
		return fromFunction
	}
	return text
}

// hostError turns a host name error about path's value into one that does
// not quote the value when it came from a function.
func (d *decoder) hostError(path string, err error) error {
	var he *hostname.Error
	if err != nil && d.computed[path] && errors.As(err, &he) {
		return fmt.Errorf("%s is not a valid DNS name: %s", fromFunction, he.Reason)
	}
	return err
}

// check reports an error at path unless its value already failed to decode.
func (d *decoder) check(path string, err error) {
	if err == nil || d.failed[path] {
		return
	}
	d.failed[path] = true
	d.errorf(d.at(path), "Invalid "+path, "%s: %s.", path, err)
}

// validate checks the decoded configuration (after the credentials
// overlay), reporting every problem it finds.
func (d *decoder) validate() {
	c := d.cfg

	// platform
	switch _, ok := d.blocks["platform"]; {
	case !ok:
		d.errorf(d.fileStart, "Missing platform block",
			`The configuration needs a platform block naming the apps' domain, e.g. platform { domain = "apps.example.com" }.`)
	case c.Platform.Domain == "":
		if !d.failed["platform.domain"] {
			d.errorf(d.at("platform.domain"), "Missing required argument",
				`platform.domain is required, e.g. domain = "apps.example.com".`)
		}
	default:
		d.check("platform.domain", d.hostError("platform.domain", hostname.Valid(c.Platform.Domain)))
	}

	// server
	s := &c.Server
	switch {
	case d.failed["server.secret"]:
	case !s.Secret.IsSet():
		d.errorf(d.at("server.secret"), "Missing server secret",
			`server.secret is required: set secret = env("WISEHOSTING_SECRET") or file("path") in the server block, `+
				`or provide the systemd credential api_server_secret. Generate one with: openssl rand -base64 32.`)
	case utf8.RuneCountInString(s.Secret.Value()) < MinSecretLength:
		d.check("server.secret", fmt.Errorf("the secret must be at least %d characters long; generate one with: openssl rand -base64 32", MinSecretLength))
	}
	d.validatePreviousSecrets()
	d.check("server.listen", d.checkListen("server.listen", s.Listen))
	if (s.TLSCert == "") != (s.TLSKey == "") && !d.failed["server.tls_cert"] && !d.failed["server.tls_key"] {
		set, missing := "server.tls_cert", "tls_key"
		if s.TLSCert == "" {
			set, missing = "server.tls_key", "tls_cert"
		}
		d.check(set, fmt.Errorf("tls_cert and tls_key go together: set %s too, or neither to serve plain HTTP", missing))
	}
	if s.BaseURL != "" {
		d.check("server.base_url", checkHTTPURL(s.BaseURL))
		s.BaseURL = strings.TrimRight(s.BaseURL, "/")
	}

	// database
	db := &c.Database
	if db.URL.IsSet() {
		d.check("database.url", checkDSN(db.URL.Value()))
	}
	if db.MaxConns < 1 {
		d.check("database.max_conns", errors.New("must be at least 1"))
	}
	switch {
	case db.MinConns < 0:
		d.check("database.min_conns", errors.New("must not be negative"))
	case db.MinConns > db.MaxConns && db.MaxConns >= 1:
		p := "database.min_conns"
		if !d.has(p) {
			p = "database.max_conns"
		}
		d.check(p, fmt.Errorf("min_conns (%s) must not exceed max_conns (%s)",
			d.show("database.min_conns", strconv.Itoa(db.MinConns)), d.show("database.max_conns", strconv.Itoa(db.MaxConns))))
	}

	// scheduler
	d.validatePlacement()
	if c.Scheduler.BatchSize < 1 {
		d.check("scheduler.batch_size", errors.New("must be at least 1"))
	}
	if c.Scheduler.Concurrency < 1 || c.Scheduler.Concurrency > 16 {
		d.check("scheduler.concurrency", errors.New("must be between 1 and 16"))
	}
	d.validateTimeouts()

	// container
	ct := c.Container
	portsOK := true
	for _, p := range []struct {
		path string
		port int
	}{{"container.port_range_start", ct.PortRangeStart}, {"container.port_range_end", ct.PortRangeEnd}} {
		if p.port < 1024 || p.port > 65535 {
			d.check(p.path, fmt.Errorf("%s is outside 1024..65535", d.show(p.path, "port "+strconv.Itoa(p.port))))
			portsOK = false
		}
	}
	if portsOK && ct.PortRangeStart >= ct.PortRangeEnd {
		p := "container.port_range_start"
		if !d.has(p) {
			p = "container.port_range_end"
		}
		d.check(p, fmt.Errorf("port_range_start (%s) must be lower than port_range_end (%s)",
			d.show("container.port_range_start", strconv.Itoa(ct.PortRangeStart)), d.show("container.port_range_end", strconv.Itoa(ct.PortRangeEnd))))
	}
	if !networkNameRe.MatchString(ct.Network) {
		d.check("container.network", fmt.Errorf("%s is not a valid network name: use letters, digits, '_', '.' and '-', starting with a letter or digit",
			d.quote("container.network", ct.Network)))
	}

	// events
	d.validateEvents()

	// domains
	d.validateDomains()

	// logging
	if lvl := c.Logging.Level; !slices.Contains(logLevels, lvl) {
		hint := ""
		if !d.computed["logging.level"] {
			hint = suggest(lvl, logLevels)
		}
		d.check("logging.level", fmt.Errorf("%s is not a log level%s; use one of %s", d.quote("logging.level", lvl), hint, quoteList(logLevels)))
	}

	// smtp
	if m := c.SMTP; m != nil {
		if m.Host == "" && !d.failed["smtp.host"] {
			d.errorf(d.at("smtp.host"), "Missing required argument", `smtp.host is required when the smtp block is present, e.g. host = "smtp.example.com".`)
		}
		if m.Port < 1 || m.Port > 65535 {
			d.check("smtp.port", fmt.Errorf("%s is outside 1..65535", d.show("smtp.port", "port "+strconv.Itoa(m.Port))))
		}
		switch {
		case d.failed["smtp.from"]:
		case m.From == "":
			d.errorf(d.at("smtp.from"), "Missing required argument", `smtp.from is required when the smtp block is present, e.g. from = "WiseHosting <noreply@example.com>".`)
		default:
			if _, err := mail.ParseAddress(m.From); err != nil {
				d.check("smtp.from", fmt.Errorf("%s is not an e-mail address such as \"WiseHosting <noreply@example.com>\"", d.quote("smtp.from", m.From)))
			}
		}
		if m.Username != "" && !m.TLS() && !slices.Contains([]string{"localhost", "127.0.0.1", "::1"}, m.Host) {
			d.check("smtp.starttls", errors.New("username and password with starttls = false would cross the network in clear text: "+
				"turn starttls on, use port 465 (implicit TLS), or send through a relay on localhost"))
		}
		if m.CAFile != "" && !m.TLS() {
			d.check("smtp.ca_file", errors.New("ca_file verifies the server's TLS certificate, but starttls = false on a port other than 465 speaks no TLS"))
		}
	}

	// oauth
	for _, name := range oauthProviders {
		o, ok := c.OAuth[name]
		if !ok {
			continue
		}
		prefix := "oauth." + name + "."
		if o.ClientID == "" && !d.failed[prefix+"client_id"] {
			d.errorf(d.at(prefix+"client_id"), "Missing required argument", "oauth %q needs client_id.", name)
		}
		if !o.ClientSecret.IsSet() && !d.failed[prefix+"client_secret"] {
			d.errorf(d.at(prefix+"client_secret"), "Missing OAuth client secret",
				`oauth %q needs client_secret: set client_secret = env("NAME") or file("path"), or provide the systemd credential %s_oauth_client_secret.`, name, name)
		}
		for _, u := range []struct{ attr, val string }{{"auth_url", o.AuthURL}, {"token_url", o.TokenURL}, {"api_url", o.APIURL}} {
			if u.val != "" {
				d.check(prefix+u.attr, checkHTTPURL(u.val))
			}
		}
		for _, sc := range o.Scopes {
			if sc == "" || strings.ContainsFunc(sc, unicode.IsSpace) {
				d.check(prefix+"scopes", errors.New("scopes must be non-empty and without spaces; list each scope separately"))
				break
			}
		}
	}

	// plugins
	for i := range c.Plugins {
		d.validatePlugin(&c.Plugins[i])
	}
}

func (d *decoder) validatePlacement() {
	c := d.cfg
	const path = "scheduler.placement"
	if d.failed[path] {
		return
	}
	if c.Scheduler.Placement == "" {
		d.check(path, errors.New(`must name a scheduler plugin, e.g. "least-loaded"`))
		return
	}
	scheds := c.PluginsOfKind(KindScheduler)
	if len(scheds) == 0 {
		return
	}
	names := make([]string, len(scheds))
	for i, p := range scheds {
		if p.Name == c.Scheduler.Placement {
			return
		}
		names[i] = p.Name
	}
	subject := d.at(path)
	how := ""
	missing := fmt.Sprintf("no plugin \"scheduler\" %q is declared%s", c.Scheduler.Placement, suggest(c.Scheduler.Placement, names))
	if d.computed[path] {
		missing = "no scheduler plugin of that name is declared"
	}
	if !d.has(path) {
		how = fmt.Sprintf(" (the default); set scheduler { placement = %q }", names[0])
		if _, ok := d.blocks["scheduler"]; !ok {
			subject = scheds[0].DefRange
		}
	}
	d.failed[path] = true
	d.errorf(subject, "Unknown placement plugin",
		"scheduler.placement is %s%s, but %s. Declared scheduler plugins: %s.",
		d.quote(path, c.Scheduler.Placement), how, missing, quoteList(names))
}

// validatePreviousSecrets checks server.previous_secrets: each at least
// MinSecretLength characters. An entry equal to the current secret is
// useless and draws a warning. No message quotes a secret.
func (d *decoder) validatePreviousSecrets() {
	const path = "server.previous_secrets"
	s := d.cfg.Server
	if d.failed[path] {
		return
	}
	for i, p := range s.PreviousSecrets {
		if utf8.RuneCountInString(p.Value()) < MinSecretLength {
			d.check(path, fmt.Errorf("entry %d is shorter than %d characters; every secret, current or previous, has at least %d",
				i+1, MinSecretLength, MinSecretLength))
			return
		}
		if s.Secret.IsSet() && p.Value() == s.Secret.Value() {
			d.warnf(d.at(path), "Previous secret equals the current one",
				"%s: entry %d is the current server.secret; remove it from the list.", path, i+1)
		}
	}
}

// validateTimeouts checks the durations that only make sense together; each
// error points at the scheduler attribute, or at the worker attribute when
// the scheduler one was left at its default.
func (d *decoder) validateTimeouts() {
	sc, wk := d.cfg.Scheduler, d.cfg.Worker
	durOf := func(path string, v time.Duration) string {
		s := units.FormatDuration(v)
		if !d.has(path) {
			s += ", the default"
		}
		return d.show(path, s)
	}
	pick := func(paths ...string) string {
		for _, p := range paths {
			if d.has(p) {
				return p
			}
		}
		return paths[0]
	}
	anyFailed := func(paths ...string) bool {
		return slices.ContainsFunc(paths, func(p string) bool { return d.failed[p] })
	}
	// report is check without the path prefix: the message names both
	// attributes itself.
	report := func(path string, err error) {
		d.failed[path] = true
		d.errorf(d.at(path), "Invalid "+path, "%s.", err)
	}

	const wt, hb = "scheduler.worker_timeout", "worker.heartbeat_interval"
	if !anyFailed(wt, hb) && sc.WorkerTimeout/2 < wk.HeartbeatInterval {
		report(pick(wt, hb), fmt.Errorf("scheduler.worker_timeout (%s) must be at least twice worker.heartbeat_interval (%s), "+
			"or a worker that misses a single heartbeat is taken offline and its apps are stopped",
			durOf(wt, sc.WorkerTimeout), durOf(hb, wk.HeartbeatInterval)))
	}

	const sa, bt, st = "scheduler.stuck_after", "worker.build_timeout", "worker.start_timeout"
	limit := wk.BuildTimeout + wk.StartTimeout
	if wk.BuildTimeout > math.MaxInt64-wk.StartTimeout {
		limit = math.MaxInt64
	}
	if !anyFailed(sa, bt, st) && sc.StuckAfter <= limit {
		report(pick(sa, bt, st), fmt.Errorf("scheduler.stuck_after (%s) must be longer than worker.build_timeout (%s) plus worker.start_timeout (%s), "+
			"or builds that are still within their limits are failed as stuck",
			durOf(sa, sc.StuckAfter), durOf(bt, wk.BuildTimeout), durOf(st, wk.StartTimeout)))
	}
}

func (d *decoder) validatePlugin(p *Plugin) {
	prefix := "plugin." + p.Kind + "." + p.Name + "."
	if p.Checksum != "" {
		sum := strings.ToLower(p.Checksum)
		switch b, err := hex.DecodeString(sum); {
		case p.Command == "" && !d.failed[prefix+"command"]:
			d.check(prefix+"checksum", errors.New("a checksum applies only to an external plugin: set command too, or remove checksum for a built-in plugin"))
		case err != nil || len(b) != 32:
			d.check(prefix+"checksum", errors.New("must be a SHA-256 digest: 64 hexadecimal characters, as printed by sha256sum"))
		default:
			p.Checksum = sum
		}
	}
	if p.Source != "" && p.Command != "" {
		d.check(prefix+"source", errors.New("source names a built-in plugin; an external plugin has a command instead: keep one of the two"))
	} else if p.Source != "" && !pluginNameRe.MatchString(p.Source) {
		d.check(prefix+"source", fmt.Errorf("must be the name of a built-in plugin (%s); `wisehosting plugins list -builtin` lists them", pluginNameRe))
	}
	if len(p.Args) > 0 && p.Command == "" && !d.failed[prefix+"command"] {
		d.check(prefix+"args", errors.New("args are passed to command: set command too, or remove args for a built-in plugin"))
	}
	if len(p.Events) > 0 && p.Kind != KindAlerts {
		d.check(prefix+"events", fmt.Errorf("events apply only to plugins of kind %q, not %q", KindAlerts, p.Kind))
	}
	const patternSyntax = `patterns are dot-separated segments of a-z, 0-9 and '_', where a whole segment may be "*", e.g. "app.*" or "deployment.failed"`
	for i, ev := range p.Events {
		if err := event.ValidPattern(ev); err != nil {
			if d.computed[prefix+"events"] {
				err = fmt.Errorf("entry %d, %s, is not a valid event pattern", i+1, fromFunction)
			}
			d.check(prefix+"events", fmt.Errorf("%w; %s", err, patternSyntax))
			break
		}
		if !d.failed[prefix+"events"] && !slices.ContainsFunc(event.All(), func(name string) bool { return event.Match(ev, name) }) {
			d.warnf(d.at(prefix+"events"), "Event pattern matches no event",
				"%s: entry %d, %s, matches no event the core emits, so the plugin never receives anything for it. Events: %s.",
				prefix+"events", i+1, d.quote(prefix+"events", ev), strings.Join(event.All(), ", "))
		}
	}
	for k := range p.Env {
		if !envNameRe.MatchString(k) {
			d.check(prefix+"env", fmt.Errorf("%s is not a valid environment variable name: use letters, digits and '_', not starting with a digit",
				d.quote(prefix+"env", k)))
			break
		}
	}
}

// checkListen accepts host:port with an optional host (IP address, or a
// host name of one or more labels such as "localhost") and a numeric port
// 0..65535 (0 picks a free port).
func (d *decoder) checkListen(path, s string) error {
	shown := d.quote(path, s)
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%s is not host:port, e.g. \"0.0.0.0:8443\" or \"[::]:8443\"", shown)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%s: the port must be a number from 0 to 65535", shown)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	h := strings.ToLower(host)
	if hostname.ValidLabel(h) != nil && hostname.Valid(h) != nil {
		return fmt.Errorf("%s: the host must be an IP address or a host name", shown)
	}
	return nil
}

// checkHTTPURL accepts an absolute http or https URL without credentials,
// query or fragment.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New(`must be an absolute http:// or https:// URL, e.g. "https://paas.example.com"`)
	case u.Host == "":
		return errors.New("the URL has no host")
	case u.User != nil:
		return errors.New("the URL must not contain credentials")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("the URL must not have a query or fragment")
	}
	return nil
}

// checkDSN accepts a postgres:// or postgresql:// URL or a keyword/value
// DSN. Its messages never quote the value, which may hold a password.
func checkDSN(s string) error {
	if i := strings.Index(s, "://"); i >= 0 {
		scheme := s[:i]
		if scheme != "postgres" && scheme != "postgresql" {
			return errors.New("the URL scheme must be postgres:// or postgresql://")
		}
		if _, err := url.Parse(s); err != nil {
			return errors.New("the value is not a valid URL (is a special character in the password not percent-encoded?)")
		}
		return nil
	}
	if !strings.Contains(s, "=") {
		return errors.New(`must be a postgres:// URL or a keyword/value DSN such as "host=db dbname=wisehosting"`)
	}
	return nil
}

// validateEvents checks the events block's bounds.
func (d *decoder) validateEvents() {
	e := d.cfg.Events
	intIn := func(path string, v, lo, hi int) {
		if !d.failed[path] && (v < lo || v > hi) {
			d.check(path, fmt.Errorf("%s is outside %d..%d", d.show(path, strconv.Itoa(v)), lo, hi))
		}
	}
	durIn := func(path string, v, lo, hi time.Duration) {
		if d.failed[path] || v >= lo && (hi == 0 || v <= hi) {
			return
		}
		bound := "at least " + units.FormatDuration(lo)
		if hi != 0 {
			bound = "between " + units.FormatDuration(lo) + " and " + units.FormatDuration(hi)
		}
		d.check(path, fmt.Errorf("%s must be %s", d.show(path, units.FormatDuration(v)), bound))
	}
	intIn("events.batch_size", e.BatchSize, 1, 5000)
	intIn("events.webhook_concurrency", e.WebhookConcurrency, 1, 256)
	durIn("events.max_age", e.MaxAge, time.Minute, 0)
	durIn("events.retention", e.Retention, time.Hour, 0)
	durIn("events.webhook_timeout", e.WebhookTimeout, 100*time.Millisecond, 5*time.Minute)
}

// durIn checks that the duration at path lies within lo..hi (hi 0: no
// upper bound).
func (d *decoder) durIn(path string, v, lo, hi time.Duration) {
	if d.failed[path] || v >= lo && (hi == 0 || v <= hi) {
		return
	}
	bound := "at least " + units.FormatDuration(lo)
	if hi != 0 {
		bound = "between " + units.FormatDuration(lo) + " and " + units.FormatDuration(hi)
	}
	d.check(path, fmt.Errorf("%s must be %s", d.show(path, units.FormatDuration(v)), bound))
}

// validateDomains checks the domains block: the resolver's address and
// the bounds.
func (d *decoder) validateDomains() {
	dm := d.cfg.Domains
	if dm.Resolver != "" {
		d.check("domains.resolver", d.checkResolver("domains.resolver", dm.Resolver))
	}
	d.durIn("domains.recheck_interval", dm.RecheckInterval, 5*time.Minute, 7*units.Day)
	d.durIn("domains.lookup_timeout", dm.LookupTimeout, 100*time.Millisecond, time.Minute)
	d.durIn("domains.grace_period", dm.GracePeriod, time.Hour, 30*units.Day)
}

// checkResolver accepts host:port with an IP address or host name and a
// port 1..65535.
func (d *decoder) checkResolver(path, s string) error {
	shown := d.quote(path, s)
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%s is not host:port, e.g. \"127.0.0.53:53\" or \"[2001:db8::53]:53\"", shown)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%s: the port must be a number from 1 to 65535", shown)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if h := strings.ToLower(host); hostname.ValidLabel(h) != nil && hostname.Valid(h) != nil {
		return fmt.Errorf("%s: the host must be an IP address or a host name", shown)
	}
	return nil
}
