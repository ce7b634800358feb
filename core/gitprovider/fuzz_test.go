package gitprovider_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/core/gitprovider"
	"github.com/wisehosting/wisehosting/core/gitprovider/fakeprovider"
)

// FuzzParseRepo checks that ParseRepo never panics, accepts only https
// URLs of known hosts, and that what it accepts round-trips through the
// canonical URL.
func FuzzParseRepo(f *testing.F) {
	extra := []gitprovider.Host{{Host: "git.example.com", Kind: "gitlab"}, {Host: "forge.example.org:8443", Kind: "gitea"}}
	for _, s := range []string{
		"https://github.com/ada/app", "https://github.com/ada/app.git", "https://gitlab.com/g/s/n", "https://bitbucket.org/w/r",
		"https://codeberg.org/o/r.git/", "https://git.example.com/a/b/c", "https://forge.example.org:8443/o/r",
		"http://github.com/a/b", "git@github.com:a/b.git", "https://u:p@github.com/a/b", "https://github.com/a/b?x#y",
		"https://github.com/a/%2e%2e", "https://[::1]:443/a/b", "HTTPS://GITHUB.COM:443/A/B", "https://github.com/a/b/c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := gitprovider.ParseRepo(s, extra...)
		if err != nil {
			if r != (gitprovider.Repo{}) {
				t.Fatalf("%q refused but gave %+v", s, r)
			}
			if u, perr := url.Parse(strings.TrimSpace(s)); perr == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && len(pw) >= 12 && strings.Contains(err.Error(), pw) { // shorter ones may be words of the message
					t.Fatalf("%q: the error repeats the password: %v", s, err)
				}
			}
			return
		}
		if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "https://") {
			t.Fatalf("%q accepted without https", s)
		}
		if !r.Provider.Valid() || r.Owner == "" || r.Name == "" || strings.HasSuffix(r.Name, ".git") {
			t.Fatalf("%q gave %+v", s, r)
		}
		if r.Provider != gitprovider.GitLab && strings.Contains(r.Owner, "/") {
			t.Fatalf("%q: a nested owner on %s: %+v", s, r.Provider, r)
		}
		for _, seg := range strings.Split(r.Path(), "/") {
			if seg == "" || seg == "." || seg == ".." || seg[0] == '-' || strings.ContainsAny(seg, "%?#@: \\") {
				t.Fatalf("%q gave the segment %q", s, seg)
			}
		}
		again, err := gitprovider.ParseRepo(r.URL(), extra...)
		if err != nil || again != r {
			t.Fatalf("%q → %+v, whose URL %q parses to %+v, %v", s, r, r.URL(), again, err)
		}
	})
}

// FuzzVerifyPush checks that VerifyPush never panics on any body and
// headers, accepts only correctly signed deliveries, and returns only
// well-formed pushes.
func FuzzVerifyPush(f *testing.F) {
	const secret = "0123456789abcdef0123456789abcdef"
	fake := fakeprovider.New(f)
	for i, p := range gitprovider.Providers() {
		hook := fakeprovider.Hook{Provider: p, Repo: "ada/app", ID: "1", URL: "http://127.0.0.1:1/h", Secret: secret, Active: true}
		for _, ev := range []fakeprovider.Event{
			{Ref: "refs/heads/main", SHA: sha1Head, Message: "m\nn"},
			{Ref: "refs/tags/v1", SHA: sha2Head},
			{Ref: "refs/heads/old", Deleted: true},
			{Name: fakeprovider.NonPushEvent(p)},
		} {
			req, body, err := fake.NewDelivery(f.Context(), hook, ev)
			if err != nil {
				f.Fatal(err)
			}
			event := req.Header.Get("X-GitHub-Event")
			for _, k := range []string{"X-Gitlab-Event", "X-Event-Key", "X-Gitea-Event"} {
				if v := req.Header.Get(k); v != "" {
					event = v
				}
			}
			f.Add(uint8(i), event, uint8(0), body)
		}
	}
	f.Add(uint8(1), "Push Hook", uint8(0), []byte(`{"object_kind":"push","ref":"refs/heads/a","after":"`+sha1Head+`","commits":null}`))
	f.Add(uint8(2), "repo:push", uint8(0), []byte(`{"push":{"changes":[{"new":null,"old":null}]}}`))
	f.Add(uint8(4), "push", uint8(3), []byte(`[]`))
	f.Fuzz(func(t *testing.T, kind uint8, event string, mode uint8, body []byte) {
		all := gitprovider.Providers()
		p := all[int(kind)%len(all)]
		var req *http.Request
		authentic := mode%4 == 0
		sig := sign(secret, body)
		if !authentic {
			sig = sign(secret+"x", body)
		}
		req = httptest.NewRequest(http.MethodPost, "/hook", nil)
		set := func(k, v string) { req.Header[http.CanonicalHeaderKey(k)] = []string{v} } // raw: fuzzed values may be invalid
		switch p {
		case gitprovider.GitHub:
			set("X-GitHub-Event", event)
			set("X-Hub-Signature-256", "sha256="+sig)
		case gitprovider.GitLab:
			set("X-Gitlab-Event", event)
			if authentic {
				set("X-Gitlab-Token", secret)
			} else {
				set("X-Gitlab-Token", secret[:len(secret)-1])
			}
		case gitprovider.Bitbucket:
			set("X-Event-Key", event)
			set("X-Hub-Signature", "sha256="+sig)
		default:
			set("X-Gitea-Event", event)
			set("X-Gitea-Signature", sig)
		}
		if kind >= 4 { // also the headers of the others, in any mix
			set("X-GitHub-Event", event)
			set("X-Hub-Signature-256", "sha256="+sig)
		}
		if mode%4 == 3 {
			req.Header = http.Header{}
		}
		pushes, err := gitprovider.VerifyPush(req, body, secret)
		if err != nil {
			if pushes != nil {
				t.Fatalf("error %v with pushes %+v", err, pushes)
			}
			if !authentic && !errors.Is(err, gitprovider.ErrBadSignature) && !errors.Is(err, gitprovider.ErrUnknownDelivery) &&
				!errors.Is(err, gitprovider.ErrBadPayload) {
				t.Fatalf("a forged delivery gave %v", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error tells the secret: %v", err)
			}
			return
		}
		if !authentic {
			t.Fatalf("a forged delivery was accepted: %+v", pushes)
		}
		if len(pushes) == 0 {
			t.Fatal("no error and no push")
		}
		for _, ps := range pushes {
			checkPush(t, ps)
		}
	})
}

// checkPush asserts the invariants of a verified Push.
func checkPush(t *testing.T, p gitprovider.Push) {
	t.Helper()
	if !p.Provider.Valid() || !strings.HasPrefix(p.Ref, "refs/") || !utf8.ValidString(p.Ref) || strings.ContainsAny(p.Ref, " \n\r\t\x00") {
		t.Fatalf("bad push %+v", p)
	}
	if p.Branch != "" && (p.Ref != "refs/heads/"+p.Branch || p.Deleted || p.Tag != "") {
		t.Fatalf("bad branch push %+v", p)
	}
	if p.Tag != "" && p.Ref != "refs/tags/"+p.Tag {
		t.Fatalf("bad tag push %+v", p)
	}
	if p.Deleted != (p.CommitSHA == "") {
		t.Fatalf("deleted %v with sha %q", p.Deleted, p.CommitSHA)
	}
	if p.CommitSHA != "" && (len(p.CommitSHA) != 40 && len(p.CommitSHA) != 64 || strings.Trim(p.CommitSHA, "0123456789abcdef") != "" ||
		strings.Trim(p.CommitSHA, "0") == "") {
		t.Fatalf("bad sha %q", p.CommitSHA)
	}
	if len(p.CommitMessage) > 200+len("…") || strings.ContainsAny(p.CommitMessage, "\n\r\x00") || !utf8.ValidString(p.CommitMessage) {
		t.Fatalf("bad message %q", p.CommitMessage)
	}
	if len(p.Pusher) > 100+len("…") || strings.ContainsAny(p.Pusher, "\n\r\x00") || !utf8.ValidString(p.Pusher) {
		t.Fatalf("bad pusher %q", p.Pusher)
	}
	if p.Deployable() != (p.Branch != "") {
		t.Fatalf("Deployable %v for %+v", p.Deployable(), p)
	}
}
