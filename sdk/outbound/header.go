package outbound

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
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

// HeaderSetting reads the headers attribute of a config block, extra
// request headers by name: at most limit of them, each accepted by check
// (CheckHeader with the caller's refusals, say), and no name twice in
// different cases. It checks them in the order of their names, so that the
// same problem is reported first every time, and returns them under their
// canonical names. check's errors are returned as they are; its own start
// with "headers: ".
func HeaderSetting(m map[string]string, limit int, check func(name, value string) error) (http.Header, error) {
	if len(m) > limit {
		return nil, fmt.Errorf("headers: at most %d headers, not %d", limit, len(m))
	}
	h := make(http.Header, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		value := m[name]
		if err := check(name, value); err != nil {
			return nil, err
		}
		canon := http.CanonicalHeaderKey(name)
		if _, dup := h[canon]; dup {
			return nil, fmt.Errorf("headers: %q is set twice (header names are case-insensitive)", name)
		}
		h[canon] = []string{value}
	}
	return h, nil
}
