package domains_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/wisehosting/wisehosting/core/domains"
	"github.com/wisehosting/wisehosting/core/domains/dnstest"
	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func newVerifier(t *testing.T, dns *dnstest.Server, timeout time.Duration) *domains.Verifier {
	t.Helper()
	v, err := domains.NewVerifier(domains.VerifierOptions{Resolver: dns.Addr(), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDomainVerifierCheck(t *testing.T) {
	t.Parallel()
	dns := dnstest.New(t)
	v := newVerifier(t, dns, 300*time.Millisecond)
	const token = "wisehosting-verify=0123456789abcdef0123456789abcdef"
	dns.Set("_wisehosting.ok.example", "v=spf1 -all", " "+token+" ")
	dns.Set("_wisehosting.wrong.example", "wisehosting-verify=ffff", "other", "third", "fourth", strings.Repeat("x", 100))
	dns.Set("_wisehosting.empty.example")
	dns.Set("_wisehosting.servfail.example", token)
	dns.Fail("_wisehosting.servfail.example", dnsmessage.RCodeServerFailure)
	dns.Set("_wisehosting.refused.example", token)
	dns.Fail("_wisehosting.refused.example", dnsmessage.RCodeRefused)
	dns.Drop("_wisehosting.timeout.example")
	dns.Set("_wisehosting.big.example", append(strings.Split(strings.Repeat("filler ", 300), " "), token)...) // over UDP's size: TCP

	tests := []struct {
		host   string
		kind   domains.CheckKind // 0: success
		sent   error
		absent bool
		msg    string
	}{
		{host: "ok.example"},
		{host: "big.example"},
		{host: "wrong.example", kind: domains.KindMismatch, sent: domains.ErrMismatch, absent: true,
			msg: `TXT records found at _wisehosting.wrong.example but none matches the token (found "wisehosting-verify=ffff", "other", "third", and 2 more)`},
		{host: "missing.example", kind: domains.KindNoRecord, sent: domains.ErrNoRecord, absent: true,
			msg: "no TXT record at _wisehosting.missing.example"},
		{host: "empty.example", kind: domains.KindNoRecord, sent: domains.ErrNoRecord, absent: true,
			msg: "no TXT record at _wisehosting.empty.example"},
		{host: "servfail.example", kind: domains.KindLookup, sent: domains.ErrLookup,
			msg: "DNS lookup failed for _wisehosting.servfail.example: the DNS server failed to answer (SERVFAIL or refused)"},
		{host: "refused.example", kind: domains.KindLookup, sent: domains.ErrLookup, msg: "DNS lookup failed for _wisehosting.refused.example"},
		{host: "timeout.example", kind: domains.KindLookup, sent: domains.ErrLookup,
			msg: "DNS lookup failed for _wisehosting.timeout.example: no answer within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Parallel()
			err := v.Check(context.Background(), tt.host, token)
			if tt.kind == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *domains.CheckError
			if !errors.As(err, &ce) || ce.Kind != tt.kind || ce.Absent() != tt.absent || !errors.Is(err, tt.sent) {
				t.Fatalf("Check = %#v, want kind %d", err, tt.kind)
			}
			if !strings.HasPrefix(err.Error(), tt.msg) {
				t.Fatalf("message %q, want it to start with %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), dns.Addr()) || strings.Contains(err.Error(), "127.0.0.1") {
				t.Fatalf("message %q names the resolver", err)
			}
			if r := domains.Result(7, err); r.OK || r.Absent != tt.absent || r.Error != err.Error() || r.ID != 7 {
				t.Fatalf("Result = %+v", r)
			}
		})
	}
}

func TestDomainVerifierOptions(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:0", ":53", "127.0.0.1:x", "127.0.0.1:70000"} {
		if _, err := domains.NewVerifier(domains.VerifierOptions{Resolver: addr}); err == nil {
			t.Errorf("resolver %q accepted", addr)
		}
	}
	for _, addr := range []string{"", "127.0.0.53:53", "[::1]:5353", "dns.internal:53"} {
		if _, err := domains.NewVerifier(domains.VerifierOptions{Resolver: addr}); err != nil {
			t.Errorf("resolver %q: %v", addr, err)
		}
	}
}
