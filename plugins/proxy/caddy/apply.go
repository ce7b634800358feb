package caddy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// ApplyTimeout bounds one Apply: connecting to the admin API, sending the
// configuration and Caddy switching to it (a 20,000-route configuration
// loads in a few seconds). The caller's deadline applies when sooner.
const ApplyTimeout = 30 * time.Second

// maxErrorBody bounds how much of Caddy's answer to a failed load an error
// carries; maxReadBody bounds how much of it is read.
const (
	maxErrorBody = 512
	maxReadBody  = 64 << 10
)

// newClient returns the client for Caddy's admin API: never through an
// HTTP proxy from the environment, no redirects followed, a new connection
// per request (Caddy restarts its admin server on every load, so a kept-
// alive connection would be stale by the next Apply).
func newClient() *http.Client {
	return &http.Client{
		Timeout: ApplyTimeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			DisableKeepAlives:     true,
			ResponseHeaderTimeout: ApplyTimeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Apply implements sdk.ProxyApplier: it renders the route table and loads
// it into Caddy with POST <admin>/load. It returns applied once Caddy
// answers 2xx, that is once Caddy runs the new configuration; any other
// outcome is an error carrying Caddy's status and message. Applies are
// serialised; nothing is retried.
func (p *Plugin) Apply(ctx context.Context, req *pluginv1.ApplyRequest) (*pluginv1.ApplyResponse, error) {
	select {
	case p.applying <- struct{}{}:
		defer func() { <-p.applying }()
	case <-ctx.Done():
		return nil, fmt.Errorf("caddy: apply: waiting for the previous apply: %w", ctx.Err())
	}
	body, s, err := p.build(req.GetRoutes(), req.GetGeneration())
	if err != nil {
		return nil, fmt.Errorf("caddy: apply: rendering: %w", err)
	}
	start := time.Now()
	if err := load(ctx, p.client, s.admin, body); err != nil {
		return nil, fmt.Errorf("caddy: apply: %w", err)
	}
	took := time.Since(start)
	p.log.Debug("configuration loaded into Caddy", "admin", s.admin, "generation", req.GetGeneration(),
		"bytes", len(body), "took", took)
	return &pluginv1.ApplyResponse{
		Applied: true,
		Message: fmt.Sprintf("Caddy at %s loaded generation %d (%d bytes) in %v", s.admin, req.GetGeneration(), len(body), took.Round(time.Millisecond)),
	}, nil
}

// load posts a configuration to the /load endpoint of the admin API at
// admin (host:port).
func load(ctx context.Context, c *http.Client, admin string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, ApplyTimeout)
	defer cancel()
	u := "http://" + admin + "/load"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: %w", u, err)
	}
	req.Header.Set("Content-Type", ContentType)
	resp, err := c.Do(req)
	if err != nil {
		return err // a *url.Error: `Post "http://…/load": <cause>`
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxReadBody))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return fmt.Errorf("POST %s: Caddy answered %s: %s", u, resp.Status, caddyMessage(answer))
}

// caddyMessage is what an error says of Caddy's answer to a failed load:
// the "error" field of its JSON error object, or the raw answer; control
// characters turned to spaces, invalid UTF-8 replaced, cut short.
func caddyMessage(answer []byte) string {
	msg := string(answer)
	var obj struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(answer, &obj); err == nil && obj.Error != "" {
		msg = obj.Error
	}
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, msg)
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return "(no message)"
	}
	if len(msg) > maxErrorBody {
		cut := maxErrorBody
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}
