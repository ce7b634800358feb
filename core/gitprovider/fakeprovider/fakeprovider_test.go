package fakeprovider_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/core/gitprovider"
	"github.com/wisehosting/wisehosting/core/gitprovider/fakeprovider"
)

// TestAPI drives the fake over raw HTTP: what the gitprovider tests do
// not reach (GitLab's PRIVATE-TOKEN, malformed bodies, unknown paths).
func TestAPI(t *testing.T) {
	fake := fakeprovider.New(t)
	fake.AddRepo(gitprovider.GitLab, "g/s/app", "tok")
	fake.AddRepo(gitprovider.Codeberg, "o/app", "tok")
	tests := []struct {
		name, method, path, body string
		header                   [2]string
		status                   int
	}{
		{name: "private token", method: "POST", path: "/gitlab/api/v4/projects/g%2Fs%2Fapp/hooks", body: `{"url":"http://127.0.0.1/h","token":"s"}`,
			header: [2]string{"PRIVATE-TOKEN", "tok"}, status: 201},
		{name: "no url", method: "POST", path: "/gitlab/api/v4/projects/g%2Fs%2Fapp/hooks", body: `{"token":"s"}`,
			header: [2]string{"Authorization", "Bearer tok"}, status: 400},
		{name: "not JSON", method: "POST", path: "/gitlab/api/v4/projects/g%2Fs%2Fapp/hooks", body: `url=x`,
			header: [2]string{"Authorization", "Bearer tok"}, status: 400},
		{name: "unescaped project path", method: "POST", path: "/gitlab/api/v4/projects/g/s/app/hooks", body: `{"url":"http://127.0.0.1/h"}`,
			header: [2]string{"Authorization", "Bearer tok"}, status: 404},
		{name: "gitea bad type", method: "POST", path: "/gitea/api/v1/repos/o/app/hooks", body: `{"type":"slack","config":{"url":"http://x","content_type":"json"}}`,
			header: [2]string{"Authorization", "token tok"}, status: 422},
		{name: "gitea basic auth", method: "POST", path: "/gitea/api/v1/repos/o/app/hooks", body: `{}`,
			header: [2]string{"Authorization", "Basic dG9rOg=="}, status: 401},
		{name: "unknown path", method: "GET", path: "/github/user", status: 404},
	}
	for _, tt := range tests {
		req, err := http.NewRequestWithContext(t.Context(), tt.method, fake.URL()+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if tt.header[0] != "" {
			req.Header.Set(tt.header[0], tt.header[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
	}
	hooks := fake.Hooks()
	if len(hooks) != 1 || hooks[0].Repo != "g/s/app" || hooks[0].AuthScheme != "PRIVATE-TOKEN" || hooks[0].Secret != "s" {
		t.Fatalf("hooks = %+v", hooks)
	}
}

func TestDeliverRefuses(t *testing.T) {
	fake := fakeprovider.New(t)
	ctx := t.Context()
	hook := fakeprovider.Hook{Provider: gitprovider.GitHub, Repo: "a/b", ID: "1", URL: "http://192.0.2.1/h", Secret: "s", Active: true}
	if _, err := fake.Push(ctx, hook, "main", strings.Repeat("a", 40), "m"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("a delivery to 192.0.2.1: %v", err)
	}
	hook.URL, hook.Active = "http://127.0.0.1:1/h", false
	if _, err := fake.Push(ctx, hook, "main", strings.Repeat("a", 40), "m"); err == nil || !strings.Contains(err.Error(), "not active") {
		t.Fatalf("a delivery to an inactive hook: %v", err)
	}
}
