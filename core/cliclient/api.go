package cliclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Me returns the caller: the user the token belongs to. It accepts both
// {"user": {…}} and the bare user object.
func (c *Client) Me(ctx context.Context) (*User, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/v1/me", nil, nil, &raw); err != nil {
		return nil, err
	}
	var wrapped struct {
		User json.RawMessage `json:"user"`
	}
	src := raw
	if json.Unmarshal(raw, &wrapped) == nil && len(wrapped.User) > 0 && wrapped.User[0] == '{' {
		src = wrapped.User
	}
	var u User
	if err := json.Unmarshal(src, &u); err != nil {
		return nil, fmt.Errorf("me: decode user: %w", err)
	}
	if u.Email == "" {
		return nil, fmt.Errorf("me: the answer has no user")
	}
	return &u, nil
}

// ListApps returns the caller's apps.
func (c *Client) ListApps(ctx context.Context) ([]*App, error) {
	var out struct {
		Apps []*App `json:"apps"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/apps", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Apps, nil
}

// CreateApp creates an app and, with req.Deploy, starts its first
// deployment.
func (c *Client) CreateApp(ctx context.Context, req CreateApp) (*Created, error) {
	var out Created
	if err := c.do(ctx, http.MethodPost, "/api/v1/apps", nil, req, &out); err != nil {
		return nil, err
	}
	if out.App == nil {
		return nil, fmt.Errorf("create app: the answer has no app")
	}
	return &out, nil
}

// GetApp returns the app ref names: its UUID or its name.
func (c *Client) GetApp(ctx context.Context, ref string) (*App, error) {
	var out struct {
		App *App `json:"app"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/apps/"+seg(ref), nil, nil, &out); err != nil {
		return nil, err
	}
	if out.App == nil {
		return nil, fmt.Errorf("get app: the answer has no app")
	}
	return out.App, nil
}

// UpdateApp changes the app's spec and returns it.
func (c *Client) UpdateApp(ctx context.Context, ref string, p AppPatch) (*App, error) {
	var out struct {
		App *App `json:"app"`
	}
	if err := c.do(ctx, http.MethodPatch, "/api/v1/apps/"+seg(ref), nil, p, &out); err != nil {
		return nil, err
	}
	if out.App == nil {
		return nil, fmt.Errorf("update app: the answer has no app")
	}
	return out.App, nil
}

// DeleteApp deletes the app: stopped and hidden, or with hard, removed for
// good.
func (c *Client) DeleteApp(ctx context.Context, ref string, hard bool) error {
	var q url.Values
	if hard {
		q = url.Values{"hard": {"true"}}
	}
	return c.do(ctx, http.MethodDelete, "/api/v1/apps/"+seg(ref), q, nil, nil)
}

// DeployApp starts a deployment of the app.
func (c *Client) DeployApp(ctx context.Context, ref string, req Deploy) (*Accepted, error) {
	var out Accepted
	if err := c.do(ctx, http.MethodPost, "/api/v1/apps/"+seg(ref)+"/deploy", nil, req, &out); err != nil {
		return nil, err
	}
	if out.Deployment == nil {
		return nil, fmt.Errorf("deploy: the answer has no deployment")
	}
	return &out, nil
}

// StartApp asks for the app to be started.
func (c *Client) StartApp(ctx context.Context, ref string) (*Accepted, error) {
	return c.action(ctx, ref, "start")
}

// StopApp asks for the app to be stopped.
func (c *Client) StopApp(ctx context.Context, ref string) (*Accepted, error) {
	return c.action(ctx, ref, "stop")
}

// RestartApp asks for the app to be restarted (a new deployment of its
// current commit, with the current env vars).
func (c *Client) RestartApp(ctx context.Context, ref string) (*Accepted, error) {
	return c.action(ctx, ref, "restart")
}

func (c *Client) action(ctx context.Context, ref, action string) (*Accepted, error) {
	var out Accepted
	if err := c.do(ctx, http.MethodPost, "/api/v1/apps/"+seg(ref)+"/"+action, nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Job == nil && out.Deployment == nil {
		return nil, fmt.Errorf("%s: the answer has neither a job nor a deployment", action)
	}
	return &out, nil
}

// GetDeployment returns a deployment with its build log so far.
func (c *Client) GetDeployment(ctx context.Context, id ID) (*Deployment, error) {
	var out struct {
		Deployment *Deployment `json:"deployment"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/deployments/"+seg(string(id)), nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Deployment == nil {
		return nil, fmt.Errorf("get deployment: the answer has no deployment")
	}
	return out.Deployment, nil
}

// ListDeployments returns the app's latest deployments, newest first;
// limit 0 means the server's default.
func (c *Client) ListDeployments(ctx context.Context, ref string, limit int) ([]*Deployment, error) {
	return c.deployments(ctx, "/api/v1/apps/"+seg(ref)+"/deployments", limit)
}

// RecentDeployments returns the caller's latest deployments across apps.
func (c *Client) RecentDeployments(ctx context.Context, limit int) ([]*Deployment, error) {
	return c.deployments(ctx, "/api/v1/deployments", limit)
}

func (c *Client) deployments(ctx context.Context, path string, limit int) ([]*Deployment, error) {
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var out struct {
		Deployments []*Deployment `json:"deployments"`
	}
	if err := c.do(ctx, http.MethodGet, path, q, nil, &out); err != nil {
		return nil, err
	}
	return out.Deployments, nil
}

// GetJob returns a job.
func (c *Client) GetJob(ctx context.Context, id ID) (*Job, error) {
	var out struct {
		Job *Job `json:"job"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+seg(string(id)), nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Job == nil {
		return nil, fmt.Errorf("get job: the answer has no job")
	}
	return out.Job, nil
}

// ListEnv returns the app's environment variables.
func (c *Client) ListEnv(ctx context.Context, ref string) ([]*EnvVar, error) {
	var out struct {
		Env []*EnvVar `json:"env"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/apps/"+seg(ref)+"/env", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Env, nil
}

// SetEnv sets one environment variable; note says when it takes effect.
func (c *Client) SetEnv(ctx context.Context, ref, key, value string) (v *EnvVar, note string, err error) {
	var out struct {
		EnvVar *EnvVar `json:"env_var"`
		Note   string  `json:"note"`
	}
	body := struct {
		Value string `json:"value"`
	}{value}
	if err := c.do(ctx, http.MethodPut, "/api/v1/apps/"+seg(ref)+"/env/"+seg(key), nil, body, &out); err != nil {
		return nil, "", err
	}
	return out.EnvVar, out.Note, nil
}

// DeleteEnv removes one environment variable; note says when it takes
// effect.
func (c *Client) DeleteEnv(ctx context.Context, ref, key string) (note string, err error) {
	var out struct {
		Note string `json:"note"`
	}
	if err := c.do(ctx, http.MethodDelete, "/api/v1/apps/"+seg(ref)+"/env/"+seg(key), nil, nil, &out); err != nil {
		return "", err
	}
	return out.Note, nil
}

// Logs returns the app's last tail runtime log lines (negative: the
// server's default), oldest first.
func (c *Client) Logs(ctx context.Context, ref string, tail int) ([]LogLine, error) {
	var q url.Values
	if tail >= 0 {
		q = url.Values{"tail": {strconv.Itoa(tail)}}
	}
	var out struct {
		Lines []LogLine `json:"lines"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/apps/"+seg(ref)+"/logs", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Lines, nil
}

// AddDomain adds a custom hostname to the app and returns it with the DNS
// record that proves it is the caller's.
func (c *Client) AddDomain(ctx context.Context, ref, hostname string) (*Domain, *DNSRecord, error) {
	var out struct {
		Domain *Domain    `json:"domain"`
		Record *DNSRecord `json:"record"`
	}
	body := struct {
		Hostname string `json:"hostname"`
	}{hostname}
	if err := c.do(ctx, http.MethodPost, "/api/v1/apps/"+seg(ref)+"/domains", nil, body, &out); err != nil {
		return nil, nil, err
	}
	if out.Domain == nil {
		return nil, nil, fmt.Errorf("add domain: the answer has no domain")
	}
	return out.Domain, out.Record, nil
}

// VerifyDomain checks the domain's DNS record now; a record that is not
// there (yet) is an *APIError with code "verification_failed".
func (c *Client) VerifyDomain(ctx context.Context, id ID) (*Domain, error) {
	var out struct {
		Domain *Domain `json:"domain"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/domains/"+seg(string(id))+"/verify", nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Domain == nil {
		return nil, fmt.Errorf("verify domain: the answer has no domain")
	}
	return out.Domain, nil
}

// ListDomains returns the app's custom domains.
func (c *Client) ListDomains(ctx context.Context, ref string) ([]*Domain, error) {
	var out struct {
		Domains []*Domain `json:"domains"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/apps/"+seg(ref)+"/domains", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Domains, nil
}

// DeleteDomain removes a custom domain.
func (c *Client) DeleteDomain(ctx context.Context, id ID) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/domains/"+seg(string(id)), nil, nil, nil)
}
