package outbound

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxAnswer bounds how much of an answer's body ReadAnswer reads.
const MaxAnswer = 64 << 10

// MaxRetryAfter caps the delay RetryAfter returns.
const MaxRetryAfter = time.Hour

// Answer is what a message may show of an HTTP answer, every string to
// redact already replaced. Create it with ReadAnswer.
type Answer struct {
	// Code is the answer's status code.
	Code int
	// Header is the answer's header, its Location scrubbed (see Scrub);
	// the other fields are as received.
	Header http.Header
	// Body is the start of the answer's body, at most MaxAnswer bytes,
	// scrubbed.
	Body []byte
}

// ReadAnswer reads resp's status, header and the first MaxAnswer bytes of
// its body, and replaces every string of redact (see Scrub) in the body and
// the Location header: before anything quotes and cuts them, so that an
// endpoint echoing a secret gets not even a part of it into a message. It
// leaves resp.Body to the caller to close.
func ReadAnswer(resp *http.Response, redact []string) Answer {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer))
	h := resp.Header
	if loc := h.Get("Location"); loc != "" {
		h = h.Clone()
		h.Set("Location", Scrub(loc, redact))
	}
	return Answer{Code: resp.StatusCode, Header: h, Body: []byte(Scrub(string(body), redact))}
}

// Status returns the status code and its text, "404 Not Found"; the code
// alone when it has no text.
func (a Answer) Status() string {
	s := strconv.Itoa(a.Code)
	if text := http.StatusText(a.Code); text != "" {
		s += " " + text
	}
	return s
}

// Retryable reports whether the answer says to try again later: 408
// Request Timeout, 429 Too Many Requests or any 5xx.
func (a Answer) Retryable() bool {
	return a.Code == http.StatusRequestTimeout || a.Code == http.StatusTooManyRequests || a.Code >= 500 && a.Code <= 599
}

// RetryAfter returns the delay the answer's Retry-After header asks for,
// relative to now (see RetryAfter).
func (a Answer) RetryAfter(now time.Time) time.Duration {
	return RetryAfter(a.Header.Get("Retry-After"), now)
}

// Quoted returns msg followed by `: "…"`, the body quoted (see Quote), or
// msg alone when the body shows nothing.
func (a Answer) Quoted(msg string) string {
	if q := Quote(string(a.Body)); q != "" {
		msg += `: "` + q + `"`
	}
	return msg
}

// Redirect returns `, a redirect to "…"`, the Location header quoted (see
// Quote), or "" when the answer has none.
func (a Answer) Redirect() string {
	if loc := a.Header.Get("Location"); loc != "" {
		return `, a redirect to "` + Quote(loc) + `"`
	}
	return ""
}

// RetryAfter reads a Retry-After value, delay-seconds or an HTTP date
// (relative to now), capped at MaxRetryAfter; 0 when absent, invalid or
// past. Delay-seconds give whole seconds, a date is rounded to the
// millisecond.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return MaxRetryAfter
			}
			return 0
		}
		if n >= uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return 0
	case d > MaxRetryAfter:
		return MaxRetryAfter
	}
	return d.Round(time.Millisecond)
}
