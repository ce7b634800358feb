// Package mail builds and sends e-mail over SMTP, for plugins and the core:
// a Message renders as a MIME message (multipart/alternative text and HTML,
// quoted-printable, RFC 2047 subjects, CRLF line endings, no header
// injection: every address and header value is checked), and Send delivers
// it to one SMTP server.
//
// Send never sends credentials or mail in clear text unless told to:
//
//   - STARTTLS (the default Security) is required: a server that does not
//     offer it is an error, not a reason to carry on without TLS;
//   - ImplicitTLS speaks TLS from the first byte (smtps, port 465);
//   - Plain sends in clear text, and is refused with credentials unless the
//     server is on loopback.
//
// The server's certificate is verified (RootCAs and ServerName can replace
// the system's roots and the host name). Unless AllowPrivate is set, Send
// refuses to connect to loopback, private, link-local and other non-public
// addresses (sdk/netguard), checked on every address the host name resolves
// to.
//
// A failure is an *Error that says at which stage the exchange stopped and
// whether trying again later may help (Temporary): 4xx replies, network
// errors and timeouts may; 5xx replies, a refused address, a failed
// certificate verification, a server without STARTTLS or AUTH PLAIN, and a
// message or server that does not pass the checks will not. Error messages
// never hold the password.
//
// One Send is one connection: EHLO, STARTTLS, AUTH PLAIN, MAIL FROM, one
// RCPT TO per recipient, DATA, QUIT. It is all or nothing: when the server
// refuses any recipient, no message is sent to any of them.
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/sdk/netguard"
	"github.com/wisehosting/wisehosting/sdk/outbound"
)

// Ports.
const (
	// SubmissionPort is the default port: message submission with
	// STARTTLS (RFC 6409).
	SubmissionPort = 587
	// SubmissionsPort is submission over implicit TLS (smtps, RFC 8314).
	SubmissionsPort = 465
)

// DefaultTimeout bounds one Send when Server.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// Security is how a connection is protected.
type Security int

// Securities. The zero value is StartTLS.
const (
	// StartTLS connects in clear text and upgrades with STARTTLS before
	// anything else; a server that does not offer it is an error.
	StartTLS Security = iota
	// ImplicitTLS speaks TLS from the first byte (smtps).
	ImplicitTLS
	// Plain never uses TLS: mail (and credentials, to loopback only) go in
	// clear text. Only for an operator who chose it explicitly.
	Plain
)

// String returns "starttls", "tls" or "plain".
func (s Security) String() string {
	switch s {
	case StartTLS:
		return "starttls"
	case ImplicitTLS:
		return "tls"
	case Plain:
		return "plain"
	}
	return "Security(" + strconv.Itoa(int(s)) + ")"
}

// Server is where and how Send delivers.
type Server struct {
	// Host is the server's host name or IP address (without brackets).
	// Required.
	Host string
	// Port is the server's port; 0 means SubmissionsPort with ImplicitTLS,
	// else SubmissionPort.
	Port int
	// Security is how the connection is protected; the zero value requires
	// STARTTLS.
	Security Security
	// Username and Password, when Username is set, log in with AUTH PLAIN
	// (over TLS, or to a loopback host).
	Username, Password string
	// LocalName is the name sent with EHLO; "" means "localhost".
	LocalName string
	// ServerName is the name the server's certificate is verified for; ""
	// means Host.
	ServerName string
	// RootCAs verify the server's certificate; nil means the system's.
	RootCAs *x509.CertPool
	// AllowPrivate lets Send connect to loopback, private, link-local and
	// other non-public addresses.
	AllowPrivate bool
	// Timeout bounds one Send, connecting included; 0 means DefaultTimeout.
	// A deadline of Send's context that comes sooner wins.
	Timeout time.Duration
}

// maxCredential bounds Username and Password.
const maxCredential = 512

// Validate checks the server's settings; Send calls it first. Its errors
// never show the password.
func (s *Server) Validate() error {
	if err := checkHost(s.Host); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	if addr, err := netip.ParseAddr(s.Host); err == nil && !s.AllowPrivate {
		if why := netguard.Reason(addr); why != "" {
			return fmt.Errorf("host: %s is %s; allow private addresses to send mail there", addr, why)
		}
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("port %d is outside 1..65535", s.Port)
	}
	switch s.Security {
	case StartTLS, ImplicitTLS, Plain:
	default:
		return fmt.Errorf("unknown security %d", int(s.Security))
	}
	switch {
	case s.Username == "" && s.Password != "":
		return errors.New("a password without a username: set the username too")
	case s.Username != "" && s.Password == "":
		return errors.New("a username without a password: set the password too")
	case len(s.Username) > maxCredential || len(s.Password) > maxCredential:
		return fmt.Errorf("the username or the password is longer than %d bytes", maxCredential)
	case strings.ContainsAny(s.Username, "\x00\r\n") || !utf8.ValidString(s.Username):
		return errors.New("the username holds a NUL, a line break or invalid UTF-8")
	case strings.ContainsAny(s.Password, "\x00\r\n") || !utf8.ValidString(s.Password):
		return errors.New("the password holds a NUL, a line break or invalid UTF-8")
	case s.Username != "" && s.Security == Plain && !isLoopbackHost(s.Host):
		return errors.New("a username and password without TLS would cross the network in clear text: use STARTTLS or implicit TLS, or a relay on loopback")
	}
	if s.LocalName != "" {
		if err := checkHost(s.LocalName); err != nil {
			return fmt.Errorf("local name: %w", err)
		}
	}
	if s.ServerName != "" {
		if err := checkHost(s.ServerName); err != nil {
			return fmt.Errorf("server name: %w", err)
		}
	}
	if s.Timeout < 0 {
		return fmt.Errorf("timeout %v is negative", s.Timeout)
	}
	return nil
}

// checkHost checks a host name or IP address (no brackets, no port).
func checkHost(h string) error {
	switch {
	case h == "":
		return errors.New("it is empty")
	case len(h) > 253:
		return errors.New("it is longer than 253 bytes")
	case strings.HasPrefix(h, "["):
		return fmt.Errorf("%q: write an IPv6 address without brackets", h)
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a host name: empty label or one longer than 63 bytes", h)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' && c != '_' {
				return fmt.Errorf("%q is not a host name or IP address (no scheme or port: those go elsewhere)", h)
			}
		}
	}
	return nil
}

// isLoopbackHost reports whether h is a loopback host, as net/smtp judges
// it for PLAIN authentication without TLS.
func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

func (s *Server) port() int {
	switch {
	case s.Port != 0:
		return s.Port
	case s.Security == ImplicitTLS:
		return SubmissionsPort
	}
	return SubmissionPort
}

// Address returns host:port.
func (s *Server) Address() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.port())) }

func (s *Server) tlsConfig() *tls.Config {
	name := s.ServerName
	if name == "" {
		name = s.Host
	}
	return &tls.Config{ServerName: name, RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}
}

// Stage is where in the exchange a Send failed.
type Stage string

// Stages.
const (
	StageServer   Stage = "server settings"
	StageMessage  Stage = "message"
	StageConnect  Stage = "connect"
	StageTLS      Stage = "TLS"
	StageGreeting Stage = "greeting"
	StageHello    Stage = "EHLO"
	StageStartTLS Stage = "STARTTLS"
	StageAuth     Stage = "AUTH"
	StageMail     Stage = "MAIL FROM"
	StageRcpt     Stage = "RCPT TO"
	StageData     Stage = "DATA"
)

// Error is the error of Send.
type Error struct {
	// Stage is where the exchange stopped.
	Stage Stage
	// Code is the server's reply code, 0 when the failure was no reply.
	Code int
	// Temporary reports whether sending again later may succeed: 4xx
	// replies, network errors, timeouts. Everything else needs a change
	// of settings, message or server first.
	Temporary bool
	// Err is the underlying error (find *netguard.BlockedError,
	// *textproto.Error, x509 errors with errors.As); nil when its text
	// would show the password.
	Err error
	msg string
}

// Error implements error.
func (e *Error) Error() string { return "mail: " + string(e.Stage) + ": " + e.msg }

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// IsTemporary reports whether err is an *Error (or wraps one) that is
// Temporary.
func IsTemporary(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Temporary
}

// maxQuote bounds how much of a server's reply an error quotes.
const maxQuote = 300

// Send delivers m through the server s (see the package documentation).
// It returns nil once the server accepted the message for every
// recipient, else an *Error.
func Send(ctx context.Context, s Server, m Message) error {
	if err := s.Validate(); err != nil {
		return &Error{Stage: StageServer, msg: err.Error()}
	}
	p, err := m.prepare(time.Now())
	if err != nil {
		return &Error{Stage: StageMessage, msg: err.Error()}
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	limit := timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		limit = time.Until(dl).Round(time.Millisecond) // the caller's deadline comes sooner
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	x := &exchange{srv: &s, ctx: ctx, timeout: limit}
	return x.run(p)
}

// exchange is one Send's connection.
type exchange struct {
	srv     *Server
	ctx     context.Context
	timeout time.Duration // the time limit, for messages
	stage   Stage
}

func (x *exchange) run(p *prepared) error {
	s := x.srv
	x.stage = StageConnect
	dialer := &net.Dialer{}
	if !s.AllowPrivate {
		dialer.Control = netguard.Control
	}
	conn, err := dialer.DialContext(x.ctx, "tcp", s.Address())
	if err != nil {
		return x.fail(err)
	}
	defer conn.Close()
	if dl, ok := x.ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// A cancelled context ends any read or write in progress.
	stop := context.AfterFunc(x.ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if s.Security == ImplicitTLS {
		x.stage = StageTLS
		tc := tls.Client(conn, s.tlsConfig())
		if err := tc.HandshakeContext(x.ctx); err != nil {
			return x.fail(err)
		}
		conn = tc
	}
	x.stage = StageGreeting
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		return x.fail(err)
	}
	defer c.Close()
	if err := x.talk(c, p); err != nil {
		if err.Code != 0 {
			// The server is still talking: say goodbye (best effort).
			_ = c.Quit()
		}
		return err
	}
	// The message is accepted: a failing QUIT changes nothing, and
	// reporting it would get the message sent twice.
	_ = c.Quit()
	return nil
}

// talk runs the SMTP exchange on a connected client, greeting read.
func (x *exchange) talk(c *smtp.Client, p *prepared) *Error {
	s := x.srv
	x.stage = StageHello
	localName := s.LocalName
	if localName == "" {
		localName = "localhost"
	}
	if err := c.Hello(localName); err != nil {
		return x.fail(err)
	}
	if s.Security == StartTLS {
		x.stage = StageStartTLS
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return &Error{Stage: x.stage, msg: "the server does not offer STARTTLS, so the mail would cross the network in clear text; " +
				"use a server that offers it, implicit TLS (port 465), or turn STARTTLS off if clear text is really acceptable"}
		}
		if err := c.StartTLS(s.tlsConfig()); err != nil {
			return x.fail(err)
		}
	}
	if s.Username != "" {
		x.stage = StageAuth
		ok, mechs := c.Extension("AUTH")
		if !ok || !hasMechanism(mechs, "PLAIN") {
			return &Error{Stage: x.stage, msg: fmt.Sprintf("the server does not offer AUTH PLAIN (it offers %q), the only login this sender speaks", quote(mechs))}
		}
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, s.Host)); err != nil {
			return x.fail(err)
		}
	}
	x.stage = StageMail
	if err := c.Mail(p.from); err != nil {
		return x.fail(err)
	}
	for _, to := range p.to {
		x.stage = StageRcpt
		if err := c.Rcpt(to); err != nil {
			e := x.fail(err)
			e.msg = "<" + to + ">: " + e.msg
			return e
		}
	}
	x.stage = StageData
	w, err := c.Data()
	if err != nil {
		return x.fail(err)
	}
	if _, err := w.Write(p.data); err != nil {
		return x.fail(err)
	}
	if err := w.Close(); err != nil {
		return x.fail(err)
	}
	return nil
}

// hasMechanism reports whether the AUTH extension's parameters list mech.
func hasMechanism(params, mech string) bool {
	for _, m := range strings.Fields(params) {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

// fail classifies err, which happened at x.stage.
func (x *exchange) fail(err error) *Error {
	e := &Error{Stage: x.stage, Err: err}
	var (
		reply     *textproto.Error
		blocked   *netguard.BlockedError
		verify    *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
		alert     tls.AlertError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &blocked):
		e.msg = blocked.Error() + " (point the host at a public address, or allow private addresses)"
	case errors.As(err, &reply):
		e.Code = reply.Code
		e.Temporary = reply.Code < 500 || reply.Code > 599
		e.msg = fmt.Sprintf("the server answered %d %q", reply.Code, quote(reply.Msg))
		if x.stage == StageAuth && reply.Code >= 500 {
			e.msg += " (check the username and password)"
		}
	case errors.As(err, &verify), errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid):
		e.msg = "the server's certificate did not verify: " + quote(err.Error())
	case errors.As(err, &record):
		e.msg = "the server did not answer with TLS (is this port for implicit TLS, or for STARTTLS?): " + quote(err.Error())
	case errors.As(err, &alert):
		e.msg = "the TLS handshake failed: " + quote(err.Error())
	case errors.Is(x.ctx.Err(), context.Canceled):
		e.Temporary = true
		e.msg = "cancelled"
	case x.ctx.Err() != nil, errors.As(err, &netErr) && netErr.Timeout():
		// The connection's deadline is the context's: its timeout may
		// come a moment before the context says so.
		e.Temporary = true
		e.msg = fmt.Sprintf("no answer in time (the time limit is %v)", x.timeout)
	case x.stage == StageAuth && !errors.As(err, &netErr) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
		// net/smtp's own refusals, e.g. "unencrypted connection".
		e.msg = quote(err.Error())
	default:
		// Network errors, a connection the server closed.
		e.Temporary = true
		e.msg = quote(err.Error())
	}
	if p := x.srv.Password; p != "" {
		plain := base64.StdEncoding.EncodeToString([]byte("\x00" + x.srv.Username + "\x00" + p))
		for _, secret := range []string{p, plain} {
			if strings.Contains(e.msg, secret) || strings.Contains(err.Error(), secret) {
				e.msg = strings.ReplaceAll(e.msg, secret, "[redacted]")
				e.Err = nil
			}
		}
	}
	return e
}

// quote returns s for a message: one line, at most maxQuote bytes (see
// outbound.Clean).
func quote(s string) string { return outbound.Clean(s, maxQuote) }
