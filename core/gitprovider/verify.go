package gitprovider

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// MaxPushBody is the largest delivery body VerifyPush accepts. Callers
// read at most MaxPushBody+1 bytes of the request (http.MaxBytesReader)
// and answer 413 beyond; GitHub caps its payloads at 25 MB but a push
// delivery is a few KiB to a few hundred KiB (GitHub and GitLab list at
// most 20 commits, Bitbucket 5 per ref).
const MaxPushBody = 1 << 20

// Bounds of what a Push carries.
const (
	maxRef           = 1024
	maxCommitMessage = 200
	maxPusher        = 100
	maxChanges       = 100
)

// The delivery failures VerifyPush reports; each is wrapped with detail.
var (
	// ErrBadSignature: the signature or token is missing, malformed or
	// wrong, or no secret is configured. Answer 401 and do nothing.
	ErrBadSignature = errors.New("gitprovider: missing or wrong webhook signature")
	// ErrNotPush: an authentic delivery of another event (GitHub ping,
	// GitLab tag or merge request hooks, Bitbucket repo:updated, Gitea
	// create/delete...). Answer 200 or 202 and deploy nothing.
	ErrNotPush = errors.New("gitprovider: not a push event")
	// ErrBadPayload: an authentic push whose body is not a push payload
	// we understand, or larger than MaxPushBody. Answer 400.
	ErrBadPayload = errors.New("gitprovider: invalid push payload")
	// ErrUnknownDelivery: no provider's event header. Answer 400.
	ErrUnknownDelivery = errors.New("gitprovider: not a webhook delivery from a known provider")
)

// Push is one ref updated by a push.
type Push struct {
	// Provider sent the delivery (decided by its headers). Callers should
	// check it is the provider of the app's repository.
	Provider Provider `json:"provider"`
	// Ref is the full ref, e.g. "refs/heads/main".
	Ref string `json:"ref"`
	// Branch is the branch name of a branch update ("main"); empty for
	// tags, other refs and deletions.
	Branch string `json:"branch,omitempty"`
	// Tag is the tag name of a tag push; empty otherwise.
	Tag string `json:"tag,omitempty"`
	// Deleted reports that the ref was deleted; CommitSHA is then empty.
	Deleted bool `json:"deleted,omitempty"`
	// CommitSHA is the ref's new head, 40 (or 64) lowercase hex digits.
	CommitSHA string `json:"commit_sha,omitempty"`
	// CommitMessage is the first line of the head commit's message,
	// bounded; empty when the payload does not carry it.
	CommitMessage string `json:"commit_message,omitempty"`
	// Pusher is the login (or display name) of who pushed, bounded.
	Pusher string `json:"pusher,omitempty"`
}

// Deployable reports whether p is a branch update with a new head.
func (p Push) Deployable() bool { return p.Branch != "" && !p.Deleted && p.CommitSHA != "" }

// ForBranch returns the deployable push of branch among pushes (the last
// one if a delivery names the branch twice).
func ForBranch(pushes []Push, branch string) (Push, bool) {
	for i := len(pushes) - 1; i >= 0; i-- {
		if p := pushes[i]; p.Deployable() && p.Branch == branch {
			return p, true
		}
	}
	return Push{}, false
}

// NewSecret returns a fresh hook secret: 32 random bytes, hex-encoded.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("gitprovider: new secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// VerifyPush authenticates a webhook delivery with the hook's secret and
// parses its push payload. body is the raw request body (at most
// MaxPushBody bytes; the caller reads it). The provider is told by the
// headers, checked in this order:
//
//   - Gitea, Forgejo (Codeberg): X-Forgejo-Event, X-Gitea-Event or
//     X-Gogs-Event; every one present of X-Forgejo-Signature,
//     X-Gitea-Signature, X-Gogs-Signature (hex HMAC-SHA256 of the body)
//     and X-Hub-Signature-256 ("sha256=" hex) must match, and at least one
//     must be present. Checked first because Gitea also sends
//     X-GitHub-Event.
//   - GitLab: X-Gitlab-Event; X-Gitlab-Token must equal the secret. Only
//     "Push Hook" is a push.
//   - Bitbucket Cloud: X-Event-Key; X-Hub-Signature must be "sha256=" hex
//     HMAC-SHA256. Only "repo:push" is a push.
//   - GitHub: X-GitHub-Event; X-Hub-Signature-256 must be "sha256=" hex
//     HMAC-SHA256. Only "push" is a push ("ping" is not).
//
// Comparisons take constant time and errors never say where a signature
// differed. The signature is checked before the event, so unauthenticated
// requests get ErrBadSignature (or ErrBadPayload when the body is over
// MaxPushBody, checked first so that no large body is hashed). A push yields one Push per updated
// ref: GitHub, GitLab and Gitea deliver one ref per request, Bitbucket may
// batch several; use ForBranch to pick the app's branch. Errors wrap
// ErrBadSignature, ErrNotPush, ErrBadPayload or ErrUnknownDelivery.
func VerifyPush(r *http.Request, body []byte, secret string) ([]Push, error) {
	p, event, err := detect(r.Header)
	if err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, fmt.Errorf("%w: no secret is configured for this hook", ErrBadSignature)
	}
	if len(body) > MaxPushBody {
		return nil, fmt.Errorf("%w: the body is larger than %d bytes", ErrBadPayload, MaxPushBody)
	}
	if err := authenticate(p, r.Header, body, secret); err != nil {
		return nil, err
	}
	var pushes []Push
	switch p {
	case GitHub:
		if event != "push" {
			return nil, notPush(p, event)
		}
		pushes, err = parseGitHub(body)
	case GitLab:
		if event != "Push Hook" {
			return nil, notPush(p, event)
		}
		pushes, err = parseGitLab(body)
	case Bitbucket:
		if event != "repo:push" {
			return nil, notPush(p, event)
		}
		pushes, err = parseBitbucket(body)
	default:
		if event != "push" {
			return nil, notPush(p, event)
		}
		pushes, err = parseGitea(body)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadPayload, p, err)
	}
	for i := range pushes {
		pushes[i].Provider = p
	}
	return pushes, nil
}

func notPush(p Provider, event string) error {
	return fmt.Errorf("%w: %s event %q", ErrNotPush, p, clip(sanitize(event, nil), 64))
}

// detect tells the provider and the event from the headers.
func detect(h http.Header) (Provider, string, error) {
	for _, k := range []string{"X-Forgejo-Event", "X-Gitea-Event", "X-Gogs-Event"} {
		if vs := h.Values(k); len(vs) > 0 {
			return Codeberg, vs[0], nil
		}
	}
	for _, d := range []struct {
		key string
		p   Provider
	}{{"X-Gitlab-Event", GitLab}, {"X-Event-Key", Bitbucket}, {"X-GitHub-Event", GitHub}} {
		if vs := h.Values(d.key); len(vs) > 0 {
			return d.p, vs[0], nil
		}
	}
	return "", "", fmt.Errorf("%w: no X-GitHub-Event, X-Gitlab-Event, X-Event-Key or X-Gitea-Event header", ErrUnknownDelivery)
}

// authenticate checks the provider's signature or token header.
func authenticate(p Provider, h http.Header, body []byte, secret string) error {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	mac := m.Sum(nil)
	switch p {
	case GitLab:
		got, err := single(h, "X-Gitlab-Token")
		if err != nil {
			return err
		}
		// Comparing digests keeps the time independent of where (and of
		// the length at which) the token differs.
		a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(secret))
		if !hmac.Equal(a[:], b[:]) {
			return fmt.Errorf("%w: X-Gitlab-Token does not match the hook's secret", ErrBadSignature)
		}
		return nil
	case Bitbucket:
		return checkHex(h, "X-Hub-Signature", "sha256=", mac)
	case GitHub:
		return checkHex(h, "X-Hub-Signature-256", "sha256=", mac)
	}
	seen := false
	for _, s := range []struct{ key, prefix string }{
		{"X-Forgejo-Signature", ""}, {"X-Gitea-Signature", ""}, {"X-Gogs-Signature", ""}, {"X-Hub-Signature-256", "sha256="},
	} {
		if len(h.Values(s.key)) == 0 {
			continue
		}
		seen = true
		if err := checkHex(h, s.key, s.prefix, mac); err != nil {
			return err
		}
	}
	if !seen {
		return fmt.Errorf("%w: no X-Gitea-Signature, X-Forgejo-Signature or X-Hub-Signature-256 header", ErrBadSignature)
	}
	return nil
}

// single returns the one value of header key.
func single(h http.Header, key string) (string, error) {
	switch vs := h.Values(key); len(vs) {
	case 0:
		return "", fmt.Errorf("%w: the %s header is missing", ErrBadSignature, key)
	case 1:
		if vs[0] == "" {
			return "", fmt.Errorf("%w: the %s header is empty", ErrBadSignature, key)
		}
		return vs[0], nil
	default:
		return "", fmt.Errorf("%w: the %s header appears %d times", ErrBadSignature, key, len(vs))
	}
}

// checkHex compares header key, prefix followed by hex, with mac.
func checkHex(h http.Header, key, prefix string, mac []byte) error {
	v, err := single(h, key)
	if err != nil {
		return err
	}
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return fmt.Errorf("%w: %s does not start with %q", ErrBadSignature, key, prefix)
	}
	got, err := hex.DecodeString(strings.TrimSpace(v[len(prefix):]))
	if err != nil || len(got) != len(mac) {
		return fmt.Errorf("%w: %s is not a hex HMAC-SHA256", ErrBadSignature, key)
	}
	if !hmac.Equal(got, mac) {
		return fmt.Errorf("%w: %s does not match the body and the hook's secret", ErrBadSignature, key)
	}
	return nil
}

// commit is a commit as GitHub, GitLab and Gitea list them.
type commit struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// parseGitHub reads a GitHub push event.
func parseGitHub(body []byte) ([]Push, error) {
	var v struct {
		Ref        string  `json:"ref"`
		After      string  `json:"after"`
		Deleted    bool    `json:"deleted"`
		HeadCommit *commit `json:"head_commit"`
		Pusher     struct {
			Name string `json:"name"`
		} `json:"pusher"`
		Sender struct {
			Login string `json:"login"`
		} `json:"sender"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, jsonError(err)
	}
	msg := ""
	if v.HeadCommit != nil {
		msg = v.HeadCommit.Message
	}
	p, err := newPush(v.Ref, v.After, msg, or(v.Pusher.Name, v.Sender.Login), v.Deleted)
	if err != nil {
		return nil, err
	}
	return []Push{p}, nil
}

// parseGitLab reads a GitLab "Push Hook" (object_kind push).
func parseGitLab(body []byte) ([]Push, error) {
	var v struct {
		ObjectKind   string   `json:"object_kind"`
		Ref          string   `json:"ref"`
		After        string   `json:"after"`
		UserUsername string   `json:"user_username"`
		UserName     string   `json:"user_name"`
		Commits      []commit `json:"commits"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, jsonError(err)
	}
	if v.ObjectKind != "push" {
		return nil, fmt.Errorf("object_kind is %q, not push", clip(sanitize(v.ObjectKind, nil), 32))
	}
	p, err := newPush(v.Ref, v.After, headMessage(v.Commits, v.After), or(v.UserUsername, v.UserName), false)
	if err != nil {
		return nil, err
	}
	return []Push{p}, nil
}

// parseGitea reads a Gitea or Forgejo push event.
func parseGitea(body []byte) ([]Push, error) {
	var v struct {
		Ref        string   `json:"ref"`
		After      string   `json:"after"`
		HeadCommit *commit  `json:"head_commit"`
		Commits    []commit `json:"commits"`
		Pusher     struct {
			Login    string `json:"login"`
			Username string `json:"username"`
		} `json:"pusher"`
		Sender struct {
			Login string `json:"login"`
		} `json:"sender"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, jsonError(err)
	}
	msg := headMessage(v.Commits, v.After)
	if v.HeadCommit != nil && strings.EqualFold(v.HeadCommit.ID, v.After) {
		msg = v.HeadCommit.Message
	}
	p, err := newPush(v.Ref, v.After, msg, or(v.Pusher.Login, v.Pusher.Username, v.Sender.Login), false)
	if err != nil {
		return nil, err
	}
	return []Push{p}, nil
}

// bitbucketRef is the "old" or "new" state of a ref in a Bitbucket push.
type bitbucketRef struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Target struct {
		Hash    string `json:"hash"`
		Message string `json:"message"`
	} `json:"target"`
}

// ref is the full ref name, or "" for types we do not know (Mercurial's
// named_branch and bookmark, long gone).
func (b *bitbucketRef) ref() string {
	switch b.Type {
	case "branch":
		return "refs/heads/" + b.Name
	case "tag", "annotated_tag":
		return "refs/tags/" + b.Name
	}
	return ""
}

// parseBitbucket reads a Bitbucket Cloud repo:push, one Push per change.
func parseBitbucket(body []byte) ([]Push, error) {
	var v struct {
		Push struct {
			Changes []struct {
				New *bitbucketRef `json:"new"`
				Old *bitbucketRef `json:"old"`
			} `json:"changes"`
		} `json:"push"`
		Actor struct {
			Nickname    string `json:"nickname"`
			DisplayName string `json:"display_name"`
		} `json:"actor"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, jsonError(err)
	}
	if len(v.Push.Changes) > maxChanges {
		return nil, fmt.Errorf("more than %d changes", maxChanges)
	}
	pusher := or(v.Actor.Nickname, v.Actor.DisplayName)
	var out []Push
	for _, c := range v.Push.Changes {
		var p Push
		var err error
		switch {
		case c.New != nil:
			if c.New.ref() == "" {
				continue
			}
			p, err = newPush(c.New.ref(), c.New.Target.Hash, c.New.Target.Message, pusher, false)
		case c.Old != nil:
			if c.Old.ref() == "" {
				continue
			}
			p, err = newPush(c.Old.ref(), "", "", pusher, true)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("no branch or tag change")
	}
	return out, nil
}

// jsonError describes a JSON error without quoting the body.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q has the wrong type", clip(te.Field, 64))
	}
	return errors.New("the body is not valid JSON")
}

// headMessage is the message of the commit whose id is sha among commits.
func headMessage(commits []commit, sha string) string {
	for i := len(commits) - 1; i >= 0; i-- {
		if strings.EqualFold(commits[i].ID, sha) {
			return commits[i].Message
		}
	}
	return ""
}

// newPush checks and builds a Push for ref moved to after (deleted when
// asked or when after is all zeros).
func newPush(ref, after, message, pusher string, deleted bool) (Push, error) {
	if err := checkRef(ref); err != nil {
		return Push{}, err
	}
	p := Push{Ref: ref, Pusher: clip(sanitize(pusher, nil), maxPusher)}
	if deleted || isZeroSHA(after) {
		p.Deleted = true
		return p, nil
	}
	if !validSHA(after) {
		return Push{}, errors.New("the new commit id is not a 40 or 64 digit hex SHA")
	}
	p.CommitSHA = strings.ToLower(after)
	p.CommitMessage = firstLine(message)
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		p.Branch = strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/tags/"):
		p.Tag = strings.TrimPrefix(ref, "refs/tags/")
	}
	return p, nil
}

// firstLine is the message's first non-empty line, cleaned and bounded.
func firstLine(msg string) string {
	msg = strings.TrimLeft(msg, " \t\r\n")
	if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
		msg = msg[:i]
	}
	return clip(sanitize(msg, nil), maxCommitMessage)
}

// isZeroSHA reports an all-zero commit id (a deleted or new ref's side).
func isZeroSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	return strings.Trim(s, "0") == ""
}

// validSHA accepts a SHA-1 or SHA-256 commit id in hex.
func validSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// checkRef applies git check-ref-format's rules to a full ref name
// ("refs/..."), so a Push's Branch is safe in logs and git commands.
func checkRef(ref string) error {
	switch {
	case !strings.HasPrefix(ref, "refs/"):
		return fmt.Errorf("ref %q does not start with refs/", clip(sanitize(ref, nil), 64))
	case len(ref) > maxRef:
		return fmt.Errorf("ref is longer than %d bytes", maxRef)
	case !utf8.ValidString(ref):
		return errors.New("ref is not valid UTF-8")
	case strings.HasSuffix(ref, "/") || strings.HasSuffix(ref, ".") || strings.HasSuffix(ref, ".lock"),
		strings.Contains(ref, "..") || strings.Contains(ref, "@{") || strings.Contains(ref, "//"),
		strings.ContainsAny(ref, " ~^:?*[\\\x7f"):
		return fmt.Errorf("ref %q is not a valid git ref name", clip(sanitize(ref, nil), 64))
	}
	for _, part := range strings.Split(ref, "/") {
		if part == "" || part[0] == '.' || part[0] == '-' || strings.HasSuffix(part, ".lock") {
			return fmt.Errorf("ref %q is not a valid git ref name", clip(sanitize(ref, nil), 64))
		}
	}
	for _, r := range ref {
		if r < 0x20 || r >= 0x80 && r < 0xa0 {
			return errors.New("ref contains control characters")
		}
	}
	if ref == "refs/heads/" || ref == "refs/tags/" || ref == "refs/heads/HEAD" {
		return fmt.Errorf("ref %q names no branch", ref)
	}
	return nil
}

// or returns the first non-empty string.
func or(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
