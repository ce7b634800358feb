package config

import (
	"encoding/json"
	"log/slog"
)

// redacted is what every formatting of a set Secret prints.
const redacted = "[redacted]"

// Secret holds a sensitive string (a key, password or token). Printing it
// with any fmt verb, marshalling it to JSON or text, or logging it with slog
// yields "[redacted]" (or "" when unset); only Value returns the secret
// itself. The value sits behind a pointer so that even reflection-based
// printers and fmt's bad-verb fallback show an address, never the text.
//
// The zero Secret is unset.
type Secret struct {
	v *string
}

// NewSecret wraps s. An empty s makes an unset Secret.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// Value returns the secret text, or "" when unset. Call it only where the
// secret is used, never to print it.
func (s Secret) Value() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsSet reports whether the secret holds a non-empty value.
func (s Secret) IsSet() bool { return s.v != nil && *s.v != "" }

// String returns "[redacted]", or "" when the secret is unset.
func (s Secret) String() string {
	if !s.IsSet() {
		return ""
	}
	return redacted
}

// GoString returns the same as String, quoted, so %#v never shows the value.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// MarshalJSON encodes the secret as "[redacted]" (or "" when unset).
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes the secret as "[redacted]" (or "" when unset), for
// text-based encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue makes slog print "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
