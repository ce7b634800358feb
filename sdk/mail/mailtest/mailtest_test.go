package mailtest

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"
)

// client is a raw SMTP client: it sends lines and reads replies as text.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, s *Server) *client {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.expect("220")
	return c
}

// reply reads one (possibly multi-line) reply.
func (c *client) reply() string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading a reply: %v (so far %q)", err, lines)
		}
		lines = append(lines, strings.TrimRight(l, "\r\n"))
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

func (c *client) expect(prefix string) string {
	c.t.Helper()
	r := c.reply()
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("reply %q, want %s…", r, prefix)
	}
	return r
}

func (c *client) send(raw string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(raw)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) cmd(line, wantPrefix string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(wantPrefix)
}

func (c *client) startTLS(s *Server) {
	c.t.Helper()
	c.cmd("STARTTLS", "220")
	tc := tls.Client(c.conn, &tls.Config{RootCAs: s.RootCAs(), ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

func TestSession(t *testing.T) {
	s := Start(t, Options{Username: "u", Password: "p"})
	c := dial(t, s)
	c.cmd("MAIL FROM:<a@example.com>", "503") // EHLO first
	ehlo := c.cmd("EHLO client.example.com", "250")
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Fatalf("EHLO before TLS: %q", ehlo)
	}
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00u\x00p")), "538")
	c.startTLS(s)
	c.cmd("MAIL FROM:<a@example.com>", "503") // EHLO again after STARTTLS
	ehlo = c.cmd("EHLO client.example.com", "250")
	if strings.Contains(ehlo, "STARTTLS") || !strings.Contains(ehlo, "AUTH PLAIN") {
		t.Fatalf("EHLO after TLS: %q", ehlo)
	}
	c.cmd("MAIL FROM:<a@example.com>", "530") // login first
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00u\x00wrong")), "535")
	c.cmd("AUTH PLAIN", "334")
	c.cmd(base64.StdEncoding.EncodeToString([]byte("\x00u\x00p")), "235")
	c.cmd("RCPT TO:<b@example.com>", "503") // MAIL first
	c.cmd("MAIL FROM:<a@example.com> BODY=8BITMIME", "250")
	c.cmd("RSET", "250")
	c.cmd("DATA", "503")
	c.cmd("MAIL FROM:<a@example.com>", "250")
	c.cmd("RCPT TO:<b@example.com>", "250")
	c.cmd("RCPT TO:<c@example.com>", "250")
	c.cmd("NOOP", "250")
	c.cmd("DATA", "354")
	c.send("Subject: hi\r\n\r\n..leading dot\r\n.\r\n")
	c.expect("250")
	c.cmd("FOO", "502")
	c.cmd("QUIT", "221")

	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.From != "a@example.com" || strings.Join(m.To, ",") != "b@example.com,c@example.com" ||
		!m.TLS || m.AuthUser != "u" || m.Helo != "client.example.com" {
		t.Fatalf("message %+v", m)
	}
	if got := string(m.Data); got != "Subject: hi\r\n\r\n.leading dot\r\n" {
		t.Fatalf("data %q", got)
	}
	if s.Connections() != 1 {
		t.Fatalf("%d connections", s.Connections())
	}
}

func TestDataChecks(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string // "" means accepted
	}{
		{"clean", "a\r\nb\r\n", ""},
		{"bare LF", "a\nb\r\n", "554 message refused: a line ends with a bare LF, not CRLF"},
		{"bare CR", "a\rb\r\n", "554 message refused: a line holds a bare CR"},
		{"1000 bytes", strings.Repeat("x", 998) + "\r\n", ""},
		{"1001 bytes", strings.Repeat("x", 999) + "\r\n", "554 message refused: a line is longer than 1000 bytes"},
		{"very long", strings.Repeat("x", 10000) + "\r\n", "554 message refused: a line is longer than 1000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, Options{NoStartTLS: true})
			c := dial(t, s)
			c.cmd("EHLO x", "250")
			c.cmd("MAIL FROM:<a@example.com>", "250")
			c.cmd("RCPT TO:<b@example.com>", "250")
			c.cmd("DATA", "354")
			c.send(tt.data + ".\r\n")
			r := c.reply()
			if tt.want == "" {
				if !strings.HasPrefix(r, "250") || len(s.Messages()) != 1 {
					t.Fatalf("reply %q, %d messages", r, len(s.Messages()))
				}
				return
			}
			if r != tt.want || len(s.Messages()) != 0 {
				t.Fatalf("reply %q, want %q; %d messages", r, tt.want, len(s.Messages()))
			}
			// The session goes on.
			c.cmd("NOOP", "250")
		})
	}
}

func TestFailAndHang(t *testing.T) {
	s := Start(t, Options{NoStartTLS: true, Fail: map[Stage]Reply{Rcpt: {Code: 550, Text: "no such user"}}})
	c := dial(t, s)
	ehlo := c.cmd("EHLO x", "250")
	if strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("NoStartTLS, but EHLO says %q", ehlo)
	}
	c.cmd("STARTTLS", "502")
	c.cmd("MAIL FROM:<a@example.com>", "250")
	if r := c.cmd("RCPT TO:<b@example.com>", "550"); r != "550 no such user" {
		t.Fatalf("reply %q", r)
	}
	s.SetFail(Rcpt, Reply{})
	c.cmd("RCPT TO:<b@example.com>", "250")
	s.SetFail(Data, Reply{Code: 451})
	c.cmd("DATA", "451 mailtest refuses DATA")

	h := Start(t, Options{Hang: Hello})
	hc := dial(t, h)
	hc.send("EHLO x\r\n")
	hc.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := hc.r.ReadString('\n'); err == nil {
		t.Fatal("the server answered a stage it should hang at")
	}
}

func TestImplicitTLS(t *testing.T) {
	s := Start(t, Options{ImplicitTLS: true})
	conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: s.RootCAs(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.expect("220")
	if ehlo := c.cmd("EHLO x", "250"); strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("STARTTLS offered over implicit TLS: %q", ehlo)
	}
	if !strings.Contains(string(s.CertPEM()), "BEGIN CERTIFICATE") {
		t.Fatal("CertPEM is not PEM")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name             string
		data             string
		subject, text, h string
	}{
		{"single", "Subject: =?utf-8?b?R3LDvMOfZQ==?=\r\nContent-Type: text/plain; charset=utf-8\r\n" +
			"Content-Transfer-Encoding: quoted-printable\r\n\r\nsoft=\r\nwrap =C3=BC\r\n", "Grüße", "softwrap ü", ""},
		{"alternative", "Subject: s\r\nContent-Type: multipart/alternative; boundary=\"XX\"\r\n\r\n--XX\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nt=3D1\r\n" +
			"--XX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>h</p>\r\n--XX--\r\n", "s", "t=1", "<p>h</p>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Message{Data: []byte(tt.data)}.Parse()
			if err != nil {
				t.Fatal(err)
			}
			if p.Subject != tt.subject || p.Text != tt.text || p.HTML != tt.h {
				t.Fatalf("got %q / %q / %q", p.Subject, p.Text, p.HTML)
			}
		})
	}
	if _, err := (Message{Data: []byte("Content-Type: image/png\r\n\r\nx")}).Parse(); err == nil {
		t.Fatal("an image/png message parsed")
	}
}
