package domains

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// DefaultLookupTimeout bounds one check when VerifierOptions.Timeout is 0.
const DefaultLookupTimeout = 5 * time.Second

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	// Resolver is the DNS server to ask, host:port ("" means the system's
	// resolver). It is asked over UDP, and over TCP when an answer is
	// truncated.
	Resolver string
	// Timeout bounds one check (0: DefaultLookupTimeout).
	Timeout time.Duration
}

// Verifier checks the TXT record of a domain. It is safe for concurrent
// use.
type Verifier struct {
	r       *net.Resolver
	timeout time.Duration
}

// NewVerifier checks o and returns a Verifier.
func NewVerifier(o VerifierOptions) (*Verifier, error) {
	v := &Verifier{r: net.DefaultResolver, timeout: o.Timeout}
	if v.timeout <= 0 {
		v.timeout = DefaultLookupTimeout
	}
	if o.Resolver != "" {
		host, port, err := net.SplitHostPort(o.Resolver)
		if err != nil || host == "" {
			return nil, fmt.Errorf("domains: resolver %q is not host:port", o.Resolver)
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return nil, fmt.Errorf("domains: resolver %q: the port must be 1..65535", o.Resolver)
		}
		addr := o.Resolver
		v.r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			// network is "udp" or "tcp", as the Go resolver chose.
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	}
	return v, nil
}

// CheckKind classifies a failed check.
type CheckKind int

// Kinds of failed checks.
const (
	// KindNoRecord: the record's name does not exist or has no TXT record.
	KindNoRecord CheckKind = iota + 1
	// KindMismatch: TXT records exist but none holds the token.
	KindMismatch
	// KindLookup: the lookup itself failed (timeout, SERVFAIL, refused,
	// network): nothing is known about the record.
	KindLookup
)

// Sentinels a *CheckError matches with errors.Is, by kind.
var (
	ErrNoRecord = errors.New("no TXT record")
	ErrMismatch = errors.New("no TXT record matches the token")
	ErrLookup   = errors.New("DNS lookup failed")
)

// CheckError is why a check failed. Its message is meant for the domain's
// owner: it names the record and what was found, never the resolver.
type CheckError struct {
	Kind CheckKind
	// Record is the name looked up (_wisehosting.<hostname>).
	Record string
	// Found are the TXT values seen (KindMismatch).
	Found []string
	// Reason describes a lookup failure (KindLookup).
	Reason string
	// Err is the resolver's error, if any.
	Err error
}

// maxShown bounds the TXT values, and their length, a message quotes.
const (
	maxShown    = 3
	maxShownLen = 64
)

// Error implements error.
func (e *CheckError) Error() string {
	switch e.Kind {
	case KindNoRecord:
		return fmt.Sprintf("no TXT record at %s", e.Record)
	case KindMismatch:
		shown := make([]string, 0, maxShown)
		for i, v := range e.Found {
			if i == maxShown {
				shown = append(shown, fmt.Sprintf("and %d more", len(e.Found)-maxShown))
				break
			}
			if len(v) > maxShownLen {
				v = v[:maxShownLen] + "…"
			}
			shown = append(shown, strconv.Quote(v))
		}
		return fmt.Sprintf("TXT records found at %s but none matches the token (found %s)", e.Record, strings.Join(shown, ", "))
	default:
		return fmt.Sprintf("DNS lookup failed for %s: %s", e.Record, e.Reason)
	}
}

// Unwrap returns the resolver's error.
func (e *CheckError) Unwrap() error { return e.Err }

// Is matches the kind's sentinel.
func (e *CheckError) Is(target error) bool {
	switch target {
	case ErrNoRecord:
		return e.Kind == KindNoRecord
	case ErrMismatch:
		return e.Kind == KindMismatch
	case ErrLookup:
		return e.Kind == KindLookup
	}
	return false
}

// Absent reports whether the answer proves the record missing or wrong
// (KindNoRecord, KindMismatch), as opposed to a lookup that failed.
func (e *CheckError) Absent() bool { return e.Kind != KindLookup }

// Check looks up the TXT records at RecordName(host) and returns nil when
// one of them is token (surrounding whitespace ignored), or a *CheckError.
func (v *Verifier) Check(ctx context.Context, host, token string) error {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	record := RecordName(host)
	// The root dot: no search domains.
	txts, err := v.r.LookupTXT(ctx, record+".")
	if err != nil {
		var de *net.DNSError
		switch {
		case errors.As(err, &de) && de.IsNotFound:
			return &CheckError{Kind: KindNoRecord, Record: record, Err: err}
		case errors.As(err, &de) && de.IsTimeout, errors.Is(err, context.DeadlineExceeded):
			return &CheckError{Kind: KindLookup, Record: record, Reason: "no answer within " + v.timeout.String(), Err: err}
		case errors.Is(err, context.Canceled):
			return &CheckError{Kind: KindLookup, Record: record, Reason: "the check was cancelled", Err: err}
		case errors.As(err, &de) && de.Err == "server misbehaving":
			return &CheckError{Kind: KindLookup, Record: record, Reason: "the DNS server failed to answer (SERVFAIL or refused)", Err: err}
		case errors.As(err, &de):
			return &CheckError{Kind: KindLookup, Record: record, Reason: de.Err, Err: err}
		}
		return &CheckError{Kind: KindLookup, Record: record, Reason: "lookup error", Err: err}
	}
	for _, t := range txts {
		if strings.TrimSpace(t) == token {
			return nil
		}
	}
	if len(txts) == 0 {
		return &CheckError{Kind: KindNoRecord, Record: record}
	}
	return &CheckError{Kind: KindMismatch, Record: record, Found: txts}
}
