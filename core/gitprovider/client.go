package gitprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultAPIBase is provider p's public API base URL ("" for an unknown
// provider).
func DefaultAPIBase(p Provider) string {
	switch p {
	case GitHub:
		return "https://api.github.com"
	case GitLab:
		return "https://gitlab.com/api/v4"
	case Bitbucket:
		return "https://api.bitbucket.org/2.0"
	case Codeberg:
		return "https://codeberg.org/api/v1"
	}
	return ""
}

// Limits of the client.
const (
	// DefaultTimeout bounds a provider call when Options.HTTPClient is nil.
	DefaultTimeout = 20 * time.Second
	// maxAnswer bounds what is read of a provider's answer.
	maxAnswer = 64 << 10
	// maxMessage bounds the provider message kept in an Error.
	maxMessage = 300
	// maxHookURL bounds the hook URL.
	maxHookURL = 2048
	// MinSecretLen is the shortest hook secret CreateHook accepts.
	MinSecretLen = 16
	// maxSecretLen is the longest.
	maxSecretLen = 256
)

// hookDescription names our hooks in the providers' settings pages.
const hookDescription = "WiseHosting auto-deploy"

// Options configure a Client.
type Options struct {
	// HTTPClient makes the calls; nil means a client with DefaultTimeout.
	HTTPClient *http.Client
	// APIBase overrides DefaultAPIBase per provider (tests point it at a
	// fake; an operator at an API proxy). Repositories on declared Hosts
	// use their host's APIBase instead.
	APIBase map[Provider]string
	// Hosts are the declared self-hosted instances ParseRepo accepts.
	Hosts []Host
	// UserAgent is sent with every call (GitHub requires one); empty
	// means "WiseHosting".
	UserAgent string
}

// Client creates and deletes push webhooks with a user's token. It is safe
// for concurrent use.
type Client struct {
	hc    *http.Client
	bases map[Provider]string
	hosts []Host
	ua    string
}

// New checks o and returns a Client.
func New(o Options) (*Client, error) {
	c := &Client{hc: o.HTTPClient, bases: map[Provider]string{}, ua: o.UserAgent}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: DefaultTimeout}
	}
	if c.ua == "" {
		c.ua = "WiseHosting"
	}
	for _, p := range Providers() {
		c.bases[p] = DefaultAPIBase(p)
	}
	for p, base := range o.APIBase {
		if !p.Valid() {
			return nil, fmt.Errorf("gitprovider: API base for unknown provider %q", clip(string(p), 32))
		}
		base = strings.TrimRight(strings.TrimSpace(base), "/")
		if err := checkBaseURL(base); err != nil {
			return nil, fmt.Errorf("gitprovider: %s API base: %w", p, err)
		}
		c.bases[p] = base
	}
	if err := ValidateHosts(o.Hosts); err != nil {
		return nil, err
	}
	c.hosts = append([]Host(nil), o.Hosts...)
	return c, nil
}

// ParseRepo is the package's ParseRepo with the client's declared hosts.
func (c *Client) ParseRepo(repoURL string) (Repo, error) { return ParseRepo(repoURL, c.hosts...) }

// The classes of provider failures; an *Error wraps one of them.
var (
	// ErrUnauthorized: the provider refused the token (expired, revoked
	// or never valid); the user must link the account again.
	ErrUnauthorized = errors.New("the provider refused the token")
	// ErrForbidden: the token is valid but lacks a scope or the user
	// lacks admin rights on the repository.
	ErrForbidden = errors.New("the token lacks the rights needed")
	// ErrNotFound: no such repository, or the linked account cannot see
	// it (providers hide private repositories this way).
	ErrNotFound = errors.New("repository not found")
	// ErrUnreachable: the provider could not be reached, failed (5xx) or
	// is rate limiting; retrying later may work.
	ErrUnreachable = errors.New("the provider is unreachable")
	// ErrRejected: the provider refused the request itself (a 4xx other
	// than the above, e.g. GitHub's 422 when the hook already exists).
	ErrRejected = errors.New("the provider rejected the request")
)

// Error is a classified provider failure. Its text never contains the
// token or the hook secret.
type Error struct {
	// Provider and Op ("create hook", "delete hook") say what failed, on
	// Repo (host/owner/name).
	Provider Provider
	Op       string
	Repo     string
	// Status is the provider's HTTP status, 0 when it was not reached.
	Status int
	// Kind is one of ErrUnauthorized, ErrForbidden, ErrNotFound,
	// ErrUnreachable or ErrRejected.
	Kind error
	// Needs says which token scope and repository role the call needs
	// (set for ErrForbidden and ErrNotFound).
	Needs string
	// Message is the provider's own message, bounded, with the token and
	// secret removed; may be empty.
	Message string
	// cause is the transport error when the provider was not reached.
	cause error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gitprovider: %s: %s on %s: %v", e.Provider, e.Op, e.Repo, e.Kind)
	switch {
	case errors.Is(e.Kind, ErrUnauthorized):
		fmt.Fprintf(&b, " (expired or revoked): link the %s account again", e.Provider)
	case errors.Is(e.Kind, ErrForbidden):
		fmt.Fprintf(&b, ": it needs %s", e.Needs)
	case errors.Is(e.Kind, ErrNotFound):
		fmt.Fprintf(&b, ", or the linked account cannot see it (hooks need %s)", e.Needs)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (status %d)", e.Status)
	}
	if e.cause != nil {
		fmt.Fprintf(&b, ": %v", e.cause)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, "; %s said: %s", e.Provider, e.Message)
	}
	return b.String()
}

// Unwrap returns Kind and the transport error.
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Kind, e.cause}
	}
	return []error{e.Kind}
}

// needs says what a token must carry to manage a provider's hooks.
func needs(p Provider) string {
	switch p {
	case GitHub:
		return `the "repo" scope (or "admin:repo_hook"; for a fine-grained token, "Webhooks" read and write) and admin access to the repository`
	case GitLab:
		return `the "api" scope and the Maintainer role on the project`
	case Bitbucket:
		return `the "webhook" scope and admin access to the repository`
	default:
		return `the "write:repository" scope and admin access to the repository`
	}
}

// call is one provider request.
type call struct {
	op, method, path string
	repo             Repo
	token            string
	body             any
	redact           []string
}

// CreateHook creates a webhook on repo, with the user's token, that sends
// JSON push events to hookURL authenticated by secret (see VerifyPush for
// how each provider presents it), and returns the provider's hook id for
// DeleteHook. hookURL must be an absolute http(s) URL; secret must be at
// least MinSecretLen characters (use NewSecret).
func (c *Client) CreateHook(ctx context.Context, token string, repo Repo, hookURL, secret string) (string, error) {
	if err := checkCall(token, repo); err != nil {
		return "", fmt.Errorf("gitprovider: create hook: %w", err)
	}
	if err := checkHookURL(hookURL); err != nil {
		return "", fmt.Errorf("gitprovider: create hook: the hook URL %w", err)
	}
	if len(secret) < MinSecretLen || len(secret) > maxSecretLen || !printableASCII(secret) {
		return "", fmt.Errorf("gitprovider: create hook: the secret must be %d to %d printable ASCII characters", MinSecretLen, maxSecretLen)
	}
	k := call{op: "create hook", method: http.MethodPost, repo: repo, token: token, redact: []string{token, secret}}
	switch repo.Provider {
	case GitHub:
		k.path = "/repos/" + url.PathEscape(repo.Owner) + "/" + url.PathEscape(repo.Name) + "/hooks"
		k.body = map[string]any{
			"name": "web", "active": true, "events": []string{"push"},
			"config": map[string]string{"url": hookURL, "content_type": "json", "secret": secret, "insecure_ssl": "0"},
		}
	case GitLab:
		k.path = "/projects/" + url.PathEscape(repo.Path()) + "/hooks"
		k.body = map[string]any{
			"url": hookURL, "token": secret, "push_events": true, "tag_push_events": false,
			"merge_requests_events": false, "enable_ssl_verification": true,
			"name": hookDescription, "description": hookDescription,
		}
	case Bitbucket:
		k.path = "/repositories/" + url.PathEscape(repo.Owner) + "/" + url.PathEscape(repo.Name) + "/hooks"
		k.body = map[string]any{
			"description": hookDescription, "url": hookURL, "active": true,
			"events": []string{"repo:push"}, "secret": secret,
		}
	case Codeberg:
		k.path = "/repos/" + url.PathEscape(repo.Owner) + "/" + url.PathEscape(repo.Name) + "/hooks"
		k.body = map[string]any{
			"type": "gitea", "active": true, "events": []string{"push"}, "branch_filter": "*",
			"config": map[string]string{"url": hookURL, "content_type": "json", "secret": secret},
		}
	}
	var answer struct {
		ID   json.Number `json:"id"`
		UUID string      `json:"uuid"`
	}
	if err := c.do(ctx, k, &answer); err != nil {
		return "", err
	}
	id := answer.ID.String()
	if repo.Provider == Bitbucket {
		id = answer.UUID
	}
	if !validHookID(repo.Provider, id) {
		return "", fmt.Errorf("gitprovider: %s: create hook on %s: the answer carries no valid hook id", repo.Provider, repo)
	}
	return id, nil
}

// DeleteHook deletes the webhook hookID from repo. A hook (or repository)
// that is already gone counts as deleted.
func (c *Client) DeleteHook(ctx context.Context, token string, repo Repo, hookID string) error {
	if err := checkCall(token, repo); err != nil {
		return fmt.Errorf("gitprovider: delete hook: %w", err)
	}
	if !validHookID(repo.Provider, hookID) {
		return fmt.Errorf("gitprovider: delete hook: %q is not a %s hook id", clip(hookID, 64), repo.Provider)
	}
	k := call{op: "delete hook", method: http.MethodDelete, repo: repo, token: token, redact: []string{token}}
	id := url.PathEscape(hookID)
	switch repo.Provider {
	case GitHub, Codeberg:
		k.path = "/repos/" + url.PathEscape(repo.Owner) + "/" + url.PathEscape(repo.Name) + "/hooks/" + id
	case GitLab:
		k.path = "/projects/" + url.PathEscape(repo.Path()) + "/hooks/" + id
	case Bitbucket:
		k.path = "/repositories/" + url.PathEscape(repo.Owner) + "/" + url.PathEscape(repo.Name) + "/hooks/" + id
	}
	err := c.do(ctx, k, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// checkCall validates what every call needs.
func checkCall(token string, repo Repo) error {
	switch {
	case !repo.Provider.Valid():
		return fmt.Errorf("unknown provider %q", clip(string(repo.Provider), 32))
	case repo.Owner == "" || repo.Name == "":
		return errors.New("the repository has no owner or name")
	case token == "":
		return fmt.Errorf("no %s token", repo.Provider)
	case !printableASCII(token) || strings.Contains(token, " "):
		return fmt.Errorf("the %s token has characters a token cannot have", repo.Provider)
	}
	return nil
}

// checkHookURL accepts an absolute http(s) URL without credentials.
func checkHookURL(s string) error {
	if len(s) > maxHookURL {
		return fmt.Errorf("is longer than %d bytes", maxHookURL)
	}
	_, err := parseHTTPURL(s)
	return err
}

// validHookID: Bitbucket ids are UUIDs in braces; the others' are numbers.
func validHookID(p Provider, id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	if p == Bitbucket {
		for i := 0; i < len(id); i++ {
			if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '-' || c == '{' || c == '}') {
				return false
			}
		}
		return true
	}
	n, err := strconv.ParseUint(id, 10, 63)
	return err == nil && n > 0
}

// printableASCII reports whether s holds only printable ASCII.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// do sends k and decodes a 2xx answer into out (when not nil); any other
// outcome is an *Error.
func (c *Client) do(ctx context.Context, k call, out any) error {
	base := k.repo.APIBase
	if base == "" {
		base = c.bases[k.repo.Provider]
	}
	fail := func(status int, kind error, msg string, cause error) error {
		e := &Error{Provider: k.repo.Provider, Op: k.op, Repo: k.repo.String(), Status: status, Kind: kind,
			Message: msg, cause: cause}
		if kind == ErrForbidden || kind == ErrNotFound {
			e.Needs = needs(k.repo.Provider)
		}
		return e
	}
	var body io.Reader
	if k.body != nil {
		p, err := json.Marshal(k.body)
		if err != nil {
			return fmt.Errorf("gitprovider: %s: %s: encode: %w", k.repo.Provider, k.op, err)
		}
		body = bytes.NewReader(p)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, base+k.path, body)
	if err != nil {
		return fmt.Errorf("gitprovider: %s: %s: %w", k.repo.Provider, k.op, err)
	}
	if k.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	switch k.repo.Provider {
	case GitHub:
		req.Header.Set("Authorization", "Bearer "+k.token)
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	case Codeberg:
		req.Header.Set("Authorization", "token "+k.token)
	default:
		req.Header.Set("Authorization", "Bearer "+k.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("gitprovider: %s: %s on %s: %w", k.repo.Provider, k.op, k.repo, ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is known from Repo; keep the cause only
		}
		return fail(0, ErrUnreachable, "", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil && resp.StatusCode/100 == 2 {
		return fail(resp.StatusCode, ErrUnreachable, "", fmt.Errorf("read the answer: %w", err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	switch s := resp.StatusCode; {
	case s/100 == 2:
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("gitprovider: %s: %s on %s: the answer is not the expected JSON", k.repo.Provider, k.op, k.repo)
		}
		return nil
	case s == http.StatusUnauthorized:
		return fail(s, ErrUnauthorized, providerMessage(answer, k.redact), nil)
	case s == http.StatusForbidden && resp.Header.Get("X-RateLimit-Remaining") == "0":
		return fail(s, ErrUnreachable, "rate limited; "+providerMessage(answer, k.redact), nil)
	case s == http.StatusForbidden:
		msg := providerMessage(answer, k.redact)
		if scopes, ok := resp.Header["X-Oauth-Scopes"]; ok && k.repo.Provider == GitHub {
			has := clip(sanitize(strings.Join(scopes, ", "), k.redact), 200)
			if has == "" {
				has = "none"
			}
			msg = strings.TrimPrefix(msg+"; the token's scopes: "+has, "; ")
		}
		return fail(s, ErrForbidden, msg, nil)
	case s == http.StatusNotFound:
		return fail(s, ErrNotFound, providerMessage(answer, k.redact), nil)
	case s == http.StatusTooManyRequests || s >= 500:
		return fail(s, ErrUnreachable, providerMessage(answer, k.redact), nil)
	default:
		return fail(s, ErrRejected, providerMessage(answer, k.redact), nil)
	}
}

// providerMessage extracts the human message from a provider's JSON error
// (GitHub {message, errors[].message}, GitLab {message} or {error,
// error_description}, Bitbucket {error: {message, detail}}, Gitea
// {message}), bounded and with the redact strings removed. A non-JSON
// answer (an HTML error page) gives "".
func providerMessage(answer []byte, redact []string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(answer, &m) != nil {
		return ""
	}
	var parts []string
	add := func(raw json.RawMessage) {
		if len(raw) == 0 || string(raw) == "null" {
			return
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if s != "" {
				parts = append(parts, s)
			}
			return
		}
		var obj struct {
			Message string `json:"message"`
			Detail  any    `json:"detail"`
		}
		if raw[0] == '{' && json.Unmarshal(raw, &obj) == nil && obj.Message != "" {
			parts = append(parts, obj.Message)
			if d, ok := obj.Detail.(string); ok && d != "" {
				parts = append(parts, d)
			}
			return
		}
		var compact bytes.Buffer
		if json.Compact(&compact, raw) == nil {
			parts = append(parts, compact.String())
		}
	}
	add(m["message"])
	add(m["error"])
	add(m["error_description"])
	var errs []struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(m["errors"], &errs) == nil {
		for _, e := range errs {
			if e.Message != "" {
				parts = append(parts, e.Message)
			}
		}
	}
	return clip(sanitize(strings.Join(parts, ": "), redact), maxMessage)
}

// sanitize removes the redact strings and control characters and
// collapses white space.
func sanitize(s string, redact []string) string {
	for _, r := range redact {
		if r != "" {
			s = strings.ReplaceAll(s, r, "[redacted]")
		}
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	return strings.Join(strings.Fields(s), " ")
}
