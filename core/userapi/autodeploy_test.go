package userapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/core/gitprovider"
	"github.com/wisehosting/wisehosting/core/gitprovider/fakeprovider"
	"github.com/wisehosting/wisehosting/core/userapi"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// TestAutoDeploy: per provider, enabling push auto-deploy creates the
// push webhook at the provider with the user's linked token; a signed push
// to the app's branch redeploys it at the pushed commit; other branches,
// other events and forged deliveries do not; disabling removes the hook.
func TestAutoDeploy(t *testing.T) {
	t.Parallel()
	fake := fakeprovider.New(t)
	e := newEnvWith(t, func(e *env, o *userapi.Options) {
		git, err := gitprovider.New(gitprovider.Options{APIBase: fake.APIBases()})
		if err != nil {
			t.Fatal(err)
		}
		o.Git, o.BaseURL, o.HookKey = git, e.srv.URL, []byte("0123456789abcdef0123456789abcdef")
	})
	ctx := context.Background()
	if err := e.st.SetUserPlan(ctx, e.ada.ID, "business"); err != nil {
		t.Fatal(err)
	}
	hosts := map[gitprovider.Provider]string{gitprovider.GitHub: "github.com", gitprovider.GitLab: "gitlab.com",
		gitprovider.Bitbucket: "bitbucket.org", gitprovider.Codeberg: "codeberg.org"}
	for _, p := range gitprovider.Providers() {
		t.Run(string(p), func(t *testing.T) {
			name := "push-" + string(p)
			token := "tok-" + string(p) + "-ada"
			fake.AddRepo(p, "ada/"+name, token)
			app := e.createApp(e.ada, map[string]any{"name": name, "git_repo": "https://" + hosts[p] + "/ada/" + name,
				"run_command": "./run"})
			path := "/api/v1/apps/" + name + "/auto-deploy"

			// Without a linked account there is no token to create the hook.
			if r := e.do(e.ada, "PUT", path, map[string]bool{"enabled": true}); r.Status != 422 || r.ErrorCode() != "provider_not_linked" {
				t.Fatalf("enable without a linked account: %d %s", r.Status, r.Body)
			}
			if err := e.st.UpsertGitToken(ctx, e.ada.ID, string(p), "ada", token); err != nil {
				t.Fatal(err)
			}
			e.must(e.ada, 200, "PUT", path, map[string]bool{"enabled": true})
			// The hook watches this repository: moving the app elsewhere
			// needs auto-deploy off first.
			if r := e.do(e.ada, "PATCH", "/api/v1/apps/"+name, map[string]string{"git_repo": "https://" + hosts[p] + "/ada/other"}); r.Status != 409 ||
				r.ErrorCode() != "auto_deploy_on" {
				t.Errorf("repository change with auto-deploy on: %d %s", r.Status, r.Body)
			}
			var hook fakeprovider.Hook
			for _, h := range fake.Hooks() {
				if h.Provider == p && h.Repo == "ada/"+name {
					hook = h
				}
			}
			if hook.ID == "" || hook.Token != token || hook.URL != e.srv.URL+"/api/v1/hooks/git/"+app["uuid"].(string) || hook.Secret == "" {
				t.Fatalf("hook at the provider = %+v", hook)
			}

			// Another branch, another event: answered, nothing deployed.
			if r, err := fake.Push(ctx, hook, "feature", strings.Repeat("b", 40), "wip"); err != nil || r.Status != http.StatusAccepted ||
				!strings.Contains(string(r.Body), "ignored") {
				t.Errorf("push to another branch: %+v %v", r, err)
			}
			if r, err := fake.Deliver(ctx, hook, fakeprovider.Event{Name: fakeprovider.NonPushEvent(p)}); err != nil ||
				r.Status != http.StatusAccepted {
				t.Errorf("a non-push event: %+v %v", r, err)
			}
			// A forged delivery: the right shape, the wrong secret.
			forged := hook
			forged.Secret = "not-the-secret"
			if r, err := fake.Push(ctx, forged, "main", strings.Repeat("c", 40), "forged"); err != nil || r.Status != http.StatusUnauthorized {
				t.Errorf("forged delivery: %+v %v", r, err)
			}
			a, _ := e.st.FindAppByUUID(ctx, app["uuid"].(string))
			if ds, _ := e.st.ListDeployments(ctx, a.ID, 10); len(ds) != 0 {
				t.Fatalf("deployments before a real push: %d", len(ds))
			}

			// The push to main deploys that commit.
			sha := strings.Repeat("a", 40)
			r, err := fake.Push(ctx, hook, "main", sha, "Fix the thing\n\nLonger text")
			if err != nil || r.Status != http.StatusAccepted || !strings.Contains(string(r.Body), "deploying") {
				t.Fatalf("push to main: %+v %v", r, err)
			}
			ds, err := e.st.ListDeployments(ctx, a.ID, 10)
			if err != nil || len(ds) != 1 || ds[0].Trigger != "push" || ds[0].CommitSHA != sha || ds[0].Branch != "main" ||
				ds[0].CommitMessage != "Fix the thing" {
				t.Fatalf("deployments = %+v %v", ds, err)
			}
			job, err := e.st.FindActiveJobForApp(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			var payload wsproto.DeployPayload
			if err := json.Unmarshal(job.Payload, &payload); err != nil || payload.CommitSHA != sha || payload.GitToken != token {
				t.Errorf("payload commit %q token %q (%v)", payload.CommitSHA, payload.GitToken, err)
			}

			// Disabling removes the hook at the provider.
			e.must(e.ada, 200, "PUT", path, map[string]bool{"enabled": false})
			if _, ok := fake.Hook(p, hook.ID); ok {
				t.Error("the hook is still at the provider")
			}
			if r, err := fake.Push(ctx, hook, "main", strings.Repeat("d", 40), "after"); err != nil || r.Status != http.StatusNotFound {
				t.Errorf("push after disabling: %+v %v", r, err)
			}
		})
	}
	// A repository on no known provider.
	e.createApp(e.ada, map[string]any{"name": "local-repo", "git_repo": "/srv/git/x", "run_command": "./run"})
	if r := e.do(e.ada, "PUT", "/api/v1/apps/local-repo/auto-deploy", map[string]bool{"enabled": true}); r.Status != 422 ||
		r.ErrorCode() != "unsupported_provider" {
		t.Errorf("local repository: %d %s", r.Status, r.Body)
	}
}
