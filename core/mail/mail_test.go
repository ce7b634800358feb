package mail

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/config"
	smail "github.com/wisehosting/wisehosting/sdk/mail"
	"github.com/wisehosting/wisehosting/sdk/mail/mailtest"
)

const testPass = "hunter2-smtp-password"

// smtpConfig returns the smtp block of srv: its certificate in a CA file.
func smtpConfig(t *testing.T, srv *mailtest.Server) *config.SMTP {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return &config.SMTP{Host: srv.Host(), Port: srv.Port(), From: "WiseHosting <noreply@example.com>", StartTLS: true, CAFile: ca}
}

func newMailer(t *testing.T, cfg *config.SMTP) *Mailer {
	t.Helper()
	m, err := New(cfg, testSecret)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func testInfo() NewDeviceInfo {
	return NewDeviceInfo{
		UserEmail: "jane@example.org", UserID: 7, SessionID: 4242,
		IP: "203.0.113.7", City: "Lyon", Country: "France",
		Device: "Desktop", Browser: "Firefox 128", OS: "Linux",
		Time: time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC),
	}
}

func TestSendNewDeviceAlert(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Username: "postmaster@example.com", Password: testPass})
	cfg := smtpConfig(t, srv)
	cfg.Username, cfg.Password = "postmaster@example.com", config.NewSecret(testPass)
	m := newMailer(t, cfg)
	now := time.Date(2026, 3, 1, 12, 31, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	if !m.Enabled() {
		t.Fatal("not enabled")
	}
	if err := m.SendNewDeviceAlert(context.Background(), testInfo(), "https://paas.example.com/"); err != nil {
		t.Fatalf("SendNewDeviceAlert: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	r := msgs[0]
	if !r.TLS || r.AuthUser != "postmaster@example.com" || r.From != "noreply@example.com" || strings.Join(r.To, ",") != "jane@example.org" {
		t.Fatalf("TLS %v user %q envelope %s -> %v", r.TLS, r.AuthUser, r.From, r.To)
	}
	p, err := r.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "New sign-in to your WiseHosting account" || p.Header.Get("To") != "<jane@example.org>" ||
		p.Header.Get("Auto-Submitted") != "auto-generated" || p.Header.Get("Date") != "Sun, 01 Mar 2026 12:31:00 +0000" {
		t.Errorf("header %v, subject %q", p.Header, p.Subject)
	}
	for _, want := range []string{"Desktop", "Firefox 128", "Linux", "203.0.113.7", "Lyon, France", "Sunday, 1 March 2026, 12:30 UTC", "72 hours"} {
		if !strings.Contains(p.Text, want) || !strings.Contains(p.HTML, want) {
			t.Errorf("the mail lacks %q", want)
		}
	}
	if !strings.Contains(p.HTML, "background:#0b0f19") {
		t.Error("the HTML is not the dark theme")
	}

	// The link in both bodies revokes exactly this session.
	token := m.SignRevokeToken(7, 4242, now)
	link := "https://paas.example.com/api/session/revoke-token?token=" + url.QueryEscape(token)
	if !strings.Contains(p.Text, link) {
		t.Errorf("the text lacks the link %s:\n%s", link, p.Text)
	}
	if !strings.Contains(p.HTML, `href="`+strings.ReplaceAll(link, "&", "&amp;")+`"`) {
		t.Errorf("the HTML lacks the link %s:\n%s", link, p.HTML)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	user, session, err := VerifyRevokeToken(u.Query().Get("token"), testSecret, now.Add(time.Hour))
	if err != nil || user != 7 || session != 4242 {
		t.Fatalf("the link's token: %d, %d, %v", user, session, err)
	}
}

// Every value of the alert is escaped in the HTML, and kept on one line
// in both bodies.
func TestNewDeviceAlertEscaping(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	m := newMailer(t, smtpConfig(t, srv))
	info := testInfo()
	info.Device = `<script>alert("x")</script>`
	info.Browser = "Evil\r\nBcc: victim@example.com"
	info.OS = "\u202exuniL"
	info.City, info.Country = "", ""
	info.IP = `"><img src=x onerror=alert(1)>`
	info.Time = time.Time{}
	if err := m.SendNewDeviceAlert(context.Background(), info, "http://127.0.0.1:8080/base"); err != nil {
		t.Fatal(err)
	}
	p, err := srv.Messages()[0].Parse()
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script>", "<img", "\u202e", "\nBcc: victim"} {
		if strings.Contains(p.HTML, bad) {
			t.Errorf("the HTML holds %q", bad)
		}
	}
	if strings.Contains(p.Text, "\nBcc:") || len(p.Header["Bcc"]) != 0 {
		t.Error("a value broke a line")
	}
	for _, want := range []string{"&lt;script&gt;", "Evil Bcc: victim@example.com", "Location:   Unknown", "http://127.0.0.1:8080/base/api/session/revoke-token?token="} {
		if !strings.Contains(p.HTML+p.Text, want) {
			t.Errorf("the mail lacks %q", want)
		}
	}
}

func TestSendNewDeviceAlertErrors(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	m := newMailer(t, smtpConfig(t, srv))
	tests := []struct {
		name   string
		change func(i *NewDeviceInfo)
		base   string
		want   string
	}{
		{"ftp base", nil, "ftp://paas.example.com", "must be an http or https URL"},
		{"relative base", nil, "/paas", "must be an http or https URL"},
		{"no host", nil, "https:///x", "must be absolute"},
		{"query", nil, "https://paas.example.com/?a=b", "must not hold a user, a query or a fragment"},
		{"fragment", nil, "https://paas.example.com/#x", "must not hold"},
		{"user", nil, "https://u:p@paas.example.com/", "must not hold"},
		{"javascript", nil, "javascript:alert(1)", "must be an http or https URL"},
		{"bad address", func(i *NewDeviceInfo) { i.UserEmail = "jane" }, "https://paas.example.com", "the user's address"},
		{"injected address", func(i *NewDeviceInfo) { i.UserEmail = "jane@example.org\r\nBcc: x@example.com" }, "https://paas.example.com", "line break"},
		{"no session", func(i *NewDeviceInfo) { i.SessionID = 0 }, "https://paas.example.com", "must be positive"},
		{"no user", func(i *NewDeviceInfo) { i.UserID = -1 }, "https://paas.example.com", "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := testInfo()
			if tt.change != nil {
				tt.change(&info)
			}
			err := m.SendNewDeviceAlert(context.Background(), info, tt.base)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("SendNewDeviceAlert = %v, want %q", err, tt.want)
			}
		})
	}
	if srv.Connections() != 0 {
		t.Fatalf("the server saw %d connections", srv.Connections())
	}
}

// SMTP failures come back as sdk/mail errors that say whether to retry.
func TestSendNewDeviceAlertSMTPFailures(t *testing.T) {
	tests := []struct {
		name      string
		opts      mailtest.Options
		change    func(c *config.SMTP)
		temporary bool
		want      string
	}{
		{"no STARTTLS", mailtest.Options{NoStartTLS: true}, nil, false, "does not offer STARTTLS"},
		{"recipient refused", mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Rcpt: {Code: 550}}}, nil, false, "550"},
		{"greylisted", mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Rcpt: {Code: 451}}}, nil, true, "451"},
		{"system roots do not know the test CA", mailtest.Options{}, func(c *config.SMTP) { c.CAFile = "" }, false, "certificate did not verify"},
		{"wrong password", mailtest.Options{Username: "u", Password: "right"}, func(c *config.SMTP) {
			c.Username, c.Password = "u", config.NewSecret(testPass)
		}, false, "535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.Start(t, tt.opts)
			cfg := smtpConfig(t, srv)
			if tt.change != nil {
				tt.change(cfg)
			}
			m := newMailer(t, cfg)
			err := m.SendNewDeviceAlert(context.Background(), testInfo(), "https://paas.example.com")
			var me *smail.Error
			if !errors.As(err, &me) || me.Temporary != tt.temporary || smail.IsTemporary(err) != tt.temporary {
				t.Fatalf("SendNewDeviceAlert = %v, want an sdk/mail error, temporary %v", err, tt.temporary)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), testPass) {
				t.Fatalf("error %q, want %q and no password", err, tt.want)
			}
			if len(srv.Messages()) != 0 {
				t.Fatal("a message was accepted")
			}
		})
	}
}

func TestSecurityChoice(t *testing.T) {
	tests := []struct {
		name string
		opts mailtest.Options
		cfg  func(c *config.SMTP)
		tls  bool
	}{
		{"starttls", mailtest.Options{}, nil, true},
		{"clear text when starttls = false", mailtest.Options{NoStartTLS: true}, func(c *config.SMTP) { c.StartTLS, c.CAFile = false, "" }, false},
		{"clear-text credentials to a loopback relay", mailtest.Options{NoStartTLS: true, Username: "relay", Password: testPass, AuthWithoutTLS: true},
			func(c *config.SMTP) {
				c.StartTLS, c.CAFile, c.Username, c.Password = false, "", "relay", config.NewSecret(testPass)
			}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.Start(t, tt.opts)
			cfg := smtpConfig(t, srv)
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			m := newMailer(t, cfg)
			if err := m.SendNewDeviceAlert(context.Background(), testInfo(), "https://paas.example.com"); err != nil {
				t.Fatal(err)
			}
			if got := srv.Messages(); len(got) != 1 || got[0].TLS != tt.tls {
				t.Fatalf("messages %+v", got)
			}
		})
	}
	// Port 465 is implicit TLS, whatever starttls says. The test server
	// cannot listen on 465, so check the settings New makes.
	m := newMailer(t, &config.SMTP{Host: "smtp.example.com", Port: config.SMTPSPort, From: "a@example.com"})
	if m.server.Security != smail.ImplicitTLS || m.server.Address() != "smtp.example.com:465" || !m.server.AllowPrivate {
		t.Fatalf("server %+v", m.server)
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	if err := os.WriteFile(notPEM, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := func() *config.SMTP {
		return &config.SMTP{Host: "smtp.example.com", Port: 587, From: "WiseHosting <noreply@example.com>", StartTLS: true}
	}
	tests := []struct {
		name   string
		cfg    *config.SMTP
		secret []byte
		want   string
	}{
		{"short secret", ok(), []byte("short"), "at least 32"},
		{"no secret, no block", nil, nil, "at least 32"},
		{"missing ca_file", func() *config.SMTP { c := ok(); c.CAFile = filepath.Join(dir, "missing.pem"); return c }(), testSecret, "smtp.ca_file"},
		{"ca_file not PEM", func() *config.SMTP { c := ok(); c.CAFile = notPEM; return c }(), testSecret, "holds no PEM certificate"},
		{"bad from", func() *config.SMTP { c := ok(); c.From = "nobody"; return c }(), testSecret, "smtp.from"},
		{"bad host", func() *config.SMTP { c := ok(); c.Host = "smtp://x"; return c }(), testSecret, "mail: smtp: host"},
		{"clear-text password", func() *config.SMTP {
			c := ok()
			c.StartTLS, c.Username, c.Password = false, "u", config.NewSecret(testPass)
			return c
		}(), testSecret, "clear text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, tt.secret)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testPass) {
				t.Fatal("the error shows the password")
			}
		})
	}

	// Without an smtp block: disabled, tokens still signed.
	m := newMailer(t, nil)
	if m.Enabled() {
		t.Fatal("enabled without an smtp block")
	}
	if err := m.SendNewDeviceAlert(context.Background(), testInfo(), "https://paas.example.com"); !errors.Is(err, ErrDisabled) {
		t.Fatalf("SendNewDeviceAlert = %v", err)
	}
	if _, _, err := VerifyRevokeToken(m.SignRevokeToken(1, 2, signedAt), testSecret, signedAt); err != nil {
		t.Fatal(err)
	}
	var nilMailer *Mailer
	if nilMailer.Enabled() {
		t.Fatal("a nil Mailer is enabled")
	}
	// The secret is copied: changing the caller's slice changes nothing.
	secret := append([]byte(nil), testSecret...)
	m2 := newMailerWith(t, secret)
	token := m2.SignRevokeToken(1, 2, signedAt)
	secret[0] ^= 0xff
	if m2.SignRevokeToken(1, 2, signedAt) != token {
		t.Fatal("the Mailer shares the caller's secret")
	}
}

func newMailerWith(t *testing.T, secret []byte) *Mailer {
	t.Helper()
	m, err := New(nil, secret)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Cancelling the context ends a send waiting on a silent server.
func TestSendNewDeviceAlertContext(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Hang: mailtest.Greeting})
	m := newMailer(t, smtpConfig(t, srv))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m.SendNewDeviceAlert(ctx, testInfo(), "https://paas.example.com")
	if !smail.IsTemporary(err) {
		t.Fatalf("SendNewDeviceAlert = %v, want a temporary error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}
