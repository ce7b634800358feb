// Package fakeprovider is a loopback stand-in for GitHub, GitLab,
// Bitbucket Cloud and Gitea/Forgejo (Codeberg) in tests: it serves the
// webhook create and delete endpoints of all four APIs (checking the
// token like the providers do) and delivers signed push events to the
// registered hooks exactly as each provider would, so a test can run the
// whole auto-deploy round trip: link a token, create the hook through
// gitprovider.Client, push, and watch the endpoint deploy.
//
//	fake := fakeprovider.New(t)
//	fake.AddRepo(gitprovider.GitHub, "ada/app", "gho_token")
//	client, _ := gitprovider.New(gitprovider.Options{APIBase: fake.APIBases()})
//	... create the hook through the code under test ...
//	hook := fake.Hooks()[0]
//	resp, err := fake.Push(ctx, hook, "main", sha, "Fix the thing")
//
// Tokens unknown to the fake get 401, tokens without admin rights on an
// existing repository 403, unknown repositories 404. Deliveries go only to
// loopback addresses, and only when asked: unlike GitHub, the fake sends
// no ping on its own after a hook is created (Deliver an Event named
// NonPushEvent(p) for that).
package fakeprovider

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wisehosting/wisehosting/core/gitprovider"
)

// The path prefixes of each provider's API on the fake.
var prefixes = map[gitprovider.Provider]string{
	gitprovider.GitHub:    "/github",
	gitprovider.GitLab:    "/gitlab/api/v4",
	gitprovider.Bitbucket: "/bitbucket/2.0",
	gitprovider.Codeberg:  "/gitea/api/v1",
}

// Hook is a webhook registered on the fake.
type Hook struct {
	// Provider and Repo ("owner/name", GitLab "group/sub/name") say where.
	Provider gitprovider.Provider
	Repo     string
	// ID is the id the provider answered (a number; Bitbucket a {uuid}).
	ID string
	// URL receives the deliveries; Secret signs them.
	URL    string
	Secret string
	// Events are the subscribed events as the provider names them
	// ("push", "repo:push"; GitLab: the *_events flags set to true).
	Events []string
	// Active is the requested active flag (GitLab hooks are always active).
	Active bool
	// ContentType is config.content_type (GitHub, Gitea); empty for GitLab
	// and Bitbucket, which always send JSON.
	ContentType string
	// Token is the token that created the hook; AuthScheme the scheme of
	// its Authorization header ("Bearer", "token"; "PRIVATE-TOKEN" for
	// GitLab's header).
	Token      string
	AuthScheme string
	// Request is the decoded JSON body of the create request.
	Request map[string]any
}

type repoKey struct {
	p    gitprovider.Provider
	path string
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	srv    *httptest.Server
	client *http.Client

	mu     sync.Mutex
	tokens map[repoKey]bool            // (provider, token) → known
	admins map[repoKey]map[string]bool // (provider, repo path) → admin tokens
	hooks  []*Hook
	nextID int
	heads  map[repoKey]map[string]string // (provider, repo path) → ref → sha
}

// New starts a fake on a loopback port, closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		tokens: map[repoKey]bool{},
		admins: map[repoKey]map[string]bool{},
		heads:  map[repoKey]map[string]string{},
		nextID: 1000,
	}
	mux := http.NewServeMux()
	gh, gl, bb, gt := prefixes[gitprovider.GitHub], prefixes[gitprovider.GitLab], prefixes[gitprovider.Bitbucket], prefixes[gitprovider.Codeberg]
	mux.HandleFunc("POST "+gh+"/repos/{owner}/{repo}/hooks", s.create(gitprovider.GitHub))
	mux.HandleFunc("DELETE "+gh+"/repos/{owner}/{repo}/hooks/{id}", s.delete(gitprovider.GitHub))
	mux.HandleFunc("POST "+gl+"/projects/{project}/hooks", s.create(gitprovider.GitLab))
	mux.HandleFunc("DELETE "+gl+"/projects/{project}/hooks/{id}", s.delete(gitprovider.GitLab))
	mux.HandleFunc("POST "+bb+"/repositories/{owner}/{repo}/hooks", s.create(gitprovider.Bitbucket))
	mux.HandleFunc("DELETE "+bb+"/repositories/{owner}/{repo}/hooks/{id}", s.delete(gitprovider.Bitbucket))
	mux.HandleFunc("POST "+gt+"/repos/{owner}/{repo}/hooks", s.create(gitprovider.Codeberg))
	mux.HandleFunc("DELETE "+gt+"/repos/{owner}/{repo}/hooks/{id}", s.delete(gitprovider.Codeberg))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
	})
	s.srv = httptest.NewServer(mux)
	s.client = &http.Client{Timeout: 0, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the fake's root URL.
func (s *Server) URL() string { return s.srv.URL }

// APIBase is provider p's API base URL on the fake.
func (s *Server) APIBase(p gitprovider.Provider) string { return s.srv.URL + prefixes[p] }

// APIBases maps every provider to its API base on the fake, ready for
// gitprovider.Options.APIBase.
func (s *Server) APIBases() map[gitprovider.Provider]string {
	m := map[gitprovider.Provider]string{}
	for p := range prefixes {
		m[p] = s.APIBase(p)
	}
	return m
}

// AddToken makes token a valid token of provider p (admin of nothing).
func (s *Server) AddToken(p gitprovider.Provider, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[repoKey{p, token}] = true
}

// AddRepo creates repository path ("owner/name"; GitLab may nest groups)
// on provider p, with admins as the tokens allowed to manage its hooks
// (they become valid tokens too).
func (s *Server) AddRepo(p gitprovider.Provider, path string, admins ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := repoKey{p, path}
	if s.admins[k] == nil {
		s.admins[k] = map[string]bool{}
	}
	for _, t := range admins {
		s.tokens[repoKey{p, t}] = true
		s.admins[k][t] = true
	}
}

// Hooks returns the registered hooks in creation order.
func (s *Server) Hooks() []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Hook, 0, len(s.hooks))
	for _, h := range s.hooks {
		out = append(out, h.clone())
	}
	return out
}

// Hook returns provider p's hook id.
func (s *Server) Hook(p gitprovider.Provider, id string) (Hook, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.hooks {
		if h.Provider == p && h.ID == id {
			return h.clone(), true
		}
	}
	return Hook{}, false
}

func (h *Hook) clone() Hook {
	c := *h
	c.Events = slices.Clone(h.Events)
	return c
}

// authorize reads the token of r as provider p reads it, and answers the
// provider's 401 itself when it is missing or unknown.
func (s *Server) authorize(p gitprovider.Provider, w http.ResponseWriter, r *http.Request) (token, scheme string, ok bool) {
	auth := r.Header.Get("Authorization")
	scheme, token, _ = strings.Cut(auth, " ")
	valid := false
	switch p {
	case gitprovider.GitHub, gitprovider.Codeberg:
		valid = strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "token")
	case gitprovider.GitLab:
		valid = strings.EqualFold(scheme, "Bearer")
		if auth == "" && r.Header.Get("PRIVATE-TOKEN") != "" {
			scheme, token, valid = "PRIVATE-TOKEN", r.Header.Get("PRIVATE-TOKEN"), true
		}
	case gitprovider.Bitbucket:
		valid = strings.EqualFold(scheme, "Bearer")
	}
	s.mu.Lock()
	known := valid && token != "" && s.tokens[repoKey{p, token}]
	s.mu.Unlock()
	if !known {
		writeError(w, p, http.StatusUnauthorized, "")
		return "", "", false
	}
	return token, scheme, true
}

// repoPath is the repository named by r's path.
func repoPath(p gitprovider.Provider, r *http.Request) string {
	if p == gitprovider.GitLab {
		return r.PathValue("project")
	}
	return r.PathValue("owner") + "/" + r.PathValue("repo")
}

// access answers 404 for an unknown repository and 403 for a token that
// is not one of its admins.
func (s *Server) access(p gitprovider.Provider, w http.ResponseWriter, path, token string) bool {
	s.mu.Lock()
	admins, exists := s.admins[repoKey{p, path}]
	admin := admins[token]
	s.mu.Unlock()
	switch {
	case !exists:
		writeError(w, p, http.StatusNotFound, path)
		return false
	case !admin:
		writeError(w, p, http.StatusForbidden, path)
		return false
	}
	return true
}

// create serves provider p's "create a repository webhook".
func (s *Server) create(p gitprovider.Provider) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, scheme, ok := s.authorize(p, w, r)
		if !ok {
			return
		}
		path := repoPath(p, r)
		if !s.access(p, w, path, token) {
			return
		}
		var body map[string]any
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
			writeInvalid(w, p, "Problems parsing JSON")
			return
		}
		h := &Hook{Provider: p, Repo: path, Token: token, AuthScheme: scheme, Request: body, Active: true}
		if problem := h.read(body); problem != "" {
			writeInvalid(w, p, problem)
			return
		}
		s.mu.Lock()
		if p == gitprovider.GitHub {
			for _, o := range s.hooks {
				if o.Provider == p && o.Repo == path && o.URL == h.URL {
					s.mu.Unlock()
					writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
						"errors": []map[string]string{{"resource": "Hook", "code": "custom", "message": "Hook already exists on this repository"}}})
					return
				}
			}
		}
		s.nextID++
		h.ID = strconv.Itoa(s.nextID)
		if p == gitprovider.Bitbucket {
			h.ID = "{" + newUUID() + "}"
		}
		s.hooks = append(s.hooks, h)
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, h.answer())
	}
}

// read fills h from a create request, or says what is wrong with it.
func (h *Hook) read(body map[string]any) string {
	str := func(m map[string]any, k string) string { v, _ := m[k].(string); return v }
	boolean := func(m map[string]any, k string, def bool) bool {
		if v, ok := m[k].(bool); ok {
			return v
		}
		return def
	}
	list := func(m map[string]any, k string) []string {
		var out []string
		vs, _ := m[k].([]any)
		for _, v := range vs {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	switch h.Provider {
	case gitprovider.GitHub, gitprovider.Codeberg:
		cfg, _ := body["config"].(map[string]any)
		h.URL, h.Secret, h.ContentType = str(cfg, "url"), str(cfg, "secret"), str(cfg, "content_type")
		h.Events, h.Active = list(body, "events"), boolean(body, "active", h.Provider == gitprovider.GitHub)
		if h.Provider == gitprovider.Codeberg && str(body, "type") != "gitea" && str(body, "type") != "forgejo" {
			return "type must be gitea or forgejo"
		}
		if h.Provider == gitprovider.GitHub && len(h.Events) == 0 {
			h.Events = []string{"push"}
		}
		if h.ContentType != "json" && h.ContentType != "form" {
			return "config.content_type must be json or form"
		}
	case gitprovider.GitLab:
		h.URL, h.Secret = str(body, "url"), str(body, "token")
		for _, k := range []string{"push_events", "tag_push_events", "merge_requests_events", "issues_events", "note_events", "pipeline_events"} {
			if boolean(body, k, k == "push_events") {
				h.Events = append(h.Events, k)
			}
		}
	case gitprovider.Bitbucket:
		h.URL, h.Secret = str(body, "url"), str(body, "secret")
		h.Events, h.Active = list(body, "events"), boolean(body, "active", false)
		if len(h.Events) == 0 {
			return "events: at least one event is required"
		}
	}
	if h.URL == "" {
		return "url is missing"
	}
	return ""
}

// answer is the provider's JSON for a created hook.
func (h *Hook) answer() map[string]any {
	switch h.Provider {
	case gitprovider.GitHub:
		id, _ := strconv.Atoi(h.ID)
		return map[string]any{"type": "Repository", "id": id, "name": "web", "active": h.Active, "events": h.Events,
			"config": map[string]any{"url": h.URL, "content_type": h.ContentType, "insecure_ssl": "0", "secret": "********"}}
	case gitprovider.GitLab:
		id, _ := strconv.Atoi(h.ID)
		return map[string]any{"id": id, "url": h.URL, "push_events": slices.Contains(h.Events, "push_events"),
			"enable_ssl_verification": true}
	case gitprovider.Bitbucket:
		return map[string]any{"uuid": h.ID, "url": h.URL, "description": h.Request["description"], "subject_type": "repository",
			"active": h.Active, "events": h.Events, "secret_set": h.Secret != ""}
	default:
		id, _ := strconv.Atoi(h.ID)
		return map[string]any{"id": id, "type": "gitea", "active": h.Active, "events": h.Events,
			"config": map[string]any{"url": h.URL, "content_type": h.ContentType}}
	}
}

// delete serves provider p's "delete a repository webhook".
func (s *Server) delete(p gitprovider.Provider) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, _, ok := s.authorize(p, w, r)
		if !ok {
			return
		}
		path := repoPath(p, r)
		if !s.access(p, w, path, token) {
			return
		}
		id := r.PathValue("id")
		s.mu.Lock()
		i := slices.IndexFunc(s.hooks, func(h *Hook) bool { return h.Provider == p && h.Repo == path && h.ID == id })
		if i >= 0 {
			s.hooks = slices.Delete(s.hooks, i, i+1)
		}
		s.mu.Unlock()
		if i < 0 {
			writeError(w, p, http.StatusNotFound, path)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// writeError answers status with the provider's error body.
func writeError(w http.ResponseWriter, p gitprovider.Provider, status int, path string) {
	var msg string
	switch p {
	case gitprovider.GitHub:
		msg = map[int]string{401: "Bad credentials", 403: "Must have admin rights to Repository.", 404: "Not Found"}[status]
		writeJSON(w, status, map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest", "status": strconv.Itoa(status)})
	case gitprovider.GitLab:
		msg = map[int]string{401: "401 Unauthorized", 403: "403 Forbidden", 404: "404 Project Not Found"}[status]
		writeJSON(w, status, map[string]any{"message": msg})
	case gitprovider.Bitbucket:
		msg = map[int]string{401: "Access token expired. Use your refresh token to obtain a new access token.",
			403: "Your credentials lack one or more required privilege scopes.", 404: "Repository " + path + " not found"}[status]
		writeJSON(w, status, map[string]any{"type": "error", "error": map[string]any{"message": msg}})
	default:
		msg = map[int]string{401: "token is required", 403: "user should be an owner or a collaborator with admin write of a repository",
			404: "The target couldn't be found."}[status]
		writeJSON(w, status, map[string]any{"message": msg, "url": "https://codeberg.org/api/swagger"})
	}
}

// writeInvalid answers a malformed create request as the provider does.
func writeInvalid(w http.ResponseWriter, p gitprovider.Provider, problem string) {
	switch p {
	case gitprovider.GitHub:
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
			"errors": []map[string]string{{"resource": "Hook", "code": "custom", "message": problem}}})
	case gitprovider.GitLab:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": problem})
	case gitprovider.Bitbucket:
		writeJSON(w, http.StatusBadRequest, map[string]any{"type": "error", "error": map[string]any{"message": "Bad request", "detail": problem}})
	default:
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": problem})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newUUID is a random version 4 UUID.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}
