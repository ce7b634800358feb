package gitprovider_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/core/gitprovider"
	"github.com/wisehosting/wisehosting/core/gitprovider/fakeprovider"
)

const (
	adminToken = "tok_admin_0123456789"
	otherToken = "tok_reader_0123456789"
	hookURL    = "http://127.0.0.1:1/api/v1/git/hooks/abc"
)

// providerCase is one provider's repository and the hook fields it must
// have been asked for.
type providerCase struct {
	p        gitprovider.Provider
	url      string
	path     string
	events   []string
	ctype    string
	scheme   string
	scopeMsg string
}

var providerCases = []providerCase{
	{p: gitprovider.GitHub, url: "https://github.com/ada/app", path: "ada/app", events: []string{"push"}, ctype: "json",
		scheme: "Bearer", scopeMsg: `"repo" scope`},
	{p: gitprovider.GitLab, url: "https://gitlab.com/ada/infra/app.git", path: "ada/infra/app", events: []string{"push_events"},
		scheme: "Bearer", scopeMsg: `"api" scope`},
	{p: gitprovider.Bitbucket, url: "https://bitbucket.org/ada/app", path: "ada/app", events: []string{"repo:push"},
		scheme: "Bearer", scopeMsg: `"webhook" scope`},
	{p: gitprovider.Codeberg, url: "https://codeberg.org/ada/app", path: "ada/app", events: []string{"push"}, ctype: "json",
		scheme: "token", scopeMsg: `"write:repository" scope`},
}

// newClient is a Client pointed at a fake with every case's repository,
// administered by adminToken; otherToken is valid but admin of nothing.
func newClient(t *testing.T) (*gitprovider.Client, *fakeprovider.Server) {
	t.Helper()
	fake := fakeprovider.New(t)
	for _, c := range providerCases {
		fake.AddRepo(c.p, c.path, adminToken)
		fake.AddToken(c.p, otherToken)
	}
	client, err := gitprovider.New(gitprovider.Options{APIBase: fake.APIBases()})
	if err != nil {
		t.Fatal(err)
	}
	return client, fake
}

func newSecret(t testing.TB) string {
	t.Helper()
	s, err := gitprovider.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateAndDeleteHook(t *testing.T) {
	client, fake := newClient(t)
	ctx := t.Context()
	for _, c := range providerCases {
		t.Run(string(c.p), func(t *testing.T) {
			repo, err := client.ParseRepo(c.url)
			if err != nil {
				t.Fatal(err)
			}
			secret := newSecret(t)
			id, err := client.CreateHook(ctx, adminToken, repo, hookURL, secret)
			if err != nil {
				t.Fatalf("CreateHook: %v", err)
			}
			hook, ok := fake.Hook(c.p, id)
			if !ok {
				t.Fatalf("the fake has no hook %q: %+v", id, fake.Hooks())
			}
			if hook.Repo != c.path || hook.URL != hookURL || hook.Secret != secret || !hook.Active ||
				hook.ContentType != c.ctype || !slices.Equal(hook.Events, c.events) || hook.Token != adminToken || hook.AuthScheme != c.scheme {
				t.Fatalf("hook = %+v", hook)
			}

			if err := client.DeleteHook(ctx, adminToken, repo, id); err != nil {
				t.Fatalf("DeleteHook: %v", err)
			}
			if _, ok := fake.Hook(c.p, id); ok {
				t.Fatal("the hook is still there")
			}
			if err := client.DeleteHook(ctx, adminToken, repo, id); err != nil {
				t.Fatalf("deleting a deleted hook: %v", err)
			}
		})
	}
}

func TestHookErrors(t *testing.T) {
	client, fake := newClient(t)
	ctx := t.Context()
	for _, c := range providerCases {
		t.Run(string(c.p), func(t *testing.T) {
			repo, err := client.ParseRepo(c.url)
			if err != nil {
				t.Fatal(err)
			}
			secret := newSecret(t)
			missing := repo
			missing.Name = "nope"
			tests := []struct {
				name   string
				token  string
				repo   gitprovider.Repo
				kind   error
				status int
				says   string
			}{
				{name: "unknown token", token: "tok_wrong_0123456789", repo: repo, kind: gitprovider.ErrUnauthorized, status: 401,
					says: "link the " + string(c.p) + " account again"},
				{name: "not admin", token: otherToken, repo: repo, kind: gitprovider.ErrForbidden, status: 403, says: c.scopeMsg},
				{name: "unknown repo", token: adminToken, repo: missing, kind: gitprovider.ErrNotFound, status: 404, says: "cannot see it"},
			}
			for _, tt := range tests {
				_, err := client.CreateHook(ctx, tt.token, tt.repo, hookURL, secret)
				var perr *gitprovider.Error
				if !errors.Is(err, tt.kind) || !errors.As(err, &perr) || perr.Status != tt.status {
					t.Fatalf("%s: CreateHook = %v, want %v (%d)", tt.name, err, tt.kind, tt.status)
				}
				if msg := err.Error(); !strings.Contains(msg, tt.says) || strings.Contains(msg, tt.token) || strings.Contains(msg, secret) ||
					!strings.Contains(msg, string(c.p)+" said:") {
					t.Fatalf("%s: error text %q", tt.name, msg)
				}
			}
			if err := client.DeleteHook(ctx, "tok_wrong_0123456789", repo, hookIDFor(c.p)); !errors.Is(err, gitprovider.ErrUnauthorized) {
				t.Fatalf("DeleteHook with a wrong token = %v", err)
			}
			if err := client.DeleteHook(ctx, otherToken, repo, hookIDFor(c.p)); !errors.Is(err, gitprovider.ErrForbidden) {
				t.Fatalf("DeleteHook without rights = %v", err)
			}
			if n := len(fake.Hooks()); n != 0 {
				t.Fatalf("%d hooks were created", n)
			}
		})
	}
}

func hookIDFor(p gitprovider.Provider) string {
	if p == gitprovider.Bitbucket {
		return "{0b8e4d0c-7e3a-4c1e-9b7d-8f1f5c9a2d11}"
	}
	return "42"
}

func TestHookInputChecks(t *testing.T) {
	client, _ := newClient(t)
	ctx := t.Context()
	repo, _ := client.ParseRepo("https://github.com/ada/app")
	secret := newSecret(t)
	tests := []struct {
		name               string
		token, url, secret string
		repo               gitprovider.Repo
		err                string
	}{
		{name: "no token", url: hookURL, secret: secret, repo: repo, err: "no github token"},
		{name: "token with newline", token: "a\nb", url: hookURL, secret: secret, repo: repo, err: "characters a token cannot have"},
		{name: "relative hook URL", token: adminToken, url: "/hooks/1", secret: secret, repo: repo, err: "must be an http or https URL"},
		{name: "hook URL creds", token: adminToken, url: "https://u:p@example.com/h", secret: secret, repo: repo, err: "credentials"},
		{name: "short secret", token: adminToken, url: hookURL, secret: "short", repo: repo, err: "the secret must be"},
		{name: "no repo", token: adminToken, url: hookURL, secret: secret, repo: gitprovider.Repo{Provider: "github"}, err: "no owner"},
		{name: "bad provider", token: adminToken, url: hookURL, secret: secret, repo: gitprovider.Repo{Provider: "x", Owner: "a", Name: "b"}, err: "unknown provider"},
	}
	for _, tt := range tests {
		if _, err := client.CreateHook(ctx, tt.token, tt.repo, tt.url, tt.secret); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: CreateHook = %v, want %q", tt.name, err, tt.err)
		}
	}
	for _, id := range []string{"", "0", "-1", "1/2", "abc", "{not-a-uuid!}"} {
		if err := client.DeleteHook(ctx, adminToken, repo, id); err == nil || !strings.Contains(err.Error(), "hook id") {
			t.Errorf("DeleteHook(%q) = %v", id, err)
		}
	}
}

func TestHookRejectedAndUnreachable(t *testing.T) {
	client, _ := newClient(t)
	ctx := t.Context()
	repo, _ := client.ParseRepo("https://github.com/ada/app")
	secret := newSecret(t)
	if _, err := client.CreateHook(ctx, adminToken, repo, hookURL, secret); err != nil {
		t.Fatal(err)
	}
	_, err := client.CreateHook(ctx, adminToken, repo, hookURL, secret)
	if !errors.Is(err, gitprovider.ErrRejected) || !strings.Contains(err.Error(), "Hook already exists") {
		t.Fatalf("a second hook with the same URL = %v", err)
	}

	// A provider that fails, one that rate limits, one that is gone.
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/limited/") {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>bad gateway " + r.Header.Get("Authorization") + "</html>"))
	}))
	t.Cleanup(failing.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + l.Addr().String()
	_ = l.Close()
	for _, base := range []string{failing.URL, gone} {
		c, err := gitprovider.New(gitprovider.Options{APIBase: map[gitprovider.Provider]string{gitprovider.GitHub: base}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateHook(ctx, adminToken, repo, hookURL, secret)
		if !errors.Is(err, gitprovider.ErrUnreachable) || strings.Contains(err.Error(), adminToken) {
			t.Fatalf("%s: CreateHook = %v", base, err)
		}
		limited := repo
		limited.Owner = "limited"
		if _, err := c.CreateHook(ctx, adminToken, limited, hookURL, secret); !errors.Is(err, gitprovider.ErrUnreachable) {
			t.Fatalf("%s: rate limited CreateHook = %v", base, err)
		}
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := client.CreateHook(cancelled, adminToken, repo, hookURL+"2", secret); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled CreateHook = %v", err)
	}
}

// TestSelfHostedHost creates a hook on a declared GitLab instance, whose
// API base is the fake's.
func TestSelfHostedHost(t *testing.T) {
	fake := fakeprovider.New(t)
	fake.AddRepo(gitprovider.GitLab, "team/app", adminToken)
	client, err := gitprovider.New(gitprovider.Options{Hosts: []gitprovider.Host{
		{Host: "git.example.com", Kind: "gitlab", APIBase: fake.APIBase(gitprovider.GitLab)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := client.ParseRepo("https://git.example.com/team/app")
	if err != nil {
		t.Fatal(err)
	}
	id, err := client.CreateHook(t.Context(), adminToken, repo, hookURL, newSecret(t))
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := fake.Hook(gitprovider.GitLab, id); !ok || h.Repo != "team/app" {
		t.Fatalf("hook %+v, %v", h, ok)
	}
	if _, err := gitprovider.ParseRepo("https://git.example.com/team/app"); err == nil {
		t.Fatal("the package ParseRepo knows a host only the client declared")
	}
}

func TestNewSecret(t *testing.T) {
	a, b := newSecret(t), newSecret(t)
	if len(a) != 64 || strings.Trim(a, "0123456789abcdef") != "" || a == b {
		t.Fatalf("secrets %q, %q", a, b)
	}
}
