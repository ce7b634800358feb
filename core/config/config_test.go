package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// minimal is the smallest valid configuration.
const minimal = `platform { domain = "apps.example.com" }
server { secret = "0123456789abcdef" }
`

// envMap returns a LookupEnv backed by m.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// noEnv isolates a test from the process environment.
var noEnv = Options{LookupEnv: envMap(nil)}

// pos renders a diagnostic's subject as file:line:col.
func pos(d *hcl.Diagnostic) string {
	if d.Subject == nil {
		return "<no subject>"
	}
	return fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
}

func dump(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "\n  %s: %s: %s — %s", pos(d), sev(d), d.Summary, d.Detail)
	}
	return b.String()
}

func sev(d *hcl.Diagnostic) string {
	if d.Severity == hcl.DiagWarning {
		return "warning"
	}
	return "error"
}

func mustParse(t *testing.T, src string, opts Options) *Config {
	t.Helper()
	cfg, diags := Parse([]byte(src), "test.hcl", opts)
	if diags.HasErrors() || cfg == nil {
		t.Fatalf("Parse failed:%s", dump(diags))
	}
	return cfg
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, minimal, noEnv)
	wd, _ := os.Getwd()
	tests := []struct {
		name      string
		got, want any
	}{
		{"data_dir", cfg.DataDir, filepath.Join(wd, "data")},
		{"filename", cfg.Filename, filepath.Join(wd, "test.hcl")},
		{"server.listen", cfg.Server.Listen, "0.0.0.0:8443"},
		{"server.shutdown_timeout", cfg.Server.ShutdownTimeout, 30 * time.Second},
		{"server.tls", cfg.Server.TLS(), false},
		{"server.metrics_token", cfg.Server.MetricsToken.IsSet(), false},
		{"database.embedded", cfg.Database.Embedded(), true},
		{"database.max_conns", cfg.Database.MaxConns, 25},
		{"database.min_conns", cfg.Database.MinConns, 5},
		{"database.max_conn_lifetime", cfg.Database.MaxConnLifetime, 5 * time.Minute},
		{"scheduler.placement", cfg.Scheduler.Placement, "least-loaded"},
		{"scheduler.poll_interval", cfg.Scheduler.PollInterval, 5 * time.Second},
		{"scheduler.stuck_after", cfg.Scheduler.StuckAfter, 15 * time.Minute},
		{"scheduler.worker_timeout", cfg.Scheduler.WorkerTimeout, 2 * time.Minute},
		{"scheduler.batch_size", cfg.Scheduler.BatchSize, 2000},
		{"scheduler.concurrency", cfg.Scheduler.Concurrency, 2},
		{"worker.build_timeout", cfg.Worker.BuildTimeout, 10 * time.Minute},
		{"worker.start_timeout", cfg.Worker.StartTimeout, 30 * time.Second},
		{"worker.heartbeat_interval", cfg.Worker.HeartbeatInterval, 15 * time.Second},
		{"worker.log_retention", cfg.Worker.LogRetention, 7 * 24 * time.Hour},
		{"worker.allow_loopback_address", cfg.Worker.AllowLoopbackAddress, false},
		{"events.batch_size", cfg.Events.BatchSize, 500},
		{"events.max_age", cfg.Events.MaxAge, 72 * time.Hour},
		{"events.retention", cfg.Events.Retention, 30 * 24 * time.Hour},
		{"events.webhook_timeout", cfg.Events.WebhookTimeout, 10 * time.Second},
		{"events.webhook_concurrency", cfg.Events.WebhookConcurrency, 16},
		{"domains.resolver", cfg.Domains.Resolver, ""},
		{"domains.recheck_interval", cfg.Domains.RecheckInterval, 6 * time.Hour},
		{"domains.lookup_timeout", cfg.Domains.LookupTimeout, 5 * time.Second},
		{"domains.grace_period", cfg.Domains.GracePeriod, 48 * time.Hour},
		{"server.previous_secrets", len(cfg.Server.PreviousSecrets), 0},
		{"container.port_range_start", cfg.Container.PortRangeStart, 20000},
		{"container.port_range_end", cfg.Container.PortRangeEnd, 29999},
		{"container.network", cfg.Container.Network, "wisehosting"},
		{"security.api_rate_window", cfg.Security.APIRateWindow, time.Minute},
		{"security.session_ttl", cfg.Security.SessionTTL, 720 * time.Hour},
		{"security.secure_cookies", cfg.Security.SecureCookies, true},
		{"security.allow_private_targets", cfg.Security.AllowPrivateTargets, false},
		{"security.allow_local_repos", cfg.Security.AllowLocalRepos, false},
		{"logging.level", cfg.Logging.Level, "info"},
		{"logging.json", cfg.Logging.JSON, false},
		{"smtp", cfg.SMTP == nil, true},
		{"oauth", len(cfg.OAuth), 0},
		{"oauth non-nil", cfg.OAuth != nil, true},
		{"proxy.token", cfg.Proxy.Token.IsSet(), false},
		{"plugins", len(cfg.Plugins), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if _, ok := cfg.Range("scheduler.poll_interval"); ok {
		t.Error("Range of a defaulted attribute should report ok=false")
	}
	if r, ok := cfg.Range("server.secret"); !ok || r.Start.Line != 2 || r.Start.Column != 19 {
		t.Errorf("Range(server.secret) = %v, %v; want test.hcl:2:19", r, ok)
	}
}

func TestSMTPDefaults(t *testing.T) {
	cfg := mustParse(t, minimal+`smtp {
  host = "smtp.example.com"
  from = "noreply@example.com"
}
`, noEnv)
	if cfg.SMTP == nil || cfg.SMTP.Port != 587 || !cfg.SMTP.StartTLS || cfg.SMTP.Password.IsSet() || cfg.SMTP.CAFile != "" || !cfg.SMTP.TLS() {
		t.Fatalf("SMTP = %+v; want port 587, starttls, no password, no CA file", cfg.SMTP)
	}
}

// A relay on loopback may take credentials without TLS; ca_file works
// with implicit TLS on port 465 even with starttls = false.
func TestSMTPTLSChoices(t *testing.T) {
	cfg := mustParse(t, minimal+`smtp {
  host     = "127.0.0.1"
  port     = 25
  username = "relay"
  password = "relay-password"
  from     = "noreply@example.com"
  starttls = false
}
`, noEnv)
	if cfg.SMTP.TLS() || cfg.SMTP.Username != "relay" {
		t.Fatalf("SMTP = %+v", cfg.SMTP)
	}
	cfg = mustParse(t, minimal+`smtp {
  host     = "smtp.example.com"
  port     = 465
  from     = "noreply@example.com"
  starttls = false
  ca_file  = "/etc/wisehosting/smtp-ca.pem"
}
`, noEnv)
	if !cfg.SMTP.TLS() || cfg.SMTP.CAFile != "/etc/wisehosting/smtp-ca.pem" {
		t.Fatalf("SMTP = %+v", cfg.SMTP)
	}
	if !regexp.MustCompile(`\n  ca_file +=  *"/etc/wisehosting/smtp-ca.pem"\n`).MatchString(cfg.Redacted()) {
		t.Errorf("Redacted lacks ca_file:\n%s", cfg.Redacted())
	}
}

var fullEnv = map[string]string{
	"WISEHOSTING_SECRET":      "full-secret-0123456789",
	"WISEHOSTING_OLD_SECRET":  "previous-secret-0123456789",
	"DATABASE_PASSWORD":       "db-password",
	"SMTP_PASSWORD":           "smtp-password",
	"GITHUB_CLIENT_SECRET":    "github-client-secret",
	"WISEHOSTING_PROXY_TOKEN": "proxy-token",
	"NTFY_TOKEN":              "ntfy-token",
}

// TestFullExample loads testdata/full.hcl, which sets every attribute of
// every block, and checks each value.
func TestFullExample(t *testing.T) {
	cfg, diags := Load("testdata/full.hcl", Options{LookupEnv: envMap(fullEnv)})
	if diags.HasErrors() {
		t.Fatalf("Load:%s", dump(diags))
	}
	if len(diags) != 0 {
		t.Errorf("unexpected warnings:%s", dump(diags))
	}
	dir, _ := filepath.Abs("testdata")
	gh, gl := cfg.OAuth["github"], cfg.OAuth["gitlab"]
	alerts, _ := cfg.Plugin(KindAlerts, "ops-chat")
	tests := []struct {
		name      string
		got, want any
	}{
		{"data_dir", cfg.DataDir, "/var/lib/wisehosting"},
		{"platform.domain", cfg.Platform.Domain, "apps.example.com"},
		{"server.listen", cfg.Server.Listen, "0.0.0.0:8443"},
		{"server.secret", cfg.Server.Secret.Value(), "full-secret-0123456789"},
		{"server.tls_cert", cfg.Server.TLSCert, filepath.Join(dir, "tls/cert.pem")},
		{"server.tls_key", cfg.Server.TLSKey, filepath.Join(dir, "tls/key.pem")},
		{"server.base_url", cfg.Server.BaseURL, "https://paas.example.com"},
		{"server.shutdown_timeout", cfg.Server.ShutdownTimeout, 45 * time.Second},
		{"server.metrics_token", cfg.Server.MetricsToken.Value(), "metrics-token-0123456789"},
		{"database.url", cfg.Database.URL.Value(), "postgres://wisehosting@db.internal:5432/wisehosting?sslmode=verify-full"},
		{"database.embedded", cfg.Database.Embedded(), false},
		{"database.password", cfg.Database.Password.Value(), "db-password"},
		{"database.max_conns", cfg.Database.MaxConns, 40},
		{"database.min_conns", cfg.Database.MinConns, 4},
		{"database.max_conn_lifetime", cfg.Database.MaxConnLifetime, 10 * time.Minute},
		{"scheduler.placement", cfg.Scheduler.Placement, "least-loaded"},
		{"scheduler.poll_interval", cfg.Scheduler.PollInterval, 10 * time.Second},
		{"scheduler.stuck_after", cfg.Scheduler.StuckAfter, 20 * time.Minute},
		{"scheduler.worker_timeout", cfg.Scheduler.WorkerTimeout, 90 * time.Second},
		{"scheduler.batch_size", cfg.Scheduler.BatchSize, 500},
		{"scheduler.concurrency", cfg.Scheduler.Concurrency, 3},
		{"worker.build_timeout", cfg.Worker.BuildTimeout, 15 * time.Minute},
		{"worker.start_timeout", cfg.Worker.StartTimeout, time.Minute},
		{"worker.heartbeat_interval", cfg.Worker.HeartbeatInterval, 20 * time.Second},
		{"worker.log_retention", cfg.Worker.LogRetention, 14 * 24 * time.Hour},
		{"worker.allow_loopback_address", cfg.Worker.AllowLoopbackAddress, false},
		{"server.previous_secrets", strings.Join(cfg.Server.PreviousSecretValues(), ","), "previous-secret-0123456789,older-secret-0123456789"},
		{"container.port_range_start", cfg.Container.PortRangeStart, 30000},
		{"container.port_range_end", cfg.Container.PortRangeEnd, 39999},
		{"container.network", cfg.Container.Network, "wh-apps"},
		{"security.api_rate_window", cfg.Security.APIRateWindow, 2 * time.Minute},
		{"security.session_ttl", cfg.Security.SessionTTL, 30 * 24 * time.Hour},
		{"security.secure_cookies", cfg.Security.SecureCookies, true},
		{"security.allow_private_targets", cfg.Security.AllowPrivateTargets, false},
		{"security.allow_local_repos", cfg.Security.AllowLocalRepos, true},
		{"logging.level", cfg.Logging.Level, "debug"},
		{"logging.json", cfg.Logging.JSON, true},
		{"logging.hclog", cfg.Logging.HCLogLevel().String(), "debug"},
		{"smtp.host", cfg.SMTP.Host, "smtp.example.com"},
		{"smtp.port", cfg.SMTP.Port, 465},
		{"smtp.username", cfg.SMTP.Username, "postmaster@example.com"},
		{"smtp.password", cfg.SMTP.Password.Value(), "smtp-password"},
		{"smtp.from", cfg.SMTP.From, "WiseHosting <noreply@example.com>"},
		{"smtp.starttls", cfg.SMTP.StartTLS, false},
		{"smtp.ca_file", cfg.SMTP.CAFile, filepath.Join(dir, "tls/smtp-ca.pem")},
		{"smtp.tls", cfg.SMTP.TLS(), true},
		{"oauth count", len(cfg.OAuth), 2},
		{"oauth.github.client_id", gh.ClientID, "Iv1.0123456789abcdef"},
		{"oauth.github.client_secret", gh.ClientSecret.Value(), "github-client-secret"},
		{"oauth.github.scopes", strings.Join(gh.Scopes, ","), "read:user,user:email,repo"},
		{"oauth.github.def_range", gh.DefRange.Start.Line, 75},
		{"oauth.gitlab.client_secret", gl.ClientSecret.Value(), "gitlab-secret-value"},
		{"oauth.gitlab.auth_url", gl.AuthURL, "https://gitlab.example.com/oauth/authorize"},
		{"oauth.gitlab.token_url", gl.TokenURL, "https://gitlab.example.com/oauth/token"},
		{"oauth.gitlab.api_url", gl.APIURL, "https://gitlab.example.com/api/v4"},
		{"proxy.token", cfg.Proxy.Token.Value(), "proxy-token"},
		{"plugins", len(cfg.Plugins), 4},
		{"plugins order", fmt.Sprint(cfg.Plugins), `[plugin "scheduler" "least-loaded" (built-in) plugin "proxy" "traefik" (built-in) plugin "alerts" "ops-chat" ("/opt/wh-plugins/wh-sink-ntfy") plugin "plans" "static" (built-in)]`},
		{"plugin.command", alerts.Command, "/opt/wh-plugins/wh-sink-ntfy"},
		{"plugin.builtin", alerts.Builtin(), false},
		{"plugin.args", strings.Join(alerts.Args, " "), "--verbose"},
		{"plugin.env", alerts.Env["NTFY_TOKEN"].Value(), "ntfy-token"},
		{"plugin.checksum", alerts.Checksum, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"plugin.events", strings.Join(alerts.Events, ","), "app.*,deployment.failed"},
		{"plugin.def_range", fmt.Sprintf("%s:%d", alerts.DefRange.Filename, alerts.DefRange.Start.Line), "testdata/full.hcl:102"},
		{"plugins of kind", len(cfg.PluginsOfKind(KindProxy)), 1},
		{"domains.resolver", cfg.Domains.Resolver, "[2001:db8::53]:53"},
		{"domains.recheck_interval", cfg.Domains.RecheckInterval, 12 * time.Hour},
		{"domains.lookup_timeout", cfg.Domains.LookupTimeout, 3 * time.Second},
		{"domains.grace_period", cfg.Domains.GracePeriod, 3 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// TestPluginConfigBody decodes plugin config blocks the way the plugin host
// will: against a schema the plugin declares, with the config's
// EvalContext, keeping real positions.
func TestPluginConfigBody(t *testing.T) {
	src := minimal + `plugin "alerts" "ntfy" {
  command = "./bin/ntfy"
  config {
    url   = "ntfy://ntfy.sh/topic"
    token = env("NTFY_TOKEN")
    bogus = 1
  }
}
plugin "proxy" "caddy" {}
`
	cfg := mustParse(t, src, Options{LookupEnv: envMap(map[string]string{"NTFY_TOKEN": "tok"})})
	ntfy, ok := cfg.Plugin(KindAlerts, "ntfy")
	if !ok {
		t.Fatal("plugin alerts ntfy missing")
	}
	if wd, _ := os.Getwd(); ntfy.Command != filepath.Join(wd, "bin/ntfy") {
		t.Errorf("Command = %q; want it resolved against the config directory", ntfy.Command)
	}
	schema := &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "url", Required: true}, {Name: "token"}}}
	content, diags := ntfy.Config.Content(schema)
	if len(diags) != 1 || pos(diags[0]) != "test.hcl:8:5" || diags[0].Summary != "Unsupported argument" {
		t.Fatalf("decoding ntfy config: want one Unsupported argument at test.hcl:8:5, got%s", dump(diags))
	}
	token, diags := content.Attributes["token"].Expr.Value(cfg.EvalContext())
	if diags.HasErrors() || token.AsString() != "tok" {
		t.Errorf("token = %#v,%s; want \"tok\" through env()", token, dump(diags))
	}
	if r := content.Attributes["url"].Expr.Range(); r.Start.Line != 6 || r.Start.Column != 13 {
		t.Errorf("url range = %v; want test.hcl:6:13", r)
	}

	caddy, _ := cfg.Plugin(KindProxy, "caddy")
	if caddy.Config == nil {
		t.Fatal("absent config block must be an empty body, not nil")
	}
	_, diags = caddy.Config.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "admin", Required: true}}})
	if len(diags) != 1 || pos(diags[0]) != "test.hcl:11:1" || diags[0].Summary != "Missing required argument" {
		t.Fatalf("decoding absent caddy config: want Missing required argument at test.hcl:11:1, got%s", dump(diags))
	}
	var buf bytes.Buffer
	if err := cfg.WriteDiagnostics(&buf, diags); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `   11 | plugin "proxy" "caddy" {}`) {
		t.Errorf("WriteDiagnostics output lacks the snippet:\n%s", buf.String())
	}
}

func TestEnvAndFileFunctions(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("from-a-file-0123456789\n\n  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "wh.hcl")
	env := envMap(map[string]string{"SECRET": "from-the-env-0123456789", "EMPTY": ""})

	tests := []struct {
		name    string
		expr    string // the value of server.secret, at line 2 col 19
		want    string
		wantPos string // file:line:col of the one expected error
		wantMsg string
	}{
		{name: "env set", expr: `env("SECRET")`, want: "from-the-env-0123456789"},
		{name: "env set wins over default", expr: `env("SECRET", "unused-default-value")`, want: "from-the-env-0123456789"},
		{name: "env default", expr: `env("UNSET", "the-default-value-123")`, want: "the-default-value-123"},
		{name: "env in template", expr: `"${env("SECRET")}-suffix"`, want: "from-the-env-0123456789-suffix"},
		{name: "file relative", expr: `file("secret.txt")`, want: "from-a-file-0123456789"},
		{name: "file relative with dots", expr: `file("sub/../secret.txt")`, want: "from-a-file-0123456789"},
		{name: "file absolute", expr: fmt.Sprintf("file(%q)", filepath.Join(dir, "secret.txt")), want: "from-a-file-0123456789"},
		{name: "env missing", expr: `env("UNSET")`, wantPos: ":2:19", wantMsg: `environment variable "UNSET" is not set; set it, or give a default: env("UNSET", "default")`},
		{name: "env empty name", expr: `env("")`, wantPos: ":2:25", wantMsg: "the variable name is empty"},
		{name: "env too many args", expr: `env("A", "b", "c")`, wantPos: ":2:34", wantMsg: "at most one default"},
		{name: "env no args", expr: `env()`, wantPos: ":2:23", wantMsg: `Function "env" expects at least 1 argument`},
		{name: "file missing", expr: `file("nope.txt")`, wantPos: ":2:19", wantMsg: fmt.Sprintf("file %q does not exist", filepath.Join(dir, "nope.txt"))},
		{name: "file is a directory", expr: `file("sub")`, wantPos: ":2:19", wantMsg: "is not a regular file"},
		{name: "unknown function", expr: `upper("x")`, wantPos: ":2:19", wantMsg: `There is no function named "upper"`},
		{name: "variable", expr: `var.secret`, wantPos: ":2:19", wantMsg: `"var" is read as a variable reference, but the configuration has no variables`},
		{name: "variable in function", expr: `env(name)`, wantPos: ":2:23", wantMsg: `"name" is read as a variable reference`},
		{name: "wrong type", expr: `["a"]`, wantPos: ":2:19", wantMsg: "server.secret must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "platform { domain = \"apps.example.com\" }\nserver { secret = " + tt.expr + " }\n"
			cfg, diags := Parse([]byte(src), cfgFile, Options{LookupEnv: env})
			if tt.wantPos == "" {
				if diags.HasErrors() {
					t.Fatalf("unexpected errors:%s", dump(diags))
				}
				if got := cfg.Server.Secret.Value(); got != tt.want {
					t.Fatalf("secret = %q; want %q", got, tt.want)
				}
				return
			}
			if cfg != nil {
				t.Error("Parse returned a Config despite errors")
			}
			if len(diags) != 1 || pos(diags[0]) != cfgFile+tt.wantPos || !strings.Contains(diags[0].Detail, tt.wantMsg) {
				t.Fatalf("want one error at %s containing %q, got%s", cfgFile+tt.wantPos, tt.wantMsg, dump(diags))
			}
		})
	}
}

func TestDataDir(t *testing.T) {
	tests := []struct {
		name, file, dataDir, want string
	}{
		{"default next to the file", "/etc/wh/wh.hcl", "", "/etc/wh/data"},
		{"relative", "/etc/wh/wh.hcl", `data_dir = "../state"`, "/etc/state"},
		{"absolute", "/etc/wh/wh.hcl", `data_dir = "/srv/wh/"`, "/srv/wh"},
		{"from env", "/etc/wh/wh.hcl", `data_dir = env("STATE_DIRECTORY", "/var/lib/wh")`, "/var/lib/wh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := Parse([]byte(tt.dataDir+"\n"+minimal), tt.file, noEnv)
			if diags.HasErrors() {
				t.Fatalf("Parse:%s", dump(diags))
			}
			if cfg.DataDir != tt.want {
				t.Errorf("DataDir = %q; want %q", cfg.DataDir, tt.want)
			}
		})
	}
}

func writeCredentials(t *testing.T, creds map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range creds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCredentialsOverlay(t *testing.T) {
	const base = `platform { domain = "apps.example.com" }
server {
  secret        = "file-secret-0123456789"
  metrics_token = "file-metrics"
}
database { password = "file-db" }
smtp {
  host     = "smtp.example.com"
  from     = "noreply@example.com"
  password = "file-smtp"
}
oauth "github" {
  client_id     = "id"
  client_secret = "file-github"
}
proxy { token = "file-proxy" }
`
	all := map[string]string{
		"api_server_secret":            "  cred-secret-0123456789\n",
		"metrics_token":                "cred-metrics\n",
		"database_password":            "cred-db\n",
		"smtp_password":                "cred-smtp\n",
		"github_oauth_client_secret":   "cred-github\n",
		"internal_api_token":           "cred-proxy\n",
		"google_oauth_client_secret":   "cred-google\n", // no oauth "google" block
		"codeberg_oauth_client_secret": "",              // empty: ignored
		"redis_password":               "not ours",      // not in the table
	}

	t.Run("credentials win", func(t *testing.T) {
		dir := writeCredentials(t, all)
		cfg, diags := Parse([]byte(base), "test.hcl", Options{LookupEnv: envMap(nil), CredentialsDir: dir})
		if diags.HasErrors() {
			t.Fatalf("Parse:%s", dump(diags))
		}
		checks := []struct{ name, got, want string }{
			{"server.secret", cfg.Server.Secret.Value(), "cred-secret-0123456789"},
			{"server.metrics_token", cfg.Server.MetricsToken.Value(), "cred-metrics"},
			{"database.password", cfg.Database.Password.Value(), "cred-db"},
			{"smtp.password", cfg.SMTP.Password.Value(), "cred-smtp"},
			{"oauth.github.client_secret", cfg.OAuth["github"].ClientSecret.Value(), "cred-github"},
			{"proxy.token", cfg.Proxy.Token.Value(), "cred-proxy"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %q; want %q", c.name, c.got, c.want)
			}
		}
		if _, ok := cfg.OAuth["google"]; ok {
			t.Error("a credential must not create an oauth block")
		}
		if r, _ := cfg.Range("server.secret"); r.Filename != filepath.Join(dir, "api_server_secret") {
			t.Errorf("Range(server.secret) = %v; want the credential file", r)
		}
		var warnings []string
		for _, d := range diags {
			warnings = append(warnings, pos(d)+" "+d.Summary)
		}
		want := []string{
			filepath.Join(dir, "google_oauth_client_secret") + ":1:1 Credential not used",
			filepath.Join(dir, "codeberg_oauth_client_secret") + ":1:1 Empty credential ignored",
		}
		slices.Sort(warnings)
		slices.Sort(want)
		if !slices.Equal(warnings, want) {
			t.Errorf("warnings = %q; want %q", warnings, want)
		}
	})

	t.Run("credential replaces an unresolvable env()", func(t *testing.T) {
		dir := writeCredentials(t, map[string]string{"api_server_secret": "cred-secret-0123456789"})
		src := "platform { domain = \"apps.example.com\" }\nserver { secret = env(\"WISEHOSTING_SECRET\") }\n"
		cfg, diags := Parse([]byte(src), "test.hcl", Options{LookupEnv: envMap(nil), CredentialsDir: dir})
		if diags.HasErrors() {
			t.Fatalf("Parse:%s", dump(diags))
		}
		if cfg.Server.Secret.Value() != "cred-secret-0123456789" {
			t.Errorf("secret = %q", cfg.Server.Secret.Value())
		}
	})

	t.Run("secret omitted, credential provides it", func(t *testing.T) {
		dir := writeCredentials(t, map[string]string{"api_server_secret": "cred-secret-0123456789"})
		cfg, diags := Parse([]byte(`platform { domain = "apps.example.com" }`), "test.hcl", Options{LookupEnv: envMap(nil), CredentialsDir: dir})
		if diags.HasErrors() {
			t.Fatalf("Parse:%s", dump(diags))
		}
		if !cfg.Server.Secret.IsSet() {
			t.Error("secret not set from the credential")
		}
	})

	t.Run("default directory from CREDENTIALS_DIRECTORY", func(t *testing.T) {
		dir := writeCredentials(t, map[string]string{"api_server_secret": "cred-secret-0123456789"})
		cfg, diags := Parse([]byte(`platform { domain = "apps.example.com" }`), "test.hcl",
			Options{LookupEnv: envMap(map[string]string{"CREDENTIALS_DIRECTORY": dir})})
		if diags.HasErrors() {
			t.Fatalf("Parse:%s", dump(diags))
		}
		if cfg.Server.Secret.Value() != "cred-secret-0123456789" {
			t.Errorf("secret = %q", cfg.Server.Secret.Value())
		}
	})

	t.Run("validation runs after the overlay", func(t *testing.T) {
		dir := writeCredentials(t, map[string]string{"api_server_secret": "short\n"})
		_, diags := Parse([]byte(minimal), "test.hcl", Options{LookupEnv: envMap(nil), CredentialsDir: dir})
		want := filepath.Join(dir, "api_server_secret") + ":1:1"
		if len(diags) != 1 || pos(diags[0]) != want || !strings.Contains(diags[0].Detail, "at least 16 characters") {
			t.Fatalf("want a short-secret error at %s, got%s", want, dump(diags))
		}
	})

	t.Run("unreadable credential", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "database_password"), 0o700); err != nil {
			t.Fatal(err)
		}
		_, diags := Parse([]byte(minimal), "test.hcl", Options{LookupEnv: envMap(nil), CredentialsDir: dir})
		if len(diags) != 1 || diags[0].Summary != "Cannot read credential" || pos(diags[0]) != filepath.Join(dir, "database_password")+":1:1" {
			t.Fatalf("want Cannot read credential, got%s", dump(diags))
		}
	})

	if got := Credentials(); len(got) != 11 || got[0] != "api_server_secret" || got[1] != "api_server_previous_secrets" {
		t.Errorf("Credentials() = %q", got)
	}
}

// TestDiagnostics checks each validation error, with its exact position.
func TestDiagnostics(t *testing.T) {
	const platform = "platform { domain = \"apps.example.com\" }\n" // line 1
	const server = "server { secret = \"0123456789abcdef\" }\n"     // line 1 or 2
	tests := []struct {
		name string
		src  string
		want []string // "line:col summary | detail substring"
	}{
		{
			name: "empty file",
			src:  "",
			want: []string{"1:1 Missing platform block | platform { domain", "1:1 Missing server secret | api_server_secret"},
		},
		{
			name: "empty data_dir",
			src:  platform + server + "data_dir = \"\"\n",
			want: []string{"3:12 Invalid data_dir | must not be empty"},
		},
		{
			name: "missing domain",
			src:  "platform {}\n" + server,
			want: []string{"1:1 Missing required argument | platform.domain is required"},
		},
		{
			name: "uppercase domain",
			src:  "platform { domain = \"Apps.Example.com\" }\n" + server,
			want: []string{`1:21 Invalid platform.domain | "Apps.Example.com" is not a valid host name: it contains uppercase letters; write "apps.example.com"`},
		},
		{
			name: "bad domain label",
			src:  "platform { domain = \"-apps.example.com\" }\n" + server,
			want: []string{`1:21 Invalid platform.domain | label "-apps" starts with '-'`},
		},
		{
			name: "single-label domain",
			src:  "platform { domain = \"localhost\" }\n" + server,
			want: []string{`1:21 Invalid platform.domain | "localhost" is not a valid host name: it is a single label`},
		},
		{
			name: "wildcard domain",
			src:  "platform { domain = \"*.example.com\" }\n" + server,
			want: []string{`1:21 Invalid platform.domain | wildcards are not accepted`},
		},
		{
			name: "domain with a backtick",
			src:  "platform { domain = \"a.com`) || Host(`b.com\" }\n" + server,
			want: []string{`1:21 Invalid platform.domain | quote or backtick`},
		},
		{
			name: "domain with a trailing dot",
			src:  "platform { domain = \"apps.example.com.\" }\n" + server,
			want: []string{`1:21 Invalid platform.domain | ends with a dot; write "apps.example.com"`},
		},
		{
			name: "numeric top-level label",
			src:  "platform { domain = \"127.1\" }\n" + server,
			want: []string{`1:21 Invalid platform.domain | the last label starts with a digit`},
		},
		{
			name: "ip as domain",
			src:  "platform { domain = \"10.0.0.1\" }\n" + server,
			want: []string{"1:21 Invalid platform.domain | is an IP address"},
		},
		{
			name: "missing secret",
			src:  platform + "server {\n  listen = \":8443\"\n}\n",
			want: []string{"2:1 Missing server secret | openssl rand"},
		},
		{
			name: "short secret",
			src:  platform + "server {\n  secret = \"tooshort\"\n}\n",
			want: []string{"3:12 Invalid server.secret | at least 16 characters"},
		},
		{
			name: "bad listen",
			src:  platform + "server {\n  secret = \"0123456789abcdef\"\n  listen = \"8443\"\n}\n",
			want: []string{`4:12 Invalid server.listen | "8443" is not host:port`},
		},
		{
			name: "bad listen port",
			src:  platform + "server {\n  secret = \"0123456789abcdef\"\n  listen = \"0.0.0.0:99999\"\n}\n",
			want: []string{"4:12 Invalid server.listen | port must be a number from 0 to 65535"},
		},
		{
			name: "tls_key without tls_cert",
			src:  platform + "server {\n  secret = \"0123456789abcdef\"\n  tls_key = \"k.pem\"\n}\n",
			want: []string{"4:13 Invalid server.tls_key | set tls_cert too"},
		},
		{
			name: "relative base_url",
			src:  platform + "server {\n  secret = \"0123456789abcdef\"\n  base_url = \"paas.example.com\"\n}\n",
			want: []string{"4:14 Invalid server.base_url | absolute http:// or https:// URL"},
		},
		{
			name: "bad duration",
			src:  platform + server + "scheduler {\n  poll_interval = \"5x\"\n}\n",
			want: []string{`4:19 Invalid duration | scheduler.poll_interval: invalid duration "5x": unknown unit "x"; use ns, us, ms, s, m, h or d.`},
		},
		{
			name: "bare number duration",
			src:  platform + server + "worker {\n  build_timeout = 600\n}\n",
			want: []string{"4:19 Invalid duration | a bare number has no unit"},
		},
		{
			name: "zero duration",
			src:  platform + server + "security {\n  session_ttl = \"0s\"\n}\n",
			want: []string{"4:17 Invalid duration | security.session_ttl must be longer than zero"},
		},
		{
			name: "events bounds",
			src: platform + server + "events {\n  batch_size = 0\n  webhook_concurrency = 300\n  max_age = \"30s\"\n" +
				"  retention = \"10m\"\n  webhook_timeout = \"10m\"\n}\n",
			want: []string{
				"4:16 Invalid events.batch_size | events.batch_size: 0 is outside 1..5000",
				"5:25 Invalid events.webhook_concurrency | events.webhook_concurrency: 300 is outside 1..256",
				"6:13 Invalid events.max_age | events.max_age: 30s must be at least 1m",
				"7:15 Invalid events.retention | events.retention: 10m must be at least 1h",
				"8:21 Invalid events.webhook_timeout | events.webhook_timeout: 10m must be between 100ms and 5m",
			},
		},
		{
			name: "domains bounds",
			src: platform + server + "domains {\n  resolver = \"127.0.0.53\"\n  recheck_interval = \"1m\"\n" +
				"  lookup_timeout = \"2m\"\n  grace_period = \"31d\"\n}\n",
			want: []string{
				`4:14 Invalid domains.resolver | domains.resolver: "127.0.0.53" is not host:port, e.g. "127.0.0.53:53" or "[2001:db8::53]:53"`,
				"5:22 Invalid domains.recheck_interval | domains.recheck_interval: 1m must be between 5m and 7d",
				"6:20 Invalid domains.lookup_timeout | domains.lookup_timeout: 2m must be between 100ms and 1m",
				"7:18 Invalid domains.grace_period | domains.grace_period: 31d must be between 1h and 30d",
			},
		},
		{
			name: "domains resolver port",
			src:  platform + server + "domains {\n  resolver = \"127.0.0.53:0\"\n}\n",
			want: []string{`4:14 Invalid domains.resolver | domains.resolver: "127.0.0.53:0": the port must be a number from 1 to 65535`},
		},
		{
			name: "domains resolver host",
			src:  platform + server + "domains {\n  resolver = \"dns_server:53\"\n}\n",
			want: []string{`4:14 Invalid domains.resolver | domains.resolver: "dns_server:53": the host must be an IP address or a host name`},
		},
		{
			name: "negative duration",
			src:  platform + server + "worker {\n  log_retention = \"-7d\"\n}\n",
			want: []string{"4:19 Invalid duration | negative durations are not allowed"},
		},
		{
			name: "duration of wrong type",
			src:  platform + server + "worker {\n  log_retention = [\"7d\"]\n}\n",
			want: []string{"4:19 Incorrect attribute value type | worker.log_retention must be a duration string"},
		},
		{
			name: "fractional integer",
			src:  platform + server + "scheduler {\n  batch_size = 1.5\n}\n",
			want: []string{"4:16 Invalid number | scheduler.batch_size must be a whole number"},
		},
		{
			name: "zero batch size",
			src:  platform + server + "scheduler {\n  batch_size = 0\n}\n",
			want: []string{"4:16 Invalid scheduler.batch_size | must be at least 1"},
		},
		{
			name: "scheduler concurrency out of range",
			src:  platform + server + "scheduler {\n  concurrency = 17\n}\n",
			want: []string{"4:17 Invalid scheduler.concurrency | must be between 1 and 16"},
		},
		{
			name: "bool of wrong type",
			src:  platform + server + "logging {\n  json = \"maybe\"\n}\n",
			want: []string{"4:10 Incorrect attribute value type | logging.json must be a bool"},
		},
		{
			name: "unknown log level",
			src:  platform + server + "logging {\n  level = \"warning\"\n}\n",
			want: []string{`4:11 Invalid logging.level | "warning" is not a log level (did you mean "warn"?)`},
		},
		{
			name: "min_conns above max_conns",
			src:  platform + server + "database {\n  max_conns = 4\n  min_conns = 8\n}\n",
			want: []string{"5:15 Invalid database.min_conns | min_conns (8) must not exceed max_conns (4)"},
		},
		{
			name: "bad database url",
			src:  platform + server + "database {\n  url = \"mysql://root:hunter2@db/app\"\n}\n",
			want: []string{"4:9 Invalid database.url | postgres:// or postgresql://"},
		},
		{
			name: "port range order",
			src:  platform + server + "container {\n  port_range_start = 30000\n  port_range_end = 20000\n}\n",
			want: []string{"4:22 Invalid container.port_range_start | must be lower than port_range_end (20000)"},
		},
		{
			name: "port range bounds",
			src:  platform + server + "container {\n  port_range_start = 80\n  port_range_end = 70000\n}\n",
			want: []string{"4:22 Invalid container.port_range_start | port 80 is outside 1024..65535", "5:20 Invalid container.port_range_end | port 70000 is outside 1024..65535"},
		},
		{
			name: "bad network",
			src:  platform + server + "container {\n  network = \"-bad net\"\n}\n",
			want: []string{"4:13 Invalid container.network | not a valid network name"},
		},
		{
			name: "smtp without host and from",
			src:  platform + server + "smtp {\n  port = 25\n}\n",
			want: []string{"3:1 Missing required argument | smtp.host is required", "3:1 Missing required argument | smtp.from is required"},
		},
		{
			name: "smtp ca_file without TLS",
			src:  platform + server + "smtp {\n  host = \"mail\"\n  from = \"a@example.com\"\n  starttls = false\n  ca_file = \"/etc/ca.pem\"\n}\n",
			want: []string{"7:13 Invalid smtp.ca_file | ca_file verifies the server's TLS certificate, but starttls = false"},
		},
		{
			name: "smtp clear-text credentials",
			src:  platform + server + "smtp {\n  host = \"mail.example.com\"\n  from = \"a@example.com\"\n  username = \"u\"\n  starttls = false\n}\n",
			want: []string{"7:14 Invalid smtp.starttls | username and password with starttls = false would cross the network in clear text"},
		},
		{
			name: "smtp bad from",
			src:  platform + server + "smtp {\n  host = \"mail\"\n  from = \"not an address\"\n}\n",
			want: []string{"5:10 Invalid smtp.from | is not an e-mail address"},
		},
		{
			name: "unknown attribute",
			src:  platform + server + "security {\n  csrf = true\n}\n",
			want: []string{`4:3 Unsupported argument | An argument named "csrf" is not expected here.`},
		},
		{
			name: "typo'd attribute",
			src:  platform + server + "scheduler {\n  placement    = \"least-loaded\"\n  pol_interval = \"5s\"\n}\n",
			want: []string{`5:3 Unsupported argument | Did you mean "poll_interval"?`},
		},
		{
			name: "unknown block",
			src:  platform + server + "\ncache {\n  ttl = \"5m\"\n}\n",
			want: []string{`4:1 Unsupported block type | Blocks of type "cache" are not expected here.`},
		},
		{
			name: "attribute as block",
			src:  platform + server + "data_dir {}\n",
			want: []string{`3:1 Unsupported block type | Did you mean to define argument "data_dir"?`},
		},
		{
			name: "duplicate block",
			src:  platform + server + "logging {}\nlogging {}\n",
			want: []string{"4:1 Duplicate logging block | already defined at test.hcl:3,1-8"},
		},
		{
			name: "unquoted string",
			src:  platform + server + "scheduler {\n  placement = least-loaded\n}\n",
			want: []string{`4:15 Variables are not supported | Quote literal text ("least-loaded")`},
		},
		{
			name: "oauth unknown provider",
			src:  platform + server + "oauth \"gihub\" {\n  client_id = \"x\"\n  client_secret = \"y\"\n}\n",
			want: []string{`3:7 Unknown OAuth provider | "gihub" is not a supported provider (did you mean "github"?)`},
		},
		{
			name: "oauth duplicate",
			src:  platform + server + "oauth \"github\" {\n  client_id = \"x\"\n  client_secret = \"y\"\n}\noauth \"github\" {\n  client_id = \"x\"\n  client_secret = \"y\"\n}\n",
			want: []string{`7:1 Duplicate oauth block | already defined at test.hcl:3,1-15`},
		},
		{
			name: "oauth missing fields and bad url",
			src:  platform + server + "oauth \"gitlab\" {\n  auth_url = \"ftp://gitlab.example.com\"\n}\n",
			want: []string{
				`3:1 Missing required argument | oauth "gitlab" needs client_id`,
				`3:1 Missing OAuth client secret | gitlab_oauth_client_secret`,
				`4:14 Invalid oauth.gitlab.auth_url | absolute http:// or https:// URL`,
			},
		},
		{
			name: "oauth block without label",
			src:  platform + server + "oauth {\n}\n",
			want: []string{`3:7 Missing provider for oauth | All oauth blocks must have 1 labels (provider).`},
		},
		{
			name: "duplicate plugin",
			src:  platform + server + "plugin \"proxy\" \"caddy\" {}\nplugin \"proxy\" \"caddy\" {}\n",
			want: []string{`4:1 Duplicate plugin | plugin "proxy" "caddy" is already declared at test.hcl:3,1-23`},
		},
		{
			name: "unknown plugin kind",
			src:  platform + server + "plugin \"sink\" \"ntfy\" {}\n",
			want: []string{`3:8 Unknown plugin kind | "sink" is not a plugin kind; use one of "scheduler", "proxy", "alerts", "plans".`},
		},
		{
			name: "invalid plugin name",
			src:  platform + server + "plugin \"proxy\" \"My Proxy\" {}\n",
			want: []string{`3:16 Invalid plugin name | "My Proxy" must be 1 to 64 characters`},
		},
		{
			name: "checksum without command",
			src:  platform + server + "plugin \"proxy\" \"caddy\" {\n  checksum = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"\n}\n",
			want: []string{"4:14 Invalid plugin.proxy.caddy.checksum | applies only to an external plugin"},
		},
		{
			name: "bad checksum",
			src:  platform + server + "plugin \"proxy\" \"caddy\" {\n  command = \"/bin/caddy-plugin\"\n  checksum = \"abc\"\n}\n",
			want: []string{"5:14 Invalid plugin.proxy.caddy.checksum | 64 hexadecimal characters"},
		},
		{
			name: "args without command",
			src:  platform + server + "plugin \"proxy\" \"caddy\" {\n  args = [\"-v\"]\n}\n",
			want: []string{"4:10 Invalid plugin.proxy.caddy.args | set command too"},
		},
		{
			name: "events on a non-alerts plugin",
			src:  platform + server + "plugin \"proxy\" \"caddy\" {\n  events = [\"app.*\"]\n}\n",
			want: []string{`4:12 Invalid plugin.proxy.caddy.events | events apply only to plugins of kind "alerts", not "proxy"`},
		},
		{
			name: "bad event pattern",
			src:  platform + server + "plugin \"alerts\" \"log\" {\n  events = [\"app.[\"]\n}\n",
			want: []string{`4:12 Invalid plugin.alerts.log.events | event pattern "app.[": segment "[" may hold only a-z, 0-9, _ or be *`},
		},
		// Delivery matches with sdk/event.Match, so validation uses its
		// syntax: these are valid for path.Match but would never match.
		{
			name: "glob inside a segment",
			src:  platform + server + "plugin \"alerts\" \"log\" {\n  events = [\"app.*\", \"deployment*\"]\n}\n",
			want: []string{`4:12 Invalid plugin.alerts.log.events | segment "deployment*" may hold only a-z, 0-9, _ or be *`},
		},
		{
			name: "uppercase event pattern",
			src:  platform + server + "plugin \"alerts\" \"log\" {\n  events = [\"App.*\"]\n}\n",
			want: []string{`4:12 Invalid plugin.alerts.log.events | segment "App" may hold only a-z, 0-9, _ or be *`},
		},
		{
			name: "empty event pattern",
			src:  platform + server + "plugin \"alerts\" \"log\" {\n  events = [\"\"]\n}\n",
			want: []string{`4:12 Invalid plugin.alerts.log.events | event pattern is empty`},
		},
		{
			name: "worker_timeout below two heartbeats",
			src:  platform + server + "scheduler {\n  worker_timeout = \"40s\"\n}\nworker {\n  heartbeat_interval = \"30s\"\n}\n",
			want: []string{`4:20 Invalid scheduler.worker_timeout | scheduler.worker_timeout (40s) must be at least twice worker.heartbeat_interval (30s)`},
		},
		{
			name: "default worker_timeout below two heartbeats",
			src:  platform + server + "worker {\n  heartbeat_interval = \"90s\"\n}\n",
			want: []string{`4:24 Invalid worker.heartbeat_interval | scheduler.worker_timeout (2m, the default) must be at least twice worker.heartbeat_interval (1m30s)`},
		},
		{
			name: "stuck_after within build plus start",
			src:  platform + server + "scheduler {\n  stuck_after = \"10m30s\"\n}\n",
			want: []string{`4:17 Invalid scheduler.stuck_after | scheduler.stuck_after (10m30s) must be longer than worker.build_timeout (10m, the default) plus worker.start_timeout (30s, the default), or builds`},
		},
		{
			name: "default stuck_after below a long build_timeout",
			src:  platform + server + "worker {\n  start_timeout = \"1m\"\n  build_timeout = \"1h\"\n}\n",
			want: []string{`5:19 Invalid worker.build_timeout | scheduler.stuck_after (15m, the default) must be longer than worker.build_timeout (1h) plus worker.start_timeout (1m)`},
		},
		{
			name: "short previous secret",
			src:  platform + "server {\n  secret = \"0123456789abcdef\"\n  previous_secrets = [\"fedcba9876543210\", \"short\"]\n}\n",
			want: []string{"4:22 Invalid server.previous_secrets | entry 2 is shorter than 16 characters"},
		},
		{
			name: "bad env name",
			src:  platform + server + "plugin \"alerts\" \"log\" {\n  command = \"wh-log\"\n  env = { \"1X\" = \"v\" }\n}\n",
			want: []string{`5:9 Invalid plugin.alerts.log.env | "1X" is not a valid environment variable name`},
		},
		{
			name: "unknown plugin attribute",
			src:  platform + server + "plugin \"alerts\" \"log\" {\n  comand = \"wh-log\"\n}\n",
			want: []string{`4:3 Unsupported argument | Did you mean "command"?`},
		},
		{
			name: "duplicate plugin config block",
			src:  platform + server + "plugin \"alerts\" \"log\" {\n  config {}\n  config {}\n}\n",
			want: []string{`5:3 Duplicate config block | already has a config block`},
		},
		{
			name: "placement names an undeclared scheduler",
			src: platform + server + "scheduler {\n  placement = \"binpack\"\n}\n" +
				"plugin \"scheduler\" \"least-loaded\" {}\nplugin \"scheduler\" \"spread\" {}\n",
			want: []string{`4:15 Unknown placement plugin | scheduler.placement is "binpack", but no plugin "scheduler" "binpack" is declared. Declared scheduler plugins: "least-loaded", "spread".`},
		},
		{
			name: "default placement with other schedulers declared",
			src:  platform + server + "plugin \"scheduler\" \"spread\" {}\n",
			want: []string{`3:1 Unknown placement plugin | scheduler.placement is "least-loaded" (the default); set scheduler { placement = "spread" }`},
		},
		{
			name: "syntax error",
			src:  platform + server + "server {\n  listen = \n}\n",
			want: []string{"3:1 Duplicate server block | ", "4:12 Invalid expression | Expected the start of an expression"},
		},
		{
			name: "many errors in one pass",
			src: "platform { domain = \"UP\" }\n" +
				"server {\n  secret = \"short\"\n  listen = \"x\"\n}\n" +
				"scheduler {\n  pol_interval = \"5s\"\n  stuck_after = \"1y\"\n}\n" +
				"container {\n  port_range_end = 80\n}\n",
			want: []string{
				"1:21 Invalid platform.domain | ",
				"3:12 Invalid server.secret | ",
				"4:12 Invalid server.listen | ",
				"7:3 Unsupported argument | ",
				`8:17 Invalid duration | unknown unit "y"`,
				"11:20 Invalid container.port_range_end | ",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := Parse([]byte(tt.src), "test.hcl", noEnv)
			if cfg != nil {
				t.Error("Parse returned a Config despite errors")
			}
			if len(diags) != len(tt.want) {
				t.Fatalf("got %d diagnostics, want %d:%s", len(diags), len(tt.want), dump(diags))
			}
			for i, w := range tt.want {
				head, detail, _ := strings.Cut(w, " | ")
				wantPos, summary, _ := strings.Cut(head, " ")
				d := diags[i]
				if got := pos(d); got != "test.hcl:"+wantPos || d.Summary != summary || !strings.Contains(d.Detail, detail) {
					t.Errorf("diagnostic %d:\n  got  %s %s — %s\n  want test.hcl:%s %s — …%s…", i, got, d.Summary, d.Detail, wantPos, summary, detail)
				}
				if d.Severity != hcl.DiagError {
					t.Errorf("diagnostic %d is not an error", i)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	cfg, diags := Load("testdata/does-not-exist.hcl", noEnv)
	if cfg != nil || len(diags) != 1 || pos(diags[0]) != "testdata/does-not-exist.hcl:1:1" ||
		!strings.Contains(diags[0].Detail, "no such file or directory") {
		t.Fatalf("got %v,%s", cfg, dump(diags))
	}
}

// TestSecretRedaction formats a Config whose secrets are all set in every
// way a caller might and checks no secret leaks.
func TestSecretRedaction(t *testing.T) {
	secrets := []string{
		"hunter2-server-secret", "hunter2-metrics", "hunter2-db-url", "hunter2-db-password",
		"hunter2-smtp", "hunter2-oauth", "hunter2-proxy", "hunter2-plugin-env", "hunter2-plugin-config",
	}
	src := `platform { domain = "apps.example.com" }
server {
  secret        = "hunter2-server-secret"
  metrics_token = "hunter2-metrics"
}
database {
  url      = "postgres://wh:hunter2-db-url@db/wh"
  password = "hunter2-db-password"
}
smtp {
  host     = "smtp.example.com"
  from     = "noreply@example.com"
  password = "hunter2-smtp"
}
oauth "github" {
  client_id     = "id"
  client_secret = "hunter2-oauth"
}
proxy { token = "hunter2-proxy" }
plugin "alerts" "ntfy" {
  command = "wh-ntfy"
  env     = { TOKEN = "hunter2-plugin-env" }
  config { token = "hunter2-plugin-config" }
}
`
	cfg := mustParse(t, src, noEnv)
	if cfg.Server.Secret.Value() != "hunter2-server-secret" {
		t.Fatal("Value() must reveal the secret")
	}
	jsonCfg, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	jsonVal, err := json.Marshal(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	var slogBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&slogBuf, nil)).Info("cfg", "secret", cfg.Server.Secret, "db", cfg.Database)
	outputs := map[string]string{
		"%v":         fmt.Sprintf("%v", cfg),
		"%+v":        fmt.Sprintf("%+v", cfg),
		"%#v":        fmt.Sprintf("%#v", cfg),
		"%s":         fmt.Sprintf("%s", cfg),
		"%v value":   fmt.Sprintf("%v", *cfg),
		"%+v value":  fmt.Sprintf("%+v", *cfg),
		"%#v value":  fmt.Sprintf("%#v", *cfg),
		"%+v server": fmt.Sprintf("%+v", cfg.Server),
		"%#v server": fmt.Sprintf("%#v", cfg.Server),
		"%+v db":     fmt.Sprintf("%+v", cfg.Database),
		"%#v smtp":   fmt.Sprintf("%#v", cfg.SMTP),
		"%+v oauth":  fmt.Sprintf("%+v", cfg.OAuth),
		"%+v plugin": fmt.Sprintf("%+v", cfg.Plugins),
		"%#v plugin": fmt.Sprintf("%#v", cfg.Plugins[0]),
		"%x secret":  fmt.Sprintf("%x", cfg.Server.Secret),
		"%d secret":  fmt.Sprintf("%d", cfg.Server.Secret),
		"%q secret":  fmt.Sprintf("%q", cfg.Server.Secret),
		"json":       string(jsonCfg),
		"json value": string(jsonVal),
		"slog":       slogBuf.String(),
		"Redacted":   cfg.Redacted(),
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s output leaks %q:\n%s", name, s, out)
			}
		}
	}
	if !strings.Contains(string(jsonCfg), `"secret":"[redacted]"`) {
		t.Errorf("json lacks the redacted secret: %s", jsonCfg)
	}
	if !strings.Contains(cfg.Redacted(), `secret           = "[redacted]"`) {
		t.Errorf("Redacted lacks the redacted secret:\n%s", cfg.Redacted())
	}
	if got := fmt.Sprint(Secret{}); got != "" {
		t.Errorf("unset Secret prints %q", got)
	}

	// Diagnostics about secret attributes never quote them, and the
	// snippets printed under them are masked.
	bad := strings.Replace(src, `"hunter2-server-secret"`, `"hunter2-short"`, 1)
	bad = strings.Replace(bad, `postgres://wh:hunter2-db-url@db/wh`, `mysql://wh:hunter2-db-url@db/wh`, 1)
	secrets = append(secrets, "hunter2-short")
	l := NewLoader(noEnv)
	cfg, diags := l.Parse([]byte(bad), "bad.hcl")
	if cfg != nil || len(diags) != 2 {
		t.Fatalf("want 2 errors, got%s", dump(diags))
	}
	var buf bytes.Buffer
	if err := l.WriteDiagnostics(&buf, diags); err != nil {
		t.Fatal(err)
	}
	out := buf.String() + dump(diags)
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("diagnostics leak %q:\n%s", s, out)
		}
	}
	if !strings.Contains(buf.String(), `    3 |   secret        = "*************"`) {
		t.Errorf("diagnostics lack the masked snippet:\n%s", buf.String())
	}
}

func TestWriteDiagnostics(t *testing.T) {
	l := NewLoader(noEnv)
	_, diags := l.Parse([]byte(minimal+"scheduler {\n  pol_interval = \"5s\"\n}\n"), "wh.hcl")
	var buf bytes.Buffer
	if err := l.WriteDiagnostics(&buf, diags); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"wh.hcl:4:3: error: Unsupported argument\n",
		`    4 |   pol_interval = "**"` + "\n      |   ^^^^^^^^^^^^\n",
		`Did you mean "poll_interval"?`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if len(l.Files()) != 1 {
		t.Errorf("Files() = %d files; want 1", len(l.Files()))
	}
}

func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.hcl")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, s := range seeds {
		src, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(minimal + `plugin "scheduler" "x" {}` + "\n" + `oauth "github" { client_id = env("A", "b") }`))
	opts := Options{LookupEnv: envMap(fullEnv), CredentialsDir: ""}
	f.Fuzz(func(t *testing.T, src []byte) {
		l := NewLoader(opts)
		cfg, diags := l.Parse(src, "testdata/fuzz.hcl")
		if diags.HasErrors() != (cfg == nil) {
			t.Fatalf("Config %v returned with errors=%v", cfg, diags.HasErrors())
		}
		for _, d := range diags {
			if d.Severity == hcl.DiagError && d.Subject == nil {
				t.Fatalf("error without a subject: %s — %s", d.Summary, d.Detail)
			}
		}
		if err := l.WriteDiagnostics(io.Discard, diags); err != nil {
			t.Fatal(err)
		}
		if cfg != nil {
			_ = cfg.Redacted()
			_ = fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)
			if _, err := json.Marshal(cfg); err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
		}
	})
}

// No expression shape lets a value through a diagnostic snippet: every
// string literal in printed source lines is masked (helper-found leaks:
// env() defaults, conditionals, operators, redefined attributes).
func TestDiagnosticsNeverPrintValues(t *testing.T) {
	const secret = "leaky-s3cr3t"
	cases := map[string]string{
		"env default":         `secret = env("UNSET_VAR_X", "` + secret + `")`,
		"conditional":         `secret = true ? "` + secret + `" : "x"`,
		"operator":            `secret = "` + secret + `" + 1`,
		"redefined attribute": "secret = \"0123456789abcdef0123\"\n  secret = \"" + secret + "\"",
		"heredoc":             "secret = <<EOT\n" + secret + "\nEOT",
	}
	for name, attr := range cases {
		t.Run(name, func(t *testing.T) {
			src := "platform { domain = \"apps.example.com\" }\nserver {\n  " + attr + "\n}\n"
			l := NewLoader(noEnv)
			_, diags := l.Parse([]byte(src), "leak.hcl")
			if !diags.HasErrors() {
				t.Fatal("config accepted; each case is built to be an error")
			}
			var buf bytes.Buffer
			if err := l.WriteDiagnostics(&buf, diags); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(buf.String(), secret) {
				t.Fatalf("diagnostics print the value:\n%s", buf.String())
			}
			if !strings.Contains(buf.String(), "leak.hcl:") {
				t.Fatalf("no file:line:col:\n%s", buf.String())
			}
		})
	}
}

// Values computed by env() or file() may be secrets, so no diagnostic
// quotes them: every message that would quote a literal names "the value
// from env()/file()" instead.
func TestDiagnosticsNeverQuoteComputedValues(t *testing.T) {
	const marker = "leaky"
	const platform = "platform { domain = \"apps.example.com\" }\n"
	const server = "server { secret = \"0123456789abcdef\" }\n"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "domain.txt"), []byte("LEAKY.Example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		src     string
		env     string // the value of S
		summary string // of the one expected diagnostic
		literal string // the same problem written literally: its message quotes the value
	}{
		{"domain", "platform { domain = env(\"S\") }\n" + server, "LEAKY.Example.com", "Invalid platform.domain",
			"platform { domain = \"LEAKY.Example.com\" }\n" + server},
		{"domain in a template", "platform { domain = \"${env(\"S\")}.example.com\" }\n" + server, "LEAKY", "Invalid platform.domain",
			"platform { domain = \"LEAKY.example.com\" }\n" + server},
		{"domain from file()", "platform { domain = file(\"domain.txt\") }\n" + server, "", "Invalid platform.domain", ""},
		{"listen", platform + "server {\n  secret = \"0123456789abcdef\"\n  listen = env(\"S\")\n}\n", "leaky", "Invalid server.listen",
			platform + "server {\n  secret = \"0123456789abcdef\"\n  listen = \"leaky\"\n}\n"},
		{"listen port", platform + "server {\n  secret = \"0123456789abcdef\"\n  listen = env(\"S\")\n}\n", "leaky.example.com:99999", "Invalid server.listen",
			platform + "server {\n  secret = \"0123456789abcdef\"\n  listen = \"leaky.example.com:99999\"\n}\n"},
		{"duration", platform + server + "database {\n  max_conn_lifetime = env(\"S\")\n}\n", "leaky5m", "Invalid duration",
			platform + server + "database {\n  max_conn_lifetime = \"leaky5m\"\n}\n"},
		{"network", platform + server + "container {\n  network = env(\"S\")\n}\n", "leaky net", "Invalid container.network",
			platform + server + "container {\n  network = \"leaky net\"\n}\n"},
		{"domains resolver", platform + server + "domains {\n  resolver = env(\"S\")\n}\n", "leaky", "Invalid domains.resolver",
			platform + server + "domains {\n  resolver = \"leaky\"\n}\n"},
		{"smtp from", platform + server + "smtp {\n  host = \"mail\"\n  from = env(\"S\")\n}\n", "leaky at example", "Invalid smtp.from",
			platform + server + "smtp {\n  host = \"mail\"\n  from = \"leaky at example\"\n}\n"},
		{"log level", platform + server + "logging {\n  level = env(\"S\")\n}\n", "leaky", "Invalid logging.level",
			platform + server + "logging {\n  level = \"leaky\"\n}\n"},
		{"placement", platform + server + "scheduler {\n  placement = env(\"S\")\n}\nplugin \"scheduler\" \"spread\" {}\n", "leaky", "Unknown placement plugin",
			platform + server + "scheduler {\n  placement = \"leaky\"\n}\nplugin \"scheduler\" \"spread\" {}\n"},
		{"event pattern", platform + server + "plugin \"alerts\" \"log\" {\n  events = [env(\"S\")]\n}\n", "leaky*", "Invalid plugin.alerts.log.events",
			platform + server + "plugin \"alerts\" \"log\" {\n  events = [\"leaky*\"]\n}\n"},
		{"port", platform + server + "container {\n  port_range_start = env(\"S\")\n}\n", "1023", "Invalid container.port_range_start",
			platform + server + "container {\n  port_range_start = 1023\n}\n"},
		{"min_conns", platform + server + "database {\n  max_conns = 30\n  min_conns = env(\"S\")\n}\n", "31", "Invalid database.min_conns",
			platform + server + "database {\n  max_conns = 30\n  min_conns = 31\n}\n"},
		{"cross-field duration", platform + server + "scheduler {\n  worker_timeout = env(\"S\")\n}\n", "17s", "Invalid scheduler.worker_timeout",
			platform + server + "scheduler {\n  worker_timeout = \"17s\"\n}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := strings.ToLower(tt.env)
			if secret == "" {
				secret = marker
			}
			l := NewLoader(Options{LookupEnv: envMap(map[string]string{"S": tt.env})})
			_, diags := l.Parse([]byte(tt.src), filepath.Join(dir, "test.hcl"))
			if len(diags) != 1 || diags[0].Summary != tt.summary {
				t.Fatalf("want one %q diagnostic, got%s", tt.summary, dump(diags))
			}
			var buf bytes.Buffer
			if err := l.WriteDiagnostics(&buf, diags); err != nil {
				t.Fatal(err)
			}
			// Without the temporary directory, whose random name may hold
			// the value's digits.
			if out := strings.ToLower(strings.ReplaceAll(buf.String(), dir, "")); strings.Contains(out, secret) {
				t.Errorf("the diagnostic quotes the computed value:\n%s", buf.String())
			}
			if !strings.Contains(diags[0].Detail, "the value from env()/file()") {
				t.Errorf("the detail should name the value's source: %s", diags[0].Detail)
			}
			if tt.literal == "" {
				return
			}
			// Control: written literally, the same value is quoted.
			_, diags = Parse([]byte(tt.literal), "test.hcl", noEnv)
			if len(diags) != 1 || !strings.Contains(strings.ToLower(diags[0].Detail), secret) {
				t.Errorf("a literal value should be quoted, got%s", dump(diags))
			}
		})
	}
}

func TestListsAreCopies(t *testing.T) {
	for name, fn := range map[string]func() []string{"PluginKinds": PluginKinds, "OAuthProviders": OAuthProviders, "LogLevels": LogLevels} {
		a := fn()
		want := slices.Clone(a)
		a[0] = "changed"
		if got := fn(); !slices.Equal(got, want) {
			t.Errorf("%s() = %q after a caller changed its result; want %q", name, got, want)
		}
	}
	if got := PluginKinds(); !slices.Equal(got, []string{KindScheduler, KindProxy, KindAlerts, KindPlans}) {
		t.Errorf("PluginKinds() = %q", got)
	}
}

func TestPreviousSecrets(t *testing.T) {
	const src = `platform { domain = "apps.example.com" }
server {
  secret           = "current-secret-0123456789"
  previous_secrets = ["previous-secret-0123456789", env("OLD")]
}
`
	t.Run("from the file", func(t *testing.T) {
		cfg := mustParse(t, src, Options{LookupEnv: envMap(map[string]string{"OLD": "older-secret-0123456789"})})
		if got := cfg.Server.PreviousSecretValues(); !slices.Equal(got, []string{"previous-secret-0123456789", "older-secret-0123456789"}) {
			t.Errorf("PreviousSecretValues() = %q", got)
		}
		out := fmt.Sprintf("%v %+v %#v %s", cfg.Server, cfg.Server, cfg.Server, cfg.Redacted())
		js, _ := json.Marshal(cfg)
		out += string(js)
		if strings.Contains(out, "previous-secret") || strings.Contains(out, "older-secret") {
			t.Errorf("a previous secret leaks:\n%s", out)
		}
		if !strings.Contains(cfg.Redacted(), `previous_secrets = ["[redacted]", "[redacted]"]`) {
			t.Errorf("Redacted lacks the previous secrets:\n%s", cfg.Redacted())
		}
	})
	t.Run("credential, one per line", func(t *testing.T) {
		dir := writeCredentials(t, map[string]string{"api_server_previous_secrets": "cred-previous-0123456789\n\n  cred-older-0123456789  \n"})
		cfg, diags := Parse([]byte(src), "test.hcl", Options{LookupEnv: envMap(nil), CredentialsDir: dir})
		if diags.HasErrors() {
			t.Fatalf("Parse:%s", dump(diags))
		}
		if got := cfg.Server.PreviousSecretValues(); !slices.Equal(got, []string{"cred-previous-0123456789", "cred-older-0123456789"}) {
			t.Errorf("PreviousSecretValues() = %q", got)
		}
	})
	t.Run("short credential entry", func(t *testing.T) {
		dir := writeCredentials(t, map[string]string{"api_server_previous_secrets": "cred-previous-0123456789\nshort-s3cr3t\n"})
		_, diags := Parse([]byte(minimal), "test.hcl", Options{LookupEnv: envMap(nil), CredentialsDir: dir})
		want := filepath.Join(dir, "api_server_previous_secrets") + ":1:1"
		if len(diags) != 1 || pos(diags[0]) != want || !strings.Contains(diags[0].Detail, "entry 2 is shorter than 16 characters") ||
			strings.Contains(dump(diags), "short-s3cr3t") {
			t.Fatalf("want a short-entry error at %s, got%s", want, dump(diags))
		}
	})
	t.Run("equal to the current secret", func(t *testing.T) {
		cfg, diags := Parse([]byte(strings.Replace(src, `env("OLD")`, `"current-secret-0123456789"`, 1)), "test.hcl", noEnv)
		if cfg == nil || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || pos(diags[0]) != "test.hcl:4:22" ||
			!strings.Contains(diags[0].Detail, "entry 2 is the current server.secret") {
			t.Fatalf("want one warning, got%s", dump(diags))
		}
	})
}

func TestWorkerAllowLoopbackAddress(t *testing.T) {
	cfg := mustParse(t, minimal+"worker {\n  allow_loopback_address = true\n}\n", noEnv)
	if !cfg.Worker.AllowLoopbackAddress {
		t.Error("allow_loopback_address = true not decoded")
	}
	if !strings.Contains(cfg.Redacted(), "allow_loopback_address = true") {
		t.Errorf("Redacted lacks allow_loopback_address:\n%s", cfg.Redacted())
	}
}

func TestDomainsResolver(t *testing.T) {
	for _, r := range []string{"127.0.0.53:53", "[::1]:5353", "dns.internal:53", "DNS.Internal:53"} {
		t.Run(r, func(t *testing.T) {
			cfg := mustParse(t, minimal+"domains {\n  resolver = \""+r+"\"\n}\n", noEnv)
			if cfg.Domains.Resolver != r || !strings.Contains(cfg.Redacted(), `resolver         = "`+r+`"`) {
				t.Fatalf("resolver %q, Redacted:\n%s", cfg.Domains.Resolver, cfg.Redacted())
			}
		})
	}
	if got := mustParse(t, minimal, noEnv).Redacted(); !strings.Contains(got, "domains {\n  # no resolver: the system's\n") ||
		!strings.Contains(got, `recheck_interval = "6h"`) || !strings.Contains(got, `grace_period     = "2d"`) {
		t.Errorf("Redacted lacks the domains defaults:\n%s", got)
	}
}

func TestListenHosts(t *testing.T) {
	for _, listen := range []string{":8443", "localhost:8443", "127.0.0.1:0", "[::1]:8443", "[fe80::1%eth0]:8443", "api.example.com:443", "API.Example.com:443"} {
		t.Run(listen, func(t *testing.T) {
			mustParse(t, "platform { domain = \"apps.example.com\" }\nserver {\n  secret = \"0123456789abcdef\"\n  listen = \""+listen+"\"\n}\n", noEnv)
		})
	}
	for _, listen := range []string{"host_name:8443", "a..b:80", "-x:80", "x`y:80"} {
		t.Run(listen, func(t *testing.T) {
			_, diags := Parse([]byte("platform { domain = \"apps.example.com\" }\nserver {\n  secret = \"0123456789abcdef\"\n  listen = \""+listen+"\"\n}\n"), "test.hcl", noEnv)
			if len(diags) != 1 || !strings.Contains(diags[0].Detail, "the host must be an IP address or a host name") {
				t.Fatalf("want a host error, got%s", dump(diags))
			}
		})
	}
}

func TestEventPatternMatchingNothing(t *testing.T) {
	cfg, diags := Parse([]byte(minimal+"plugin \"alerts\" \"log\" {\n  events = [\"app.*\", \"deploymnt.failed\"]\n}\n"), "test.hcl", noEnv)
	if cfg == nil || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Summary != "Event pattern matches no event" ||
		!strings.Contains(diags[0].Detail, `entry 2, "deploymnt.failed", matches no event`) {
		t.Fatalf("want one warning, got%s", dump(diags))
	}
}

func TestPluginSource(t *testing.T) {
	cases := []struct {
		name, block, wantErr, builtin string
	}{
		{"default is the block name", `plugin "alerts" "log" {}`, "", "log"},
		{"second instance of a built-in", `plugin "alerts" "ops-log" { source = "log" }`, "", "log"},
		{"source with command", `plugin "alerts" "x" {
  source  = "log"
  command = "/bin/x"
}`, "source names a built-in plugin", ""},
		{"bad source", `plugin "alerts" "x" { source = "Log Sink" }`, "must be the name of a built-in plugin", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, diags := Parse([]byte(minimal+c.block+"\n"), "p.hcl", noEnv)
			if c.wantErr != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), c.wantErr) {
					t.Fatalf("diags = %v, want %q", diags, c.wantErr)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if got := cfg.Plugins[0].BuiltinName(); got != c.builtin {
				t.Fatalf("BuiltinName = %q, want %q", got, c.builtin)
			}
		})
	}
}
