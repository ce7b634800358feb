// Package config loads the core's HCL configuration (wisehosting.hcl): it
// parses the file, evaluates the env() and file() functions, decodes every
// block into typed fields with defaults, overlays systemd credentials and
// validates the result. Every problem is an hcl.Diagnostic naming
// file:line:col, and as many as possible are reported in one pass.
//
// Plugin `config {}` blocks are not decoded here: each Plugin keeps its block
// as an hcl.Body for the plugin host to decode against the schema the plugin
// declares (see Plugin.Config and Config.EvalContext).
//
// The reference of the file format is schema/config.md.
package config

import (
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
)

// Plugin kinds a `plugin` block may name.
const (
	KindScheduler = "scheduler"
	KindProxy     = "proxy"
	KindAlerts    = "alerts"
	KindPlans     = "plans"
)

var (
	pluginKinds    = []string{KindScheduler, KindProxy, KindAlerts, KindPlans}
	oauthProviders = []string{"google", "github", "gitlab", "bitbucket", "codeberg"}
	logLevels      = []string{"trace", "debug", "info", "warn", "error"}
)

// PluginKinds returns the accepted plugin kinds in documentation order. The
// slice is a fresh copy the caller may modify.
func PluginKinds() []string { return slices.Clone(pluginKinds) }

// OAuthProviders returns the accepted `oauth` block labels. The slice is a
// fresh copy the caller may modify.
func OAuthProviders() []string { return slices.Clone(oauthProviders) }

// LogLevels returns the accepted logging.level values, most verbose first.
// The slice is a fresh copy the caller may modify.
func LogLevels() []string { return slices.Clone(logLevels) }

// Config is the decoded, validated configuration of a core. Durations are
// time.Duration, sizes int64 bytes, and sensitive values Secret, which never
// print. Format a Config with %v (or call Redacted) to show it: secrets
// appear as "[redacted]".
type Config struct {
	// Filename is the absolute path of the file the configuration was
	// loaded from (for Parse: the filename given, made absolute).
	Filename string `json:"filename"`

	// DataDir (`data_dir`, default "./data") is where the core keeps its
	// state, including the embedded Postgres cluster. A relative path is
	// resolved against the config file's directory; the field is always
	// absolute.
	DataDir string `json:"data_dir"`

	// Platform is the `platform` block (required).
	Platform Platform `json:"platform"`
	// Server is the `server` block (required).
	Server Server `json:"server"`
	// Database is the `database` block (optional).
	Database Database `json:"database"`
	// Scheduler is the `scheduler` block (optional).
	Scheduler Scheduler `json:"scheduler"`
	// Worker is the `worker` block (optional).
	Worker Worker `json:"worker"`
	// Container is the `container` block (optional).
	Container Container `json:"container"`
	// Security is the `security` block (optional).
	Security Security `json:"security"`
	// Logging is the `logging` block (optional).
	Logging Logging `json:"logging"`
	// SMTP is the `smtp` block; nil when absent, which disables e-mail.
	SMTP *SMTP `json:"smtp,omitempty"`
	// OAuth holds the `oauth "<provider>"` blocks keyed by provider name
	// (google, github, gitlab, bitbucket, codeberg). Absent providers are
	// disabled. Never nil after a successful load.
	OAuth map[string]OAuth `json:"oauth"`
	// Proxy is the `proxy` block (optional).
	Proxy Proxy `json:"proxy"`
	// Events is the `events` block (optional): delivery of platform events
	// to alert sinks and users' webhooks.
	Events Events `json:"events"`
	// Domains is the `domains` block (optional): DNS verification of
	// users' custom domains.
	Domains Domains `json:"domains"`
	// Plugins holds the `plugin "<kind>" "<name>"` blocks in file order.
	Plugins []Plugin `json:"plugins"`

	// ranges maps attribute paths ("server.secret") to where their value
	// came from: the value expression, or a credential file.
	ranges map[string]hcl.Range
	// files are the parsed sources (secrets masked) for WriteDiagnostics.
	files map[string]*hcl.File
	// evalCtx is the context config expressions were evaluated in.
	evalCtx *hcl.EvalContext
	// lookupEnv is Options.LookupEnv, for NO_COLOR.
	lookupEnv func(string) (string, bool)
}

// Platform is the `platform` block.
type Platform struct {
	// Domain (`domain`, required) is the lowercase DNS name under which apps
	// get their hostnames, e.g. "apps.example.com".
	Domain string `json:"domain"`
}

// Server is the `server` block: the core's HTTP(S) API.
type Server struct {
	// Listen (`listen`, default "0.0.0.0:8443") is the host:port the API
	// binds.
	Listen string `json:"listen"`
	// Secret (`secret`, required, at least 16 characters; credential
	// api_server_secret) is the root secret every platform key is derived
	// from with HKDF.
	Secret Secret `json:"secret"`
	// TLSCert and TLSKey (`tls_cert`, `tls_key`; both or neither) are PEM
	// file paths, made absolute against the config file's directory. When
	// empty the API serves plain HTTP (behind a TLS-terminating proxy).
	TLSCert string `json:"tls_cert,omitempty"`
	// TLSKey is the private key matching TLSCert.
	TLSKey string `json:"tls_key,omitempty"`
	// BaseURL (`base_url`, optional) is the absolute http(s) URL users and
	// workers reach the API at, used in links and OAuth callbacks; a trailing
	// slash is removed.
	BaseURL string `json:"base_url,omitempty"`
	// ShutdownTimeout (`shutdown_timeout`, default "30s") bounds the graceful
	// shutdown.
	ShutdownTimeout time.Duration `json:"shutdown_timeout"`
	// MetricsToken (`metrics_token`, optional; credential metrics_token) is
	// the bearer token /metrics requires when set.
	MetricsToken Secret `json:"metrics_token"`
	// PreviousSecrets (`previous_secrets`, optional, each at least 16
	// characters; credential api_server_previous_secrets, one secret per
	// line) are former values of Secret kept after a rotation, so that the
	// column cipher can still decrypt what they encrypted. New values are
	// always encrypted with Secret. Nothing else (JWTs, OAuth state) accepts
	// them.
	PreviousSecrets []Secret `json:"previous_secrets,omitempty"`
}

// PreviousSecretValues returns the texts of PreviousSecrets, in order, for
// the column cipher (core/secrets.NewCipher). Never print the result.
func (s Server) PreviousSecretValues() []string {
	out := make([]string, 0, len(s.PreviousSecrets))
	for _, p := range s.PreviousSecrets {
		if p.IsSet() {
			out = append(out, p.Value())
		}
	}
	return out
}

// TLS reports whether the API serves TLS itself (tls_cert and tls_key set).
func (s Server) TLS() bool { return s.TLSCert != "" && s.TLSKey != "" }

// Database is the `database` block.
type Database struct {
	// URL (`url`, optional) is a PostgreSQL connection string, either a
	// postgres:// URL or keyword/value DSN. It is a Secret because it may
	// embed a password. Empty means the embedded Postgres under DataDir.
	URL Secret `json:"url"`
	// Password (`password`, optional; credential database_password)
	// overrides the password of URL.
	Password Secret `json:"password"`
	// MaxConns (`max_conns`, default 25) caps the pool.
	MaxConns int `json:"max_conns"`
	// MinConns (`min_conns`, default 5) is kept open; at most MaxConns.
	MinConns int `json:"min_conns"`
	// MaxConnLifetime (`max_conn_lifetime`, default "5m") recycles pooled
	// connections.
	MaxConnLifetime time.Duration `json:"max_conn_lifetime"`
}

// Embedded reports whether the core runs its own Postgres cluster, i.e. no
// url is configured.
func (d Database) Embedded() bool { return !d.URL.IsSet() }

// Scheduler is the `scheduler` block.
type Scheduler struct {
	// Placement (`placement`, default "least-loaded") names the
	// `plugin "scheduler"` that picks a worker for each job.
	Placement string `json:"placement"`
	// PollInterval (`poll_interval`, default "5s") is the safety-net poll;
	// NOTIFY wakes the loop at once.
	PollInterval time.Duration `json:"poll_interval"`
	// StuckAfter (`stuck_after`, default "15m") is how long a job may stay
	// running before it is recovered.
	StuckAfter time.Duration `json:"stuck_after"`
	// WorkerTimeout (`worker_timeout`, default "2m") is how long a worker may
	// go without heartbeat before it is considered offline.
	WorkerTimeout time.Duration `json:"worker_timeout"`
	// BatchSize (`batch_size`, default 2000) caps the jobs claimed per pass.
	BatchSize int `json:"batch_size"`
	// Concurrency (`concurrency`, default 2) is how many scheduling passes
	// this core runs at once while a backlog lasts.
	Concurrency int `json:"concurrency"`
}

// Worker is the `worker` block: timeouts handed to workers.
type Worker struct {
	// BuildTimeout (`build_timeout`, default "10m") bounds one build.
	BuildTimeout time.Duration `json:"build_timeout"`
	// StartTimeout (`start_timeout`, default "30s") bounds a container start.
	StartTimeout time.Duration `json:"start_timeout"`
	// HeartbeatInterval (`heartbeat_interval`, default "15s") is how often
	// workers report.
	HeartbeatInterval time.Duration `json:"heartbeat_interval"`
	// LogRetention (`log_retention`, default "7d") is how long runtime logs
	// are kept.
	LogRetention time.Duration `json:"log_retention"`
	// AllowLoopbackAddress (`allow_loopback_address`, default false) lets a
	// worker's address be a loopback address (127.0.0.0/8, ::1, localhost
	// names), for tests and single-machine setups where the edge proxy and
	// the worker share a host. Off, the API and `worker add` refuse such
	// addresses, so a compromised worker cannot point the edge proxy at the
	// proxy host itself. Link-local, unspecified, multicast and broadcast
	// addresses are refused either way.
	AllowLoopbackAddress bool `json:"allow_loopback_address"`
}

// Container is the `container` block.
type Container struct {
	// PortRangeStart (`port_range_start`, default 20000) and PortRangeEnd
	// (`port_range_end`, default 29999) bound the host ports given to app
	// containers; start < end, both within 1024..65535.
	PortRangeStart int `json:"port_range_start"`
	// PortRangeEnd is the last port of the range (inclusive).
	PortRangeEnd int `json:"port_range_end"`
	// Network (`network`, default "wisehosting") is the container network
	// apps join.
	Network string `json:"network"`
}

// Security is the `security` block.
type Security struct {
	// APIRateWindow (`api_rate_window`, default "1m") is the rate limiter's
	// window.
	APIRateWindow time.Duration `json:"api_rate_window"`
	// SessionTTL (`session_ttl`, default "720h") is the lifetime of a user
	// session.
	SessionTTL time.Duration `json:"session_ttl"`
	// SecureCookies (`secure_cookies`, default true) marks cookies Secure.
	SecureCookies bool `json:"secure_cookies"`
	// AllowPrivateTargets (`allow_private_targets`, default false) lets
	// webhooks and other outbound calls reach private and loopback addresses.
	AllowPrivateTargets bool `json:"allow_private_targets"`
	// AllowLocalRepos (`allow_local_repos`, default false) lets apps name a
	// git repository by a local path or file:// URL on the worker: for a
	// single machine where users and operator are the same people.
	AllowLocalRepos bool `json:"allow_local_repos"`
}

// Events is the `events` block: how the outbox dispatcher delivers platform
// events and how long their records are kept.
type Events struct {
	// BatchSize (`batch_size`, default 500, 1..5000) is how many events
	// the dispatcher reads at once; each sink gets one call per batch.
	BatchSize int `json:"batch_size"`
	// MaxAge (`max_age`, default "3d", at least 1m) is how long a target
	// that keeps failing is retried, from the event's time; then the
	// event is dead for it.
	MaxAge time.Duration `json:"max_age"`
	// Retention (`retention`, default "30d", at least 1h) is how long
	// finished outbox rows, webhook deliveries and audit events are kept.
	Retention time.Duration `json:"retention"`
	// WebhookTimeout (`webhook_timeout`, default "10s", 100ms..5m) bounds
	// one request to a user's webhook.
	WebhookTimeout time.Duration `json:"webhook_timeout"`
	// WebhookConcurrency (`webhook_concurrency`, default 16, 1..256) is how
	// many requests to users' webhooks may be in flight at once.
	WebhookConcurrency int `json:"webhook_concurrency"`
}

// Domains is the `domains` block: how users' custom domains are verified
// (a TXT record at _wisehosting.<hostname>) and re-checked.
type Domains struct {
	// Resolver (`resolver`, optional) is the DNS server host:port the
	// checks ask, over UDP with TCP fallback; "" means the system's
	// resolver.
	Resolver string `json:"resolver,omitempty"`
	// RecheckInterval (`recheck_interval`, default "6h", 5m..7d) is how
	// often every domain is re-checked (new pending domains are checked
	// every 5 minutes during their first day).
	RecheckInterval time.Duration `json:"recheck_interval"`
	// LookupTimeout (`lookup_timeout`, default "5s", 100ms..1m) bounds one
	// check.
	LookupTimeout time.Duration `json:"lookup_timeout"`
	// GracePeriod (`grace_period`, default "48h", 1h..30d) is how long a
	// verified domain's record may be missing before the domain fails and
	// leaves the routes (it also takes two failed checks in a row; a
	// lookup that times out never counts).
	GracePeriod time.Duration `json:"grace_period"`
}

// Logging is the `logging` block.
type Logging struct {
	// Level (`level`, default "info") is one of LogLevels().
	Level string `json:"level"`
	// JSON (`json`, default false) switches the log format to JSON lines.
	JSON bool `json:"json"`
}

// HCLogLevel returns Level as an hclog.Level.
func (l Logging) HCLogLevel() hclog.Level { return hclog.LevelFromString(l.Level) }

// SMTP is the `smtp` block: outgoing e-mail.
type SMTP struct {
	// Host (`host`, required) is the SMTP server.
	Host string `json:"host"`
	// Port (`port`, default 587).
	Port int `json:"port"`
	// Username (`username`, optional) authenticates with Password.
	Username string `json:"username,omitempty"`
	// Password (`password`, optional; credential smtp_password).
	Password Secret `json:"password"`
	// From (`from`, required) is the sender address, e.g.
	// "WiseHosting <noreply@example.com>".
	From string `json:"from"`
	// StartTLS (`starttls`, default true) requires STARTTLS. Port 465
	// speaks implicit TLS (smtps) whatever it says.
	StartTLS bool `json:"starttls"`
	// CAFile (`ca_file`, optional; a path, made absolute) holds PEM
	// certificates that verify the server instead of the system's roots.
	CAFile string `json:"ca_file,omitempty"`
}

// SMTPSPort is the port of SMTP over implicit TLS (smtps, RFC 8314).
const SMTPSPort = 465

// TLS reports whether mail to the server is encrypted: implicit TLS on
// SMTPSPort, or STARTTLS.
func (s SMTP) TLS() bool { return s.Port == SMTPSPort || s.StartTLS }

// OAuth is one `oauth "<provider>"` block.
type OAuth struct {
	// Provider is the block label: google, github, gitlab, bitbucket or
	// codeberg.
	Provider string `json:"provider"`
	// ClientID (`client_id`, required).
	ClientID string `json:"client_id"`
	// ClientSecret (`client_secret`, required; credential
	// <provider>_oauth_client_secret).
	ClientSecret Secret `json:"client_secret"`
	// AuthURL, TokenURL and APIURL (`auth_url`, `token_url`, `api_url`,
	// optional absolute http(s) URLs) override the provider's endpoints, for
	// self-hosted GitLab or Forgejo instances. Empty means the provider's
	// public endpoints.
	AuthURL string `json:"auth_url,omitempty"`
	// TokenURL overrides the token endpoint.
	TokenURL string `json:"token_url,omitempty"`
	// APIURL overrides the API base URL.
	APIURL string `json:"api_url,omitempty"`
	// Scopes (`scopes`, optional) overrides the requested scopes; nil means
	// the provider's defaults.
	Scopes []string `json:"scopes,omitempty"`
	// DefRange is the block header's range.
	DefRange hcl.Range `json:"-"`
}

// Proxy is the `proxy` block.
type Proxy struct {
	// Token (`token`, optional; credential internal_api_token) is the static
	// bearer token the edge proxy presents to the pull endpoints.
	Token Secret `json:"token"`
}

// Plugin is one `plugin "<kind>" "<name>"` block.
type Plugin struct {
	// Kind is the first label: one of PluginKinds().
	Kind string `json:"kind"`
	// Name is the second label; (Kind, Name) is unique.
	Name string `json:"name"`
	// Command (`command`, optional) is the plugin executable. Empty means a
	// built-in plugin, served by the core's own binary. A path containing a
	// slash is made absolute against the config file's directory; a bare
	// name is looked up on PATH when the plugin starts.
	Command string `json:"command,omitempty"`
	// Source (`source`, optional, built-ins only) names the built-in plugin
	// the block runs; it defaults to the block's name, so
	// plugin "alerts" "log" {} runs the built-in "log", while
	// plugin "alerts" "ops-log" { source = "log" } runs a second instance.
	Source string `json:"source,omitempty"`
	// Args (`args`, optional) are passed to Command.
	Args []string `json:"args,omitempty"`
	// Env (`env`, optional) is added to the plugin's environment. The values
	// are Secrets since they often carry tokens.
	Env map[string]Secret `json:"env,omitempty"`
	// Checksum (`checksum`, optional, only with command) is the lowercase
	// hex SHA-256 Command must have.
	Checksum string `json:"checksum,omitempty"`
	// Events (`events`, optional, kind "alerts" only) are the event-name
	// patterns the sink receives, in the syntax of sdk/event.ValidPattern
	// and matched with sdk/event.Match (e.g. "app.*", "deployment.failed");
	// empty means all events.
	Events []string `json:"events,omitempty"`
	// Config is the plugin's `config {}` block, undecoded; an absent block is
	// an empty body whose MissingItemRange points into the plugin block.
	// Decode it with Config.EvalContext so env() and file() work there too.
	Config hcl.Body `json:"-"`
	// DefRange is the plugin block header's range.
	DefRange hcl.Range `json:"-"`
}

// Builtin reports whether the plugin is served by the core's own binary.
func (p Plugin) Builtin() bool { return p.Command == "" }

// BuiltinName is the built-in plugin the block runs: Source, or the block's
// name when Source is empty. Meaningless for external plugins.
func (p Plugin) BuiltinName() string {
	if p.Source != "" {
		return p.Source
	}
	return p.Name
}

// Plugin returns the plugin block (kind, name).
func (c *Config) Plugin(kind, name string) (Plugin, bool) {
	for _, p := range c.Plugins {
		if p.Kind == kind && p.Name == name {
			return p, true
		}
	}
	return Plugin{}, false
}

// PluginsOfKind returns the plugin blocks of one kind in file order.
func (c *Config) PluginsOfKind(kind string) []Plugin {
	var out []Plugin
	for _, p := range c.Plugins {
		if p.Kind == kind {
			out = append(out, p)
		}
	}
	return out
}

// Range returns where the value of an attribute came from: its value
// expression in the file, or the credential file that overrode it. path is
// the attribute's dotted path, e.g. "server.secret", "oauth.github.client_id"
// or "plugin.alerts.ops-chat.command". ok is false for values that were left
// at their default.
func (c *Config) Range(path string) (r hcl.Range, ok bool) {
	r, ok = c.ranges[path]
	return r, ok
}

// EvalContext returns the evaluation context the configuration was decoded
// with (the env() and file() functions, file() relative to the config
// file's directory, no variables). Use it to decode Plugin.Config bodies.
func (c *Config) EvalContext() *hcl.EvalContext { return c.evalCtx }
