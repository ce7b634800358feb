package cliclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/cliclient"
	"github.com/wisehosting/wisehosting/core/cliclient/clitest"
)

func newClient(t *testing.T, srv *clitest.Server) *cliclient.Client {
	t.Helper()
	c, err := cliclient.New(srv.URL, srv.Token, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCLIClientNewChecksTheURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{in: "http://127.0.0.1:8443", want: "http://127.0.0.1:8443"},
		{in: "https://core.example.com/", want: "https://core.example.com"},
		{in: " https://example.com/wisehosting/ ", want: "https://example.com/wisehosting"},
		{in: "core.example.com", err: "want an http:// or https:// URL"},
		{in: "ftp://core.example.com", err: "want an http:// or https:// URL"},
		{in: "http://", err: "no host"},
		{in: "https://ada:pw@core.example.com", err: "credentials"},
		{in: "https://core.example.com/?x=1", err: "no query"},
		{in: "https://core.example.com/#top", err: "no query or fragment"},
	}
	for _, tc := range tests {
		c, err := cliclient.New(tc.in, "wht_x", nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("New(%q) = %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || c.BaseURL() != tc.want {
			t.Errorf("New(%q): base %v, %v; want %q", tc.in, c, err, tc.want)
		}
	}
}

// Every API error comes back as an *APIError printing "code: message"; a
// body that is not the API's (a proxy's page) keeps the status and an
// excerpt.
func TestCLIClientErrorMapping(t *testing.T) {
	t.Parallel()
	srv := clitest.New(t)
	srv.AddApp("taken-name")
	c := newClient(t, srv)
	bad, err := cliclient.New(srv.URL, "wht_wrong", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tests := []struct {
		name   string
		call   func() error
		status int
		text   string
	}{
		{"bad token", func() error { _, err := bad.ListApps(ctx); return err }, 401, "unauthorized: missing or invalid credentials"},
		{"missing app", func() error { _, err := c.GetApp(ctx, "nope-nope"); return err }, 404, "not_found: no such app"},
		{"a name that is a path", func() error { _, err := c.GetApp(ctx, "../apps"); return err }, 404, "not_found: no such app"},
		{"bad name", func() error {
			_, err := c.CreateApp(ctx, cliclient.CreateApp{Name: "X", GitRepo: "r"})
			return err
		}, 400, `invalid: name "X": use 7 to 32`},
		{"taken name", func() error {
			_, err := c.CreateApp(ctx, cliclient.CreateApp{Name: "taken-name", GitRepo: "r"})
			return err
		}, 409, "conflict: app already exists"},
		{"bad env key", func() error { _, _, err := c.SetEnv(ctx, "taken-name", "1BAD", "v"); return err }, 400, "invalid: env var name"},
		{"missing deployment", func() error { _, err := c.GetDeployment(ctx, "999"); return err }, 404, "not_found: no such deployment"},
	}
	for _, tc := range tests {
		err := tc.call()
		var ae *cliclient.APIError
		if !errors.As(err, &ae) || ae.Status != tc.status || !strings.HasPrefix(err.Error(), tc.text) {
			t.Errorf("%s: got %v (%#v), want status %d and %q", tc.name, err, ae, tc.status, tc.text)
		}
	}
	if err := tests[1].call(); !cliclient.IsNotFound(err) {
		t.Errorf("IsNotFound(%v) = false", err)
	}

	// Not the API's error body.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><body>\n  <h1>502 Bad Gateway</h1>\n</body></html>"))
	}))
	t.Cleanup(proxy.Close)
	pc, err := cliclient.New(proxy.URL, "wht_x", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pc.ListApps(ctx)
	want := "http_502: Bad Gateway: <html><body> <h1>502 Bad Gateway</h1> </body></html>"
	if !cliclient.IsStatus(err, 502) || err.Error() != want {
		t.Errorf("a proxy's 502 = %v, want %q", err, want)
	}

	// Nothing listening.
	dead, err := cliclient.New("http://127.0.0.1:1", "wht_x", &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dead.ListApps(ctx); err == nil || !strings.HasPrefix(err.Error(), `Get "http://127.0.0.1:1/api/v1/apps": dial tcp`) {
		t.Errorf("a refused connection = %v, want the request named", err)
	}
}

func TestCLIClientMeBothShapes(t *testing.T) {
	t.Parallel()
	for _, wrap := range []bool{false, true} {
		srv := clitest.New(t)
		srv.WrapMe = wrap
		u, err := newClient(t, srv).Me(t.Context())
		if err != nil || u.Email != "ada@example.com" || u.ID != "1" || u.Plan != "free" {
			t.Errorf("wrapped=%v: Me = %+v, %v", wrap, u, err)
		}
	}
}

// The whole contract, call by call, against the fake.
func TestCLIClientEndpoints(t *testing.T) {
	t.Parallel()
	srv := clitest.New(t)
	c := newClient(t, srv)
	ctx := t.Context()

	created, err := c.CreateApp(ctx, cliclient.CreateApp{Name: "hello-world", GitRepo: "https://git.example.com/a.git",
		GitBranch: "dev", RunCommand: "./app", Port: 3000, Env: map[string]string{"B": "2", "A": "1"}, Deploy: true})
	if err != nil {
		t.Fatal(err)
	}
	if a := created.App; a.Name != "hello-world" || a.GitBranch != "dev" || a.Port != 3000 || a.RunCommand != "./app" ||
		created.Deployment == nil || created.Deployment.Status != cliclient.DeploymentPending {
		t.Fatalf("created %+v with deployment %+v", a, created.Deployment)
	}
	gen, err := c.CreateApp(ctx, cliclient.CreateApp{GitRepo: "https://git.example.com/b.git"})
	if err != nil || gen.App.Name == "" || gen.Deployment != nil {
		t.Fatalf("an unnamed app: %+v, %v", gen, err)
	}
	apps, err := c.ListApps(ctx)
	if err != nil || len(apps) != 2 || apps[0].Name != "hello-world" {
		t.Fatalf("ListApps = %v, %v", apps, err)
	}
	byUUID, err := c.GetApp(ctx, created.App.UUID)
	if err != nil || byUUID.Name != "hello-world" {
		t.Fatalf("GetApp by UUID = %+v, %v", byUUID, err)
	}
	branch, port := "main", 8081
	patched, err := c.UpdateApp(ctx, "hello-world", cliclient.AppPatch{GitBranch: &branch, Port: &port})
	if err != nil || patched.GitBranch != "main" || patched.Port != 8081 || patched.RunCommand != "./app" {
		t.Fatalf("UpdateApp = %+v, %v", patched, err)
	}

	env, err := c.ListEnv(ctx, "hello-world")
	if err != nil || len(env) != 2 || env[0].Key != "A" || env[1].Value != "2" {
		t.Fatalf("ListEnv = %v, %v", env, err)
	}
	v, note, err := c.SetEnv(ctx, "hello-world", "DATABASE_URL", "postgres://x/y?a=b&c=d")
	if err != nil || v.Key != "DATABASE_URL" || v.Value != "postgres://x/y?a=b&c=d" || !strings.Contains(note, "next deploy") {
		t.Fatalf("SetEnv = %+v, %q, %v", v, note, err)
	}
	if note, err := c.DeleteEnv(ctx, "hello-world", "A"); err != nil || note == "" {
		t.Fatalf("DeleteEnv = %q, %v", note, err)
	}
	if _, err := c.DeleteEnv(ctx, "hello-world", "A"); !cliclient.IsNotFound(err) {
		t.Fatalf("DeleteEnv of a missing key = %v, want 404", err)
	}
	if got := srv.Env("hello-world"); len(got) != 2 || got["B"] != "2" || got["DATABASE_URL"] == "" {
		t.Fatalf("env on the server = %v", got)
	}

	acc, err := c.DeployApp(ctx, "hello-world", cliclient.Deploy{Branch: "feature", CommitSHA: "abc123"})
	if err != nil || acc.Deployment.Branch != "feature" || acc.Deployment.CommitSHA != "abc123" || acc.Job == nil {
		t.Fatalf("DeployApp = %+v, %v", acc, err)
	}
	for name, call := range map[string]func(context.Context, string) (*cliclient.Accepted, error){
		"start": c.StartApp, "stop": c.StopApp, "restart": c.RestartApp,
	} {
		acc, err := call(ctx, "hello-world")
		if err != nil || acc.Job == nil || (name == "restart") != (acc.Deployment != nil) {
			t.Fatalf("%s = %+v, %v", name, acc, err)
		}
		j, err := c.GetJob(ctx, acc.Job.ID)
		if err != nil || j.Status != cliclient.JobCompleted || !j.Done() {
			t.Fatalf("GetJob(%s) = %+v, %v", name, j, err)
		}
	}
	deps, err := c.ListDeployments(ctx, "hello-world", 2)
	if err != nil || len(deps) != 2 || deps[0].Trigger != "restart" {
		t.Fatalf("ListDeployments = %v, %v", deps, err)
	}
	recent, err := c.RecentDeployments(ctx, 0)
	if err != nil || len(recent) != 3 {
		t.Fatalf("RecentDeployments = %v, %v", recent, err)
	}
	d, err := c.GetDeployment(ctx, acc.Deployment.ID)
	if err != nil || d.Status != cliclient.DeploymentSucceeded || !d.Done() {
		t.Fatalf("GetDeployment = %+v, %v", d, err)
	}

	dom, rec, err := c.AddDomain(ctx, "hello-world", "www.example.org")
	if err != nil || dom.Status != "pending" || rec.Type != "TXT" || rec.Name != "_wisehosting.www.example.org" || rec.Value == "" {
		t.Fatalf("AddDomain = %+v, %+v, %v", dom, rec, err)
	}
	_, err = c.VerifyDomain(ctx, dom.ID)
	var ae *cliclient.APIError
	if !errors.As(err, &ae) || ae.Status != 422 || ae.Code != "verification_failed" || !strings.Contains(ae.Message, "TXT record") {
		t.Fatalf("VerifyDomain without the record = %v", err)
	}
	srv.SetRecord("www.example.org", true)
	if v, err := c.VerifyDomain(ctx, dom.ID); err != nil || v.Status != "active" || v.VerifiedAt.IsZero() {
		t.Fatalf("VerifyDomain = %+v, %v", v, err)
	}
	if ds, err := c.ListDomains(ctx, "hello-world"); err != nil || len(ds) != 1 || ds[0].Hostname != "www.example.org" {
		t.Fatalf("ListDomains = %v, %v", ds, err)
	}
	if err := c.DeleteDomain(ctx, dom.ID); err != nil {
		t.Fatal(err)
	}

	srv.Persist("hello-world", "one", "two", "three")
	lines, err := c.Logs(ctx, "hello-world", 2)
	if err != nil || len(lines) != 2 || lines[0].Line != "two" || lines[1].App != created.App.UUID || lines[0].TS.IsZero() {
		t.Fatalf("Logs = %+v, %v", lines, err)
	}

	for tail, want := range map[int]int{0: 0, -1: 3, 10: 3} {
		if lines, err := c.Logs(ctx, "hello-world", tail); err != nil || len(lines) != want {
			t.Errorf("Logs with tail %d = %d lines, %v; want %d", tail, len(lines), err, want)
		}
	}

	if err := c.DeleteApp(ctx, "hello-world", true); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteApp(ctx, gen.App.Name, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetApp(ctx, "hello-world"); !cliclient.IsNotFound(err) {
		t.Fatalf("a deleted app = %v, want 404", err)
	}
	reqs := srv.Requests()
	for _, want := range []string{
		"DELETE /api/v1/apps/hello-world?hard=true",
		"DELETE /api/v1/apps/" + gen.App.Name,
		"GET /api/v1/apps/hello-world/deployments?limit=2",
		"GET /api/v1/apps/hello-world/logs?tail=2",
		"GET /api/v1/apps/hello-world/logs?tail=0",
		"GET /api/v1/apps/hello-world/logs",
		"POST /api/v1/domains/" + string(dom.ID) + "/verify",
	} {
		if !slices.Contains(reqs, want) {
			t.Errorf("no request %q among:\n%s", want, strings.Join(reqs, "\n"))
		}
	}
}

func TestCLIClientTimestampAndID(t *testing.T) {
	t.Parallel()
	want := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, in := range []string{`"2025-01-02T03:04:05Z"`, `1735787045`, `1735787045000`, `1735787045000000`,
		`1735787045000000000`, `1735787045.0`} {
		var ts cliclient.Timestamp
		if err := json.Unmarshal([]byte(in), &ts); err != nil || !ts.Equal(want) {
			t.Errorf("Timestamp %s = %v, %v; want %v", in, ts, err, want)
		}
	}
	var ts cliclient.Timestamp
	if err := json.Unmarshal([]byte(`null`), &ts); err != nil || !ts.IsZero() {
		t.Errorf("Timestamp null = %v, %v", ts, err)
	}
	if err := json.Unmarshal([]byte(`true`), &ts); err == nil {
		t.Error("Timestamp true: want an error")
	}
	for in, want := range map[string]cliclient.ID{`42`: "42", `"42"`: "42", `"dom_x"`: "dom_x", `null`: ""} {
		var id cliclient.ID
		if err := json.Unmarshal([]byte(in), &id); err != nil || id != want {
			t.Errorf("ID %s = %q, %v; want %q", in, id, err, want)
		}
	}
	var id cliclient.ID
	if err := json.Unmarshal([]byte(`{}`), &id); err == nil {
		t.Error("ID {}: want an error")
	}
}
