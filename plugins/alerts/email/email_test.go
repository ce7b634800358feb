package email

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/mail"
	"github.com/wisehosting/wisehosting/sdk/mail/mailtest"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

const (
	testUser = "alerts@example.com"
	testPass = "hunter2-smtp-password"
)

// caFile writes srv's certificate to a file and returns its path.
func caFile(t testing.TB, srv *mailtest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, srv.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// config returns a config body sending through srv (loopback allowed, its
// certificate trusted unless extra turns STARTTLS off, a 5 s timeout unless
// extra sets one), plus extra lines.
func config(t testing.TB, srv *mailtest.Server, extra ...string) string {
	t.Helper()
	lines := []string{
		fmt.Sprintf("host = %q", srv.Host()),
		fmt.Sprintf("port = %d", srv.Port()),
		`from = "WiseHosting <alerts@example.com>"`,
		`to = ["ops@example.com", "Jane Doe <jane@example.org>"]`,
		"allow_private = true",
	}
	if !slices.Contains(extra, "starttls = false") { // no TLS, no CA
		lines = append(lines, fmt.Sprintf("ca_file = %q", caFile(t, srv)))
	}
	if !slices.ContainsFunc(extra, func(l string) bool { return strings.HasPrefix(l, "timeout") }) {
		lines = append(lines, `timeout = "5s"`)
	}
	return strings.Join(append(lines, extra...), "\n")
}

// newTestPlugin returns a plugin configured with src, logging JSON into
// the returned buffer.
func newTestPlugin(t *testing.T, src string) (*Plugin, *plugintest.LogBuffer) {
	return plugintest.ConfigureNew(t, newWithLogger, Spec(), src)
}

var eventTime = time.Date(2026, 3, 1, 12, 30, 45, 0, time.UTC)

func testEvent(id string) *pluginv1.Event {
	return &pluginv1.Event{
		Id: id, Type: "deployment.failed", TimeUnixNano: eventTime.UnixNano(), UserId: 7, AppId: 42, Attempt: 1,
		DataJson: []byte(`{"app_name": "shop", "deployment_id": 9, "commit_sha": "0123456789abcdef", ` +
			`"commit_message": "Fix <the> build\n\nLong body", "error": "build failed: exit status 1", "subdomain": "shop.apps.example.com"}`),
	}
}

func TestInfo(t *testing.T) { plugintest.CheckInfo(t, New(), sdk.KindAlerts, Name, Version) }

func TestConfigure(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	srv := mailtest.Start(t, mailtest.Options{})
	if err := os.WriteFile(ca, srv.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "host = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\nto = [\"ops@example.com\"]"
	tests := []struct {
		name, hcl, wantErr string
		check              func(t *testing.T, s *settings)
	}{
		{name: "minimal", hcl: base, check: func(t *testing.T, s *settings) {
			srv := s.server
			if srv.Address() != "smtp.example.com:587" || srv.Security != mail.StartTLS || srv.Timeout != DefaultTimeout ||
				s.limit.Cap() != DefaultMaxConcurrency || s.prefix != DefaultSubjectPrefix || srv.AllowPrivate || srv.RootCAs != nil {
				t.Errorf("defaults: %+v, concurrency %d, prefix %q", srv, s.limit.Cap(), s.prefix)
			}
			if s.from != "<alerts@example.com>" || len(s.to) != 1 || s.domain != "example.com" {
				t.Errorf("from %q to %v domain %q", s.from, s.to, s.domain)
			}
		}},
		{name: "everything", hcl: base + "\nport = 2525\nusername = \"u\"\npassword = \"" + testPass + "\"\ntimeout = \"250ms\"\n" +
			"max_concurrency = 4\nsubject_prefix = \"\"\nserver_name = \"mail.example.com\"\nca_file = \"" + ca + "\"",
			check: func(t *testing.T, s *settings) {
				srv := s.server
				if srv.Address() != "smtp.example.com:2525" || srv.Username != "u" || srv.Password != testPass ||
					srv.Timeout != 250*time.Millisecond || s.limit.Cap() != 4 || s.prefix != "" || srv.ServerName != "mail.example.com" || srv.RootCAs == nil {
					t.Errorf("%+v, concurrency %d, prefix %q", srv, s.limit.Cap(), s.prefix)
				}
			}},
		{name: "tls", hcl: base + "\ntls = true", check: func(t *testing.T, s *settings) {
			if s.server.Security != mail.ImplicitTLS || s.server.Address() != "smtp.example.com:465" {
				t.Errorf("security %v address %s", s.server.Security, s.server.Address())
			}
		}},
		{name: "port 465 is implicit TLS", hcl: base + "\nport = 465", check: func(t *testing.T, s *settings) {
			if s.server.Security != mail.ImplicitTLS {
				t.Errorf("security %v", s.server.Security)
			}
		}},
		{name: "starttls off", hcl: base + "\nstarttls = false\nport = 25", check: func(t *testing.T, s *settings) {
			if s.server.Security != mail.Plain {
				t.Errorf("security %v", s.server.Security)
			}
		}},
		{name: "clear-text credentials to loopback", hcl: "host = \"127.0.0.1\"\nallow_private = true\nstarttls = false\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\nusername = \"u\"\npassword = \"p\""},
		{name: "subject prefix", hcl: base + "\nsubject_prefix = \"  [Prod]  \"", check: func(t *testing.T, s *settings) {
			if s.prefix != "[Prod]" {
				t.Errorf("prefix %q", s.prefix)
			}
		}},

		{name: "no host", hcl: "from = \"a@example.com\"\nto = [\"b@example.com\"]", wantErr: `"host" is required`},
		{name: "empty host", hcl: "host = \" \"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]", wantErr: "host is required"},
		{name: "no from", hcl: "host = \"smtp.example.com\"\nto = [\"b@example.com\"]", wantErr: `"from" is required`},
		{name: "no to", hcl: "host = \"smtp.example.com\"\nfrom = \"a@example.com\"", wantErr: `"to" is required`},
		{name: "empty to", hcl: "host = \"smtp.example.com\"\nfrom = \"a@example.com\"\nto = []", wantErr: "at least one recipient"},
		{name: "host URL", hcl: strings.Replace(base, "smtp.example.com", "smtp://smtp.example.com", 1), wantErr: "host:"},
		{name: "host with port", hcl: strings.Replace(base, "smtp.example.com", "smtp.example.com:25", 1), wantErr: "host:"},
		{name: "loopback literal", hcl: strings.Replace(base, "smtp.example.com", "127.0.0.1", 1), wantErr: "host: 127.0.0.1 is a loopback address; set allow_private = true"},
		{name: "private literal", hcl: strings.Replace(base, "smtp.example.com", "10.0.0.5", 1), wantErr: "private address"},
		{name: "metadata literal", hcl: strings.Replace(base, "smtp.example.com", "169.254.169.254", 1), wantErr: "link-local"},
		{name: "bad port", hcl: base + "\nport = 0", wantErr: "port = 0"},
		{name: "big port", hcl: base + "\nport = 65536", wantErr: "port = 65536"},
		{name: "bad from", hcl: "host = \"smtp.example.com\"\nfrom = \"nobody\"\nto = [\"b@example.com\"]", wantErr: "from:"},
		{name: "injected from", hcl: "host = \"smtp.example.com\"\nfrom = \"a@example.com\\r\\nBcc: x@example.com\"\nto = [\"b@example.com\"]", wantErr: "line break"},
		{name: "bad to", hcl: "host = \"smtp.example.com\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\", \"nope\"]", wantErr: "to[1]:"},
		{name: "duplicate to", hcl: "host = \"smtp.example.com\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\", \"B <B@example.com>\"]", wantErr: "to[1]: B@example.com is already to[0]"},
		{name: "too many to", hcl: "host = \"smtp.example.com\"\nfrom = \"a@example.com\"\nto = [" + manyRecipients(51) + "]", wantErr: "at most 50 recipients"},
		{name: "password alone", hcl: base + "\npassword = \"" + testPass + "\"", wantErr: "password without a username"},
		{name: "username alone", hcl: base + "\nusername = \"u\"", wantErr: "username without a password"},
		{name: "clear-text credentials", hcl: base + "\nstarttls = false\nusername = \"u\"\npassword = \"" + testPass + "\"", wantErr: "clear text"},
		{name: "ca_file without TLS", hcl: base + "\nstarttls = false\nca_file = \"" + ca + "\"", wantErr: "no TLS is spoken"},
		{name: "relative ca_file", hcl: base + "\nca_file = \"ca.pem\"", wantErr: "must be an absolute path"},
		{name: "missing ca_file", hcl: base + "\nca_file = \"" + filepath.Join(dir, "missing.pem") + "\"", wantErr: "no such file"},
		{name: "ca_file not PEM", hcl: base + "\nca_file = \"" + notPEM + "\"", wantErr: "holds no PEM certificate"},
		{name: "bad server_name", hcl: base + "\nserver_name = \"a b\"", wantErr: "server name"},
		{name: "bad timeout", hcl: base + "\ntimeout = \"forever\"", wantErr: "timeout"},
		{name: "short timeout", hcl: base + "\ntimeout = \"1ms\"", wantErr: "must be between"},
		{name: "concurrency 0", hcl: base + "\nmax_concurrency = 0", wantErr: "max_concurrency = 0"},
		{name: "concurrency 17", hcl: base + "\nmax_concurrency = 17", wantErr: "max_concurrency = 17"},
		{name: "prefix with newline", hcl: base + "\nsubject_prefix = \"a\\nb\"", wantErr: "subject_prefix"},
		{name: "long prefix", hcl: base + "\nsubject_prefix = \"" + strings.Repeat("x", 65) + "\"", wantErr: "subject_prefix"},
		{name: "unknown attribute", hcl: base + "\nurl = \"x\"", wantErr: "url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newWithLogger(sdk.Logger())
			err := plugintest.Configure(p, Spec(), tt.hcl)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Configure = %v, want an error mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), testPass) {
					t.Fatalf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			if tt.check != nil {
				tt.check(t, p.settings.Load())
			}
		})
	}
}

func manyRecipients(n int) string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%q", fmt.Sprintf("r%d@example.com", i)))
	}
	return strings.Join(out, ", ")
}

// A rejected configuration leaves the previous one in force.
func TestConfigureKeepsPrevious(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	p, _ := newTestPlugin(t, config(t, srv))
	before := p.settings.Load()
	if err := plugintest.Configure(p, Spec(), config(t, srv, "max_concurrency = 0")); err == nil {
		t.Fatal("a bad config was accepted")
	}
	if p.settings.Load() != before {
		t.Fatal("a rejected config replaced the settings")
	}
	res := plugintest.Deliver(t, p, testEvent("e-1"))
	if res[0].GetOutcome() != delivered {
		t.Fatalf("result %v", res[0])
	}
}

func TestDeliver(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Username: testUser, Password: testPass})
	p, logs := newTestPlugin(t, config(t, srv, fmt.Sprintf("username = %q\npassword = %q", testUser, testPass)))
	res := plugintest.Deliver(t, p, testEvent("evt-1"), testEvent("evt-2"))
	for _, r := range res {
		if r.GetOutcome() != delivered || r.GetMessage() != fmt.Sprintf("sent to 2 recipients via %s", srv.Addr()) {
			t.Errorf("result %v", r)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	ids := map[string]bool{}
	for _, m := range msgs {
		if !m.TLS || m.AuthUser != testUser || m.From != "alerts@example.com" ||
			strings.Join(m.To, ",") != "ops@example.com,jane@example.org" {
			t.Errorf("message TLS %v user %q envelope %s -> %v", m.TLS, m.AuthUser, m.From, m.To)
		}
		pm, err := m.Parse()
		if err != nil {
			t.Fatal(err)
		}
		h := pm.Header
		id := h.Get("X-Wisehosting-Event-Id")
		ids[id] = true
		checks := []struct{ name, got, want string }{
			{"subject", pm.Subject, "[WiseHosting] ❌ Deployment failed — shop"},
			{"from", h.Get("From"), `"WiseHosting" <alerts@example.com>`},
			{"to", h.Get("To"), `<ops@example.com>, "Jane Doe" <jane@example.org>`},
			{"date", h.Get("Date"), "Sun, 01 Mar 2026 12:30:45 +0000"},
			{"auto-submitted", h.Get("Auto-Submitted"), "auto-generated"},
			{"event", h.Get("X-Wisehosting-Event"), "deployment.failed"},
			{"message-id", h.Get("Message-Id"), "<" + id + ".alert@example.com>"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
			}
		}
		for _, want := range []string{"Deployment: #9", "Commit:     0123456 Fix <the> build", "build failed: exit status 1", "Open: https://shop.apps.example.com"} {
			if !strings.Contains(pm.Text, want) {
				t.Errorf("the text lacks %q:\n%s", want, pm.Text)
			}
		}
		for _, want := range []string{"0123456 Fix &lt;the&gt; build", `href="https://shop.apps.example.com"`} {
			if !strings.Contains(pm.HTML, want) {
				t.Errorf("the HTML lacks %q:\n%s", want, pm.HTML)
			}
		}
		if strings.Contains(pm.HTML, "<the>") || strings.Contains(pm.Text, "Long body") {
			t.Errorf("unescaped or whole commit message:\n%s", pm.HTML)
		}
	}
	if !ids["evt-1"] || !ids["evt-2"] {
		t.Errorf("event ids %v", ids)
	}
	if strings.Contains(logs.String(), testPass) {
		t.Error("the log shows the password")
	}
}

func TestDeliverOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		opts    mailtest.Options
		extra   []string
		outcome pluginv1.DeliveryOutcome
		want    string
	}{
		{name: "RCPT 550", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Rcpt: {Code: 550, Text: "no such user"}}},
			outcome: failed, want: `mail: RCPT TO: <ops@example.com>: the server answered 550 "no such user"`},
		{name: "RCPT 450", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Rcpt: {Code: 450, Text: "mailbox busy"}}},
			outcome: retry, want: "450"},
		{name: "greeting 421", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Greeting: {Code: 421}}},
			outcome: retry, want: "421"},
		{name: "DATA end 554", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.DataEnd: {Code: 554, Text: "spam"}}},
			outcome: failed, want: "554"},
		{name: "no STARTTLS", opts: mailtest.Options{NoStartTLS: true},
			outcome: failed, want: "does not offer STARTTLS"},
		{name: "starttls = false sends in clear text", opts: mailtest.Options{NoStartTLS: true}, extra: []string{"starttls = false"},
			outcome: delivered},
		{name: "implicit TLS", opts: mailtest.Options{ImplicitTLS: true}, extra: []string{"tls = true"},
			outcome: delivered},
		{name: "wrong password", opts: mailtest.Options{Username: testUser, Password: "other"},
			extra: []string{fmt.Sprintf("username = %q\npassword = %q", testUser, testPass)}, outcome: failed, want: "535"},
		{name: "untrusted certificate", extra: []string{`server_name = "mail.example.com"`},
			outcome: failed, want: "certificate did not verify"},
		{name: "timeout", opts: mailtest.Options{Hang: mailtest.Mail}, extra: []string{`timeout = "300ms"`},
			outcome: retry, want: "no answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.Start(t, tt.opts)
			p, logs := newTestPlugin(t, config(t, srv, tt.extra...))
			r := plugintest.Deliver(t, p, testEvent("e-1"))[0]
			if r.GetOutcome() != tt.outcome || !strings.Contains(r.GetMessage(), tt.want) {
				t.Fatalf("result %v, want %v with %q", r, tt.outcome, tt.want)
			}
			if r.GetRetryAfterMs() != 0 {
				t.Errorf("retry_after_ms %d", r.GetRetryAfterMs())
			}
			if (tt.outcome == delivered) != (len(srv.Messages()) == 1) {
				t.Errorf("%d messages", len(srv.Messages()))
			}
			if strings.Contains(r.GetMessage(), testPass) || strings.Contains(logs.String(), testPass) {
				t.Error("the password shows")
			}
			if tt.outcome == failed && !strings.Contains(logs.String(), "e-mail not delivered") {
				t.Errorf("no warning logged:\n%s", logs)
			}
		})
	}
}

// The dial guard refuses a host name that resolves to loopback, without
// retrying: a configuration problem.
func TestDeliverGuard(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	src := strings.Replace(config(t, srv), "allow_private = true", "allow_private = false", 1)
	src = strings.Replace(src, `host = "127.0.0.1"`, `host = "localhost"`, 1)
	p, _ := newTestPlugin(t, src)
	r := plugintest.Deliver(t, p, testEvent("e-1"))[0]
	if r.GetOutcome() != failed || !strings.Contains(r.GetMessage(), "loopback") || !strings.Contains(r.GetMessage(), "allow_private") {
		t.Fatalf("result %v", r)
	}
	if srv.Connections() != 0 {
		t.Fatal("the plugin connected")
	}
}

func TestDeliverBadEvents(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	p, _ := newTestPlugin(t, config(t, srv))
	events := []*pluginv1.Event{
		{Id: "", Type: "app.cpu"},
		{Id: "a b", Type: "app.cpu"},
		{Id: "x", Type: "app.cpu", DataJson: []byte(`[1]`)},
		{Id: "y", Type: "app.cpu", DataJson: []byte(`{"broken"`)},
		{Id: "z", Type: "Weird Type\r\nBcc: x@example.com", DataJson: []byte(`{}`)},
	}
	res := plugintest.Deliver(t, p, events...)
	for i, want := range []string{"no id", "not printable ASCII", "not a JSON object", "not a JSON object"} {
		if res[i].GetOutcome() != failed || !strings.Contains(res[i].GetMessage(), want) {
			t.Errorf("event %d: %v, want failed with %q", i, res[i], want)
		}
	}
	// A strange type is no reason not to send: it only stays out of the
	// header.
	if res[4].GetOutcome() != delivered {
		t.Fatalf("event 4: %v", res[4])
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	pm, err := msgs[0].Parse()
	if err != nil {
		t.Fatal(err)
	}
	if pm.Header.Get("X-Wisehosting-Event") != "" || len(pm.Header["Bcc"]) != 0 || pm.Subject != "[WiseHosting] 🔔 Event Weird Type Bcc: x@example.com" {
		t.Fatalf("header %v, subject %q", pm.Header, pm.Subject)
	}
}

func TestDeliverUnconfigured(t *testing.T) {
	p := New()
	r := plugintest.Deliver(t, p, testEvent("e-1"))[0]
	if r.GetOutcome() != retry || !strings.Contains(r.GetMessage(), "not configured") {
		t.Fatalf("result %v", r)
	}
}

func TestDeliverConcurrency(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	p, _ := newTestPlugin(t, config(t, srv, "max_concurrency = 3"))
	var events []*pluginv1.Event
	for i := range 12 {
		events = append(events, testEvent(fmt.Sprintf("c-%d", i)))
	}
	// Two Deliver calls at once share the bound.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for _, r := range plugintest.Deliver(t, p, events...) {
				if r.GetOutcome() != delivered {
					t.Errorf("result %v", r)
				}
			}
		})
	}
	wg.Wait()
	if n := len(srv.Messages()); n != 24 {
		t.Fatalf("%d messages", n)
	}
}

func TestDeliverCancelled(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Hang: mailtest.Mail})
	p, _ := newTestPlugin(t, config(t, srv, "max_concurrency = 1", `timeout = "1m"`))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	resp, err := p.Deliver(ctx, &pluginv1.DeliverRequest{Events: []*pluginv1.Event{testEvent("a"), testEvent("b"), testEvent("c")}})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Deliver took %v", d)
	}
	for i, r := range resp.GetResults() {
		if r.GetOutcome() != retry || !strings.Contains(r.GetMessage(), "cancelled") {
			t.Errorf("result %d: %v", i, r)
		}
	}
}
