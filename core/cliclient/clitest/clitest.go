// Package clitest is an in-memory fake of the user API under /api/v1 (the
// contract core/cliclient speaks), on a loopback httptest server, for the
// tests of the client and of the command line. It checks what a real core
// checks of a request — the Bearer token, unknown JSON fields, names,
// ownership by existence — and lets a test script how deployments and
// jobs progress and push live log lines.
package clitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/cliclient"
)

// Step is what a deployment looks like at one GET of it.
type Step struct {
	Status string
	// Logs is the whole build log at this step.
	Logs  string
	Error string
}

// Server is the fake. Its exported fields may be set before the requests
// they matter to.
type Server struct {
	*httptest.Server
	// Token is the one Bearer token accepted (SetToken changes it).
	Token string
	// User is the token's owner.
	User cliclient.User
	// WrapMe makes GET /api/v1/me answer {"user": …} instead of the bare
	// user.
	WrapMe bool

	mu sync.Mutex
	// deployScript is the steps of each new deployment, one per GET.
	deployScript []Step
	jobScript    []string
	wsError      *cliclient.APIError
	apps         []*cliclient.App
	env          map[string][]*cliclient.EnvVar // by app UUID
	deps         []*deployment
	jobs         map[cliclient.ID]*job
	domains      []*domain
	verified     map[string]bool // hostnames whose record "exists"
	logs         map[string][]cliclient.LogLine
	subs         map[*subscriber]struct{}
	requests     []string
	nextID       int
	closing      chan struct{}
}

type deployment struct {
	d      cliclient.Deployment
	script []Step
	pos    int
}

type job struct {
	j      cliclient.Job
	script []string
	pos    int
}

type domain struct {
	d       cliclient.Domain
	appUUID string
}

// New starts a fake for user ada@example.com with a fresh token; the
// test's cleanup stops it.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		Token:        "wht_" + strings.Repeat("A", 43),
		User:         cliclient.User{ID: "1", Email: "ada@example.com", Name: "Ada", Plan: "free"},
		deployScript: []Step{{Status: cliclient.DeploymentSucceeded}},
		jobScript:    []string{cliclient.JobCompleted},
		env:          map[string][]*cliclient.EnvVar{},
		jobs:         map[cliclient.ID]*job{},
		verified:     map[string]bool{},
		logs:         map[string][]cliclient.LogLine{},
		subs:         map[*subscriber]struct{}{},
		closing:      make(chan struct{}),
		nextID:       100,
	}
	s.Server = httptest.NewServer(s.routes())
	t.Cleanup(func() {
		close(s.closing)
		s.Close()
	})
	return s
}

// SetToken changes the accepted token.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Token = token
}

// SetDeployScript sets the steps every later deployment goes through, one
// per GET of it (the last one stays).
func (s *Server) SetDeployScript(steps ...Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deployScript = steps
}

// SetJobScript sets the statuses every later job goes through, one per GET.
func (s *Server) SetJobScript(statuses ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobScript = statuses
}

// SetStreamError makes the log stream send this error and close once
// connected.
func (s *Server) SetStreamError(e *cliclient.APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wsError = e
}

// SetRecord makes the verification record of hostname present (or not).
func (s *Server) SetRecord(hostname string, present bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.verified[hostname] = present
}

// Requests returns "METHOD /path?query" of every request so far.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// AddApp creates an app directly and returns a copy.
func (s *Server) AddApp(name string) cliclient.App {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.addAppLocked(name, "https://git.example.com/ada/"+name+".git", "main")
}

// App returns a copy of the app named name, or false.
func (s *Server) App(name string) (cliclient.App, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.findAppLocked(name)
	if a == nil {
		return cliclient.App{}, false
	}
	return *a, true
}

// Env returns an app's env vars as a map.
func (s *Server) Env(name string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	if a := s.findAppLocked(name); a != nil {
		for _, v := range s.env[a.UUID] {
			out[v.Key] = v.Value
		}
	}
	return out
}

// SetStats sets an app's resource usage.
func (s *Server) SetStats(name string, st *cliclient.AppStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.findAppLocked(name); a != nil {
		a.Stats = st
	}
}

// Persist stores log lines of an app (by name) as if it had written them.
func (s *Server) Persist(name string, lines ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.findAppLocked(name)
	for _, l := range lines {
		s.logs[a.UUID] = append(s.logs[a.UUID], cliclient.LogLine{App: a.UUID, TS: ts(), Stream: "stdout", Line: l})
	}
}

// Subscribers is how many log streams are connected.
func (s *Server) Subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

func ts() cliclient.Timestamp {
	return cliclient.Timestamp{Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{5,30}[a-z0-9]$`)

func (s *Server) id() cliclient.ID {
	s.nextID++
	return cliclient.ID(strconv.Itoa(s.nextID))
}

func (s *Server) addAppLocked(name, repo, branch string) *cliclient.App {
	s.nextID++
	a := &cliclient.App{
		UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", s.nextID), Name: name, Subdomain: name,
		URL: "https://" + name + ".apps.test", Status: "stopped", Runtime: "podman",
		GitRepo: repo, GitBranch: branch, Port: 8080, CreatedAt: ts(), UpdatedAt: ts(),
	}
	s.apps = append(s.apps, a)
	return a
}

func (s *Server) findAppLocked(ref string) *cliclient.App {
	for _, a := range s.apps {
		if a.UUID == ref || a.Name == ref {
			return a
		}
	}
	return nil
}

func (s *Server) newDeploymentLocked(a *cliclient.App, trigger, branch, sha string) (*cliclient.Deployment, *cliclient.Job) {
	if branch == "" {
		branch = a.GitBranch
	}
	d := &deployment{d: cliclient.Deployment{ID: s.id(), AppUUID: a.UUID, Status: cliclient.DeploymentPending,
		Trigger: trigger, Branch: branch, CommitSHA: sha, CreatedAt: ts()}, script: s.deployScript}
	s.deps = append(s.deps, d)
	j := s.newJobLocked("deploy")
	dc := d.d
	return &dc, j
}

func (s *Server) newJobLocked(typ string) *cliclient.Job {
	j := &job{j: cliclient.Job{ID: s.id(), Type: typ, Status: cliclient.JobPending}, script: s.jobScript}
	s.jobs[j.j.ID] = j
	jc := j.j
	return &jc
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeErr writes the API's error body.
func writeErr(w http.ResponseWriter, status int, code, format string, args ...any) {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, fmt.Sprintf(format, args...)
	writeJSON(w, status, body)
}

// decode reads a JSON body, rejecting unknown fields as the real API does;
// false means the error answer was written.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		writeErr(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "request body must be application/json, not %q", ct)
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, "bad_json", "invalid JSON body: %v", err)
		return false
	}
	return true
}

// handler is a route's handler, called with the lock held and the app of
// {app} resolved when the route has one.
type handler func(w http.ResponseWriter, r *http.Request, a *cliclient.App)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h handler) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
			if r.Header.Get("Authorization") != "Bearer "+s.Token {
				s.mu.Unlock()
				w.Header().Set("WWW-Authenticate", `Bearer realm="wisehosting"`)
				writeErr(w, http.StatusUnauthorized, "unauthorized", "missing or invalid credentials")
				return
			}
			var a *cliclient.App
			if ref := r.PathValue("app"); ref != "" {
				if a = s.findAppLocked(ref); a == nil {
					s.mu.Unlock()
					writeErr(w, http.StatusNotFound, "not_found", "no such app")
					return
				}
			}
			defer s.mu.Unlock()
			h(w, r, a)
		})
	}
	handle("GET /api/v1/me", s.me)
	handle("GET /api/v1/apps", s.listApps)
	handle("POST /api/v1/apps", s.createApp)
	handle("GET /api/v1/apps/{app}", func(w http.ResponseWriter, _ *http.Request, a *cliclient.App) {
		writeJSON(w, http.StatusOK, map[string]any{"app": a})
	})
	handle("PATCH /api/v1/apps/{app}", s.patchApp)
	handle("DELETE /api/v1/apps/{app}", s.deleteApp)
	handle("POST /api/v1/apps/{app}/deploy", s.deploy)
	handle("POST /api/v1/apps/{app}/{action}", s.action)
	handle("GET /api/v1/apps/{app}/deployments", s.listDeployments)
	handle("GET /api/v1/deployments", s.listDeployments)
	handle("GET /api/v1/deployments/{id}", s.getDeployment)
	handle("GET /api/v1/jobs/{id}", s.getJob)
	handle("GET /api/v1/apps/{app}/env", s.listEnv)
	handle("PUT /api/v1/apps/{app}/env/{key}", s.setEnv)
	handle("DELETE /api/v1/apps/{app}/env/{key}", s.deleteEnv)
	handle("GET /api/v1/apps/{app}/logs", s.getLogs)
	handle("POST /api/v1/apps/{app}/domains", s.addDomain)
	handle("GET /api/v1/apps/{app}/domains", s.listDomains)
	handle("POST /api/v1/domains/{id}/verify", s.verifyDomain)
	handle("DELETE /api/v1/domains/{id}", s.deleteDomain)
	mux.HandleFunc("GET /api/v1/logs/ws", s.logStream)
	return mux
}

func (s *Server) me(w http.ResponseWriter, _ *http.Request, _ *cliclient.App) {
	if s.WrapMe {
		writeJSON(w, http.StatusOK, map[string]any{"user": s.User})
		return
	}
	writeJSON(w, http.StatusOK, s.User)
}

func (s *Server) listApps(w http.ResponseWriter, _ *http.Request, _ *cliclient.App) {
	writeJSON(w, http.StatusOK, map[string]any{"apps": s.apps})
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request, _ *cliclient.App) {
	var body struct {
		Name         *string           `json:"name"`
		GitRepo      string            `json:"git_repo"`
		GitBranch    string            `json:"git_branch"`
		BuildCommand string            `json:"build_command"`
		RunCommand   string            `json:"run_command"`
		Dockerfile   string            `json:"dockerfile"`
		Port         *int              `json:"port"`
		Env          map[string]string `json:"env"`
		Deploy       bool              `json:"deploy"`
	}
	if !decode(w, r, &body) {
		return
	}
	name := fmt.Sprintf("brave-otter-%04d", s.nextID)
	if body.Name != nil {
		name = *body.Name
		if !nameRE.MatchString(name) {
			writeErr(w, http.StatusBadRequest, "invalid", "name %q: use 7 to 32 lowercase letters, digits and '-'", name)
			return
		}
	}
	if body.GitRepo == "" {
		writeErr(w, http.StatusBadRequest, "invalid", "git_repo is required")
		return
	}
	if body.Port != nil && (*body.Port < 1 || *body.Port > 65535) {
		writeErr(w, http.StatusBadRequest, "invalid", "port must be within 1..65535")
		return
	}
	if s.findAppLocked(name) != nil {
		writeErr(w, http.StatusConflict, "conflict", "app already exists")
		return
	}
	branch := body.GitBranch
	if branch == "" {
		branch = "main"
	}
	a := s.addAppLocked(name, body.GitRepo, branch)
	a.BuildCommand, a.RunCommand, a.Dockerfile = body.BuildCommand, body.RunCommand, body.Dockerfile
	if body.Port != nil {
		a.Port = *body.Port
	}
	keys := make([]string, 0, len(body.Env))
	for k := range body.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s.env[a.UUID] = append(s.env[a.UUID], &cliclient.EnvVar{Key: k, Value: body.Env[k], UpdatedAt: ts()})
	}
	out := map[string]any{"app": a}
	if body.Deploy {
		d, _ := s.newDeploymentLocked(a, "api", "", "")
		out["deployment"] = d
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) patchApp(w http.ResponseWriter, r *http.Request, a *cliclient.App) {
	var p cliclient.AppPatch
	if !decode(w, r, &p) {
		return
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&a.GitRepo, p.GitRepo)
	set(&a.GitBranch, p.GitBranch)
	set(&a.BuildCommand, p.BuildCommand)
	set(&a.RunCommand, p.RunCommand)
	set(&a.Dockerfile, p.Dockerfile)
	if p.Port != nil {
		a.Port = *p.Port
	}
	if p.AutoDeploy != nil {
		a.AutoDeploy = *p.AutoDeploy
	}
	writeJSON(w, http.StatusOK, map[string]any{"app": a})
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request, a *cliclient.App) {
	if h := r.URL.Query().Get("hard"); h != "" && h != "true" && h != "false" {
		writeErr(w, http.StatusBadRequest, "invalid", "hard must be true or false")
		return
	}
	s.apps = slices.DeleteFunc(s.apps, func(x *cliclient.App) bool { return x == a })
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deploy(w http.ResponseWriter, r *http.Request, a *cliclient.App) {
	var body cliclient.Deploy
	if !decode(w, r, &body) {
		return
	}
	d, j := s.newDeploymentLocked(a, "api", body.Branch, body.CommitSHA)
	writeJSON(w, http.StatusAccepted, map[string]any{"deployment": d, "job": j})
}

func (s *Server) action(w http.ResponseWriter, r *http.Request, a *cliclient.App) {
	if r.ContentLength > 0 {
		writeErr(w, http.StatusBadRequest, "bad_json", "this route takes no body")
		return
	}
	switch act := r.PathValue("action"); act {
	case "start", "stop":
		writeJSON(w, http.StatusAccepted, map[string]any{"job": s.newJobLocked(act)})
	case "restart":
		d, j := s.newDeploymentLocked(a, "restart", "", a.CommitSHA)
		writeJSON(w, http.StatusAccepted, map[string]any{"job": j, "deployment": d})
	default:
		writeErr(w, http.StatusNotFound, "not_found", "no such route")
	}
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request, a *cliclient.App) {
	limit := 20
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			writeErr(w, http.StatusBadRequest, "invalid", "limit must be within 1..100")
			return
		}
		limit = n
	}
	out := []cliclient.Deployment{}
	for i := len(s.deps) - 1; i >= 0 && len(out) < limit; i-- {
		if a == nil || s.deps[i].d.AppUUID == a.UUID {
			out = append(out, s.deps[i].d)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deployments": out})
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request, _ *cliclient.App) {
	for _, d := range s.deps {
		if string(d.d.ID) != r.PathValue("id") {
			continue
		}
		if len(d.script) > 0 {
			st := d.script[min(d.pos, len(d.script)-1)]
			d.pos++
			d.d.Status, d.d.BuildLogs, d.d.Error = st.Status, st.Logs, st.Error
			if st.Status == cliclient.DeploymentSucceeded {
				if a := s.findAppLocked(d.d.AppUUID); a != nil {
					a.Status = "running"
				}
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"deployment": d.d})
		return
	}
	writeErr(w, http.StatusNotFound, "not_found", "no such deployment")
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, _ *cliclient.App) {
	j, ok := s.jobs[cliclient.ID(r.PathValue("id"))]
	if !ok {
		writeErr(w, http.StatusNotFound, "not_found", "no such job")
		return
	}
	if len(j.script) > 0 {
		j.j.Status = j.script[min(j.pos, len(j.script)-1)]
		j.pos++
		if j.j.Status == cliclient.JobFailed {
			j.j.Message = "the worker could not " + j.j.Type + " the app"
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"job": j.j})
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,255}$`)

func (s *Server) listEnv(w http.ResponseWriter, _ *http.Request, a *cliclient.App) {
	vs := s.env[a.UUID]
	if vs == nil {
		vs = []*cliclient.EnvVar{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"env": vs})
}

const envNote = "the change takes effect on the next deploy or restart"

func (s *Server) setEnv(w http.ResponseWriter, r *http.Request, a *cliclient.App) {
	key := r.PathValue("key")
	if !envKeyRE.MatchString(key) {
		writeErr(w, http.StatusBadRequest, "invalid", "env var name %q: use letters, digits and '_', not starting with a digit", key)
		return
	}
	var body struct {
		Value *string `json:"value"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.Value == nil {
		writeErr(w, http.StatusBadRequest, "invalid", "value is required")
		return
	}
	v := &cliclient.EnvVar{Key: key, Value: *body.Value, UpdatedAt: ts()}
	vs := slices.DeleteFunc(s.env[a.UUID], func(x *cliclient.EnvVar) bool { return x.Key == key })
	s.env[a.UUID] = append(vs, v)
	writeJSON(w, http.StatusOK, map[string]any{"env_var": v, "note": envNote})
}

func (s *Server) deleteEnv(w http.ResponseWriter, r *http.Request, a *cliclient.App) {
	key := r.PathValue("key")
	n := len(s.env[a.UUID])
	s.env[a.UUID] = slices.DeleteFunc(s.env[a.UUID], func(x *cliclient.EnvVar) bool { return x.Key == key })
	if len(s.env[a.UUID]) == n {
		writeErr(w, http.StatusNotFound, "not_found", "no such env var")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"note": envNote})
}

// tail parses ?tail= (default 100, at most 1000).
func tail(w http.ResponseWriter, r *http.Request) (int, bool) {
	t := r.URL.Query().Get("tail")
	if t == "" {
		return 100, true
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > 1000 {
		writeErr(w, http.StatusBadRequest, "invalid", "tail must be within 0..1000")
		return 0, false
	}
	return n, true
}

func (s *Server) getLogs(w http.ResponseWriter, r *http.Request, a *cliclient.App) {
	n, ok := tail(w, r)
	if !ok {
		return
	}
	ls := s.logs[a.UUID]
	ls = ls[max(0, len(ls)-n):]
	if ls == nil {
		ls = []cliclient.LogLine{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"lines": ls})
}

func (s *Server) addDomain(w http.ResponseWriter, r *http.Request, a *cliclient.App) {
	var body struct {
		Hostname string `json:"hostname"`
	}
	if !decode(w, r, &body) {
		return
	}
	h := strings.ToLower(body.Hostname)
	if !strings.Contains(h, ".") || strings.ContainsAny(h, " /:") {
		writeErr(w, http.StatusUnprocessableEntity, "invalid_hostname", "%q is not a host name", body.Hostname)
		return
	}
	for _, d := range s.domains {
		if d.d.Hostname == h {
			writeErr(w, http.StatusConflict, "conflict", "domain already exists")
			return
		}
	}
	d := &domain{appUUID: a.UUID, d: cliclient.Domain{ID: s.id(), Hostname: h, Status: "pending",
		VerificationToken: "wh-verify-" + h, CreatedAt: ts()}}
	s.domains = append(s.domains, d)
	writeJSON(w, http.StatusCreated, map[string]any{"domain": d.d,
		"record": cliclient.DNSRecord{Type: "TXT", Name: "_wisehosting." + h, Value: d.d.VerificationToken}})
}

func (s *Server) listDomains(w http.ResponseWriter, _ *http.Request, a *cliclient.App) {
	out := []cliclient.Domain{}
	for _, d := range s.domains {
		if d.appUUID == a.UUID {
			out = append(out, d.d)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": out})
}

func (s *Server) findDomainLocked(id string) *domain {
	for _, d := range s.domains {
		if string(d.d.ID) == id {
			return d
		}
	}
	return nil
}

func (s *Server) verifyDomain(w http.ResponseWriter, r *http.Request, _ *cliclient.App) {
	d := s.findDomainLocked(r.PathValue("id"))
	if d == nil {
		writeErr(w, http.StatusNotFound, "not_found", "no such domain")
		return
	}
	if !s.verified[d.d.Hostname] {
		writeErr(w, http.StatusUnprocessableEntity, "verification_failed",
			"no TXT record _wisehosting.%s with the verification token was found", d.d.Hostname)
		return
	}
	d.d.Status = "active"
	d.d.VerifiedAt = ts()
	writeJSON(w, http.StatusOK, map[string]any{"domain": d.d})
}

func (s *Server) deleteDomain(w http.ResponseWriter, r *http.Request, _ *cliclient.App) {
	d := s.findDomainLocked(r.PathValue("id"))
	if d == nil {
		writeErr(w, http.StatusNotFound, "not_found", "no such domain")
		return
	}
	s.domains = slices.DeleteFunc(s.domains, func(x *domain) bool { return x == d })
	w.WriteHeader(http.StatusNoContent)
}
