// Package mail is the core's account mail: the alert sent when an account
// signs in from a device it never used, with a one-click link that revokes
// that session, and the signed tokens of those links.
//
// A Mailer is built from the `smtp` config block and an HMAC key. The key
// signs revoke tokens and nothing else: derive it from server.secret with
// secrets.DeriveKey(secret, secrets.PurposeRevokeToken, secrets.KeySize),
// so that rotating the server secret invalidates outstanding links. The
// revoke endpoint (GET /api/session/revoke-token?token=…) is
// unauthenticated: the token's signature is its only proof, which is why
// tokens expire after RevokeTokenTTL and VerifyRevokeToken compares in
// constant time.
//
// Mail goes through sdk/mail: STARTTLS required unless the block turns it
// off, implicit TLS on port 465, the server's certificate verified against
// the system's roots or smtp.ca_file. The SMTP host is the operator's own
// choice, so loopback and private relays are allowed (no address guard).
// Sending is synchronous; a caller that must not wait runs it in a
// goroutine with a context of its own.
package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/core/config"
	smail "github.com/wisehosting/wisehosting/sdk/mail"
)

// SendTimeout bounds the sending of one mail, connecting included.
const SendTimeout = 30 * time.Second

// RevokePath is the path, below the base URL, of the revoke endpoint.
const RevokePath = "/api/session/revoke-token"

// ErrDisabled is returned when mail is sent without an smtp block.
var ErrDisabled = errors.New("mail: no smtp block is configured, so no mail is sent")

// Mailer sends the core's account mail. Create it with New; it is safe for
// concurrent use.
type Mailer struct {
	server  smail.Server
	from    string
	secret  []byte
	enabled bool
	tmpl    *template.Template
	now     func() time.Time
}

// New returns the Mailer of the smtp block cfg (nil: no block, mail
// disabled, tokens still signed) with hmacSecret, at least MinSecretSize
// bytes, signing revoke tokens. It reads smtp.ca_file. Its errors never
// show the password or the secret.
func New(cfg *config.SMTP, hmacSecret []byte) (*Mailer, error) {
	if len(hmacSecret) < MinSecretSize {
		return nil, fmt.Errorf("mail: the revoke token secret is %d bytes, want at least %d", len(hmacSecret), MinSecretSize)
	}
	m := &Mailer{secret: bytes.Clone(hmacSecret), tmpl: newDeviceTemplate(), now: time.Now}
	if cfg == nil {
		return m, nil
	}
	srv := smail.Server{
		Host:         cfg.Host,
		Port:         cfg.Port,
		Username:     cfg.Username,
		Password:     cfg.Password.Value(),
		AllowPrivate: true, // the operator's own relay, not a user's target
		Timeout:      SendTimeout,
	}
	switch {
	case cfg.Port == config.SMTPSPort:
		srv.Security = smail.ImplicitTLS
	case cfg.StartTLS:
		srv.Security = smail.StartTLS
	default:
		srv.Security = smail.Plain
	}
	if cfg.CAFile != "" {
		pool, err := smail.LoadCertPool(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mail: smtp.ca_file: %w", err)
		}
		srv.RootCAs = pool
	}
	if err := srv.Validate(); err != nil {
		return nil, fmt.Errorf("mail: smtp: %w", err)
	}
	from, err := smail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: smtp.from: %w", err)
	}
	m.server, m.from, m.enabled = srv, from.String(), true
	return m, nil
}

// Enabled reports whether the Mailer sends mail: the config has an smtp
// block.
func (m *Mailer) Enabled() bool { return m != nil && m.enabled }

// NewDeviceInfo describes a sign-in from a device the account never used.
type NewDeviceInfo struct {
	// UserEmail is where the alert goes.
	UserEmail string
	// UserID and SessionID identify the new session, the one the link
	// revokes; both positive.
	UserID, SessionID int64
	// IP is the client's address; City and Country where it is, as far
	// as known ("" when not).
	IP, City, Country string
	// Device, Browser and OS describe the client, e.g. "Desktop",
	// "Firefox 128", "Linux".
	Device, Browser, OS string
	// Time is when the sign-in happened; zero means now.
	Time time.Time
}

// maxField bounds each value the alert quotes.
const maxField = 200

// SendNewDeviceAlert sends the new-device alert of info, with a "Revoke
// this session" link to baseURL + RevokePath + "?token=…" (baseURL is the
// dashboard's absolute http(s) URL, without query or fragment; a trailing
// slash is dropped). It returns when the server accepted the mail or
// refused it; sdk/mail's *Error (find it with errors.As) says whether
// trying again later may help. Without an smtp block it returns
// ErrDisabled.
func (m *Mailer) SendNewDeviceAlert(ctx context.Context, info NewDeviceInfo, baseURL string) error {
	if !m.Enabled() {
		return ErrDisabled
	}
	base, err := checkBaseURL(baseURL)
	if err != nil {
		return err
	}
	if info.UserID <= 0 || info.SessionID <= 0 {
		return fmt.Errorf("mail: new-device alert: user id %d and session id %d must be positive", info.UserID, info.SessionID)
	}
	if _, err := smail.ParseAddress(info.UserEmail); err != nil {
		return fmt.Errorf("mail: new-device alert: the user's address: %w", err)
	}
	now := m.now()
	at := info.Time
	if at.IsZero() {
		at = now
	}
	token := m.SignRevokeToken(info.UserID, info.SessionID, now)
	v := deviceView{
		Device:   field(info.Device),
		Browser:  field(info.Browser),
		OS:       field(info.OS),
		IP:       field(info.IP),
		Location: field(strings.Join(nonEmpty(oneLine(info.City), oneLine(info.Country)), ", ")),
		Time:     at.UTC().Format("Monday, 2 January 2006, 15:04 UTC"),
		Revoke:   base + RevokePath + "?" + url.Values{"token": {token}}.Encode(),
		Expires:  fmt.Sprintf("%d hours", int(RevokeTokenTTL.Hours())),
	}
	var html bytes.Buffer
	if err := m.tmpl.Execute(&html, &v); err != nil {
		return fmt.Errorf("mail: new-device alert: rendering: %w", err)
	}
	msg := smail.Message{
		From:    m.from,
		To:      []string{info.UserEmail},
		Subject: "New sign-in to your WiseHosting account",
		Text:    deviceText(&v),
		HTML:    html.String(),
		Date:    now,
		Headers: map[string]string{"Auto-Submitted": "auto-generated"},
	}
	if err := smail.Send(ctx, m.server, msg); err != nil {
		return fmt.Errorf("mail: new-device alert: %w", err)
	}
	return nil
}

// checkBaseURL checks the dashboard's base URL and returns it without a
// trailing slash.
func checkBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("mail: the base URL %q is not a URL", oneLine(raw))
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("mail: the base URL %q must be an http or https URL", oneLine(raw))
	case u.Host == "" || u.Opaque != "":
		return "", fmt.Errorf("mail: the base URL %q must be absolute: http(s)://host[/path]", oneLine(raw))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		return "", fmt.Errorf("mail: the base URL %q must not hold a user, a query or a fragment", oneLine(raw))
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// field returns a value for the alert: one line, at most maxField bytes,
// "Unknown" when empty.
func field(s string) string {
	s = oneLine(s)
	if len(s) > maxField {
		n := maxField
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	if s == "" {
		return "Unknown"
	}
	return s
}

// oneLine returns s with invalid UTF-8 replaced, control, line-separator
// and bidirectional-control characters turned to spaces, and runs of white
// space collapsed.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0, r == '\u2028' || r == '\u2029',
			r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069', r == '\u200e' || r == '\u200f':
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// deviceView is what the new-device templates render.
type deviceView struct {
	Device, Browser, OS, IP, Location, Time string
	// Revoke is the link that revokes the session.
	Revoke string
	// Expires says how long the link works.
	Expires string
}

// deviceText is the plain-text body of the new-device alert.
func deviceText(v *deviceView) string {
	var b strings.Builder
	b.WriteString("New sign-in to your WiseHosting account\n\n")
	b.WriteString("Your account was just signed in to from a device it has not used before.\n\n")
	for _, r := range [][2]string{
		{"Device", v.Device}, {"Browser", v.Browser}, {"System", v.OS},
		{"IP address", v.IP}, {"Location", v.Location}, {"Time", v.Time},
	} {
		fmt.Fprintf(&b, "%-11s %s\n", r[0]+":", r[1])
	}
	b.WriteString("\nIf this was you, there is nothing to do.\n\n")
	b.WriteString("If it was not you, revoke this session now (the link works for " + v.Expires + "),\n")
	b.WriteString("then change your password:\n\n")
	b.WriteString(v.Revoke + "\n")
	return b.String()
}

// newDeviceTemplate returns the template of the new-device alert's HTML
// body; html/template escapes every value for where it stands.
func newDeviceTemplate() *template.Template {
	return template.Must(template.New("new-device").Parse(newDeviceHTML))
}

// newDeviceHTML is the HTML body of the new-device alert, in the
// dashboard's dark theme, inline styles only (mail clients drop style
// sheets).
const newDeviceHTML = `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><meta name="color-scheme" content="dark"><title>New sign-in to your WiseHosting account</title></head>
<body style="margin:0;padding:32px 16px;background:#0b0f19;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#e5e7eb;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px;margin:0 auto;background:#111827;border:1px solid #1f2937;border-radius:12px;">
<tr><td style="padding:28px 32px 8px;">
<div style="font-size:13px;letter-spacing:0.08em;text-transform:uppercase;color:#818cf8;font-weight:600;">WiseHosting</div>
<h1 style="margin:12px 0 0;font-size:22px;font-weight:600;color:#f9fafb;">New sign-in to your account</h1>
<p style="margin:12px 0 0;font-size:15px;line-height:1.5;color:#9ca3af;">Your account was just signed in to from a device it has not used before.</p>
</td></tr>
<tr><td style="padding:16px 32px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="font-size:14px;border-collapse:collapse;background:#0f172a;border:1px solid #1f2937;border-radius:8px;">
<tr><td style="padding:10px 16px;color:#9ca3af;width:110px;">Device</td><td style="padding:10px 16px;color:#f3f4f6;">{{.Device}}</td></tr>
<tr><td style="padding:10px 16px;color:#9ca3af;border-top:1px solid #1f2937;">Browser</td><td style="padding:10px 16px;color:#f3f4f6;border-top:1px solid #1f2937;">{{.Browser}}</td></tr>
<tr><td style="padding:10px 16px;color:#9ca3af;border-top:1px solid #1f2937;">System</td><td style="padding:10px 16px;color:#f3f4f6;border-top:1px solid #1f2937;">{{.OS}}</td></tr>
<tr><td style="padding:10px 16px;color:#9ca3af;border-top:1px solid #1f2937;">IP address</td><td style="padding:10px 16px;color:#f3f4f6;border-top:1px solid #1f2937;font-family:SFMono-Regular,Consolas,Menlo,monospace;">{{.IP}}</td></tr>
<tr><td style="padding:10px 16px;color:#9ca3af;border-top:1px solid #1f2937;">Location</td><td style="padding:10px 16px;color:#f3f4f6;border-top:1px solid #1f2937;">{{.Location}}</td></tr>
<tr><td style="padding:10px 16px;color:#9ca3af;border-top:1px solid #1f2937;">Time</td><td style="padding:10px 16px;color:#f3f4f6;border-top:1px solid #1f2937;">{{.Time}}</td></tr>
</table>
</td></tr>
<tr><td style="padding:8px 32px 28px;">
<p style="margin:0 0 16px;font-size:14px;line-height:1.5;color:#9ca3af;">If this was you, there is nothing to do. If it was not, revoke this session now, then change your password.</p>
<a href="{{.Revoke}}" style="display:inline-block;padding:12px 20px;background:#dc2626;color:#ffffff;font-size:15px;font-weight:600;text-decoration:none;border-radius:8px;">Revoke this session</a>
<p style="margin:16px 0 0;font-size:12px;line-height:1.5;color:#6b7280;">The link works for {{.Expires}}. If the button does not work, open this address:<br><span style="word-break:break-all;color:#9ca3af;">{{.Revoke}}</span></p>
</td></tr>
</table>
</body>
</html>
`
