package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wisehosting/wisehosting/sdk/units"
)

// String returns a one-line summary without any secret, so %v, %+v and %s
// are safe to log.
func (c Config) String() string {
	db := "embedded"
	if !c.Database.Embedded() {
		db = "external"
	}
	return fmt.Sprintf("config{file=%q domain=%q listen=%q database=%s plugins=%d}",
		c.Filename, c.Platform.Domain, c.Server.Listen, db, len(c.Plugins))
}

// GoString returns the same as String, so %#v is safe to log too.
func (c Config) GoString() string { return c.String() }

// String describes the plugin without its env values or config block,
// which may hold secrets.
func (p Plugin) String() string {
	cmd := "built-in"
	if !p.Builtin() {
		cmd = strconv.Quote(p.Command)
	}
	return fmt.Sprintf("plugin %q %q (%s)", p.Kind, p.Name, cmd)
}

// GoString returns the same as String.
func (p Plugin) GoString() string { return p.String() }

// Redacted renders the effective configuration — defaults filled in, paths
// absolute, credentials applied — in HCL syntax, with every secret shown as
// "[redacted]" and plugin config blocks referred to by position. It is
// what `wisehosting validate` prints.
func (c *Config) Redacted() string {
	var w hclWriter
	w.attr("data_dir", q(c.DataDir))
	w.line("")
	w.open("platform")
	w.attr("domain", q(c.Platform.Domain))
	w.close()

	s := c.Server
	w.open("server")
	w.attr("listen", q(s.Listen))
	w.attr("secret", secret(s.Secret))
	w.optional("tls_cert", s.TLSCert)
	w.optional("tls_key", s.TLSKey)
	w.optional("base_url", s.BaseURL)
	w.attr("shutdown_timeout", dur(s.ShutdownTimeout))
	if s.MetricsToken.IsSet() {
		w.attr("metrics_token", secret(s.MetricsToken))
	}
	if len(s.PreviousSecrets) > 0 {
		parts := make([]string, len(s.PreviousSecrets))
		for i, p := range s.PreviousSecrets {
			parts[i] = secret(p)
		}
		w.attr("previous_secrets", "["+strings.Join(parts, ", ")+"]")
	}
	w.close()

	db := c.Database
	w.open("database")
	if db.Embedded() {
		w.comment("no url: embedded Postgres under data_dir")
	} else {
		w.attr("url", secret(db.URL))
	}
	if db.Password.IsSet() {
		w.attr("password", secret(db.Password))
	}
	w.attr("max_conns", strconv.Itoa(db.MaxConns))
	w.attr("min_conns", strconv.Itoa(db.MinConns))
	w.attr("max_conn_lifetime", dur(db.MaxConnLifetime))
	w.close()

	sc := c.Scheduler
	w.open("scheduler")
	w.attr("placement", q(sc.Placement))
	w.attr("poll_interval", dur(sc.PollInterval))
	w.attr("stuck_after", dur(sc.StuckAfter))
	w.attr("worker_timeout", dur(sc.WorkerTimeout))
	w.attr("batch_size", strconv.Itoa(sc.BatchSize))
	w.attr("concurrency", strconv.Itoa(sc.Concurrency))
	w.close()

	wk := c.Worker
	w.open("worker")
	w.attr("build_timeout", dur(wk.BuildTimeout))
	w.attr("start_timeout", dur(wk.StartTimeout))
	w.attr("heartbeat_interval", dur(wk.HeartbeatInterval))
	w.attr("log_retention", dur(wk.LogRetention))
	w.attr("allow_loopback_address", strconv.FormatBool(wk.AllowLoopbackAddress))
	w.close()

	ct := c.Container
	w.open("container")
	w.attr("port_range_start", strconv.Itoa(ct.PortRangeStart))
	w.attr("port_range_end", strconv.Itoa(ct.PortRangeEnd))
	w.attr("network", q(ct.Network))
	w.close()

	se := c.Security
	w.open("security")
	w.attr("api_rate_window", dur(se.APIRateWindow))
	w.attr("session_ttl", dur(se.SessionTTL))
	w.attr("secure_cookies", strconv.FormatBool(se.SecureCookies))
	w.attr("allow_private_targets", strconv.FormatBool(se.AllowPrivateTargets))
	w.attr("allow_local_repos", strconv.FormatBool(se.AllowLocalRepos))
	w.close()

	w.open("logging")
	w.attr("level", q(c.Logging.Level))
	w.attr("json", strconv.FormatBool(c.Logging.JSON))
	w.close()

	if m := c.SMTP; m != nil {
		w.open("smtp")
		w.attr("host", q(m.Host))
		w.attr("port", strconv.Itoa(m.Port))
		w.optional("username", m.Username)
		if m.Password.IsSet() {
			w.attr("password", secret(m.Password))
		}
		w.attr("from", q(m.From))
		w.attr("starttls", strconv.FormatBool(m.StartTLS))
		w.optional("ca_file", m.CAFile)
		w.close()
	}

	for _, name := range oauthProviders {
		o, ok := c.OAuth[name]
		if !ok {
			continue
		}
		w.open("oauth " + q(name))
		w.attr("client_id", q(o.ClientID))
		w.attr("client_secret", secret(o.ClientSecret))
		w.optional("auth_url", o.AuthURL)
		w.optional("token_url", o.TokenURL)
		w.optional("api_url", o.APIURL)
		if o.Scopes != nil {
			w.attr("scopes", list(o.Scopes))
		}
		w.close()
	}

	dm := c.Domains
	w.open("domains")
	if dm.Resolver == "" {
		w.comment("no resolver: the system's")
	} else {
		w.attr("resolver", q(dm.Resolver))
	}
	w.attr("recheck_interval", dur(dm.RecheckInterval))
	w.attr("lookup_timeout", dur(dm.LookupTimeout))
	w.attr("grace_period", dur(dm.GracePeriod))
	w.close()

	if c.Proxy.Token.IsSet() {
		w.open("proxy")
		w.attr("token", secret(c.Proxy.Token))
		w.close()
	}

	for _, p := range c.Plugins {
		w.open("plugin " + q(p.Kind) + " " + q(p.Name))
		if p.Builtin() {
			w.comment("built-in")
		} else {
			w.attr("command", q(p.Command))
		}
		if len(p.Args) > 0 {
			w.attr("args", list(p.Args))
		}
		if len(p.Env) > 0 {
			keys := make([]string, 0, len(p.Env))
			for k := range p.Env {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = k + " = " + secret(p.Env[k])
			}
			w.attr("env", "{ "+strings.Join(parts, ", ")+" }")
		}
		w.optional("checksum", p.Checksum)
		if len(p.Events) > 0 {
			w.attr("events", list(p.Events))
		}
		w.comment(fmt.Sprintf("config { … } decoded by the plugin; declared at %s", p.DefRange))
		w.close()
	}
	return w.b.String()
}

// hclWriter renders blocks of aligned attributes.
type hclWriter struct {
	b      strings.Builder
	indent string
	attrs  [][2]string // pending attributes of the open block, for alignment
}

func (w *hclWriter) line(s string) {
	w.flush()
	if s == "" {
		w.b.WriteByte('\n')
		return
	}
	w.b.WriteString(w.indent + s + "\n")
}

func (w *hclWriter) open(header string) {
	w.flush()
	w.b.WriteString(header + " {\n")
	w.indent = "  "
}

func (w *hclWriter) close() {
	w.flush()
	w.indent = ""
	w.b.WriteString("}\n\n")
}

func (w *hclWriter) attr(name, value string) { w.attrs = append(w.attrs, [2]string{name, value}) }

func (w *hclWriter) optional(name, value string) {
	if value != "" {
		w.attr(name, q(value))
	}
}

func (w *hclWriter) comment(s string) { w.attrs = append(w.attrs, [2]string{"#", s}) }

func (w *hclWriter) flush() {
	width := 0
	for _, a := range w.attrs {
		if a[0] != "#" {
			width = max(width, len(a[0]))
		}
	}
	for _, a := range w.attrs {
		if a[0] == "#" {
			fmt.Fprintf(&w.b, "%s# %s\n", w.indent, a[1])
			continue
		}
		fmt.Fprintf(&w.b, "%s%-*s = %s\n", w.indent, width, a[0], a[1])
	}
	w.attrs = w.attrs[:0]
}

// q quotes s as an HCL string: Go quoting plus escaped template sequences.
func q(s string) string {
	return strings.NewReplacer("${", "$${", "%{", "%%{").Replace(strconv.Quote(s))
}

func dur(d time.Duration) string { return q(units.FormatDuration(d)) }

func secret(s Secret) string {
	if !s.IsSet() {
		return `""`
	}
	return q(redacted)
}

func list(items []string) string {
	parts := make([]string, len(items))
	for i, s := range items {
		parts[i] = q(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
