package stdwebhook

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/wisehosting/wisehosting/sdk/netguard"
	"github.com/wisehosting/wisehosting/sdk/outbound"
)

// MaxHeaderValue bounds the length of an extra header's value.
const MaxHeaderValue = outbound.MaxHeaderValue

// AddressError is CheckURL's error for a URL whose host is a literal IP
// address the address guard (sdk/netguard) refuses. Callers that let the
// guard be turned off can name their own setting with Addr and Why.
type AddressError struct {
	// Addr is the URL's literal address.
	Addr netip.Addr
	// Why is netguard.Reason's answer, e.g. "a loopback address".
	Why string
}

// Error implements error.
func (e *AddressError) Error() string {
	return fmt.Sprintf("url: %s is %s, which webhooks may not be sent to", e.Addr, e.Why)
}

// CheckURL parses and checks a webhook URL as outbound.CheckURL does:
// absolute http or https, a host name, a port between 1 and 65535 if any,
// no user info (it would end up in logs), no fragment (it is never sent),
// no surrounding white space. Unless allowPrivate, a literal IP address the
// address guard refuses is an *AddressError; host names are judged when
// connecting (see Client). The errors name the scheme, port or address at
// most, never the whole URL: its path or query may hold a token.
func CheckURL(raw string, allowPrivate bool) (*url.URL, error) {
	u, err := outbound.CheckURL(raw)
	if err != nil {
		return nil, err
	}
	if addr, err := netip.ParseAddr(u.Hostname()); err == nil && !allowPrivate {
		if why := netguard.Reason(addr); why != "" {
			return nil, &AddressError{Addr: addr, Why: why}
		}
	}
	return u, nil
}

// secretError is an error of ParseSecretAttr: its own message, matching
// ErrInvalidSecret with errors.Is.
type secretError struct{ msg string }

func (e *secretError) Error() string { return e.msg }
func (e *secretError) Unwrap() error { return ErrInvalidSecret }

// ParseSecretAttr parses the whsec_ secret of a setting named attr
// ("secret", "secrets_previous[0]"), naming attr in its errors. Unlike
// ParseSecret it requires the whsec_ prefix: bare base64 is ambiguous (is
// "correcthorsebatterystaple…" a password or base64?), the prefix says what
// the value is. Its errors match ErrInvalidSecret with errors.Is and never
// show the secret or a part of it.
func ParseSecretAttr(attr, raw string) (Secret, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, &secretError{fmt.Sprintf("%s is required: %s followed by the base64 of %d to %d random bytes",
			attr, SecretPrefix, MinSecretBytes, MaxSecretBytes)}
	}
	if !strings.HasPrefix(strings.TrimSpace(raw), SecretPrefix) {
		return nil, &secretError{fmt.Sprintf("%s must start with %q and continue with the base64 of %d to %d random bytes (e.g. \"whsec_$(openssl rand -base64 32)\")",
			attr, SecretPrefix, MinSecretBytes, MaxSecretBytes)}
	}
	key, err := ParseSecret(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", attr, err)
	}
	return key, nil
}

// SecretForms returns the spellings of a configured secret that a message
// must never show: as configured (without surrounding white space) and its
// base64 part. Put them in Endpoint.Redact.
func SecretForms(raw string) []string {
	raw = strings.TrimSpace(raw)
	return []string{raw, strings.TrimPrefix(raw, SecretPrefix)}
}

// CheckHeader checks an extra request header: a valid name (RFC 9110
// token), not a webhook-* header (they carry the signature), not one the
// sender or its HTTP client sets (Content-Type, Content-Length, Host,
// hop-by-hop headers: see outbound.ReservedHeader), a value of at most
// MaxHeaderValue bytes without control characters. User-Agent may be set.
// Its errors start with "headers: " and show the name, never the value.
func CheckHeader(name, value string) error {
	if err := outbound.CheckHeader(name, value, refuseHeader); err != nil {
		return fmt.Errorf("headers: %w", err)
	}
	return nil
}

// refuseHeader says why an endpoint may not set the header canon, "" when
// it may.
func refuseHeader(canon string) string {
	switch {
	case strings.HasPrefix(canon, "Webhook-"):
		return "the webhook-* headers carry the signature"
	case outbound.ReservedHeader(canon):
		return "the sender and its HTTP client set it"
	}
	return ""
}
