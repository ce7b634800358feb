package httpplans

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/wisehosting/wisehosting/sdk/outbound"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/units"
)

// errTimeout is the cause of a fetch that ran out of its timeout.
var errTimeout = errors.New("fetch timeout")

// fetch fetches g's catalogue once: on success it becomes the catalogue in
// force (or, on 304, the one in force is confirmed); on failure the one in
// force stays. It waits for a fetch already under way; with onlyIfEmpty it
// then returns at once if that fetch got a catalogue. The error, if any,
// is the message for the operator: the URL without its query, no header
// value.
func (p *Plugin) fetch(ctx context.Context, g *generation, onlyIfEmpty bool) error {
	select {
	case g.fetching <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("fetching the plan catalogue from %s: %w", g.s.logURL, context.Cause(ctx))
	}
	defer func() {
		<-g.fetching
		if g.ctx.Err() != nil { // replaced or closed while fetching
			g.s.client.CloseIdleConnections()
		}
	}()
	if onlyIfEmpty && g.cur.Load() != nil {
		return nil
	}

	prev := g.cur.Load()
	next, err := p.get(ctx, g.s, prev)
	now := p.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("fetching the plan catalogue from %s: %s", g.s.logURL, outbound.Scrub(err.Error(), g.s.redact))
		g.lastErr, g.lastErrAt = err, now
		g.failures++
		return err
	}
	if g.failures > 0 && prev != nil {
		p.log.Info("plan catalogue refresh works again", "url", g.s.logURL, "failures", g.failures)
	}
	g.lastErr, g.failures = nil, 0
	next.fetched = now
	g.cur.Store(next)
	switch {
	case next.resp == prev.respOrNil():
		p.log.Debug("plan catalogue not modified", "url", g.s.logURL)
	case prev != nil && sameCatalogue(prev.resp, next.resp):
		p.log.Debug("plan catalogue unchanged", "url", g.s.logURL)
	default:
		p.log.Info("plan catalogue fetched", "url", g.s.logURL, "plans", len(next.resp.GetPlans()),
			"default", next.resp.GetDefaultPlan(), "first", prev == nil)
	}
	return nil
}

func (s *snapshot) respOrNil() *pluginv1.PlansResponse {
	if s == nil {
		return nil
	}
	return s.resp
}

// get makes one request and returns the catalogue it yields: prev's on
// 304 Not Modified.
func (p *Plugin) get(parent context.Context, s *settings, prev *snapshot) (*snapshot, error) {
	ctx, cancel := context.WithTimeoutCause(parent, s.timeout, errTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, errors.New("cannot make the request")
	}
	req.Header = s.headers.Clone()
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", UserAgent)
	}
	if prev != nil {
		if prev.etag != "" {
			req.Header.Set("If-None-Match", prev.etag)
		}
		if prev.lastModified != "" {
			req.Header.Set("If-Modified-Since", prev.lastModified)
		}
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return nil, s.describe(ctx, err)
	}
	defer resp.Body.Close()

	switch code := resp.StatusCode; {
	case code == http.StatusNotModified:
		if prev == nil {
			return nil, errors.New("answered 304 Not Modified to a request that asked for no condition")
		}
		next := *prev
		if v := resp.Header.Get("ETag"); v != "" {
			next.etag = v
		}
		if v := resp.Header.Get("Last-Modified"); v != "" {
			next.lastModified = v
		}
		return &next, nil
	case code >= 300 && code < 400:
		return nil, fmt.Errorf("answered %s: redirects are not followed; set url to the address the document is served at", resp.Status)
	case code < 200 || code >= 300:
		// Scrubbed before it is cut: a cut would leave a part of a
		// header value the whole error's scrub no longer finds.
		if q := outbound.Clean(string(outbound.ReadAnswer(resp, s.redact).Body), maxQuote); q != "" {
			return nil, fmt.Errorf("answered %s: %s", resp.Status, q)
		}
		return nil, fmt.Errorf("answered %s", resp.Status)
	}

	if resp.ContentLength > s.maxSize {
		return nil, fmt.Errorf("the document is %s, larger than max_size (%s)", units.FormatSize(resp.ContentLength), units.FormatSize(s.maxSize))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the document: %w", s.describe(ctx, err))
	}
	if int64(len(body)) > s.maxSize {
		return nil, fmt.Errorf("the document is larger than max_size (%s)", units.FormatSize(s.maxSize))
	}
	cat, err := ParseDocument(body)
	if err != nil {
		return nil, fmt.Errorf("the document is not a valid plan catalogue: %w", err)
	}
	return &snapshot{resp: cat, etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}, nil
}

// describe turns a transport error into a message without the URL (the
// request's *url.Error holds it whole, query included).
func (s *settings) describe(ctx context.Context, err error) error {
	if context.Cause(ctx) == errTimeout {
		return fmt.Errorf("no complete answer within the timeout (%s)", units.FormatDuration(s.timeout))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stopped before a complete answer: %v", context.Cause(ctx))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err
}

// sameCatalogue reports whether two catalogues are the same.
func sameCatalogue(a, b *pluginv1.PlansResponse) bool {
	if a.GetDefaultPlan() != b.GetDefaultPlan() || len(a.GetPlans()) != len(b.GetPlans()) {
		return false
	}
	for i, x := range a.GetPlans() {
		y := b.GetPlans()[i]
		if x.GetId() != y.GetId() || x.GetName() != y.GetName() || x.GetMaxApps() != y.GetMaxApps() ||
			x.GetCpu() != y.GetCpu() || x.GetMemory() != y.GetMemory() || x.GetDisk() != y.GetDisk() ||
			x.GetBandwidth() != y.GetBandwidth() {
			return false
		}
	}
	return true
}
