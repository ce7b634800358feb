// Package stdwebhook signs and verifies webhooks the Standard Webhooks way
// (https://www.standardwebhooks.com/, spec version 1.0.0, symmetric scheme),
// and sends them. Besides the standard library it depends only on three
// small sdk packages (event, netguard, and outbound, the HTTP client and
// message helpers it shares with the other senders), so a receiver can use
// it as readily as a sender.
//
// A webhook carries three headers:
//
//	webhook-id:        msg_2KWPBgLlAfxdpx2AI54pPJ85f4W      (the same for every retry)
//	webhook-timestamp: 1674087231                           (Unix seconds of this attempt)
//	webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=
//
// The signature is the standard base64 of HMAC-SHA256(key,
// "{webhook-id}.{webhook-timestamp}.{body}"), prefixed with the scheme
// identifier "v1,". During a secret rotation the sender signs with the new
// and the old secret and lists both signatures separated by a space; the
// receiver accepts the webhook if any listed signature matches any secret it
// knows.
//
// Secrets are serialised as "whsec_" followed by the standard base64 of 24
// to 64 random bytes (NewSecret makes one; ParseSecret reads one).
//
// Signing a request built by hand:
//
//	secret, err := stdwebhook.ParseSecret(cfg.Secret)
//	…
//	for k, v := range stdwebhook.Headers(eventID, time.Now(), body, secret) {
//		req.Header[k] = v
//	}
//
// Sending events (sdk/event) the way the platform does, with a Client: the
// body is Body's JSON, the answer maps to an Outcome (2xx Delivered; 408,
// 429, 5xx and no answer Retry, after the Retry-After the answer gave, at
// most MaxRetryAfter; anything else Failed, 410 with Result.Gone set;
// redirects are never followed), no proxy from the environment is used,
// and unless ClientOptions.AllowPrivate the address guard (sdk/netguard)
// refuses, when connecting, loopback, private, link-local and other
// non-public addresses (Result.Blocked). Messages never show the secrets,
// header values, or the URL's path and query:
//
//	secret, err := stdwebhook.ParseSecretAttr("secret", cfg.Secret) // CheckURL and CheckHeader the rest
//	…
//	c := stdwebhook.NewClient(stdwebhook.ClientOptions{Timeout: 10 * time.Second})
//	defer c.Close()
//	ep := &stdwebhook.Endpoint{URL: cfg.URL, Secrets: []stdwebhook.Secret{secret}, Redact: stdwebhook.SecretForms(cfg.Secret)}
//	res := c.Send(ctx, ep, ev)
//	if res.Outcome == stdwebhook.Retry { … try again, no sooner than res.RetryAfter … }
//
// Receiving:
//
//	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
//	err := stdwebhook.Verify(r.Header, body, time.Now(), stdwebhook.DefaultTolerance, secret)
//
// Verify checks the raw body as received: parsing the JSON and serialising
// it again would change the bytes the signature covers.
package stdwebhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks specification. http.Header stores
// them canonicalised (Webhook-Id); HTTP header names are case-insensitive.
const (
	// HeaderID carries the message id: unique per event, kept across
	// retries, so receivers can deduplicate.
	HeaderID = "webhook-id"
	// HeaderTimestamp carries the attempt's time as integer Unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature carries the space-separated signatures.
	HeaderSignature = "webhook-signature"
)

// SecretPrefix introduces a serialised symmetric secret.
const SecretPrefix = "whsec_"

// SignatureVersion is the identifier of the symmetric (HMAC-SHA256)
// signature scheme, written before the comma of each signature.
const SignatureVersion = "v1"

// DefaultTolerance is how far a webhook's timestamp may be from the
// receiver's clock, either way, before Verify rejects it (the reference
// libraries' tolerance).
const DefaultTolerance = 5 * time.Minute

// Bounds of a secret's decoded length. The specification asks for at least
// 24 random bytes (192 bits) and at most 512 bits.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// newSecretBytes is the length of the secrets NewSecret makes.
const newSecretBytes = 32

// Errors of ParseSecret and Verify. Verify's errors wrap one of these, so
// test them with errors.Is.
var (
	// ErrInvalidSecret: the secret is not whsec_ and base64 of 24 to 64
	// bytes. Its message never contains the secret.
	ErrInvalidSecret = errors.New("stdwebhook: invalid secret")
	// ErrNoSecret: Verify was given no secret to check the signatures with.
	ErrNoSecret = errors.New("stdwebhook: no secret to verify with")
	// ErrMissingHeader: webhook-id, webhook-timestamp or webhook-signature
	// is absent or empty.
	ErrMissingHeader = errors.New("stdwebhook: missing header")
	// ErrInvalidHeader: webhook-id or webhook-timestamp appears more than
	// once with different values.
	ErrInvalidHeader = errors.New("stdwebhook: invalid header")
	// ErrInvalidTimestamp: webhook-timestamp is not a non-negative decimal
	// integer without leading zeros.
	ErrInvalidTimestamp = errors.New("stdwebhook: invalid timestamp")
	// ErrTimestampTooOld: the timestamp is further in the past than the
	// tolerance (a replay, or a very late delivery).
	ErrTimestampTooOld = errors.New("stdwebhook: timestamp too old")
	// ErrTimestampTooNew: the timestamp is further in the future than the
	// tolerance (a clock skew, or a forged timestamp).
	ErrTimestampTooNew = errors.New("stdwebhook: timestamp too new")
	// ErrNoMatchingSignature: no v1 signature of the header matches any of
	// the secrets (a wrong secret, or a tampered id, timestamp or body).
	ErrNoMatchingSignature = errors.New("stdwebhook: no matching signature")
)

// Secret is a symmetric signing key: the decoded bytes of a whsec_ secret.
// Formatting it with fmt (any verb) or encoding/json prints "[redacted]",
// never the key, so it cannot leak through a log line by accident.
type Secret []byte

// String implements fmt.Stringer without revealing the key.
func (Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer without revealing the key.
func (Secret) GoString() string { return "stdwebhook.Secret([redacted])" }

// Format implements fmt.Formatter: every verb prints "[redacted]".
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalJSON implements json.Marshaler without revealing the key.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// ParseSecret reads a serialised secret: "whsec_" followed by the standard
// base64 (padded or not) of 24 to 64 bytes. Like the reference libraries it
// also accepts the base64 alone, without the prefix; configuration that
// should be unambiguous can require the prefix with strings.HasPrefix.
// Surrounding white space is ignored. Errors wrap ErrInvalidSecret and never
// contain the secret or a part of it.
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, SecretPrefix)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	if strings.ContainsAny(s, "\r\n\t ") {
		// The decoder would skip newlines silently.
		return nil, fmt.Errorf("%w: contains white space", ErrInvalidSecret)
	}
	enc := base64.StdEncoding
	if !strings.HasSuffix(s, "=") {
		enc = base64.RawStdEncoding
	}
	key, err := enc.DecodeString(s)
	if err != nil {
		// err only says where decoding failed; leave it out anyway.
		return nil, fmt.Errorf("%w: not %s followed by standard base64", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("%w: %d bytes once decoded, want %d to %d", ErrInvalidSecret, len(key), MinSecretBytes, MaxSecretBytes)
	}
	return Secret(key), nil
}

// NewSecret returns a fresh serialised secret: "whsec_" and the base64 of
// 32 bytes from crypto/rand.
func NewSecret() (string, error) {
	key := make([]byte, newSecretBytes)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("stdwebhook: generating a secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// Sign returns the value of the webhook-signature header for a webhook
// with that id, timestamp (whole Unix seconds are signed) and body: one
// "v1,<base64>" signature per secret, in the order given, separated by a
// space. Sign with the current secret first and the previous ones after it
// during a rotation. Empty secrets are skipped; with no secrets it returns
// "".
//
// The id should not contain '.', the separator of the signed content, nor
// characters an HTTP header cannot carry.
func Sign(id string, ts time.Time, body []byte, secrets ...Secret) string {
	secrets = nonEmpty(secrets)
	if len(secrets) == 0 {
		return ""
	}
	stamp := strconv.FormatInt(ts.Unix(), 10)
	var b strings.Builder
	b.Grow(len(secrets) * (len(SignatureVersion) + 1 + base64.StdEncoding.EncodedLen(sha256.Size) + 1))
	var sum [sha256.Size]byte
	var enc [44]byte // base64.StdEncoding.EncodedLen(sha256.Size)
	for i, key := range secrets {
		if i > 0 {
			b.WriteByte(' ')
		}
		mac := signature(hmac.New(sha256.New, key), id, stamp, body, sum[:0])
		base64.StdEncoding.Encode(enc[:], mac)
		b.WriteString(SignatureVersion)
		b.WriteByte(',')
		b.Write(enc[:])
	}
	return b.String()
}

// nonEmpty returns secrets without the empty ones (a copy only when there
// are some).
func nonEmpty(secrets []Secret) []Secret {
	for i, s := range secrets {
		if len(s) == 0 {
			out := slices.Clone(secrets[:i])
			for _, s := range secrets[i+1:] {
				if len(s) > 0 {
					out = append(out, s)
				}
			}
			return out
		}
	}
	return secrets
}

// signature appends to dst the HMAC of "{id}.{stamp}.{body}" computed by
// the fresh HMAC h.
func signature(h hash.Hash, id, stamp string, body []byte, dst []byte) []byte {
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(stamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(dst)
}

// Headers returns the three Standard Webhooks headers for a webhook with
// that id, timestamp and body, signed with every secret (see Sign). With no
// secrets the webhook-signature header is left out.
func Headers(id string, ts time.Time, body []byte, secrets ...Secret) http.Header {
	h := make(http.Header, 3)
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	if sig := Sign(id, ts, body, secrets...); sig != "" {
		h.Set(HeaderSignature, sig)
	}
	return h
}

// Verify checks a received webhook: the three headers are present, the
// timestamp is within tolerance of now either way (in whole seconds;
// tolerance <= 0 means DefaultTolerance: the check cannot be turned off),
// and at least one "v1," signature of webhook-signature is the HMAC of the
// id, timestamp and body under at least one of secrets (compared in
// constant time). Signatures of other schemes (v1a, …) and malformed
// entries are skipped; so are empty secrets, which anyone could sign with.
// body must be the raw bytes received.
//
// The error wraps ErrNoSecret, ErrMissingHeader, ErrInvalidHeader,
// ErrInvalidTimestamp, ErrTimestampTooOld, ErrTimestampTooNew or
// ErrNoMatchingSignature, checked in that order. Verify does not remember
// ids: a receiver that must not process an event twice deduplicates on
// webhook-id itself.
func Verify(h http.Header, body []byte, now time.Time, tolerance time.Duration, secrets ...Secret) error {
	secrets = nonEmpty(secrets)
	if len(secrets) == 0 {
		return ErrNoSecret
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	id, err := single(h, HeaderID)
	if err != nil {
		return err
	}
	stamp, err := single(h, HeaderTimestamp)
	if err != nil {
		return err
	}
	sigs := strings.Join(values(h, HeaderSignature), " ")
	if strings.TrimSpace(sigs) == "" {
		return fmt.Errorf("%w: %s", ErrMissingHeader, HeaderSignature)
	}
	sec, ok := parseTimestamp(stamp)
	if !ok {
		return fmt.Errorf("%w: %s is not integer Unix seconds", ErrInvalidTimestamp, HeaderTimestamp)
	}
	// Compare whole seconds: the timestamp has no fraction.
	tol := int64(tolerance / time.Second)
	switch n := now.Unix(); {
	case sec < n && n-sec > tol: // 0 <= sec < n: no overflow
		return fmt.Errorf("%w: %ds before now, beyond the tolerance of %v", ErrTimestampTooOld, n-sec, tolerance)
	case sec > n && (n < 0 && sec > math.MaxInt64+n || sec-n > tol): // the first test guards sec-n against overflow
		return fmt.Errorf("%w: beyond the tolerance of %v", ErrTimestampTooNew, tolerance)
	}

	// The expected signatures, base64-encoded as they appear in the header.
	expected := make([][]byte, len(secrets))
	var sum [sha256.Size]byte
	for i, key := range secrets {
		mac := signature(hmac.New(sha256.New, key), id, stamp, body, sum[:0])
		expected[i] = []byte(base64.StdEncoding.EncodeToString(mac))
	}
	matched := 0
	for entry := range strings.SplitSeq(sigs, " ") {
		version, sig, found := strings.Cut(entry, ",")
		if !found || version != SignatureVersion {
			continue
		}
		for _, want := range expected {
			// Constant time in the signature's content; its length is
			// public (44 bytes for every valid one).
			matched |= subtle.ConstantTimeCompare([]byte(sig), want)
		}
	}
	if matched == 1 {
		return nil
	}
	return ErrNoMatchingSignature
}

// values returns the header's values, looked up canonically and, for a
// header map built by hand, under the lower-case name too.
func values(h http.Header, name string) []string {
	v := h.Values(name)
	if raw := h[name]; len(raw) > 0 && http.CanonicalHeaderKey(name) != name {
		v = append(v[:len(v):len(v)], raw...)
	}
	return v
}

// single returns the one value of the header name: repeated equal values
// count as one, differing ones are ErrInvalidHeader, none or "" is
// ErrMissingHeader.
func single(h http.Header, name string) (string, error) {
	vs := values(h, name)
	if len(vs) == 0 || vs[0] == "" {
		return "", fmt.Errorf("%w: %s", ErrMissingHeader, name)
	}
	for _, v := range vs[1:] {
		if v != vs[0] {
			return "", fmt.Errorf("%w: %s appears more than once with different values", ErrInvalidHeader, name)
		}
	}
	return vs[0], nil
}

// parseTimestamp parses integer Unix seconds: decimal digits only, no sign,
// no leading zero (so one timestamp has one spelling, and what is signed is
// exactly what was sent).
func parseTimestamp(s string) (int64, bool) {
	if s == "" || len(s) > 19 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
