package accounts_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/core/mail"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/sdk/mail/mailtest"
)

// TestNewDeviceMailRevokesTheSession is point 4 end to end: a sign-in
// from an address the account never used mails the owner (over STARTTLS
// to an SMTP server on loopback) a link that, followed without any
// session, revokes exactly that sign-in; a second sign-in from the same
// address mails nothing.
func TestNewDeviceMailRevokesTheSession(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.Options{})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, smtp.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, 1000, func(e *env, o *accounts.Options) {
		m, err := mail.New(&config.SMTP{Host: smtp.Host(), Port: smtp.Port(), From: "WiseHosting <noreply@example.com>",
			StartTLS: true, CAFile: ca}, revokeKey)
		if err != nil {
			t.Fatal(err)
		}
		e.mailer, o.Mailer = m, m
	})
	victim := e.client(t)
	victim.login(t, e.user.ID)
	e.svc.Wait() // the mail goes out in the background
	msgs := smtp.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d mails after a sign-in from a new address, want 1", len(msgs))
	}
	p, err := msgs[0].Parse()
	if err != nil {
		t.Fatal(err)
	}
	if to := msgs[0].To; len(to) != 1 || to[0] != e.user.Email || !msgs[0].TLS {
		t.Errorf("mailed to %v (TLS %v), want %s over STARTTLS", to, msgs[0].TLS, e.user.Email)
	}
	link := regexp.MustCompile(`https?://[^\s"<>]+` + regexp.QuoteMeta(mail.RevokePath) + `\?token=[A-Za-z0-9_%:-]+`).FindString(p.Text)
	if link == "" || !strings.Contains(p.HTML, "Revoke") {
		t.Fatalf("no revoke link in the mail:\n%s", p.Text)
	}
	e.rememberPlain(strings.SplitN(link, "token=", 2)[1])

	// The same address again: no second mail.
	e.client(t).login(t, e.user.ID)
	e.svc.Wait()
	if n := len(smtp.Messages()); n != 1 {
		t.Fatalf("%d mails after a second sign-in from the same address, want 1", n)
	}

	var events int
	if err := e.st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM event_outbox WHERE type = 'account.login_new_device' AND user_id = $1`,
		e.user.ID).Scan(&events); err != nil || events != 1 {
		t.Fatalf("%d account.login_new_device events, want 1 (%v)", events, err)
	}

	// The link, opened by anyone without a session, revokes the first
	// sign-in and only it.
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the revoke link answered %d", resp.StatusCode)
	}
	victim.do(t, "GET", "/api/v1/me", nil, http.StatusUnauthorized, nil)
	testutil.WaitFor(t, 5*time.Second, "the audit event", func() bool {
		n := 0
		_ = e.st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE user_id = $1 AND kind = 'session_revoked'`, e.user.ID).Scan(&n)
		return n == 1
	})
}
