// Package dnstest is a tiny authoritative DNS server on 127.0.0.1 for
// tests: it answers TXT questions from records the test sets, over UDP and
// TCP on one random port, NXDOMAIN for names it does not know, and the
// failures the test asks for. It never forwards anything.
//
// Over UDP an answer larger than the client's buffer (512 bytes, or what
// its EDNS0 OPT record offers) is truncated (TC bit set, no answers), so a
// client retries over TCP.
package dnstest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// TTL is the TTL of every answer, in seconds.
const TTL = 60

// Server is the DNS server. Create it with New or Start; it is safe for
// concurrent use.
type Server struct {
	udp *net.UDPConn
	tcp *net.TCPListener

	mu    sync.Mutex
	names map[string][]string // canonical name → TXT values (nil slice: the name exists without TXT)
	fail  map[string]dnsmessage.RCode
	drop  map[string]bool
	conns map[net.Conn]struct{}

	queries atomic.Int64
	closed  atomic.Bool
	wg      sync.WaitGroup
}

// New starts a server and closes it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Start starts a server on a random port of 127.0.0.1 (the same port for
// UDP and TCP). Close it when done.
func Start() (*Server, error) {
	s := &Server{names: map[string][]string{}, fail: map[string]dnsmessage.RCode{}, drop: map[string]bool{},
		conns: map[net.Conn]struct{}{}}
	var lastErr error
	for range 20 {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, fmt.Errorf("dnstest: listen udp: %w", err)
		}
		tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udp.LocalAddr().(*net.UDPAddr).Port})
		if err != nil {
			// The port is taken for TCP: try another.
			_ = udp.Close()
			lastErr = err
			continue
		}
		s.udp, s.tcp = udp, tcp
		s.wg.Add(2)
		go s.serveUDP()
		go s.serveTCP()
		return s, nil
	}
	return nil, fmt.Errorf("dnstest: no port free for both UDP and TCP: %w", lastErr)
}

// Addr is the server's host:port, for a resolver's address.
func (s *Server) Addr() string { return s.udp.LocalAddr().String() }

// canonical is name in lowercase with the root dot.
func canonical(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// Set makes name exist with the TXT records txt (replacing any); with none,
// the name exists without TXT records (an empty NOERROR answer). A value
// longer than 255 bytes is sent as several character-strings of one
// record. It clears Fail and Drop for name.
func (s *Server) Set(name string, txt ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := canonical(name)
	s.names[n] = append(make([]string, 0, len(txt)), txt...)
	delete(s.fail, n)
	delete(s.drop, n)
}

// Delete forgets name and any Fail or Drop of it: it is NXDOMAIN again.
func (s *Server) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := canonical(name)
	delete(s.names, n)
	delete(s.fail, n)
	delete(s.drop, n)
}

// Fail makes questions about name answer with rcode (e.g.
// dnsmessage.RCodeServerFailure) and no records, until Set or Delete.
func (s *Server) Fail(name string, rcode dnsmessage.RCode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[canonical(name)] = rcode
}

// Drop makes questions about name go unanswered (a timeout), until Set or
// Delete.
func (s *Server) Drop(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop[canonical(name)] = true
}

// Queries is how many well-formed questions the server received.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Close stops the server and waits for its goroutines.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := errors.Join(s.udp.Close(), s.tcp.Close())
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// maxUDP is the largest UDP answer the server sends, whatever the client
// offers.
const maxUDP = 4096

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.udp.ReadFromUDP(buf)
		if err != nil {
			if s.closed.Load() {
				return
			}
			continue
		}
		if out := s.respond(buf[:n], true); out != nil {
			_, _ = s.udp.WriteToUDP(out, from)
		}
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if s.closed.Load() {
				return
			}
			continue
		}
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn answers length-prefixed messages on one TCP connection until
// the client closes it, sends garbage or idles for 10 s.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	var lenBuf [2]byte
	for {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		out := s.respond(msg, false)
		if out == nil {
			continue
		}
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...)); err != nil {
			return
		}
	}
}

// respond returns the answer to the message req, or nil when there is
// none to send (not a question, unparseable, or a dropped name). Over UDP
// the answer fits the client's buffer.
func (s *Server) respond(req []byte, udp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil || h.Response {
		return nil
	}
	reply := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired}
	q, err := p.Question()
	if err != nil {
		reply.RCode = dnsmessage.RCodeFormatError
		return build(reply, nil, nil, false)
	}
	if _, err := p.Question(); !errors.Is(err, dnsmessage.ErrSectionDone) {
		// Zero or several questions, or a broken one after the first.
		reply.RCode = dnsmessage.RCodeFormatError
		return build(reply, nil, nil, false)
	}
	limit, edns := clientLimit(&p)
	if !udp {
		limit = 65535
	}
	if h.OpCode != 0 {
		reply.RCode = dnsmessage.RCodeNotImplemented
		return build(reply, &q, nil, edns)
	}
	s.queries.Add(1)
	name := canonical(q.Name.String())
	s.mu.Lock()
	txt, known := s.names[name]
	rcode, failing := s.fail[name]
	dropped := s.drop[name]
	s.mu.Unlock()
	var answer []string
	switch {
	case dropped:
		return nil
	case failing:
		reply.RCode = rcode
	case !known || q.Class != dnsmessage.ClassINET && q.Class != dnsmessage.ClassANY:
		reply.Authoritative = true
		reply.RCode = dnsmessage.RCodeNameError
	default:
		reply.Authoritative = true
		if q.Type == dnsmessage.TypeTXT || q.Type == dnsmessage.TypeALL {
			answer = txt
		}
	}
	out := build(reply, &q, answer, edns)
	if out == nil || len(out) > limit {
		reply.Truncated = true
		out = build(reply, &q, nil, edns)
	}
	return out
}

// clientLimit reads the EDNS0 UDP payload size from the additional
// section: 512 without an OPT record, at most maxUDP. edns reports an OPT
// record (the answer then carries one too).
func clientLimit(p *dnsmessage.Parser) (limit int, edns bool) {
	limit = 512
	if p.SkipAllAnswers() != nil || p.SkipAllAuthorities() != nil {
		return limit, false
	}
	for {
		h, err := p.AdditionalHeader()
		if err != nil {
			return limit, edns
		}
		if h.Type == dnsmessage.TypeOPT {
			edns = true
			limit = min(max(int(h.Class), 512), maxUDP)
		}
		if err := p.SkipAdditional(); err != nil {
			return limit, edns
		}
	}
}

// build renders a message: the question q (nil: none) and one TXT
// record per answer value; nil if it cannot be built.
func build(h dnsmessage.Header, q *dnsmessage.Question, answer []string, edns bool) []byte {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), h)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil
	}
	if q != nil {
		if err := b.Question(*q); err != nil {
			return nil
		}
	}
	if err := b.StartAnswers(); err != nil {
		return nil
	}
	for _, v := range answer {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeTXT, Class: dnsmessage.ClassINET, TTL: TTL}
		if err := b.TXTResource(rh, dnsmessage.TXTResource{TXT: chunks(v)}); err != nil {
			return nil
		}
	}
	if edns {
		if err := b.StartAdditionals(); err != nil {
			return nil
		}
		var rh dnsmessage.ResourceHeader
		if err := rh.SetEDNS0(maxUDP, dnsmessage.RCodeSuccess, false); err != nil {
			return nil
		}
		if err := b.OPTResource(rh, dnsmessage.OPTResource{}); err != nil {
			return nil
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// chunks splits v into the character-strings of one TXT record (at most
// 255 bytes each; an empty value is one empty string).
func chunks(v string) []string {
	out := []string{}
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}
