package userapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/userapi"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

func init() {
	fixtureBuilders = append(fixtureBuilders, appFixture)
	snapshotters = append(snapshotters, appSnapshot)
	for k, v := range map[string]any{
		"POST /api/v1/apps":                 map[string]any{"name": "eve-own-app", "git_repo": "https://example.com/e/r", "run_command": "./run"},
		"PATCH /api/v1/apps/:app":           map[string]any{"run_command": "./evil"},
		"POST /api/v1/apps/:app/deploy":     map[string]any{},
		"PUT /api/v1/apps/:app/env/:key":    map[string]any{"value": "evil"},
		"PUT /api/v1/apps/:app/auto-deploy": map[string]any{"enabled": false},
	} {
		ownershipBodies[k] = v
	}
	ownershipQueries["GET /api/v1/logs/ws"] = "apps={app}"
}

// appFixture gives ada a deployed app with an env var, a deployment with
// build logs, a job and runtime logs.
func appFixture(e *env, f *fixture) {
	ctx := context.Background()
	d, err := e.st.CreateDeploymentWithSpec(ctx, store.DeploySpec{
		App:        store.NewApp{UserID: e.ada.ID, Name: "ada-secret-app", GitRepo: "https://example.com/ada/secret-repo", GitBranch: "main", RunCommand: "./run"},
		Env:        map[string]string{"ADA_KEY": "ada-secret-value"},
		Deployment: store.NewDeployment{Trigger: "api", Branch: "main"},
		Job:        store.NewJob{Payload: json.RawMessage(`{"app_id":0}`)},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.InsertRuntimeLogs(ctx, []store.LogChunk{{AppID: d.App.ID, Stream: "stdout", TS: d.App.CreatedAt,
		TSEnd: d.App.CreatedAt, Lines: 1, Text: "ada-secret-log-line"}}); err != nil {
		e.t.Fatal(err)
	}
	f.params["app"] = d.App.UUID
	f.params["deployment"] = fmt.Sprint(d.Deployment.ID)
	f.params["job"] = fmt.Sprint(d.Job.ID)
	f.params["key"] = "ADA_KEY"
	f.markers = append(f.markers, d.App.UUID, "ada-secret-app", "secret-repo", "ada-secret-value", "ada-secret-log-line")
}

func appSnapshot(ctx context.Context, e *env) any {
	apps, err := e.st.ListUserApps(ctx, e.ada.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []any
	for _, a := range apps {
		env, _ := e.st.ListAppEnvVars(ctx, a.ID)
		deps, _ := e.st.ListDeployments(ctx, a.ID, 100)
		job, _ := e.st.FindActiveJobForApp(ctx, a.ID)
		out = append(out, a, env, deps, job)
	}
	return out
}

// createApp creates an app for user through the API and returns its view.
func (e *env) createApp(user *store.User, body map[string]any) map[string]any {
	e.t.Helper()
	var out struct {
		App map[string]any `json:"app"`
	}
	e.must(user, http.StatusCreated, "POST", "/api/v1/apps", body).JSON(e.t, &out)
	return out.App
}

func TestCreateAppValidation(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(_ *env, o *userapi.Options) { o.AllowLocalRepos = false })
	ok := map[string]any{"git_repo": "https://github.com/ada/app", "run_command": "./app"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range ok {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name string
		body any
		want string // in the message
	}{
		{"short name", with("name", "abc"), "7 to 32"},
		{"long name", with("name", strings.Repeat("a", 33)), "7 to 32"},
		{"upper case", with("name", "MyApp-one"), "a-z"},
		{"leading dash", with("name", "-my-app1"), "start and end"},
		{"reserved", with("name", "dashboard"), "reserved"},
		{"punycode", with("name", "xn--80ak6aa92e"), "3rd and 4th"},
		{"no repo", with("git_repo", ""), "git_repo is required"},
		{"ssh repo", with("git_repo", "git@github.com:ada/app.git"), "https://"},
		{"http repo", with("git_repo", "http://github.com/ada/app"), "https://"},
		{"credentials", with("git_repo", "https://user:pw@github.com/ada/app"), "credentials"},
		{"local path refused", with("git_repo", "/srv/repo"), "local path"},
		{"file url refused", with("git_repo", "file:///srv/repo"), "local path"},
		{"bad branch", with("git_branch", "feat..x"), "branch"},
		{"dash branch", with("git_branch", "-x"), "branch"},
		{"no run command", with("run_command", ""), "run_command"},
		{"escaping dockerfile", with("dockerfile", "../Dockerfile"), "inside the repository"},
		{"bad env key", with("env", map[string]string{"lower": "x"}), "env var name"},
		{"NUL in env", with("env", map[string]string{"K": "a\x00b"}), "NUL"},
		{"port zero", with("port", 0), "port"},
		{"port too big", with("port", 70000), "port"},
		{"unknown field", with("colour", "blue"), "unknown field"},
		{"not JSON", "{", "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(e.ada, "POST", "/api/v1/apps", tc.body)
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), tc.want) {
				t.Errorf("status %d %s, want 400 mentioning %q", r.Status, r.Body, tc.want)
			}
		})
	}
	if apps, _ := e.st.ListUserApps(context.Background(), e.ada.ID); len(apps) != 0 {
		t.Errorf("refused requests created %d apps", len(apps))
	}
}

func TestCreateListGetApps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	// Ada is on a plan that allows several apps.
	if err := e.st.SetUserPlan(ctx, e.ada.ID, "pro"); err != nil {
		t.Fatal(err)
	}
	named := e.createApp(e.ada, map[string]any{"name": "hello-world", "git_repo": "https://github.com/ada/hello",
		"run_command": "./hello", "port": 3000, "env": map[string]string{"GREETING": "hi"}})
	if named["url"] != "https://hello-world.apps.test" || named["status"] != "created" || named["git_branch"] != "main" ||
		named["runtime"] != "exec" {
		t.Errorf("created app = %v", named)
	}
	gen := e.createApp(e.ada, map[string]any{"git_repo": "https://github.com/ada/other", "run_command": "./x"})
	name, _ := gen["name"].(string)
	if err := userapi.ValidateAppName(name); err != nil || strings.Count(name, "-") != 2 {
		t.Errorf("generated name %q: %v", name, err)
	}
	// The same name again is a conflict; so is a name another user's app
	// holds as its subdomain.
	if r := e.do(e.ada, "POST", "/api/v1/apps", map[string]any{"name": "hello-world", "git_repo": "https://github.com/ada/x",
		"run_command": "./x"}); r.Status != http.StatusConflict || r.ErrorCode() != "name_taken" {
		t.Errorf("duplicate name: %d %s", r.Status, r.Body)
	}
	if r := e.do(e.eve, "POST", "/api/v1/apps", map[string]any{"name": "hello-world", "git_repo": "https://github.com/eve/x",
		"run_command": "./x"}); r.Status != http.StatusConflict {
		t.Errorf("another user's subdomain: %d %s", r.Status, r.Body)
	}
	var list struct{ Apps []map[string]any }
	e.must(e.ada, 200, "GET", "/api/v1/apps", nil).JSON(t, &list)
	if len(list.Apps) != 2 {
		t.Fatalf("list = %v", list.Apps)
	}
	for _, ref := range []string{"hello-world", named["uuid"].(string)} {
		var got struct{ App map[string]any }
		e.must(e.ada, 200, "GET", "/api/v1/apps/"+ref, nil).JSON(t, &got)
		if got.App["uuid"] != named["uuid"] {
			t.Errorf("GET %s = %v", ref, got.App)
		}
	}
	// The port became PORT, next to the given env var.
	var env struct{ Env []store.EnvVar }
	e.must(e.ada, 200, "GET", "/api/v1/apps/hello-world/env", nil).JSON(t, &env)
	if len(env.Env) != 2 || env.Env[0].Key != "GREETING" || env.Env[1].Key != "PORT" || env.Env[1].Value != "3000" {
		t.Errorf("env = %+v", env.Env)
	}
	// Eve sees none of it.
	e.must(e.eve, 404, "GET", "/api/v1/apps/hello-world", nil)
}

func TestPlanLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // the default plan (free) allows one app
	e.createApp(e.ada, map[string]any{"name": "first-app", "git_repo": "https://github.com/ada/a", "run_command": "./a"})
	r := e.do(e.ada, "POST", "/api/v1/apps", map[string]any{"name": "second-app", "git_repo": "https://github.com/ada/b", "run_command": "./b"})
	if r.Status != http.StatusForbidden || r.ErrorCode() != "plan_limit" || !strings.Contains(string(r.Body), "allows 1") {
		t.Errorf("second app on the free plan: %d %s", r.Status, r.Body)
	}
	// Deleting the first frees the slot.
	e.must(e.ada, http.StatusNoContent, "DELETE", "/api/v1/apps/first-app", nil)
	e.createApp(e.ada, map[string]any{"name": "second-app", "git_repo": "https://github.com/ada/b", "run_command": "./b"})
}

func TestCreateAndDeploy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var out struct {
		App        map[string]any
		Deployment map[string]any
		Job        map[string]any
	}
	e.must(e.ada, http.StatusCreated, "POST", "/api/v1/apps", map[string]any{"name": "deploy-me", "git_repo": "/srv/git/deploy-me",
		"git_branch": "trunk", "build_command": "make", "run_command": "./server", "port": 8081,
		"env": map[string]string{"SECRET": "s3cret"}, "deploy": true}).JSON(t, &out)
	if out.App["status"] != "deploying" || out.Deployment["status"] != "pending" || out.Deployment["branch"] != "trunk" ||
		out.Job["status"] != "pending" || out.Job["type"] != "deploy" {
		t.Fatalf("create+deploy = %+v", out)
	}
	a, err := e.st.FindAppByUUID(ctx, out.App["uuid"].(string))
	if err != nil {
		t.Fatal(err)
	}
	job, err := e.st.FindActiveJobForApp(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var p wsproto.DeployPayload
	if err := json.Unmarshal(job.Payload, &p); err != nil {
		t.Fatal(err)
	}
	// The free plan's limits travel with the job and are what it reserves.
	if p.AppUUID != a.UUID || p.GitRepo != "/srv/git/deploy-me" || p.GitBranch != "trunk" || p.RunCommand != "./server" ||
		p.Env["SECRET"] != "s3cret" || p.Env["PORT"] != "8081" || p.Limits.CPU != 1000 || p.Limits.Memory != 512<<20 ||
		job.CPU != p.Limits.CPU || job.Memory != p.Limits.Memory {
		t.Errorf("payload = %+v, job cpu %d memory %d", p, job.CPU, job.Memory)
	}
	// A second deploy while the first is pending is refused, naming it.
	r := e.do(e.ada, "POST", "/api/v1/apps/deploy-me/deploy", nil)
	if r.Status != http.StatusConflict || r.ErrorCode() != "job_in_progress" || !strings.Contains(string(r.Body), "deploy job") {
		t.Errorf("deploy during a deploy: %d %s", r.Status, r.Body)
	}
	// The deployment and its job as the owner sees them.
	var dep struct{ Deployment map[string]any }
	e.must(e.ada, 200, "GET", fmt.Sprintf("/api/v1/deployments/%v", out.Deployment["id"]), nil).JSON(t, &dep)
	if dep.Deployment["app_uuid"] != a.UUID || dep.Deployment["build_logs"] != "" {
		t.Errorf("deployment = %v", dep.Deployment)
	}
	var jv struct{ Job map[string]any }
	e.must(e.ada, 200, "GET", fmt.Sprintf("/api/v1/jobs/%v", out.Job["id"]), nil).JSON(t, &jv)
	if jv.Job["type"] != "deploy" {
		t.Errorf("job = %v", jv.Job)
	}
	var recent struct{ Deployments []map[string]any }
	e.must(e.ada, 200, "GET", "/api/v1/deployments?limit=5", nil).JSON(t, &recent)
	if len(recent.Deployments) != 1 || recent.Deployments[0]["app_name"] != "deploy-me" {
		t.Errorf("recent = %v", recent.Deployments)
	}
	e.must(e.ada, 400, "GET", "/api/v1/deployments?limit=0", nil)
	e.must(e.ada, 404, "GET", "/api/v1/deployments/abc", nil)
	// Stop: it runs nowhere yet.
	if r := e.do(e.ada, "POST", "/api/v1/apps/deploy-me/stop", nil); r.Status != http.StatusConflict {
		t.Errorf("stop of an app that runs nowhere: %d %s", r.Status, r.Body)
	}
	// Start: never deployed successfully, still deploying.
	if r := e.do(e.ada, "POST", "/api/v1/apps/deploy-me/start", nil); r.Status != http.StatusConflict {
		t.Errorf("start of a deploying app: %d %s", r.Status, r.Body)
	}
}

func TestDockerfileNeedsPodman(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	body := map[string]any{"name": "docker-app", "git_repo": "https://github.com/ada/d", "dockerfile": "Dockerfile"}
	r := e.do(e.ada, "POST", "/api/v1/apps", body)
	if r.Status != http.StatusUnprocessableEntity || r.ErrorCode() != "no_runtime" || !strings.Contains(string(r.Body), "podman") {
		t.Fatalf("Dockerfile app without a podman worker: %d %s", r.Status, r.Body)
	}
	w, err := e.st.CreateWorker(ctx, store.NewWorker{Name: "pod-1", Creds: store.WorkerCredentials{APIKeyHash: strings.Repeat("ab", 32),
		KeyID: "kid-pod-1", SealedEnvelopeKey: "v1:x"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.RegisterWorker(ctx, w.ID, store.Registration{CapacityCPU: 2000, CapacityMemory: 4 << 30,
		Runtimes: []string{"exec", "podman"}}); err != nil {
		t.Fatal(err)
	}
	app := e.createApp(e.ada, body)
	if app["runtime"] != "podman" {
		t.Errorf("runtime = %v", app["runtime"])
	}
}

func TestEnvVars(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.ada, map[string]any{"name": "env-app-1", "git_repo": "https://github.com/ada/e", "run_command": "./e"})
	r := e.must(e.ada, 200, "PUT", "/api/v1/apps/env-app-1/env/DATABASE_URL", map[string]string{"value": "postgres://x"})
	if !strings.Contains(string(r.Body), "next deploy or restart") {
		t.Errorf("set env: %s", r.Body)
	}
	e.must(e.ada, 200, "PUT", "/api/v1/apps/env-app-1/env/DATABASE_URL", map[string]string{"value": "postgres://y"})
	var env struct{ Env []store.EnvVar }
	e.must(e.ada, 200, "GET", "/api/v1/apps/env-app-1/env", nil).JSON(t, &env)
	if len(env.Env) != 1 || env.Env[0].Value != "postgres://y" {
		t.Errorf("env = %+v", env.Env)
	}
	for _, tc := range []struct {
		key  string
		body any
		want int
	}{
		{"lower", map[string]string{"value": "x"}, 400},
		{"1ABC", map[string]string{"value": "x"}, 400},
		{"OK", map[string]any{}, 400},
		{"OK", map[string]string{"value": strings.Repeat("v", 33<<10)}, 400},
	} {
		if r := e.do(e.ada, "PUT", "/api/v1/apps/env-app-1/env/"+tc.key, tc.body); r.Status != tc.want {
			t.Errorf("PUT %s %v: %d %s, want %d", tc.key, tc.body, r.Status, r.Body, tc.want)
		}
	}
	e.must(e.ada, 200, "DELETE", "/api/v1/apps/env-app-1/env/DATABASE_URL", nil)
	e.must(e.ada, 404, "DELETE", "/api/v1/apps/env-app-1/env/DATABASE_URL", nil)
	// Stored encrypted: the plaintext is nowhere in the table.
	e.must(e.ada, 200, "PUT", "/api/v1/apps/env-app-1/env/TOKEN", map[string]string{"value": "plain-text-secret"})
	var n int
	if err := e.st.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM app_env_vars WHERE value LIKE '%plain-text-secret%'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("plaintext rows: %d (%v)", n, err)
	}
}

func TestDeleteApp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if err := e.st.SetUserPlan(ctx, e.ada.ID, "pro"); err != nil {
		t.Fatal(err)
	}
	soft := e.createApp(e.ada, map[string]any{"name": "soft-delete", "git_repo": "https://github.com/ada/s", "run_command": "./s"})
	hard := e.createApp(e.ada, map[string]any{"name": "hard-delete", "git_repo": "https://github.com/ada/h", "run_command": "./h"})
	e.must(e.ada, 400, "DELETE", "/api/v1/apps/soft-delete?hard=maybe", nil)
	e.must(e.ada, 204, "DELETE", "/api/v1/apps/soft-delete", nil)
	e.must(e.ada, 404, "GET", "/api/v1/apps/soft-delete", nil)
	e.must(e.ada, 204, "DELETE", "/api/v1/apps/hard-delete?hard=true", nil)
	var n int
	if err := e.st.Pool().QueryRow(ctx, `SELECT count(*) FROM apps WHERE uuid = $1`, hard["uuid"]).Scan(&n); err != nil || n != 0 {
		t.Errorf("hard-deleted app rows: %d (%v)", n, err)
	}
	if err := e.st.Pool().QueryRow(ctx, `SELECT count(*) FROM apps WHERE uuid = $1 AND deleted_at IS NOT NULL`, soft["uuid"]).Scan(&n); err != nil || n != 1 {
		t.Errorf("soft-deleted app rows: %d (%v)", n, err)
	}
	// The name is free again.
	e.createApp(e.ada, map[string]any{"name": "soft-delete", "git_repo": "https://github.com/ada/s", "run_command": "./s"})
}
