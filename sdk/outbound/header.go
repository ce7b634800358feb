package outbound

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MaxHeaderValue bounds the length of a header value CheckHeader accepts.
const MaxHeaderValue = 4 << 10

// ValidHeaderName reports whether name can be an HTTP header name: one or
// more characters of an RFC 9110 token.
func ValidHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return false
		}
	}
	return true
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// ReservedHeader reports whether a configuration may not set the header
// name (in any case) because the request's framing or its HTTP client owns
// it: Content-Type, Content-Length, Host, and the hop-by-hop headers
// (Connection, Keep-Alive, Proxy-Connection, Proxy-Authenticate,
// Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade) and
// Expect.
func ReservedHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Content-Type", "Content-Length", "Host", "Transfer-Encoding", "Connection", "Keep-Alive",
		"Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade", "Expect":
		return true
	}
	return false
}

// CheckHeader checks a request header a configuration sets: a valid name
// (see ValidHeaderName), one refuse does not refuse, and a value of at
// most MaxHeaderValue bytes without control characters (tabs are
// allowed). refuse gets the name in canonical form (http.CanonicalHeaderKey)
// and returns why the header may not be set, "" when it may; nil refuses
// none. Most callers refuse at least the ReservedHeader ones.
//
// Its errors name the header, never the value (it may be a credential),
// and leave the attribute to the caller: `"Host" is refused: <why>`,
// `the value of "X-Token" holds a control character`.
func CheckHeader(name, value string, refuse func(canon string) (why string)) error {
	if name == "" {
		return errors.New("empty header name")
	}
	if !ValidHeaderName(name) {
		return fmt.Errorf("%q is not a valid header name", name)
	}
	if refuse != nil {
		if why := refuse(http.CanonicalHeaderKey(name)); why != "" {
			return fmt.Errorf("%q is refused: %s", name, why)
		}
	}
	if len(value) > MaxHeaderValue {
		return fmt.Errorf("the value of %q is longer than %d bytes", name, MaxHeaderValue)
	}
	for i := 0; i < len(value); i++ {
		if b := value[i]; b < ' ' && b != '\t' || b == 0x7f {
			return fmt.Errorf("the value of %q holds a control character", name)
		}
	}
	return nil
}
