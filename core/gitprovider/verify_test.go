package gitprovider_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wisehosting/wisehosting/core/gitprovider"
	"github.com/wisehosting/wisehosting/core/gitprovider/fakeprovider"
)

const (
	sha1Head = "9fceb02d0ae598e95dc970b74767f19372d61af8"
	sha2Head = "A1B2C3D4E5F60718293A4B5C6D7E8F9001122334455667788990AABBCCDDEEFF"
)

// receiver is a loopback push endpoint built the way the caller should
// build it: bounded body, VerifyPush, answer by error class.
type receiver struct {
	secret string

	mu     sync.Mutex
	pushes []gitprovider.Push
	errs   []error
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, gitprovider.MaxPushBody))
	if err != nil {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	pushes, err := gitprovider.VerifyPush(r, body, rc.secret)
	rc.mu.Lock()
	rc.pushes, rc.errs = append(rc.pushes, pushes...), append(rc.errs, err)
	rc.mu.Unlock()
	switch {
	case errors.Is(err, gitprovider.ErrBadSignature):
		w.WriteHeader(http.StatusUnauthorized)
	case errors.Is(err, gitprovider.ErrNotPush):
		w.WriteHeader(http.StatusOK)
	case err != nil:
		w.WriteHeader(http.StatusBadRequest)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

func (rc *receiver) last() ([]gitprovider.Push, error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.pushes, rc.errs[len(rc.errs)-1]
}

// TestPushRoundTrip creates a hook through the Client, pushes on the fake
// and checks what a real endpoint verified.
func TestPushRoundTrip(t *testing.T) {
	client, fake := newClient(t)
	ctx := t.Context()
	for _, c := range providerCases {
		t.Run(string(c.p), func(t *testing.T) {
			rc := &receiver{secret: newSecret(t)}
			srv := httptest.NewServer(rc)
			t.Cleanup(srv.Close)
			repo, _ := client.ParseRepo(c.url)
			id, err := client.CreateHook(ctx, adminToken, repo, srv.URL+"/hooks/1", rc.secret)
			if err != nil {
				t.Fatal(err)
			}
			hook, _ := fake.Hook(c.p, id)

			resp, err := fake.Push(ctx, hook, "main", sha1Head, "Fix the login page\n\nIt crashed on empty passwords.")
			if err != nil || resp.Status != http.StatusAccepted {
				t.Fatalf("Push = %+v, %v", resp, err)
			}
			pushes, err := rc.last()
			want := gitprovider.Push{Provider: c.p, Ref: "refs/heads/main", Branch: "main", CommitSHA: sha1Head,
				CommitMessage: "Fix the login page", Pusher: "ada"}
			if err != nil || len(pushes) != 1 || pushes[0] != want {
				t.Fatalf("verified %+v, %v; want %+v", pushes, err, want)
			}
			if p, ok := gitprovider.ForBranch(pushes, "main"); !ok || p != want {
				t.Fatalf("ForBranch = %+v, %v", p, ok)
			}
			if _, ok := gitprovider.ForBranch(pushes, "dev"); ok {
				t.Fatal("ForBranch found another branch")
			}

			resp, err = fake.Deliver(ctx, hook, fakeprovider.Event{Name: fakeprovider.NonPushEvent(c.p)})
			if _, verr := rc.last(); err != nil || resp.Status != http.StatusOK || !errors.Is(verr, gitprovider.ErrNotPush) {
				t.Fatalf("non-push event: %+v, %v, %v", resp, err, verr)
			}

			hook.Secret = newSecret(t) // the fake now signs with another secret
			resp, err = fake.Push(ctx, hook, "main", sha1Head, "x")
			if _, verr := rc.last(); err != nil || resp.Status != http.StatusUnauthorized || !errors.Is(verr, gitprovider.ErrBadSignature) {
				t.Fatalf("wrongly signed push: %+v, %v, %v", resp, err, verr)
			}
		})
	}
}

// delivery is a signed push of main built by the fake for provider p.
func delivery(t *testing.T, fake *fakeprovider.Server, p gitprovider.Provider, secret string, ev fakeprovider.Event) (*http.Request, []byte) {
	t.Helper()
	hook := fakeprovider.Hook{Provider: p, Repo: "ada/app", ID: "7", URL: "http://127.0.0.1:1/hook", Secret: secret, Active: true}
	if p == gitprovider.Bitbucket {
		hook.ID = "{0b8e4d0c-7e3a-4c1e-9b7d-8f1f5c9a2d11}"
	}
	req, body, err := fake.NewDelivery(t.Context(), hook, ev)
	if err != nil {
		t.Fatal(err)
	}
	return req, body
}

// signatureHeaders are where each provider carries its proof.
var signatureHeaders = map[gitprovider.Provider][]string{
	gitprovider.GitHub:    {"X-Hub-Signature-256"},
	gitprovider.GitLab:    {"X-Gitlab-Token"},
	gitprovider.Bitbucket: {"X-Hub-Signature"},
	gitprovider.Codeberg:  {"X-Gitea-Signature", "X-Forgejo-Signature", "X-Gogs-Signature", "X-Hub-Signature-256"},
}

func TestVerifyPushRefuses(t *testing.T) {
	fake := fakeprovider.New(t)
	push := fakeprovider.Event{Ref: "refs/heads/main", SHA: sha1Head, Message: "m"}
	for _, c := range providerCases {
		t.Run(string(c.p), func(t *testing.T) {
			secret := newSecret(t)
			tests := []struct {
				name   string
				secret string
				change func(req *http.Request, body []byte) []byte
				want   error
			}{
				{name: "authentic", secret: secret, change: func(req *http.Request, body []byte) []byte {
					if !strings.Contains(string(body), `main"`) {
						t.Fatalf("the tampering below finds no \"main\" in %s", body)
					}
					return body
				}},
				{name: "wrong secret", secret: newSecret(t), want: gitprovider.ErrBadSignature},
				{name: "no secret configured", secret: "", want: gitprovider.ErrBadSignature},
				{name: "signature headers removed", secret: secret, want: gitprovider.ErrBadSignature,
					change: func(req *http.Request, body []byte) []byte {
						for _, h := range signatureHeaders[c.p] {
							req.Header.Del(h)
						}
						return body
					}},
				{name: "signature header doubled", secret: secret, want: gitprovider.ErrBadSignature,
					change: func(req *http.Request, body []byte) []byte {
						h := signatureHeaders[c.p][0]
						req.Header.Add(h, req.Header.Get(h))
						return body
					}},
				{name: "signature truncated", secret: secret, want: gitprovider.ErrBadSignature,
					change: func(req *http.Request, body []byte) []byte {
						h := signatureHeaders[c.p][0]
						req.Header.Set(h, req.Header.Get(h)[:len(req.Header.Get(h))-2])
						return body
					}},
				{name: "last signature wrong", secret: secret, want: gitprovider.ErrBadSignature,
					change: func(req *http.Request, body []byte) []byte {
						hs := signatureHeaders[c.p]
						v := []byte(req.Header.Get(hs[len(hs)-1]))
						v[len(v)-1] ^= 1
						req.Header.Set(hs[len(hs)-1], string(v))
						return body
					}},
				{name: "no event header", secret: secret, want: gitprovider.ErrUnknownDelivery,
					change: func(req *http.Request, body []byte) []byte {
						for _, h := range []string{"X-GitHub-Event", "X-Gitlab-Event", "X-Event-Key", "X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event"} {
							req.Header.Del(h)
						}
						return body
					}},
				{name: "too large", secret: secret, want: gitprovider.ErrBadPayload,
					change: func(req *http.Request, body []byte) []byte {
						return append(body, make([]byte, gitprovider.MaxPushBody)...)
					}},
			}
			if c.p != gitprovider.GitLab { // GitLab's token does not cover the body
				tests = append(tests, struct {
					name   string
					secret string
					change func(req *http.Request, body []byte) []byte
					want   error
				}{name: "tampered body", secret: secret, want: gitprovider.ErrBadSignature,
					change: func(req *http.Request, body []byte) []byte {
						return []byte(strings.Replace(string(body), `main"`, `evil"`, 1))
					}})
			}
			for _, tt := range tests {
				req, body := delivery(t, fake, c.p, secret, push)
				if tt.change != nil {
					body = tt.change(req, body)
				}
				pushes, err := gitprovider.VerifyPush(req, body, tt.secret)
				if tt.want == nil {
					if err != nil || len(pushes) != 1 || pushes[0].Branch != "main" {
						t.Fatalf("%s: %+v, %v", tt.name, pushes, err)
					}
					continue
				}
				if !errors.Is(err, tt.want) || pushes != nil {
					t.Fatalf("%s: VerifyPush = %+v, %v; want %v", tt.name, pushes, err, tt.want)
				}
				if strings.Contains(err.Error(), secret) || len(secret) > 0 && strings.Contains(err.Error(), sign(secret, body)[:16]) {
					t.Fatalf("%s: the error tells secrets: %v", tt.name, err)
				}
			}

			// Authentication comes before the event: a forged ping is a bad signature.
			req, body := delivery(t, fake, c.p, newSecret(t), fakeprovider.Event{Name: fakeprovider.NonPushEvent(c.p)})
			if _, err := gitprovider.VerifyPush(req, body, secret); !errors.Is(err, gitprovider.ErrBadSignature) {
				t.Fatalf("forged %s event: %v", fakeprovider.NonPushEvent(c.p), err)
			}
			req, body = delivery(t, fake, c.p, secret, fakeprovider.Event{Name: fakeprovider.NonPushEvent(c.p)})
			if _, err := gitprovider.VerifyPush(req, body, secret); !errors.Is(err, gitprovider.ErrNotPush) {
				t.Fatalf("authentic %s event: %v", fakeprovider.NonPushEvent(c.p), err)
			}
		})
	}
}

func TestVerifyPushRefs(t *testing.T) {
	fake := fakeprovider.New(t)
	secret := newSecret(t)
	type want struct {
		push gitprovider.Push
		err  error
	}
	for _, c := range providerCases {
		t.Run(string(c.p), func(t *testing.T) {
			tests := []struct {
				name string
				ev   fakeprovider.Event
				want want
			}{
				{name: "nested branch, sha256", ev: fakeprovider.Event{Ref: "refs/heads/feature/x-1", SHA: sha2Head, Message: "  \nFirst\r\nsecond"},
					want: want{push: gitprovider.Push{Ref: "refs/heads/feature/x-1", Branch: "feature/x-1", CommitSHA: strings.ToLower(sha2Head), CommitMessage: "First", Pusher: "ada"}}},
				{name: "long message", ev: fakeprovider.Event{Ref: "refs/heads/main", SHA: sha1Head, Message: strings.Repeat("é", 300)},
					want: want{push: gitprovider.Push{Ref: "refs/heads/main", Branch: "main", CommitSHA: sha1Head, CommitMessage: strings.Repeat("é", 100) + "…", Pusher: "ada"}}},
				{name: "control characters", ev: fakeprovider.Event{Ref: "refs/heads/main", SHA: sha1Head, Message: "a\x1b[31mb\tc", Pusher: "bo\x00b"},
					want: want{push: gitprovider.Push{Ref: "refs/heads/main", Branch: "main", CommitSHA: sha1Head, CommitMessage: "a [31mb c", Pusher: "bo b"}}},
				{name: "deleted branch", ev: fakeprovider.Event{Ref: "refs/heads/old", Deleted: true},
					want: want{push: gitprovider.Push{Ref: "refs/heads/old", Deleted: true, Pusher: "ada"}}},
				{name: "tag", ev: fakeprovider.Event{Ref: "refs/tags/v1.0", SHA: sha1Head, Message: "release"},
					want: want{push: gitprovider.Push{Ref: "refs/tags/v1.0", Tag: "v1.0", CommitSHA: sha1Head, CommitMessage: "release", Pusher: "ada"}}},
				{name: "invalid ref", ev: fakeprovider.Event{Ref: "refs/heads/a..b", SHA: sha1Head}, want: want{err: gitprovider.ErrBadPayload}},
				{name: "option-like branch", ev: fakeprovider.Event{Ref: "refs/heads/-x", SHA: sha1Head}, want: want{err: gitprovider.ErrBadPayload}},
				{name: "invalid sha", ev: fakeprovider.Event{Ref: "refs/heads/main", SHA: "abc"}, want: want{err: gitprovider.ErrBadPayload}},
			}
			for _, tt := range tests {
				w := tt.want
				switch {
				case c.p == gitprovider.GitLab && tt.name == "tag":
					w = want{err: gitprovider.ErrNotPush} // GitLab sends tags as "Tag Push Hook"
				case c.p == gitprovider.Codeberg && tt.name == "deleted branch":
					w = want{err: gitprovider.ErrNotPush} // Gitea sends its "delete" event
				}
				req, body := delivery(t, fake, c.p, secret, tt.ev)
				pushes, err := gitprovider.VerifyPush(req, body, secret)
				if w.err != nil {
					if !errors.Is(err, w.err) {
						t.Errorf("%s: VerifyPush = %+v, %v; want %v", tt.name, pushes, err, w.err)
					}
					continue
				}
				w.push.Provider = c.p
				if err != nil || len(pushes) != 1 || pushes[0] != w.push {
					t.Errorf("%s: VerifyPush = %+v, %v; want %+v", tt.name, pushes, err, w.push)
					continue
				}
				if pushes[0].Deployable() != (w.push.Branch != "") {
					t.Errorf("%s: Deployable = %v", tt.name, pushes[0].Deployable())
				}
			}
		})
	}
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// signed is a request carrying body as provider p with the given event.
func signed(p gitprovider.Provider, event, secret string, body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/hook", nil)
	switch p {
	case gitprovider.GitHub:
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-Hub-Signature-256", "sha256="+sign(secret, body))
	case gitprovider.GitLab:
		req.Header.Set("X-Gitlab-Event", event)
		req.Header.Set("X-Gitlab-Token", secret)
	case gitprovider.Bitbucket:
		req.Header.Set("X-Event-Key", event)
		req.Header.Set("X-Hub-Signature", "sha256="+sign(secret, body))
	default:
		req.Header.Set("X-Forgejo-Event", event)
		req.Header.Set("X-Hub-Signature-256", "sha256="+sign(secret, body))
	}
	return req
}

func TestVerifyPushPayloads(t *testing.T) {
	secret := newSecret(t)
	tests := []struct {
		name   string
		p      gitprovider.Provider
		event  string
		body   string
		want   []gitprovider.Push
		err    error
		errHas string
	}{
		{name: "bitbucket batch", p: gitprovider.Bitbucket, event: "repo:push", body: `{"actor":{"display_name":"Ada L"},"push":{"changes":[
			{"new":{"type":"branch","name":"dev","target":{"hash":"` + sha1Head + `","message":"dev work"}},"old":null},
			{"new":null,"old":{"type":"branch","name":"gone","target":{"hash":"` + sha1Head + `"}}},
			{"new":{"type":"named_branch","name":"hg","target":{"hash":"` + sha1Head + `"}}},
			{"new":{"type":"branch","name":"main","target":{"hash":"` + strings.ToUpper(sha1Head) + `","message":"main work\nmore"}}}]}}`,
			want: []gitprovider.Push{
				{Provider: "bitbucket", Ref: "refs/heads/dev", Branch: "dev", CommitSHA: sha1Head, CommitMessage: "dev work", Pusher: "Ada L"},
				{Provider: "bitbucket", Ref: "refs/heads/gone", Deleted: true, Pusher: "Ada L"},
				{Provider: "bitbucket", Ref: "refs/heads/main", Branch: "main", CommitSHA: sha1Head, CommitMessage: "main work", Pusher: "Ada L"},
			}},
		{name: "bitbucket no change", p: gitprovider.Bitbucket, event: "repo:push", body: `{"push":{"changes":[]}}`, err: gitprovider.ErrBadPayload, errHas: "no branch or tag change"},
		{name: "github deleted flag", p: gitprovider.GitHub, event: "push", body: `{"ref":"refs/heads/x","after":"` + sha1Head + `","deleted":true,"pusher":{"name":"p"}}`,
			want: []gitprovider.Push{{Provider: "github", Ref: "refs/heads/x", Deleted: true, Pusher: "p"}}},
		{name: "github no head commit", p: gitprovider.GitHub, event: "push", body: `{"ref":"refs/heads/x","after":"` + sha1Head + `","head_commit":null,"sender":{"login":"s"}}`,
			want: []gitprovider.Push{{Provider: "github", Ref: "refs/heads/x", Branch: "x", CommitSHA: sha1Head, Pusher: "s"}}},
		{name: "github pull ref", p: gitprovider.GitHub, event: "push", body: `{"ref":"refs/pull/1/head","after":"` + sha1Head + `"}`,
			want: []gitprovider.Push{{Provider: "github", Ref: "refs/pull/1/head", CommitSHA: sha1Head}}},
		{name: "gitlab head among commits", p: gitprovider.GitLab, event: "Push Hook", body: `{"object_kind":"push","ref":"refs/heads/main","after":"` + sha1Head + `",
			"user_name":"Ada","commits":[{"id":"` + sha1Head + `","message":"head"},{"id":"1111111111111111111111111111111111111111","message":"older"}]}`,
			want: []gitprovider.Push{{Provider: "gitlab", Ref: "refs/heads/main", Branch: "main", CommitSHA: sha1Head, CommitMessage: "head", Pusher: "Ada"}}},
		{name: "gitlab system hook kind", p: gitprovider.GitLab, event: "Push Hook", body: `{"object_kind":"repository_update"}`, err: gitprovider.ErrBadPayload, errHas: "object_kind"},
		{name: "gitlab system hook", p: gitprovider.GitLab, event: "System Hook", body: `{}`, err: gitprovider.ErrNotPush},
		{name: "gitea head_commit elsewhere", p: gitprovider.Codeberg, event: "push", body: `{"ref":"refs/heads/main","after":"` + sha1Head + `",
			"head_commit":{"id":"1111111111111111111111111111111111111111","message":"no"},"commits":[{"id":"` + sha1Head + `","message":"yes"}],"pusher":{"username":"u"}}`,
			want: []gitprovider.Push{{Provider: "codeberg", Ref: "refs/heads/main", Branch: "main", CommitSHA: sha1Head, CommitMessage: "yes", Pusher: "u"}}},
		{name: "not JSON", p: gitprovider.GitHub, event: "push", body: `ref=refs/heads/main`, err: gitprovider.ErrBadPayload, errHas: "not valid JSON"},
		{name: "wrong type", p: gitprovider.GitHub, event: "push", body: `{"ref":1}`, err: gitprovider.ErrBadPayload, errHas: `field "ref"`},
		{name: "no ref", p: gitprovider.Codeberg, event: "push", body: `{"after":"` + sha1Head + `"}`, err: gitprovider.ErrBadPayload, errHas: "refs/"},
		{name: "ref with space", p: gitprovider.Codeberg, event: "push", body: `{"ref":"refs/heads/a b","after":"` + sha1Head + `"}`, err: gitprovider.ErrBadPayload},
		{name: "ref with newline", p: gitprovider.Codeberg, event: "push", body: `{"ref":"refs/heads/a\nb","after":"` + sha1Head + `"}`, err: gitprovider.ErrBadPayload},
		{name: "ref .lock", p: gitprovider.Codeberg, event: "push", body: `{"ref":"refs/heads/a.lock","after":"` + sha1Head + `"}`, err: gitprovider.ErrBadPayload},
		{name: "ref empty branch", p: gitprovider.Codeberg, event: "push", body: `{"ref":"refs/heads/","after":"` + sha1Head + `"}`, err: gitprovider.ErrBadPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gitprovider.VerifyPush(signed(tt.p, tt.event, secret, []byte(tt.body)), []byte(tt.body), secret)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("VerifyPush = %+v, %v; want %v with %q", got, err, tt.err, tt.errHas)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("VerifyPush = %+v, %v; want %+v", got, err, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("push %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestVerifyPushForgejo: a Forgejo delivery carrying only its own event
// header and the GitHub-style signature is a Codeberg push, even though
// Gitea-family deliveries also carry X-GitHub-Event.
func TestVerifyPushForgejo(t *testing.T) {
	secret := newSecret(t)
	body := []byte(`{"ref":"refs/heads/main","after":"` + sha1Head + `","head_commit":{"id":"` + sha1Head + `","message":"hi"}}`)
	req := signed(gitprovider.Codeberg, "push", secret, body)
	req.Header.Set("X-GitHub-Event", "push")
	got, err := gitprovider.VerifyPush(req, body, secret)
	if err != nil || len(got) != 1 || got[0].Provider != gitprovider.Codeberg || got[0].CommitMessage != "hi" {
		t.Fatalf("VerifyPush = %+v, %v", got, err)
	}
	req.Header.Set("X-Hub-Signature-256", "sha1="+sign(secret, body))
	if _, err := gitprovider.VerifyPush(req, body, secret); !errors.Is(err, gitprovider.ErrBadSignature) {
		t.Fatalf("a sha1= prefix is accepted: %v", err)
	}
}
