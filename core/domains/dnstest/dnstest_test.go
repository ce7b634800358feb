package dnstest

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// resolver asks s only, over the network the Go resolver picks (UDP, then
// TCP when truncated); tcpDials counts the TCP connections.
func resolver(s *Server, tcpDials *int) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		if strings.HasPrefix(network, "tcp") && tcpDials != nil {
			*tcpDials++
		}
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr())
	}}
}

func TestDomainDNSServer(t *testing.T) {
	s := New(t)
	long := strings.Repeat("x", 700) // three character-strings in one record
	s.Set("_wisehosting.Example.com", "wisehosting-verify=abc", "other")
	s.Set("long.example.com.", long)
	s.Set("empty.example.com")
	s.Set("many.example.com", slices.Repeat([]string{strings.Repeat("y", 200)}, 10)...) // ~2 KiB: over 1232 bytes of EDNS0
	s.Set("failing.example.com", "x")
	s.Fail("failing.example.com", dnsmessage.RCodeServerFailure)
	s.Set("refused.example.com", "x")
	s.Fail("refused.example.com", dnsmessage.RCodeRefused)
	s.Drop("dropped.example.com")

	tests := []struct {
		name     string
		want     []string
		notFound bool // NXDOMAIN or no TXT
		lookup   bool // any other failure
		tcp      bool
	}{
		{name: "_wisehosting.example.com.", want: []string{"wisehosting-verify=abc", "other"}},
		{name: "_WISEHOSTING.example.COM.", want: []string{"wisehosting-verify=abc", "other"}},
		{name: "long.example.com.", want: []string{long}},
		{name: "many.example.com.", want: slices.Repeat([]string{strings.Repeat("y", 200)}, 10), tcp: true},
		{name: "empty.example.com.", notFound: true},
		{name: "unknown.example.com.", notFound: true},
		{name: "failing.example.com.", lookup: true},
		{name: "refused.example.com.", lookup: true},
		{name: "dropped.example.com.", lookup: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dials := 0
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			got, err := resolver(s, &dials).LookupTXT(ctx, tt.name)
			var de *net.DNSError
			switch {
			case tt.notFound:
				if !errors.As(err, &de) || !de.IsNotFound {
					t.Fatalf("LookupTXT = %q, %v; want not found", got, err)
				}
			case tt.lookup:
				if !errors.As(err, &de) || de.IsNotFound {
					t.Fatalf("LookupTXT = %q, %v; want a lookup failure", got, err)
				}
			default:
				if err != nil || !slices.Equal(got, tt.want) {
					t.Fatalf("LookupTXT = %q, %v; want %q", got, err, tt.want)
				}
			}
			if tt.tcp != (dials > 0) {
				t.Errorf("TCP dials = %d, want TCP %v", dials, tt.tcp)
			}
		})
	}

	s.Delete("_wisehosting.example.com")
	s.Set("failing.example.com", "back")
	if _, err := resolver(s, nil).LookupTXT(context.Background(), "_wisehosting.example.com."); err == nil {
		t.Error("deleted name still answers")
	}
	if got, err := resolver(s, nil).LookupTXT(context.Background(), "failing.example.com."); err != nil || !slices.Equal(got, []string{"back"}) {
		t.Errorf("Set after Fail: %q, %v", got, err)
	}
	if s.Queries() == 0 {
		t.Error("no query counted")
	}
}

// TestDomainDNSGarbage: packets that are not questions get no answer or
// a FORMERR, over UDP and TCP, and the server keeps answering.
func TestDomainDNSGarbage(t *testing.T) {
	s := New(t)
	s.Set("ok.example.com", "fine")
	q := question(t, 7, "ok.example.com.", dnsmessage.TypeTXT)
	for _, pkt := range [][]byte{
		nil, {0}, []byte("hello, world"), q[:13], append(slices.Clone(q), 0xff, 0xff),
		func() []byte { r := slices.Clone(q); r[2] |= 0x80; return r }(), // a response
		func() []byte { r := slices.Clone(q); r[5] = 2; return r }(),     // QDCOUNT 2
		func() []byte { r := slices.Clone(q); r[5] = 0; return r }(),     // no question
		func() []byte { r := slices.Clone(q); r[2] |= 0x10; return r }(), // opcode 2
	} {
		out := s.respond(pkt, true)
		checkAnswer(t, pkt, out, 512)
	}
	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("garbage")); err != nil {
		t.Fatal(err)
	}
	tc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tc.Write([]byte{0xff, 0xff, 1, 2, 3})
	_ = tc.Close()
	got, err := resolver(s, nil).LookupTXT(context.Background(), "ok.example.com.")
	if err != nil || !slices.Equal(got, []string{"fine"}) {
		t.Fatalf("after garbage: %q, %v", got, err)
	}
}

func question(t testing.TB, id uint16, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		t.Fatal(err)
	}
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}); err != nil {
		t.Fatal(err)
	}
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkAnswer fails unless out is nil or a well-formed response to req of
// at most limit bytes.
func checkAnswer(t testing.TB, req, out []byte, limit int) {
	t.Helper()
	if out == nil {
		return
	}
	if len(out) > limit {
		t.Fatalf("answer of %d bytes over the limit %d", len(out), limit)
	}
	var m dnsmessage.Message
	if err := m.Unpack(out); err != nil {
		t.Fatalf("answer does not parse: %v", err)
	}
	if !m.Header.Response || len(req) < 2 || m.Header.ID != uint16(req[0])<<8|uint16(req[1]) {
		t.Fatalf("answer header %+v to %x", m.Header, req)
	}
}

func FuzzRespond(f *testing.F) {
	s, err := Start()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	s.Set("a.example.com", "v1", strings.Repeat("z", 600))
	s.Set("b.example.com")
	s.Fail("c.example.com", dnsmessage.RCodeServerFailure)
	s.Drop("d.example.com")
	for _, n := range []string{"a.example.com.", "b.example.com.", "c.example.com.", "d.example.com.", "x."} {
		f.Add(question(f, 1, n, dnsmessage.TypeTXT))
		f.Add(question(f, 2, n, dnsmessage.TypeA))
	}
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x01a\x00\x00\x10\x00\x01\x00\x00)\x10\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		// An OPT record may raise the UDP limit from 512 up to maxUDP.
		checkAnswer(t, pkt, s.respond(pkt, true), maxUDP)
		checkAnswer(t, pkt, s.respond(pkt, false), 65535)
	})
}
