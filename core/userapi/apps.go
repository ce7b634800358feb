package userapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/plans"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// appRoutes are the routes of apps, their env vars, deployments and jobs.
func (s *Service) appRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/apps", handler: s.listApps},
		{Method: http.MethodPost, Path: "/api/v1/apps", Limited: true, handler: s.createApp},
		{Method: http.MethodGet, Path: "/api/v1/apps/:app", handler: s.getApp},
		{Method: http.MethodPatch, Path: "/api/v1/apps/:app", handler: s.updateApp},
		{Method: http.MethodDelete, Path: "/api/v1/apps/:app", handler: s.deleteApp},
		{Method: http.MethodPost, Path: "/api/v1/apps/:app/deploy", Limited: true, handler: s.deployApp},
		{Method: http.MethodPost, Path: "/api/v1/apps/:app/restart", Limited: true, handler: s.restartApp},
		{Method: http.MethodPost, Path: "/api/v1/apps/:app/start", Limited: true, handler: s.startApp},
		{Method: http.MethodPost, Path: "/api/v1/apps/:app/stop", handler: s.stopApp},
		{Method: http.MethodGet, Path: "/api/v1/apps/:app/env", handler: s.listEnv},
		{Method: http.MethodPut, Path: "/api/v1/apps/:app/env/:key", handler: s.setEnv},
		{Method: http.MethodDelete, Path: "/api/v1/apps/:app/env/:key", handler: s.deleteEnv},
		{Method: http.MethodGet, Path: "/api/v1/apps/:app/deployments", handler: s.listDeployments},
		{Method: http.MethodGet, Path: "/api/v1/deployments", handler: s.recentDeployments},
		{Method: http.MethodGet, Path: "/api/v1/deployments/:deployment", handler: s.getDeployment},
		{Method: http.MethodGet, Path: "/api/v1/jobs/:job", handler: s.getJob},
	}
}

// statsView is an app's latest live statistics, as the hub holds them.
type statsView struct {
	CPUPercent float64   `json:"cpu_percent"`
	MemBytes   int64     `json:"mem_bytes"`
	MemLimit   int64     `json:"mem_limit"`
	NetMbps    float64   `json:"net_mbps"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// appView is an app as the API shows it.
type appView struct {
	UUID            string     `json:"uuid"`
	Name            string     `json:"name"`
	Subdomain       string     `json:"subdomain"`
	URL             string     `json:"url"`
	Status          string     `json:"status"`
	Runtime         string     `json:"runtime"`
	GitRepo         string     `json:"git_repo"`
	GitBranch       string     `json:"git_branch"`
	BuildCommand    string     `json:"build_command"`
	RunCommand      string     `json:"run_command"`
	Dockerfile      string     `json:"dockerfile"`
	Port            int64      `json:"port"`
	CommitSHA       string     `json:"commit_sha"`
	AutoDeploy      bool       `json:"auto_deploy"`
	RestartCount    int64      `json:"restart_count"`
	ViolationReason string     `json:"violation_reason"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	Stats           *statsView `json:"stats"`
}

func (s *Service) viewApp(a *store.App) appView {
	v := appView{UUID: a.UUID, Name: a.Name, Subdomain: a.Subdomain, Status: a.Status, Runtime: a.Runtime,
		GitRepo: a.GitRepo, GitBranch: a.GitBranch, BuildCommand: a.BuildCommand, RunCommand: a.RunCommand,
		Dockerfile: a.Dockerfile, Port: a.Port, CommitSHA: a.CommitSHA, AutoDeploy: a.AutoDeploy,
		RestartCount: a.RestartCount, ViolationReason: a.ViolationReason, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if s.o.PlatformDomain != "" {
		v.URL = "https://" + a.Subdomain + "." + s.o.PlatformDomain
	}
	if s.o.Stats != nil && a.Status == store.AppRunning {
		if st, ok := s.o.Stats.AppStatsLive(a.ID); ok {
			v.Stats = &statsView{CPUPercent: st.CPUPercent, MemBytes: st.MemBytes, MemLimit: st.MemLimit,
				NetMbps: st.NetMbps, UpdatedAt: st.UpdatedAt}
		}
	}
	return v
}

// deploymentView is a deployment as the API shows it.
type deploymentView struct {
	ID            int64      `json:"id"`
	AppUUID       string     `json:"app_uuid"`
	AppName       string     `json:"app_name"`
	Status        string     `json:"status"`
	Trigger       string     `json:"trigger"`
	CommitSHA     string     `json:"commit_sha"`
	CommitMessage string     `json:"commit_message"`
	Branch        string     `json:"branch"`
	Error         string     `json:"error"`
	StartedAt     *time.Time `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	CreatedAt     time.Time  `json:"created_at"`
	// BuildLogs is set only on a single deployment's view.
	BuildLogs *string `json:"build_logs,omitempty"`
}

func viewDeployment(d *store.Deployment, a *store.App) deploymentView {
	return deploymentView{ID: d.ID, AppUUID: a.UUID, AppName: a.Name, Status: d.Status, Trigger: d.Trigger,
		CommitSHA: d.CommitSHA, CommitMessage: d.CommitMessage, Branch: d.Branch, Error: d.Error,
		StartedAt: d.StartedAt, FinishedAt: d.FinishedAt, CreatedAt: d.CreatedAt}
}

// jobView is a job as the API shows it (never its payload).
type jobView struct {
	ID       int64  `json:"id"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	Message  string `json:"message"`
	Progress int64  `json:"progress"`
}

func viewJob(j *store.Job) *jobView {
	if j == nil {
		return nil
	}
	return &jobView{ID: j.ID, Type: j.Type, Status: j.Status, Message: j.Message, Progress: j.Progress}
}

// userApps returns the user's live apps through the cache.
func (s *Service) userApps(ctx context.Context, userID int64) ([]*store.App, error) {
	return s.cache.apps(ctx, userID, s.o.Store.ListUserApps)
}

// ownedApp returns the live app ref names — its UUID or its name — when
// it belongs to user; someone else's app is a 404, exactly as a missing
// one.
func (s *Service) ownedApp(ctx context.Context, user *store.User, ref string) (*store.App, error) {
	apps, err := s.userApps(ctx, user.ID)
	if err != nil {
		return nil, err
	}
	_, perr := uuid.Parse(ref)
	for _, a := range apps {
		if (perr == nil && a.UUID == ref) || a.Name == ref {
			return a, nil
		}
	}
	return nil, errNoApp
}

// appParam resolves the route's :app for the caller.
func (s *Service) appParam(req bunrouter.Request) (*store.User, *store.App, error) {
	u := userOf(req.Context())
	a, err := s.ownedApp(req.Context(), u, req.Param("app"))
	return u, a, err
}

var errNoApp = api.Errorf(http.StatusNotFound, "not_found", "no such app")

// wrote records that the user's apps changed on this core.
func (s *Service) wrote(userID int64) { s.cache.invalidate(userID) }

// audit records an audit event of the caller; a failure is logged, not
// returned (the action itself happened).
func (s *Service) audit(req bunrouter.Request, userID int64, kind string, details map[string]any) {
	var raw json.RawMessage
	if details != nil {
		raw, _ = json.Marshal(details)
	}
	err := s.o.Store.RecordAuditEvent(req.Context(), store.NewAuditEvent{UserID: userID, Kind: kind,
		IP: accounts.ClientIP(req.Request), UserAgent: req.Header.Get("User-Agent"), Details: raw})
	if err != nil {
		s.log.Error("record audit event", "kind", kind, "user", userID, "error", err)
	}
}

func (s *Service) listApps(w http.ResponseWriter, req bunrouter.Request) error {
	apps, err := s.userApps(req.Context(), userOf(req.Context()).ID)
	if err != nil {
		return err
	}
	out := make([]appView, len(apps))
	for i, a := range apps {
		out[i] = s.viewApp(a)
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"apps": out})
}

func (s *Service) getApp(w http.ResponseWriter, req bunrouter.Request) error {
	_, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"app": s.viewApp(a)})
}

type createAppRequest struct {
	Name string `json:"name"`
	specInput
	Env    map[string]string `json:"env"`
	Deploy bool              `json:"deploy"`
}

// createApp creates an app from its spec; with "deploy": true the app, its
// env vars, its first deployment and the encrypted deploy job are created
// in one transaction.
func (s *Service) createApp(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	u := userOf(ctx)
	var in createAppRequest
	if err := decode(req, &in); err != nil {
		return err
	}
	generated := in.Name == ""
	if !generated {
		if err := ValidateAppName(in.Name); err != nil {
			return badRequest("%v", err)
		}
	}
	var spec store.AppSpec
	if err := in.apply(&spec, s.o.AllowLocalRepos); err != nil {
		return badRequest("%v", err)
	}
	if err := checkEnv(in.Env); err != nil {
		return badRequest("%v", err)
	}
	env := in.Env
	if in.Port != nil {
		env = withPort(env, *in.Port)
	}
	if err := s.requireRuntime(ctx, spec.Runtime); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		name := in.Name
		if generated {
			name = GenerateAppName()
		}
		na := s.o.Plans.NewApp(u, store.NewApp{UserID: u.ID, Name: name, Runtime: spec.Runtime, GitRepo: spec.GitRepo,
			GitBranch: spec.GitBranch, BuildCommand: spec.BuildCommand, RunCommand: spec.RunCommand, Dockerfile: spec.Dockerfile})
		out, err := s.create(ctx, u, na, env, in.Deploy)
		if errors.Is(err, store.ErrConflict) && generated && attempt < 5 {
			continue
		}
		if errors.Is(err, store.ErrConflict) {
			return api.Errorf(http.StatusConflict, "name_taken",
				"the name %q is taken: you have an app of that name, or another app has the subdomain %s", name, name)
		}
		if err != nil {
			return storeErr(err, "app")
		}
		s.wrote(u.ID)
		if in.Deploy {
			s.audit(req, u.ID, store.AuditAppDeploy, map[string]any{"app": out.App.UUID, "deployment": out.Deployment.ID})
		}
		body := map[string]any{"app": s.viewApp(out.App)}
		if out.Deployment != nil {
			body["deployment"] = viewDeployment(out.Deployment, out.App)
			body["job"] = viewJob(out.Job)
		}
		return api.WriteJSON(w, http.StatusCreated, body)
	}
}

// create creates the app, deployed or not.
func (s *Service) create(ctx context.Context, u *store.User, na store.NewApp, env map[string]string, deploy bool) (*store.Deployed, error) {
	if !deploy {
		a, err := s.o.Store.CreateAppWithEnv(ctx, na, env)
		if err != nil {
			return nil, err
		}
		return &store.Deployed{App: a}, nil
	}
	// The payload names the app before it exists: its id is known only
	// in the transaction, so the worker keys on the UUID, which is fixed
	// here.
	na.UUID = uuid.NewString()
	sub := na.Name
	app := &store.App{UUID: na.UUID, UserID: u.ID, Name: na.Name, Subdomain: sub, Runtime: na.Runtime,
		GitRepo: na.GitRepo, GitBranch: na.GitBranch, BuildCommand: na.BuildCommand, RunCommand: na.RunCommand,
		Dockerfile: na.Dockerfile}
	nj, err := s.deployJob(ctx, u, app, env, "", na.GitBranch)
	if err != nil {
		return nil, err
	}
	return s.o.Jobs.DeployNew(ctx, store.DeploySpec{App: na, Env: env,
		Deployment: store.NewDeployment{Trigger: "api", Branch: na.GitBranch}, Job: nj})
}

// withPort returns env with PORT set to port (a copy; env is not changed).
func withPort(env map[string]string, port int) map[string]string {
	out := make(map[string]string, len(env)+1)
	for k, v := range env {
		out[k] = v
	}
	out["PORT"] = strconv.Itoa(port)
	return out
}

// requireRuntime answers 422 when no worker offers the runtime a spec
// needs (podman for a Dockerfile app).
func (s *Service) requireRuntime(ctx context.Context, runtime string) error {
	if runtime == "exec" {
		return nil
	}
	ok, err := s.o.Store.WorkerOffersRuntime(ctx, runtime)
	if err != nil {
		return err
	}
	if !ok {
		return api.Errorf(http.StatusUnprocessableEntity, "no_runtime",
			"a Dockerfile app needs a worker that offers the %s runtime, and none does: ask the operator to run a worker with -runtime exec,%s, or deploy with build_command and run_command instead",
			runtime, runtime)
	}
	return nil
}

// deployJob builds the job that deploys app at commit (empty: the branch's
// head): the plan's limits, reserved on the worker, and the payload the
// worker gets (stored encrypted) with the app's env vars and, for a
// repository at a linked git provider, the user's token.
func (s *Service) deployJob(ctx context.Context, u *store.User, app *store.App, env map[string]string, commit, branch string) (store.NewJob, error) {
	limits := plans.Limits(s.o.Plans.PlanFor(u))
	p := wsproto.DeployPayload{AppID: app.ID, AppUUID: app.UUID, AppName: app.Name, Subdomain: app.Subdomain,
		Runtime: app.Runtime, GitRepo: app.GitRepo, GitBranch: branch, CommitSHA: commit,
		BuildCommand: app.BuildCommand, RunCommand: app.RunCommand, Dockerfile: app.Dockerfile, Env: env, Limits: limits}
	tok, err := s.gitToken(ctx, u.ID, app.GitRepo)
	if err != nil {
		return store.NewJob{}, err
	}
	p.GitToken = tok
	payload, err := json.Marshal(p)
	if err != nil {
		return store.NewJob{}, fmt.Errorf("userapi: deploy payload: %w", err)
	}
	return store.NewJob{CPU: limits.CPU, Memory: limits.Memory, Runtime: app.Runtime, Payload: payload}, nil
}

// gitToken returns the user's linked token for the git provider hosting
// repo ("" when the repository is on none, or the user linked none), so
// the worker can clone a private repository.
func (s *Service) gitToken(ctx context.Context, userID int64, repo string) (string, error) {
	if s.o.Git == nil {
		return "", nil
	}
	r, err := s.o.Git.ParseRepo(repo)
	if err != nil {
		return "", nil
	}
	tok, _, err := s.o.Store.GetGitToken(ctx, userID, string(r.Provider))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("userapi: git token: %w", err)
	}
	return tok, nil
}

func (s *Service) updateApp(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	u, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	var in specInput
	if err := decode(req, &in); err != nil {
		return err
	}
	spec := store.AppSpec{GitRepo: a.GitRepo, GitBranch: a.GitBranch, BuildCommand: a.BuildCommand,
		RunCommand: a.RunCommand, Dockerfile: a.Dockerfile}
	if err := in.apply(&spec, s.o.AllowLocalRepos); err != nil {
		return badRequest("%v", err)
	}
	if a.AutoDeploy && spec.GitRepo != a.GitRepo {
		return api.Errorf(http.StatusConflict, "auto_deploy_on",
			"push auto-deploy watches %s: turn it off (PUT /api/v1/apps/%s/auto-deploy) before changing the repository", a.GitRepo, a.Name)
	}
	if err := s.requireRuntime(ctx, spec.Runtime); err != nil {
		return err
	}
	if err := s.o.Store.UpdateAppSpec(ctx, a.ID, spec); err != nil {
		return storeErr(err, "app")
	}
	if in.Port != nil {
		if err := s.o.Store.SetAppEnvVar(ctx, a.ID, "PORT", strconv.Itoa(*in.Port)); err != nil {
			return storeErr(err, "app")
		}
	}
	s.wrote(u.ID)
	a, err = s.ownedApp(ctx, u, a.UUID)
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"app": s.viewApp(a),
		"note": "the new spec takes effect on the next deploy"})
}

// deleteApp soft-deletes the app (its worker removes it); ?hard=true also
// removes it and everything it owns for good, at once when nothing runs
// it, else as soon as its worker confirms.
func (s *Service) deleteApp(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	u, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	hard := false
	if v := req.URL.Query().Get("hard"); v != "" {
		if hard, err = strconv.ParseBool(v); err != nil {
			return badRequest("hard must be true or false, not %q", v)
		}
	}
	if _, err := s.o.Jobs.Delete(ctx, a.ID, hard); err != nil {
		return storeErr(err, "app")
	}
	s.wrote(u.ID)
	if s.o.Git != nil && a.WebhookID != "" {
		if err := s.deleteProviderHook(ctx, u, a); err != nil {
			s.log.Warn("remove the push webhook of a deleted app", "app", a.UUID, "error", err)
		}
	}
	purged := false
	if hard {
		// The app is deleted either way; Run purges it later if this fails.
		ids, err := s.o.Store.PurgeApps(ctx, []int64{a.ID})
		if err != nil {
			s.log.Warn("purge a hard-deleted app now; the periodic purge retries", "app", a.UUID, "error", err)
		}
		purged = len(ids) == 1
	}
	s.audit(req, u.ID, store.AuditAppDelete, map[string]any{"app": a.UUID, "name": a.Name, "hard": hard})
	if hard && !purged {
		return api.WriteJSON(w, http.StatusAccepted, map[string]any{"deleted": true, "purged": false,
			"note": "the app is being removed from its worker; it and all its data are purged once the worker confirms"})
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type deployRequest struct {
	Branch    string `json:"branch"`
	CommitSHA string `json:"commit_sha"`
}

func (s *Service) deployApp(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	u, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	var in deployRequest
	if req.ContentLength != 0 {
		if err := decode(req, &in); err != nil {
			return err
		}
	}
	if in.Branch == "" {
		in.Branch = a.GitBranch
	}
	if err := checkBranch(in.Branch); err != nil {
		return badRequest("%v", err)
	}
	if in.CommitSHA != "" {
		if err := checkSHA(in.CommitSHA); err != nil {
			return badRequest("%v", err)
		}
	}
	d, err := s.redeploy(ctx, u, a, "api", in.Branch, in.CommitSHA, "")
	if err != nil {
		return err
	}
	s.audit(req, u.ID, store.AuditAppDeploy, map[string]any{"app": a.UUID, "deployment": d.Deployment.ID})
	return api.WriteJSON(w, http.StatusAccepted, map[string]any{"deployment": viewDeployment(d.Deployment, a), "job": viewJob(d.Job)})
}

func (s *Service) restartApp(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	u, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	d, err := s.redeploy(ctx, u, a, "restart", a.GitBranch, a.CommitSHA, "")
	if err != nil {
		return err
	}
	s.audit(req, u.ID, store.AuditAppRestart, map[string]any{"app": a.UUID, "deployment": d.Deployment.ID})
	return api.WriteJSON(w, http.StatusAccepted, map[string]any{"deployment": viewDeployment(d.Deployment, a), "job": viewJob(d.Job)})
}

// redeploy deploys the app at a commit (empty: the branch's head) with the
// current env vars: on the worker it runs on (a restart job pinned there,
// so the new release replaces the old in place), else wherever the
// scheduler places it. The commit and branch are on the deployment from
// the start. commitMessage, when known (a push), too.
func (s *Service) redeploy(ctx context.Context, u *store.User, a *store.App, trigger, branch, commit, commitMessage string) (*store.Deployed, error) {
	if err := s.requireRuntime(ctx, a.Runtime); err != nil {
		return nil, err
	}
	env, err := s.o.Store.AppEnvMap(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	nj, err := s.deployJob(ctx, u, a, env, commit, branch)
	if err != nil {
		return nil, err
	}
	nd := store.NewDeployment{Trigger: trigger, Branch: branch, CommitSHA: commit, CommitMessage: commitMessage}
	var d *store.Deployed
	switch {
	case a.WorkerID != nil && a.Status == store.AppRunning:
		d, err = s.o.Jobs.Redeploy(ctx, a.ID, *a.WorkerID, nd, nj)
	case a.WorkerID != nil:
		// Exited, crash-looping or violating: its release and reservation
		// are still on that worker, which must be the one to replace it.
		nj.WorkerID = a.WorkerID
		d, err = s.o.Jobs.Deploy(ctx, a.ID, nd, nj)
	default:
		d, err = s.o.Jobs.Deploy(ctx, a.ID, nd, nj)
	}
	if err != nil {
		return nil, s.jobErr(ctx, a, err)
	}
	s.wrote(u.ID)
	return d, nil
}

// jobErr explains a job the store refused: another job of the app in
// flight is a 409 naming it.
func (s *Service) jobErr(ctx context.Context, a *store.App, err error) error {
	if !errors.Is(err, store.ErrConflict) {
		return storeErr(err, "app")
	}
	if j, ferr := s.o.Store.FindActiveJobForApp(ctx, a.ID); ferr == nil {
		return api.Errorf(http.StatusConflict, "job_in_progress",
			"the app already has a %s job in progress (job %d, %s): wait for it to finish", j.Type, j.ID, j.Status)
	}
	return api.Errorf(http.StatusConflict, "conflict", "the app changed meanwhile: try again").WithCause(err)
}

func (s *Service) startApp(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	u, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	switch a.Status {
	case store.AppRunning, store.AppDeploying:
		return api.Errorf(http.StatusConflict, "already_running", "the app is %s", a.Status)
	case store.AppCreated:
		return api.Errorf(http.StatusConflict, "not_deployed", "the app has never been deployed: deploy it first")
	}
	if err := s.requireRuntime(ctx, a.Runtime); err != nil {
		return err
	}
	env, err := s.o.Store.AppEnvMap(ctx, a.ID)
	if err != nil {
		return err
	}
	nj, err := s.deployJob(ctx, u, a, env, a.CommitSHA, a.GitBranch)
	if err != nil {
		return err
	}
	// Where the app still holds a worker (exited, crash-looping), that
	// worker starts it; otherwise the scheduler places it.
	nj.Type, nj.AppID, nj.WorkerID = store.JobStart, a.ID, a.WorkerID
	job, err := s.o.Jobs.Create(ctx, nj, store.AppDeploying)
	if err != nil {
		return s.jobErr(ctx, a, err)
	}
	s.wrote(u.ID)
	s.audit(req, u.ID, store.AuditAppStart, map[string]any{"app": a.UUID})
	return api.WriteJSON(w, http.StatusAccepted, map[string]any{"job": viewJob(job)})
}

func (s *Service) stopApp(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	u, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	if a.WorkerID == nil {
		return api.Errorf(http.StatusConflict, "not_running", "the app is %s and runs nowhere", a.Status)
	}
	job, err := s.o.Jobs.Create(ctx, store.NewJob{Type: store.JobStop, AppID: a.ID, WorkerID: a.WorkerID}, "")
	if err != nil {
		return s.jobErr(ctx, a, err)
	}
	s.wrote(u.ID)
	s.audit(req, u.ID, store.AuditAppStop, map[string]any{"app": a.UUID})
	return api.WriteJSON(w, http.StatusAccepted, map[string]any{"job": viewJob(job)})
}

func (s *Service) getJob(w http.ResponseWriter, req bunrouter.Request) error {
	u := userOf(req.Context())
	id, ok := idParam(req, "job")
	if !ok {
		return api.Errorf(http.StatusNotFound, "not_found", "no such job")
	}
	j, err := s.o.Store.FindUserJob(req.Context(), id, u.ID)
	if err != nil {
		return storeErr(err, "job")
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"job": viewJob(j)})
}
