package mail

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/mail/mailtest"
	"github.com/wisehosting/wisehosting/sdk/netguard"
)

const (
	testUser = "mailer@example.com"
	testPass = "s3cret-hunter2-password"
)

func testMessage() Message {
	return Message{
		From:    "WiseHosting <noreply@example.com>",
		To:      []string{"ops@example.com", "Jane <jane@example.org>"},
		Subject: "Test ✓",
		Text:    "hello\n.dot line\n..two dots\n" + strings.Repeat("long line ", 200),
		HTML:    "<p>hello</p>",
	}
}

// serverFor returns Server settings for srv: loopback allowed, its
// certificate trusted, a short timeout.
func serverFor(srv *mailtest.Server) Server {
	return Server{Host: srv.Host(), Port: srv.Port(), RootCAs: srv.RootCAs(), AllowPrivate: true, Timeout: 5 * time.Second}
}

func TestSend(t *testing.T) {
	tests := []struct {
		name     string
		opts     mailtest.Options
		change   func(s *Server)
		wantTLS  bool
		wantUser string
	}{
		{name: "starttls", wantTLS: true},
		{name: "starttls with auth", opts: mailtest.Options{Username: testUser, Password: testPass},
			change: func(s *Server) { s.Username, s.Password = testUser, testPass }, wantTLS: true, wantUser: testUser},
		{name: "implicit tls with auth", opts: mailtest.Options{ImplicitTLS: true, Username: testUser, Password: testPass},
			change: func(s *Server) { s.Security, s.Username, s.Password = ImplicitTLS, testUser, testPass }, wantTLS: true, wantUser: testUser},
		{name: "plain, chosen explicitly", opts: mailtest.Options{NoStartTLS: true},
			change: func(s *Server) { s.Security = Plain }},
		{name: "plain ignores an offered STARTTLS", change: func(s *Server) { s.Security = Plain }},
		{name: "plain with auth to loopback", opts: mailtest.Options{NoStartTLS: true, Username: testUser, Password: testPass, AuthWithoutTLS: true},
			change: func(s *Server) { s.Security, s.Username, s.Password = Plain, testUser, testPass }, wantUser: testUser},
		{name: "server name", change: func(s *Server) { s.ServerName = "localhost" }, wantTLS: true},
		{name: "local name", change: func(s *Server) { s.LocalName = "mx.example.com" }, wantTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.Start(t, tt.opts)
			s := serverFor(srv)
			if tt.change != nil {
				tt.change(&s)
			}
			m := testMessage()
			if err := Send(context.Background(), s, m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := srv.Messages()
			if len(got) != 1 {
				t.Fatalf("%d messages received", len(got))
			}
			r := got[0]
			if r.From != "noreply@example.com" || strings.Join(r.To, ",") != "ops@example.com,jane@example.org" {
				t.Errorf("envelope %s -> %v", r.From, r.To)
			}
			if r.TLS != tt.wantTLS || r.AuthUser != tt.wantUser {
				t.Errorf("TLS %v, user %q; want %v, %q", r.TLS, r.AuthUser, tt.wantTLS, tt.wantUser)
			}
			wantHelo := s.LocalName
			if wantHelo == "" {
				wantHelo = "localhost"
			}
			if r.Helo != wantHelo {
				t.Errorf("EHLO %q, want %q", r.Helo, wantHelo)
			}
			checkFraming(t, r.Data)
			p, err := r.Parse()
			if err != nil {
				t.Fatal(err)
			}
			// Dot-stuffing and unstuffing round-trip the lines starting
			// with dots; the long line came through soft-wrapped.
			if want := strings.ReplaceAll(m.Text, "\n", "\r\n"); p.Text != want {
				t.Errorf("text %q, want %q", p.Text, want)
			}
			if p.Subject != m.Subject || p.HTML != m.HTML {
				t.Errorf("subject %q, html %q", p.Subject, p.HTML)
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	tests := []struct {
		name      string
		opts      mailtest.Options
		change    func(s *Server)
		stage     Stage
		code      int
		temporary bool
		want      string // part of the message
		delivered bool   // whether the server may have got MAIL FROM
	}{
		{name: "no STARTTLS offered", opts: mailtest.Options{NoStartTLS: true},
			stage: StageStartTLS, want: "does not offer STARTTLS"},
		{name: "greeting 421", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Greeting: {Code: 421, Text: "busy"}}},
			stage: StageGreeting, code: 421, temporary: true, want: `answered 421 "busy"`},
		{name: "greeting 554", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Greeting: {Code: 554, Text: "go away"}}},
			stage: StageGreeting, code: 554, want: "554"},
		{name: "EHLO 550", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Hello: {Code: 550}}},
			stage: StageHello, code: 550, want: "550"}, // EHLO and the HELO fallback refused
		{name: "STARTTLS 454", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.StartTLS: {Code: 454, Text: "TLS not available now"}}},
			stage: StageStartTLS, code: 454, temporary: true, want: "454"},
		{name: "auth refused", opts: mailtest.Options{Username: testUser, Password: "other-password"},
			change: func(s *Server) { s.Username, s.Password = testUser, testPass },
			stage:  StageAuth, code: 535, want: "check the username and password"},
		{name: "auth 454", opts: mailtest.Options{Username: testUser, Password: testPass, Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Auth: {Code: 454}}},
			change: func(s *Server) { s.Username, s.Password = testUser, testPass },
			stage:  StageAuth, code: 454, temporary: true},
		{name: "no AUTH offered", change: func(s *Server) { s.Username, s.Password = testUser, testPass },
			stage: StageAuth, want: "does not offer AUTH PLAIN"},
		{name: "MAIL 451", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Mail: {Code: 451, Text: "try later"}}},
			stage: StageMail, code: 451, temporary: true, want: "try later"},
		{name: "MAIL 553", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Mail: {Code: 553}}},
			stage: StageMail, code: 553},
		{name: "RCPT 550", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Rcpt: {Code: 550, Text: "no such user"}}},
			stage: StageRcpt, code: 550, want: `<ops@example.com>: the server answered 550 "no such user"`},
		{name: "RCPT 452", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Rcpt: {Code: 452}}},
			stage: StageRcpt, code: 452, temporary: true},
		{name: "DATA 554", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Data: {Code: 554}}},
			stage: StageData, code: 554},
		{name: "after DATA 451", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.DataEnd: {Code: 451, Text: "local error"}}},
			stage: StageData, code: 451, temporary: true, want: "local error"},
		{name: "after DATA 552", opts: mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.DataEnd: {Code: 552}}},
			stage: StageData, code: 552},
		{name: "untrusted certificate", change: func(s *Server) { s.RootCAs = x509.NewCertPool() },
			stage: StageStartTLS, want: "certificate did not verify"},
		{name: "wrong server name", change: func(s *Server) { s.ServerName = "mail.example.com" },
			stage: StageStartTLS, want: "certificate did not verify"},
		{name: "implicit TLS, untrusted", opts: mailtest.Options{ImplicitTLS: true},
			change: func(s *Server) { s.Security, s.RootCAs = ImplicitTLS, x509.NewCertPool() },
			stage:  StageTLS, want: "certificate did not verify"},
		{name: "implicit TLS to a STARTTLS port",
			change: func(s *Server) { s.Security = ImplicitTLS },
			stage:  StageTLS, want: "did not answer with TLS"},
		{name: "hang at greeting", opts: mailtest.Options{Hang: mailtest.Greeting},
			change: func(s *Server) { s.Timeout = 300 * time.Millisecond },
			stage:  StageGreeting, temporary: true, want: "no answer in time (the time limit is 300ms)"},
		{name: "hang after DATA", opts: mailtest.Options{Hang: mailtest.DataEnd},
			change: func(s *Server) { s.Timeout = 300 * time.Millisecond },
			stage:  StageData, temporary: true, want: "no answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.Start(t, tt.opts)
			s := serverFor(srv)
			if tt.change != nil {
				tt.change(&s)
			}
			err := Send(context.Background(), s, testMessage())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Send = %v, want an *Error", err)
			}
			if e.Stage != tt.stage || e.Code != tt.code || e.Temporary != tt.temporary || IsTemporary(err) != tt.temporary {
				t.Errorf("stage %q code %d temporary %v; want %q %d %v (%v)", e.Stage, e.Code, e.Temporary, tt.stage, tt.code, tt.temporary, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testPass) {
				t.Errorf("the error shows the password: %v", err)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages accepted", n)
			}
		})
	}
}

// After a temporary failure the same send succeeds once the server is
// well again.
func TestSendRetryAfterTemporary(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Fail: map[mailtest.Stage]mailtest.Reply{mailtest.Rcpt: {Code: 450}}})
	s := serverFor(srv)
	if err := Send(context.Background(), s, testMessage()); !IsTemporary(err) {
		t.Fatalf("first Send = %v, want a temporary error", err)
	}
	srv.SetFail(mailtest.Rcpt, mailtest.Reply{})
	if err := Send(context.Background(), s, testMessage()); err != nil {
		t.Fatalf("second Send: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages", n)
	}
}

func TestSendGuard(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	// A literal loopback host is refused before connecting.
	s := serverFor(srv)
	s.AllowPrivate = false
	err := Send(context.Background(), s, testMessage())
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageServer || e.Temporary || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("Send to 127.0.0.1 = %v", err)
	}
	// A name resolving to loopback is refused when connecting.
	s.Host = "localhost"
	err = Send(context.Background(), s, testMessage())
	var blocked *netguard.BlockedError
	if !errors.As(err, &e) || e.Stage != StageConnect || e.Temporary || !errors.As(err, &blocked) {
		t.Fatalf("Send to localhost = %v", err)
	}
	if srv.Connections() != 0 {
		t.Fatalf("the server saw %d connections", srv.Connections())
	}
}

func TestSendConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	err = Send(context.Background(), Server{Host: "127.0.0.1", Port: port, AllowPrivate: true}, testMessage())
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageConnect || !e.Temporary {
		t.Fatalf("Send to a closed port = %v", err)
	}
}

func TestSendContext(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Hang: mailtest.Mail})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	err := Send(ctx, serverFor(srv), testMessage())
	if !IsTemporary(err) || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("Send = %v, want temporary, cancelled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Send took %v after the cancel", d)
	}

	// A context deadline sooner than the timeout wins.
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := Send(ctx, serverFor(srv), testMessage()); !IsTemporary(err) || !strings.Contains(err.Error(), "no answer in time") {
		t.Fatalf("Send = %v", err)
	}
}

func TestSendRefusesBadInput(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	m := testMessage()
	m.To = []string{"ops@example.com\r\nRCPT TO:<victim@example.com>"}
	err := Send(context.Background(), serverFor(srv), m)
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageMessage || e.Temporary {
		t.Fatalf("Send = %v", err)
	}
	if srv.Connections() != 0 {
		t.Fatal("Send connected with a bad message")
	}
}

func TestServerValidate(t *testing.T) {
	tests := []struct {
		name string
		s    Server
		want string // "" means valid
	}{
		{"name", Server{Host: "smtp.example.com"}, ""},
		{"single label", Server{Host: "mail"}, ""},
		{"public IP", Server{Host: "203.0.113.7", Port: 25}, ""},
		{"loopback allowed", Server{Host: "127.0.0.1", AllowPrivate: true}, ""},
		{"with auth", Server{Host: "smtp.example.com", Username: "u", Password: "p"}, ""},
		{"plain auth to loopback", Server{Host: "localhost", Security: Plain, Username: "u", Password: "p", AllowPrivate: true}, ""},
		{"empty host", Server{}, "host: it is empty"},
		{"host with port", Server{Host: "smtp.example.com:25"}, "not a host name"},
		{"host URL", Server{Host: "smtp://smtp.example.com"}, "not a host name"},
		{"host CRLF", Server{Host: "smtp.example.com\r\nMAIL"}, "not a host name"},
		{"bracketed IPv6", Server{Host: "[::1]"}, "without brackets"},
		{"private IP", Server{Host: "10.0.0.5"}, "a private address; allow private addresses"},
		{"metadata IP", Server{Host: "169.254.169.254"}, "link-local"},
		{"bad port", Server{Host: "smtp.example.com", Port: 70000}, "outside 1..65535"},
		{"bad security", Server{Host: "smtp.example.com", Security: 7}, "unknown security"},
		{"password alone", Server{Host: "smtp.example.com", Password: testPass}, "password without a username"},
		{"username alone", Server{Host: "smtp.example.com", Username: "u"}, "username without a password"},
		{"password NUL", Server{Host: "smtp.example.com", Username: "u", Password: "a\x00b"}, "the password holds"},
		{"username CRLF", Server{Host: "smtp.example.com", Username: "u\r\n", Password: "p"}, "the username holds"},
		{"clear-text credentials", Server{Host: "smtp.example.com", Security: Plain, Username: "u", Password: testPass}, "clear text"},
		{"bad local name", Server{Host: "smtp.example.com", LocalName: "a b"}, "local name"},
		{"bad server name", Server{Host: "smtp.example.com", ServerName: "a/b"}, "server name"},
		{"negative timeout", Server{Host: "smtp.example.com", Timeout: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testPass) {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func TestServerPort(t *testing.T) {
	tests := []struct {
		s    Server
		want int
	}{
		{Server{Host: "h"}, SubmissionPort},
		{Server{Host: "h", Security: ImplicitTLS}, SubmissionsPort},
		{Server{Host: "h", Security: Plain}, SubmissionPort},
		{Server{Host: "h", Port: 2525, Security: ImplicitTLS}, 2525},
	}
	for _, tt := range tests {
		if got := tt.s.Address(); got != "h:"+strconv.Itoa(tt.want) {
			t.Errorf("%+v: Address() = %q", tt.s, got)
		}
	}
	if got := (&Server{Host: "::1", Port: 25}).Address(); got != "[::1]:25" {
		t.Errorf("Address() = %q", got)
	}
	for _, s := range []Security{StartTLS, ImplicitTLS, Plain, 9} {
		if s.String() == "" {
			t.Errorf("Security(%d) has no name", int(s))
		}
	}
}
