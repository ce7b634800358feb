package fakeprovider

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wisehosting/wisehosting/core/gitprovider"
)

// ZeroSHA is the all-zero commit id providers send for a missing side of
// a ref update.
const ZeroSHA = "0000000000000000000000000000000000000000"

// Event is a delivery to make.
type Event struct {
	// Name, when set, sends another event than a push under the
	// provider's own name ("ping", "Merge Request Hook", "repo:updated",
	// "create"; see NonPushEvent) with a small body of that shape.
	Name string
	// Ref is the full ref pushed ("refs/heads/main", "refs/tags/v1").
	Ref string
	// SHA is the ref's new head (ignored when Deleted).
	SHA string
	// Message is the head commit's message.
	Message string
	// Pusher is the login of who pushed; empty means "ada".
	Pusher string
	// Deleted deletes the ref instead (Gitea sends its "delete" event).
	Deleted bool
}

// Response is what the hook's receiver answered.
type Response struct {
	Status int
	// Body is the first 64 KiB of the answer.
	Body []byte
}

// NonPushEvent is an event name provider p sends that is not a push: the
// GitHub "ping" that follows a hook's creation, GitLab "Merge Request
// Hook", Bitbucket "repo:updated", Gitea "create".
func NonPushEvent(p gitprovider.Provider) string {
	switch p {
	case gitprovider.GitHub:
		return "ping"
	case gitprovider.GitLab:
		return "Merge Request Hook"
	case gitprovider.Bitbucket:
		return "repo:updated"
	default:
		return "create"
	}
}

// Push delivers a push of branch to sha with the head commit's message
// to hook, and returns what the receiver answered.
func (s *Server) Push(ctx context.Context, hook Hook, branch, sha, message string) (Response, error) {
	return s.Deliver(ctx, hook, Event{Ref: "refs/heads/" + branch, SHA: sha, Message: message})
}

// Deliver sends ev to hook as its provider would and returns what the
// receiver answered. Only loopback receivers are allowed.
func (s *Server) Deliver(ctx context.Context, hook Hook, ev Event) (Response, error) {
	if !hook.Active && hook.Provider != gitprovider.GitLab {
		return Response{}, fmt.Errorf("fakeprovider: hook %s is not active", hook.ID)
	}
	req, _, err := s.NewDelivery(ctx, hook, ev)
	if err != nil {
		return Response{}, err
	}
	if err := loopbackOnly(req.URL); err != nil {
		return Response{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("fakeprovider: deliver to %s: %w", hook.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return Response{Status: resp.StatusCode, Body: body}, nil
}

// NewDelivery builds, without sending it, the signed request hook's
// provider would send for ev, and returns it with its body (for tests of
// gitprovider.VerifyPush that tamper with either). It also records the
// ref's new head, so the next push's "before" is right.
func (s *Server) NewDelivery(ctx context.Context, hook Hook, ev Event) (*http.Request, []byte, error) {
	if ev.Pusher == "" {
		ev.Pusher = "ada"
	}
	before := s.moveHead(hook, ev)
	var body any
	h := http.Header{}
	delivery := newUUID()
	name := ev.Name
	switch hook.Provider {
	case gitprovider.GitHub:
		if name == "" {
			name, body = "push", githubPush(hook, ev, before)
		} else {
			body = map[string]any{"zen": "Design for failure.", "hook_id": hook.ID, "hook": map[string]any{"type": "Repository", "events": hook.Events}}
		}
		h.Set("User-Agent", "GitHub-Hookshot/7c1ad52")
		h.Set("X-GitHub-Event", name)
		h.Set("X-GitHub-Delivery", delivery)
		h.Set("X-GitHub-Hook-ID", hook.ID)
		h.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
	case gitprovider.GitLab:
		switch {
		case name != "":
			body = map[string]any{"object_kind": "merge_request", "event_type": "merge_request"}
		case strings.HasPrefix(ev.Ref, "refs/tags/"):
			name, body = "Tag Push Hook", gitlabPush(hook, ev, before, "tag_push")
		default:
			name, body = "Push Hook", gitlabPush(hook, ev, before, "push")
		}
		h.Set("User-Agent", "GitLab/17.5.0")
		h.Set("X-Gitlab-Event", name)
		h.Set("X-Gitlab-Event-UUID", delivery)
		h.Set("X-Gitlab-Webhook-UUID", newUUID())
		h.Set("X-Gitlab-Instance", "https://gitlab.com")
		h.Set("X-Gitlab-Token", hook.Secret)
	case gitprovider.Bitbucket:
		if name == "" {
			name, body = "repo:push", bitbucketPush(hook, ev, before)
		} else {
			body = map[string]any{"actor": map[string]any{"nickname": ev.Pusher}, "repository": bitbucketRepo(hook), "changes": map[string]any{}}
		}
		h.Set("User-Agent", "Bitbucket-Webhooks/2.0")
		h.Set("X-Event-Key", name)
		h.Set("X-Hook-UUID", strings.Trim(hook.ID, "{}"))
		h.Set("X-Request-UUID", delivery)
		h.Set("X-Attempt-Number", "1")
	default:
		switch {
		case name != "":
			body = map[string]any{"ref": strings.TrimPrefix(ev.Ref, "refs/heads/"), "ref_type": "branch", "sha": ev.SHA, "repository": giteaRepo(hook)}
		case ev.Deleted:
			name = "delete"
			body = map[string]any{"ref": strings.TrimPrefix(strings.TrimPrefix(ev.Ref, "refs/heads/"), "refs/tags/"),
				"ref_type": refType(ev.Ref), "pusher_type": "user", "repository": giteaRepo(hook), "sender": giteaUser(ev.Pusher)}
		default:
			name, body = "push", giteaPush(hook, ev, before)
		}
		h.Set("User-Agent", "Go-http-client/1.1")
		for _, k := range []string{"X-Forgejo", "X-Gitea", "X-Gogs", "X-GitHub"} {
			h.Set(k+"-Event", name)
			h.Set(k+"-Delivery", delivery)
		}
		h.Set("X-Gitea-Event-Type", name)
		h.Set("X-Forgejo-Event-Type", name)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, nil, fmt.Errorf("fakeprovider: encode delivery: %w", err)
	}
	if hook.Secret != "" {
		m := hmac.New(sha256.New, []byte(hook.Secret))
		m.Write(raw)
		sig := hex.EncodeToString(m.Sum(nil))
		m1 := hmac.New(sha1.New, []byte(hook.Secret))
		m1.Write(raw)
		sig1 := hex.EncodeToString(m1.Sum(nil))
		switch hook.Provider {
		case gitprovider.GitHub:
			h.Set("X-Hub-Signature-256", "sha256="+sig)
			h.Set("X-Hub-Signature", "sha1="+sig1)
		case gitprovider.Bitbucket:
			h.Set("X-Hub-Signature", "sha256="+sig)
		case gitprovider.Codeberg:
			h.Set("X-Forgejo-Signature", sig)
			h.Set("X-Gitea-Signature", sig)
			h.Set("X-Gogs-Signature", sig)
			h.Set("X-Hub-Signature-256", "sha256="+sig)
			h.Set("X-Hub-Signature", "sha1="+sig1)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("fakeprovider: delivery request: %w", err)
	}
	h.Set("Content-Type", "application/json")
	req.Header = h
	return req, raw, nil
}

// moveHead records ev's new head of its ref and returns the previous one.
func (s *Server) moveHead(hook Hook, ev Event) string {
	if ev.Name != "" {
		return ZeroSHA
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := repoKey{hook.Provider, hook.Repo}
	if s.heads[k] == nil {
		s.heads[k] = map[string]string{}
	}
	before := s.heads[k][ev.Ref]
	if before == "" {
		before = ZeroSHA
	}
	if ev.Deleted {
		delete(s.heads[k], ev.Ref)
	} else {
		s.heads[k][ev.Ref] = ev.SHA
	}
	return before
}

func refType(ref string) string {
	if strings.HasPrefix(ref, "refs/tags/") {
		return "tag"
	}
	return "branch"
}

func after(ev Event) string {
	if ev.Deleted {
		return ZeroSHA
	}
	return ev.SHA
}

func stamp() string { return time.Now().UTC().Format(time.RFC3339) }

// githubPush is a GitHub push event payload.
func githubPush(hook Hook, ev Event, before string) map[string]any {
	owner, name, _ := strings.Cut(hook.Repo, "/")
	var head any
	commits := []any{}
	if !ev.Deleted {
		c := map[string]any{"id": ev.SHA, "tree_id": ev.SHA, "distinct": true, "message": ev.Message, "timestamp": stamp(),
			"url":    "https://github.com/" + hook.Repo + "/commit/" + ev.SHA,
			"author": map[string]any{"name": ev.Pusher, "email": ev.Pusher + "@example.com", "username": ev.Pusher},
			"added":  []string{}, "removed": []string{}, "modified": []string{"README.md"}}
		head, commits = c, []any{c}
	}
	return map[string]any{
		"ref": ev.Ref, "before": before, "after": after(ev), "created": before == ZeroSHA, "deleted": ev.Deleted, "forced": false,
		"base_ref": nil, "compare": "https://github.com/" + hook.Repo + "/compare/" + before + "..." + after(ev),
		"commits": commits, "head_commit": head,
		"repository": map[string]any{"id": 1296269, "name": name, "full_name": hook.Repo, "private": true,
			"owner":    map[string]any{"login": owner, "name": owner},
			"html_url": "https://github.com/" + hook.Repo, "clone_url": "https://github.com/" + hook.Repo + ".git"},
		"pusher": map[string]any{"name": ev.Pusher, "email": ev.Pusher + "@example.com"},
		"sender": map[string]any{"login": ev.Pusher, "id": 1, "type": "User"},
	}
}

// gitlabPush is a GitLab push (or tag_push) hook payload.
func gitlabPush(hook Hook, ev Event, before, kind string) map[string]any {
	var checkout any
	commits := []any{}
	if !ev.Deleted {
		checkout = ev.SHA
		commits = []any{map[string]any{"id": ev.SHA, "message": ev.Message, "title": strings.SplitN(ev.Message, "\n", 2)[0],
			"timestamp": stamp(), "url": "https://gitlab.com/" + hook.Repo + "/-/commit/" + ev.SHA,
			"author": map[string]any{"name": ev.Pusher, "email": ev.Pusher + "@example.com"}}}
	}
	i := strings.LastIndex(hook.Repo, "/")
	return map[string]any{
		"object_kind": kind, "event_name": kind, "before": before, "after": after(ev), "ref": ev.Ref, "ref_protected": true,
		"checkout_sha": checkout, "message": nil, "user_id": 4, "user_name": "Ada Lovelace", "user_username": ev.Pusher,
		"user_email": "", "project_id": 15,
		"project": map[string]any{"id": 15, "name": hook.Repo[i+1:], "path_with_namespace": hook.Repo, "namespace": hook.Repo[:i],
			"web_url": "https://gitlab.com/" + hook.Repo, "git_http_url": "https://gitlab.com/" + hook.Repo + ".git", "default_branch": "main"},
		"commits": commits, "total_commits_count": len(commits),
		"repository": map[string]any{"name": hook.Repo[i+1:], "homepage": "https://gitlab.com/" + hook.Repo},
	}
}

func bitbucketRepo(hook Hook) map[string]any {
	_, name, _ := strings.Cut(hook.Repo, "/")
	return map[string]any{"type": "repository", "full_name": hook.Repo, "name": name, "uuid": "{" + newUUID() + "}",
		"links": map[string]any{"html": map[string]any{"href": "https://bitbucket.org/" + hook.Repo}}}
}

// bitbucketPush is a Bitbucket Cloud repo:push payload with one change.
func bitbucketPush(hook Hook, ev Event, before string) map[string]any {
	name := strings.TrimPrefix(strings.TrimPrefix(ev.Ref, "refs/heads/"), "refs/tags/")
	state := func(sha, message string) map[string]any {
		return map[string]any{"type": refType(ev.Ref), "name": name,
			"target": map[string]any{"type": "commit", "hash": sha, "message": message, "date": stamp(),
				"author": map[string]any{"raw": ev.Pusher + " <" + ev.Pusher + "@example.com>"}}}
	}
	var oldState, newState any
	switch {
	case before != ZeroSHA:
		oldState = state(before, "")
	case ev.Deleted: // a ref the fake never saw pushed
		oldState = state(strings.Repeat("1", 40), "")
	}
	commits := []any{}
	if !ev.Deleted {
		newState = state(ev.SHA, ev.Message)
		commits = []any{map[string]any{"type": "commit", "hash": ev.SHA, "message": ev.Message}}
	}
	return map[string]any{
		"actor":      map[string]any{"type": "user", "nickname": ev.Pusher, "display_name": "Ada Lovelace", "uuid": "{" + newUUID() + "}"},
		"repository": bitbucketRepo(hook),
		"push": map[string]any{"changes": []any{map[string]any{
			"new": newState, "old": oldState, "created": oldState == nil, "closed": ev.Deleted, "forced": false,
			"truncated": false, "commits": commits,
		}}},
	}
}

func giteaUser(login string) map[string]any {
	return map[string]any{"id": 1, "login": login, "username": login, "full_name": "", "email": login + "@noreply.codeberg.org"}
}

func giteaRepo(hook Hook) map[string]any {
	owner, name, _ := strings.Cut(hook.Repo, "/")
	return map[string]any{"id": 140, "name": name, "full_name": hook.Repo, "owner": giteaUser(owner), "private": false,
		"html_url": "https://codeberg.org/" + hook.Repo, "clone_url": "https://codeberg.org/" + hook.Repo + ".git"}
}

// giteaPush is a Gitea/Forgejo push payload.
func giteaPush(hook Hook, ev Event, before string) map[string]any {
	c := map[string]any{"id": ev.SHA, "message": ev.Message + "\n", "url": "https://codeberg.org/" + hook.Repo + "/commit/" + ev.SHA,
		"author":    map[string]any{"name": ev.Pusher, "email": ev.Pusher + "@example.com", "username": ev.Pusher},
		"committer": map[string]any{"name": ev.Pusher, "email": ev.Pusher + "@example.com", "username": ev.Pusher},
		"timestamp": stamp(), "added": []string{}, "removed": []string{}, "modified": []string{"README.md"}}
	return map[string]any{
		"ref": ev.Ref, "before": before, "after": ev.SHA,
		"compare_url": "https://codeberg.org/" + hook.Repo + "/compare/" + before + "..." + ev.SHA,
		"commits":     []any{c}, "total_commits": 1, "head_commit": c,
		"repository": giteaRepo(hook), "pusher": giteaUser(ev.Pusher), "sender": giteaUser(ev.Pusher),
	}
}

// loopbackOnly refuses a receiver that is not on a loopback address.
func loopbackOnly(u *url.URL) error {
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("fakeprovider: deliveries go only to loopback addresses (127.0.0.1, ::1, localhost)")
}
