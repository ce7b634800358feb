package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/wisehosting/wisehosting/sdk/netguard"
)

// DefaultMaxIdleConns is how many idle connections a client keeps alive
// when ClientOptions.MaxIdleConns is 0.
const DefaultMaxIdleConns = 2

// ClientOptions configure NewClient.
type ClientOptions struct {
	// Timeout bounds each of connecting, the TLS handshake and waiting
	// for the answer's header. 0 sets no limit of the transport's own: the
	// context of each request must then bound it.
	Timeout time.Duration
	// MaxIdleConns is how many idle connections are kept alive, in all
	// and to one host; 0 means DefaultMaxIdleConns. Set it to the number
	// of requests that may be in flight at once.
	MaxIdleConns int
	// AllowPrivate turns the address guard off: requests may then reach
	// loopback, private, link-local and the other addresses sdk/netguard
	// refuses.
	AllowPrivate bool
}

// NewClient returns an HTTP client for requests to configured addresses:
// it uses no proxy from the environment, follows no redirect (the
// response is the 3xx answer itself: a redirect would send the request,
// credentials included, where the operator did not configure), and unless
// o.AllowPrivate its dialer refuses every address the address guard
// refuses, after name resolution, so a host name resolving to a private
// address (DNS rebinding included) is refused as surely as a literal one;
// the error then holds a *netguard.BlockedError (see Unanswered). HTTP/2
// is used where the server offers it; idle connections close after 90 s.
func NewClient(o ClientOptions) *http.Client {
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = DefaultMaxIdleConns
	}
	dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	if !o.AllowPrivate {
		dialer.Control = netguard.Control
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // none from the environment
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   o.Timeout,
			ResponseHeaderTimeout: o.Timeout,
			MaxIdleConns:          o.MaxIdleConns,
			MaxIdleConnsPerHost:   o.MaxIdleConns,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Unanswered says why a request got no answer, for a message that never
// shows the request's URL (its path or query may hold a token). err is
// what http.Client.Do returned; parent is the caller's context and ctx the
// request's, parent with timeout.
//
// blocked reports a connection the address guard refused: a configuration
// problem that a retry does not solve; msg is then the guard's message,
// "refused to connect to 10.0.0.1: a private address". Otherwise a retry
// may succeed, and msg is "the delivery was cancelled (…)" when parent
// ended, "no answer within the timeout of 10s" when ctx's deadline passed
// or the transport gave up waiting, else "request failed: " and the
// error, quoted (see Quote), without the "Post <url>:" of a *url.Error.
func Unanswered(parent, ctx context.Context, err error, timeout time.Duration) (msg string, blocked bool) {
	var be *netguard.BlockedError
	if errors.As(err, &be) {
		return be.Error(), true
	}
	if perr := parent.Err(); perr != nil {
		return "the delivery was cancelled (" + perr.Error() + ")", false
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err) {
		return fmt.Sprintf("no answer within the timeout of %v", timeout), false
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // without "Post <url>:"
	}
	return "request failed: " + Quote(err.Error()), false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
