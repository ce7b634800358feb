package outbound

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// CheckURL parses and checks the url attribute of a config block, where
// requests go: an absolute http or https URL with a host name, a port
// between 1 and 65535 if any, no user info (it would end up in logs:
// credentials go in headers), no fragment (it is never sent), no
// surrounding white space. It does not judge the host: NewClient's guard
// does when connecting, and netguard.Reason judges a literal address.
//
// Its errors start with "url" and name the scheme or port at most, never
// the whole URL: its path or query may hold a token.
func CheckURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("url is required")
	}
	if strings.TrimSpace(raw) != raw {
		return nil, errors.New("url has leading or trailing white space")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL itself
		}
		return nil, fmt.Errorf("url is not a valid URL: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("url: the scheme must be http or https, not %q", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return nil, errors.New("url must be absolute: http(s)://host[:port]/path")
	case u.User != nil:
		return nil, errors.New("url must not hold a user name or password (they would end up in logs): send credentials with headers, e.g. Authorization")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, errors.New("url must not have a #fragment (it is never sent)")
	case u.Hostname() == "":
		return nil, errors.New("url has no host name")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("url: port %q is not between 1 and 65535", port)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, errors.New("url: empty port")
	}
	// What is sent is the URL as it prints: it must read back the same.
	if again, err := url.Parse(u.String()); err != nil || again.String() != u.String() {
		return nil, errors.New("url does not read back as itself once printed (an invalid escape or a byte that is not ASCII in the host?)")
	}
	return u, nil
}
