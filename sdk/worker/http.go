package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// maxResponse bounds what the client reads of an HTTP answer.
const maxResponse = 1 << 20

// HTTPError is a non-200 answer of the core's worker endpoints, with the
// core's {"error": {"code", "message"}} body when it sent one.
type HTTPError struct {
	// Endpoint is the path requested, e.g. "/v1/workers/register".
	Endpoint string
	// Status is the HTTP status code.
	Status int
	// Code and Message come from the core's error body.
	Code, Message string
}

// Error implements error.
func (e *HTTPError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("worker: %s: HTTP %d", e.Endpoint, e.Status)
	}
	return fmt.Sprintf("worker: %s: HTTP %d %s: %s", e.Endpoint, e.Status, e.Code, e.Message)
}

// Unwrap lets errors.Is find ErrUnauthorized (401) and ErrRejected (other
// 4xx that a retry cannot fix).
func (e *HTTPError) Unwrap() error {
	switch {
	case e.Status == http.StatusUnauthorized:
		return ErrUnauthorized
	case e.Status >= 400 && e.Status < 500 && !retryable4xx(e.Status):
		return ErrRejected
	}
	return nil
}

func retryable4xx(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return false
}

// permanent reports whether err ends Run.
func permanent(err error) bool {
	return errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrRejected)
}

// post sends an authenticated POST with the raw API key and decodes a 200
// answer into out.
func (c *Client) post(ctx context.Context, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("worker: %s: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, body)
	if err != nil {
		return fmt.Errorf("worker: %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("worker: %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("worker: %s: read answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		he := &HTTPError{Endpoint: path, Status: resp.StatusCode}
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &eb) == nil {
			he.Code, he.Message = eb.Error.Code, eb.Error.Message
		}
		return he
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("worker: %s: decode answer: %w", path, err)
	}
	return nil
}

// register posts the registration and keeps the worker info and token.
func (c *Client) register(ctx context.Context) error {
	var resp wsproto.RegisterResponse
	if err := c.post(ctx, "/v1/workers/register", &c.cfg.Registration, &resp); err != nil {
		return err
	}
	if resp.Token == "" {
		return errors.New("worker: /v1/workers/register: the answer has no token")
	}
	c.mu.Lock()
	c.worker = resp.Worker
	c.hbInterval = time.Duration(resp.HeartbeatIntervalMS) * time.Millisecond
	c.mu.Unlock()
	c.setToken(resp.TokenResponse)
	c.log.Info("registered", "worker_id", resp.Worker.ID, "name", resp.Worker.Name, "zone", resp.Worker.Zone)
	return nil
}

// refreshToken fetches a fresh JWT with the raw key.
func (c *Client) refreshToken(ctx context.Context) error {
	var resp wsproto.TokenResponse
	if err := c.post(ctx, "/v1/workers/refresh-token", nil, &resp); err != nil {
		return err
	}
	if resp.Token == "" {
		return errors.New("worker: /v1/workers/refresh-token: the answer has no token")
	}
	c.refreshes.Add(1)
	c.setToken(resp)
	c.log.Debug("worker token refreshed", "expires_at", resp.TokenExpiresAt)
	return nil
}

// assumedTTL is the lifetime assumed for a token the core sent without an
// expiry.
const assumedTTL = 5 * time.Minute

// setToken stores a token and schedules its refresh.
func (c *Client) setToken(t wsproto.TokenResponse) {
	now := time.Now()
	exp := t.TokenExpiresAt
	if exp.IsZero() {
		exp = now.Add(assumedTTL)
	}
	if !exp.After(now) {
		c.log.Warn("the core sent a token that has already expired by this machine's clock; check the clock (messages are refused beyond 60 s of skew)",
			"expires_at", exp)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token, c.tokenFrom, c.tokenExp, c.forceRefresh = t.Token, now, exp, false
	c.scheduleRefreshLocked(time.Until(c.refreshAtLocked()))
}

// refreshAtLocked is when the current token should be replaced:
// wsproto.RefreshSkew before it expires, or halfway through its life for a
// token that lives less than twice the skew. A token that looked expired on
// arrival (this clock disagrees with the core's) is refreshed after
// MaxBackoff rather than in a loop; the core judges it by its own clock.
func (c *Client) refreshAtLocked() time.Time {
	life := c.tokenExp.Sub(c.tokenFrom)
	if life <= 0 {
		return c.tokenFrom.Add(c.cfg.MaxBackoff)
	}
	return c.tokenExp.Add(-min(wsproto.RefreshSkew, life/2))
}

func (c *Client) scheduleRefreshLocked(d time.Duration) {
	if c.stopped {
		return
	}
	if d < 0 {
		d = 0
	}
	if c.refresh == nil {
		c.refresh = time.AfterFunc(d, c.onRefreshTimer)
		return
	}
	c.refresh.Reset(d)
}

// onRefreshTimer refreshes the JWT in the background, so that a reconnect
// finds a valid one ready. A 401 means the key was rotated or deleted: Run
// stops with ErrUnauthorized.
func (c *Client) onRefreshTimer() {
	if !c.enter() {
		return
	}
	defer c.cb.Done()
	c.mu.Lock()
	ctx, cancel := c.runCtx, c.cancel
	c.mu.Unlock()
	err := c.refreshToken(ctx)
	switch {
	case err == nil:
	case permanent(err):
		c.log.Error("the core refused the API key on token refresh; stopping", "error", err)
		cancel(err)
	case ctx.Err() != nil:
	default:
		d := c.cfg.MaxBackoff/2 + rand.N(c.cfg.MaxBackoff/2+1)
		c.log.Warn("token refresh failed; retrying", "error", err, "retry_in", d)
		c.mu.Lock()
		c.scheduleRefreshLocked(d)
		c.mu.Unlock()
	}
}

// currentToken returns a token good for an upgrade, refreshing it first
// when it is due (or the core refused it). A failed refresh falls back on
// a token that has not expired yet.
func (c *Client) currentToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	now := time.Now()
	tok, due := c.token, c.forceRefresh || !now.Before(c.refreshAtLocked())
	expired := !now.Before(c.tokenExp) && c.tokenExp.After(c.tokenFrom)
	c.mu.Unlock()
	if !due {
		return tok, nil
	}
	err := c.refreshToken(ctx)
	if err == nil {
		c.mu.Lock()
		tok = c.token
		c.mu.Unlock()
		return tok, nil
	}
	if permanent(err) || expired || ctx.Err() != nil {
		return "", err
	}
	c.log.Warn("token refresh failed; using the current token", "error", err)
	return tok, nil
}
