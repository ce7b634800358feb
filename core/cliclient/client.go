// Package cliclient is a typed client of the user-facing REST API under
// /api/v1 (core/userapi and core/accounts' /me), the one the wisehosting
// command line uses: apps and their deployments, env vars, runtime logs
// (with a WebSocket stream), custom domains and jobs. Every call
// authenticates with an API token (wht_…) as a Bearer; an error the API
// answers comes back as an *APIError.
package cliclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds each request of a Client built without an
// http.Client (the log stream is bounded by its context only).
const DefaultTimeout = 30 * time.Second

// maxResponse bounds a response body the client reads (a build log is at
// most 512 KiB, JSON-escaped it may double).
const maxResponse = 8 << 20

// Client calls the user API of one core with one token. It is safe for
// concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
	// UserAgent is sent with every request when not empty.
	UserAgent string
}

// New returns a client of the core at baseURL (http or https, optionally
// with a path prefix the API sits under) sending token as a Bearer. hc nil
// means an http.Client with DefaultTimeout.
func New(baseURL, token string, hc *http.Client) (*Client, error) {
	u, err := ParseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{base: u, token: token, hc: hc}, nil
}

// ParseBaseURL checks that s is an absolute http(s) URL with a host and no
// query, fragment or credentials, and returns it without a trailing slash.
func ParseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("cliclient: core URL %q: %w", s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("cliclient: core URL %q: want an http:// or https:// URL", s)
	case u.Host == "":
		return nil, fmt.Errorf("cliclient: core URL %q: no host", s)
	case u.User != nil:
		return nil, fmt.Errorf("cliclient: core URL %q: credentials do not belong in the URL", s)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("cliclient: core URL %q: no query or fragment allowed", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// BaseURL returns the core's URL as the client uses it.
func (c *Client) BaseURL() string { return c.base.String() }

// APIError is an error the API answered: its HTTP status and the code and
// message of its {"error": {"code", "message"}} body.
type APIError struct {
	Status  int
	Code    string
	Message string
}

// Error is "code: message".
func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// IsStatus reports whether err is an *APIError with that HTTP status.
func IsStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}

// IsNotFound reports whether err is the API's 404 (a missing resource, or
// another user's).
func IsNotFound(err error) bool { return IsStatus(err, http.StatusNotFound) }

// errorBody is the wire shape of every API error.
type errorBody struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// apiError builds the *APIError of a non-2xx response body. A body that is
// not the API's error shape (a proxy's HTML page) keeps a short excerpt.
func apiError(status int, body []byte) *APIError {
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		return &APIError{Status: status, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	msg := http.StatusText(status)
	if excerpt := strings.Join(strings.Fields(string(body)), " "); excerpt != "" {
		if len(excerpt) > 200 {
			excerpt = excerpt[:200] + "…"
		}
		msg += ": " + excerpt
	}
	return &APIError{Status: status, Code: fmt.Sprintf("http_%d", status), Message: msg}
}

// endpoint is the URL of an API path (its segments already escaped) with
// an optional query.
func (c *Client) endpoint(path string, q url.Values) string {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawPath = c.base.EscapedPath() + path
	u.RawQuery = q.Encode()
	return u.String()
}

// seg escapes one path segment (an app name, an env key).
func seg(s string) string { return url.PathEscape(s) }

// do sends a request with an optional JSON body and decodes a 2xx JSON
// answer into out (nil: the body is discarded).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(path, q), body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.authorize(req.Header)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err // a *url.Error: `Get "URL": what failed`
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, req.URL.Redacted(), err)
	}
	if len(raw) > maxResponse {
		return fmt.Errorf("%s %s: response larger than %d bytes", method, req.URL.Redacted(), maxResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp.StatusCode, raw)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, req.URL.Redacted(), err)
	}
	return nil
}

// authorize sets the headers every request carries.
func (c *Client) authorize(h http.Header) {
	h.Set("Authorization", "Bearer "+c.token)
	h.Set("Accept", "application/json")
	if c.UserAgent != "" {
		h.Set("User-Agent", c.UserAgent)
	}
}
