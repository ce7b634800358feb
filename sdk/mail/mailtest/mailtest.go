// Package mailtest is a tiny SMTP server on 127.0.0.1 for tests of code that
// sends mail: EHLO/HELO, STARTTLS with a self-signed certificate made at
// start (RootCAs and CertPEM let a client trust it), AUTH PLAIN, MAIL, RCPT,
// DATA with dot-unstuffing, RSET, NOOP and QUIT. It records every message
// it accepts, and can be told to answer a stage with a given reply, to
// never answer it (for timeouts), not to offer STARTTLS, or to speak
// implicit TLS.
//
// It is strict where a sloppy client would get away with it on a real
// server: a message line must end with CRLF and hold no bare CR or LF, and
// may be at most 1000 bytes long, CRLF included (RFC 5321); a message
// breaking either rule is refused with 554.
//
//	srv := mailtest.Start(t, mailtest.Options{Username: "u", Password: "p"})
//	err := mail.Send(ctx, mail.Server{Host: "127.0.0.1", Port: srv.Port(), RootCAs: srv.RootCAs(),
//		AllowPrivate: true, Username: "u", Password: "p"}, msg)
//	got := srv.Messages()
package mailtest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"
)

// Stage is a point of the exchange where the server can be told to answer
// differently.
type Stage string

// Stages.
const (
	// Greeting is the 220 greeting on connection.
	Greeting Stage = "greeting"
	// Hello is the reply to EHLO or HELO.
	Hello Stage = "EHLO"
	// StartTLS is the reply to STARTTLS.
	StartTLS Stage = "STARTTLS"
	// Auth is the reply to AUTH PLAIN.
	Auth Stage = "AUTH"
	// Mail is the reply to MAIL FROM.
	Mail Stage = "MAIL"
	// Rcpt is the reply to RCPT TO.
	Rcpt Stage = "RCPT"
	// Data is the reply to the DATA command.
	Data Stage = "DATA"
	// DataEnd is the reply after the message's final dot.
	DataEnd Stage = "DATA-END"
)

// Reply is an SMTP reply.
type Reply struct {
	// Code is the reply code, e.g. 451 or 550.
	Code int
	// Text is the reply's text; "" means a generic one.
	Text string
}

// Options configures a Server.
type Options struct {
	// NoStartTLS stops the server offering (and accepting) STARTTLS.
	NoStartTLS bool
	// ImplicitTLS makes the server speak TLS from the first byte (smtps);
	// it does not offer STARTTLS then.
	ImplicitTLS bool
	// Username and Password, when Username is set, are the only
	// credentials AUTH PLAIN accepts, and logging in is required before
	// MAIL. AUTH is offered over TLS only, unless AuthWithoutTLS.
	Username, Password string
	// AuthWithoutTLS offers and accepts AUTH PLAIN on a clear-text
	// connection too.
	AuthWithoutTLS bool
	// Fail answers these stages with the given reply (instead of going on).
	Fail map[Stage]Reply
	// Hang makes the server never answer at this stage ("" is none): the
	// client waits until its time limit.
	Hang Stage
}

// Message is a message the server accepted.
type Message struct {
	// From is the MAIL FROM address, To the RCPT TO addresses.
	From string
	To   []string
	// Data is the message as received, dot-unstuffed, CRLF line endings,
	// without the final dot line.
	Data []byte
	// TLS reports whether the connection was encrypted.
	TLS bool
	// AuthUser is the user name logged in with, "" when none.
	AuthUser string
	// Helo is the name the client gave with EHLO or HELO.
	Helo string
}

// Server is a running test SMTP server. Create it with Start or New.
type Server struct {
	ln      net.Listener
	tlsConf *tls.Config
	certPEM []byte
	pool    *x509.CertPool

	mu       sync.Mutex
	opts     Options
	messages []Message
	conns    int
	open     map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// Start starts a server (see New) and closes it when the test ends; a
// failure to start fails the test.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// New starts a server on 127.0.0.1 on a free port. Close it when done.
func New(opts Options) (*Server, error) {
	cert, certPEM, err := selfSigned()
	if err != nil {
		return nil, fmt.Errorf("making the certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	s := &Server{
		ln:      ln,
		tlsConf: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		certPEM: certPEM,
		pool:    pool,
		opts:    cloneOptions(opts),
		open:    map[net.Conn]struct{}{},
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func cloneOptions(o Options) Options {
	fail := make(map[Stage]Reply, len(o.Fail))
	for k, v := range o.Fail {
		fail[k] = v
	}
	o.Fail = fail
	return o
}

// selfSigned makes a certificate for 127.0.0.1, ::1 and localhost, valid
// for a day, that is its own CA.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, certPEM, nil
}

// Addr returns the server's address, 127.0.0.1:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Host returns "127.0.0.1".
func (s *Server) Host() string { return "127.0.0.1" }

// Port returns the server's port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// CertPEM returns the server's certificate, PEM-encoded (for a CA file).
func (s *Server) CertPEM() []byte { return bytes.Clone(s.certPEM) }

// RootCAs returns a pool holding the server's certificate.
func (s *Server) RootCAs() *x509.CertPool { return s.pool }

// Messages returns the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	copy(out, s.messages)
	return out
}

// Connections returns how many connections the server accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// SetFail makes the server answer stage with r from now on; a zero Reply
// (Code 0) removes the failure.
func (s *Server) SetFail(stage Stage, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Code == 0 {
		delete(s.opts.Fail, stage)
		return
	}
	s.opts.Fail[stage] = r
}

// Close stops the server, ends every connection and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.ln.Close()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns++
		s.open[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.open, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serve(c)
		}()
	}
}

// fail returns the reply the server was told to give at stage, if any.
func (s *Server) fail(stage Stage) (Reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.opts.Fail[stage]
	return r, ok
}

func (s *Server) hangs(stage Stage) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.Hang == stage
}

// limits of the server.
const (
	maxLine    = 4096     // a command line
	maxData    = 10 << 20 // a message
	maxDataLen = 1000     // a message line, CRLF included
	idle       = 30 * time.Second
)

// session is one connection's state.
type session struct {
	s    *Server
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	tls  bool
	helo string
	user string
	from *string
	to   []string
}

func (s *Server) serve(c net.Conn) {
	ss := &session{s: s, conn: c}
	if s.opts.ImplicitTLS {
		tc := tls.Server(c, s.tlsConf)
		c.SetDeadline(time.Now().Add(idle))
		if err := tc.Handshake(); err != nil {
			return
		}
		ss.conn, ss.tls = tc, true
	}
	ss.r, ss.w = bufio.NewReader(ss.conn), bufio.NewWriter(ss.conn)
	if !ss.reply(Greeting, 220, "mailtest ESMTP ready") {
		return
	}
	for {
		ss.conn.SetDeadline(time.Now().Add(idle))
		line, err := ss.readLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			if !ss.hello(strings.ToUpper(verb) == "EHLO", arg) {
				return
			}
		case "STARTTLS":
			if !ss.startTLS() {
				return
			}
		case "AUTH":
			if !ss.auth(arg) {
				return
			}
		case "MAIL":
			if !ss.mail(arg) {
				return
			}
		case "RCPT":
			if !ss.rcpt(arg) {
				return
			}
		case "DATA":
			if !ss.data() {
				return
			}
		case "RSET":
			ss.from, ss.to = nil, nil
			if !ss.write(250, "OK") {
				return
			}
		case "NOOP":
			if !ss.write(250, "OK") {
				return
			}
		case "QUIT":
			ss.write(221, "bye")
			return
		default:
			if !ss.write(502, "command not implemented") {
				return
			}
		}
	}
}

// readLine reads a command line without its CRLF.
func (ss *session) readLine() (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := ss.r.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > maxLine {
			return "", errors.New("line too long")
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

// write sends a one-line reply; false when the connection is gone.
func (ss *session) write(code int, text string) bool {
	fmt.Fprintf(ss.w, "%d %s\r\n", code, text)
	return ss.w.Flush() == nil
}

// reply sends the reply configured for stage, or code and text; it never
// returns while the server hangs at stage. It returns false when the
// connection must end: it is gone, or the reply is 421 (closing).
func (ss *session) reply(stage Stage, code int, text string) bool {
	if ss.s.hangs(stage) {
		io.Copy(io.Discard, ss.conn) // until the client or Close ends it
		return false
	}
	if r, ok := ss.s.fail(stage); ok {
		t := r.Text
		if t == "" {
			t = fmt.Sprintf("mailtest refuses %s", stage)
		}
		return ss.write(r.Code, t) && r.Code != 421
	}
	return ss.write(code, text)
}

// failed reports whether the server was told to refuse stage.
func (ss *session) failed(stage Stage) bool {
	_, ok := ss.s.fail(stage)
	return ok || ss.s.hangs(stage)
}

func (ss *session) hello(extended bool, name string) bool {
	if ss.failed(Hello) {
		return ss.reply(Hello, 0, "")
	}
	ss.helo, ss.from, ss.to = strings.TrimSpace(name), nil, nil
	if !extended {
		return ss.write(250, "mailtest")
	}
	lines := []string{"mailtest greets " + ss.helo, "SIZE 10485760"}
	if !ss.tls && !ss.s.opts.NoStartTLS {
		lines = append(lines, "STARTTLS")
	}
	if ss.s.opts.Username != "" && (ss.tls || ss.s.opts.AuthWithoutTLS) {
		lines = append(lines, "AUTH PLAIN")
	}
	lines = append(lines, "HELP")
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		fmt.Fprintf(ss.w, "250%s%s\r\n", sep, l)
	}
	return ss.w.Flush() == nil
}

func (ss *session) startTLS() bool {
	switch {
	case ss.tls || ss.s.opts.NoStartTLS:
		return ss.write(502, "STARTTLS not available")
	case ss.failed(StartTLS):
		return ss.reply(StartTLS, 0, "")
	}
	if !ss.write(220, "go ahead") {
		return false
	}
	tc := tls.Server(ss.conn, ss.s.tlsConf)
	if err := tc.Handshake(); err != nil {
		return false
	}
	ss.conn, ss.tls = tc, true
	ss.r, ss.w = bufio.NewReader(tc), bufio.NewWriter(tc)
	ss.helo, ss.user, ss.from, ss.to = "", "", nil, nil // RFC 3207: start over
	return true
}

func (ss *session) auth(arg string) bool {
	mech, initial, _ := strings.Cut(strings.TrimSpace(arg), " ")
	switch {
	case ss.helo == "":
		return ss.write(503, "EHLO first")
	case ss.s.opts.Username == "":
		return ss.write(502, "AUTH not available")
	case !ss.tls && !ss.s.opts.AuthWithoutTLS:
		return ss.write(538, "encryption required for AUTH")
	case ss.user != "":
		return ss.write(503, "already authenticated")
	case !strings.EqualFold(mech, "PLAIN"):
		return ss.write(504, "only PLAIN")
	}
	if initial == "" {
		if !ss.write(334, "") {
			return false
		}
		l, err := ss.readLine()
		if err != nil {
			return false
		}
		initial = l
	}
	if ss.failed(Auth) {
		return ss.reply(Auth, 0, "")
	}
	raw, err := base64.StdEncoding.DecodeString(initial)
	if err != nil {
		return ss.write(501, "bad base64")
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 || parts[1] != ss.s.opts.Username || parts[2] != ss.s.opts.Password {
		return ss.write(535, "authentication credentials invalid")
	}
	ss.user = parts[1]
	return ss.write(235, "authenticated")
}

// path returns the address in "FROM:<addr> params" / "TO:<addr>".
func path(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	if !strings.HasPrefix(rest, "<") {
		return "", false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	return rest[1:end], true
}

func (ss *session) mail(arg string) bool {
	switch {
	case ss.helo == "":
		return ss.write(503, "EHLO first")
	case ss.s.opts.Username != "" && ss.user == "":
		return ss.write(530, "authentication required")
	case ss.from != nil:
		return ss.write(503, "nested MAIL")
	}
	addr, ok := path(arg, "FROM:")
	if !ok {
		return ss.write(501, "syntax: MAIL FROM:<address>")
	}
	if ss.failed(Mail) {
		return ss.reply(Mail, 0, "")
	}
	ss.from, ss.to = &addr, nil
	return ss.write(250, "OK")
}

func (ss *session) rcpt(arg string) bool {
	if ss.from == nil {
		return ss.write(503, "MAIL first")
	}
	addr, ok := path(arg, "TO:")
	if !ok || addr == "" {
		return ss.write(501, "syntax: RCPT TO:<address>")
	}
	if ss.failed(Rcpt) {
		return ss.reply(Rcpt, 0, "")
	}
	ss.to = append(ss.to, addr)
	return ss.write(250, "OK")
}

func (ss *session) data() bool {
	if ss.from == nil || len(ss.to) == 0 {
		return ss.write(503, "MAIL and RCPT first")
	}
	if ss.failed(Data) {
		return ss.reply(Data, 0, "")
	}
	if !ss.write(354, "end with <CRLF>.<CRLF>") {
		return false
	}
	var (
		body    bytes.Buffer
		problem string
	)
	for {
		line, err := ss.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than the reader's buffer, so longer than maxDataLen.
			problem = "a line is longer than 1000 bytes"
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = ss.r.ReadSlice('\n')
			}
			if err != nil {
				return false
			}
			continue
		}
		if err != nil {
			return false
		}
		if string(line) == ".\r\n" {
			break
		}
		switch {
		case len(line) < 2 || line[len(line)-2] != '\r':
			problem = "a line ends with a bare LF, not CRLF"
		case bytes.IndexByte(line[:len(line)-2], '\r') >= 0:
			problem = "a line holds a bare CR"
		case len(line) > maxDataLen:
			problem = "a line is longer than 1000 bytes"
		}
		if line[0] == '.' {
			line = line[1:]
		}
		if body.Len()+len(line) > maxData {
			problem = "the message is too big"
			continue
		}
		body.Write(line)
	}
	from, to := *ss.from, ss.to
	ss.from, ss.to = nil, nil
	if problem != "" {
		return ss.write(554, "message refused: "+problem)
	}
	if ss.failed(DataEnd) {
		return ss.reply(DataEnd, 0, "")
	}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, Message{
		From: from, To: to, Data: body.Bytes(), TLS: ss.tls, AuthUser: ss.user, Helo: ss.helo,
	})
	ss.s.mu.Unlock()
	return ss.write(250, "OK: queued")
}

// Parsed is a received message taken apart.
type Parsed struct {
	// Header is the message's header.
	Header netmail.Header
	// Subject is the decoded Subject.
	Subject string
	// Text and HTML are the decoded text/plain and text/html bodies, line
	// endings as received (CRLF). A single-part body loses the CRLF that
	// ends it, as a part of a multipart body does.
	Text, HTML string
}

// Parse takes the message apart: header, decoded subject, and the decoded
// text/plain and text/html bodies, from a single-part message or a
// multipart/alternative one.
func (m Message) Parse() (*Parsed, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return nil, fmt.Errorf("mailtest: reading the message: %w", err)
	}
	p := &Parsed{Header: msg.Header}
	dec := &mime.WordDecoder{}
	if p.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return nil, fmt.Errorf("mailtest: decoding the subject: %w", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("mailtest: content type: %w", err)
	}
	if mt != "multipart/alternative" {
		// A part reader decodes quoted-printable: wrap the single part as
		// one, with its own header.
		head := "Content-Type: " + msg.Header.Get("Content-Type") + "\r\n" +
			"Content-Transfer-Encoding: " + msg.Header.Get("Content-Transfer-Encoding") + "\r\n"
		body, err := io.ReadAll(msg.Body)
		if err != nil {
			return nil, err
		}
		// The CRLF that ends the last line belongs to the delimiter, as it
		// does before a multipart boundary.
		body = bytes.TrimSuffix(body, []byte("\r\n"))
		wrapped := "--b\r\n" + head + "\r\n" + string(body) + "\r\n--b--\r\n"
		msg.Body, params = strings.NewReader(wrapped), map[string]string{"boundary": "b"}
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("mailtest: reading a part: %w", err)
		}
		pt, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			return nil, fmt.Errorf("mailtest: part content type: %w", err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			return nil, fmt.Errorf("mailtest: reading the %s part: %w", pt, err)
		}
		switch pt {
		case "text/plain":
			p.Text = string(b)
		case "text/html":
			p.HTML = string(b)
		default:
			return nil, fmt.Errorf("mailtest: unexpected part %s", pt)
		}
	}
	return p, nil
}
