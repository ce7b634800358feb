package gitprovider

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Provider names a git hosting provider and the API dialect spoken to it.
// The values are those of git_provider_tokens.provider: a repository's
// Provider is also the key of the user's linked token for it.
type Provider string

// The providers. Codeberg stands for every Gitea or Forgejo instance.
const (
	GitHub    Provider = "github"
	GitLab    Provider = "gitlab"
	Bitbucket Provider = "bitbucket"
	Codeberg  Provider = "codeberg"
)

// Providers lists the known providers in a stable order.
func Providers() []Provider { return []Provider{GitHub, GitLab, Bitbucket, Codeberg} }

// Valid reports whether p is one of Providers.
func (p Provider) Valid() bool {
	switch p {
	case GitHub, GitLab, Bitbucket, Codeberg:
		return true
	}
	return false
}

// ParseProvider reads a provider name; "gitea" and "forgejo" are accepted
// as Codeberg, the dialect they share.
func ParseProvider(s string) (Provider, error) {
	switch p := Provider(strings.ToLower(strings.TrimSpace(s))); p {
	case GitHub, GitLab, Bitbucket, Codeberg:
		return p, nil
	case "gitea", "forgejo":
		return Codeberg, nil
	}
	return "", fmt.Errorf("gitprovider: unknown provider %q (github, gitlab, bitbucket, codeberg, gitea or forgejo)", clip(s, 32))
}

// publicHosts are the providers' public web hosts.
var publicHosts = map[string]Provider{
	"github.com":    GitHub,
	"gitlab.com":    GitLab,
	"bitbucket.org": Bitbucket,
	"codeberg.org":  Codeberg,
}

// Host declares a self-hosted instance (a GitLab, a Gitea or Forgejo, a
// GitHub Enterprise Server) so its repositories can be parsed and hooked.
//
// A repository on it is handled with the user's token for Kind: declare
// a host only when the `oauth "<kind>"` block links accounts of that very
// instance, or the token of one instance would be sent to another.
type Host struct {
	// Host is the web host of repository URLs, host or host:port,
	// case-insensitive (e.g. "git.example.com").
	Host string `json:"host"`
	// Kind is the API dialect: github, gitlab or codeberg (gitea and
	// forgejo are read as codeberg). Bitbucket Data Center speaks another
	// API and is not supported.
	Kind Provider `json:"kind"`
	// APIBase is the API's base URL (http or https). Empty means the
	// dialect's usual place on Host: https://host/api/v3 (GitHub
	// Enterprise), https://host/api/v4 (GitLab), https://host/api/v1
	// (Gitea, Forgejo).
	APIBase string `json:"api_base,omitempty"`
}

// normalize checks h and returns it with its host lowercased, its kind
// canonical and its API base filled in.
func (h Host) normalize() (Host, error) {
	host := strings.ToLower(strings.TrimSpace(h.Host))
	if host == "" || !validHostPort(host) {
		return Host{}, fmt.Errorf("gitprovider: host %q: not a host name or host:port", clip(h.Host, 64))
	}
	kind, err := ParseProvider(string(h.Kind))
	if err != nil {
		return Host{}, fmt.Errorf("gitprovider: host %q: %w", host, err)
	}
	var path string
	switch kind {
	case GitHub:
		path = "/api/v3"
	case GitLab:
		path = "/api/v4"
	case Codeberg:
		path = "/api/v1"
	default:
		return Host{}, fmt.Errorf("gitprovider: host %q: kind %s cannot be self-hosted (Bitbucket Data Center has another API)", host, kind)
	}
	base := strings.TrimRight(strings.TrimSpace(h.APIBase), "/")
	if base == "" {
		base = "https://" + host + path
	}
	if err := checkBaseURL(base); err != nil {
		return Host{}, fmt.Errorf("gitprovider: host %q: api_base: %w", host, err)
	}
	return Host{Host: host, Kind: kind, APIBase: base}, nil
}

// ValidateHosts checks a list of declared hosts (for configuration
// loading): each must be valid and declared once.
func ValidateHosts(hosts []Host) error {
	seen := map[string]bool{}
	for _, h := range hosts {
		n, err := h.normalize()
		if err != nil {
			return err
		}
		if seen[n.Host] {
			return fmt.Errorf("gitprovider: host %q is declared twice", n.Host)
		}
		seen[n.Host] = true
	}
	return nil
}

// checkBaseURL accepts an absolute http(s) URL without credentials, query
// or fragment.
func checkBaseURL(s string) error {
	u, err := parseHTTPURL(s)
	if err != nil {
		return err
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return errors.New("must not have a query or fragment")
	}
	return nil
}

// parseHTTPURL parses an absolute http(s) URL without credentials; its
// errors complete a sentence naming the URL ("the hook URL …").
func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, errors.New("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("must be an http or https URL")
	case u.Host == "":
		return nil, errors.New("has no host")
	case u.User != nil:
		return nil, errors.New("must not contain credentials")
	}
	return u, nil
}

// Repo is a repository on a provider.
type Repo struct {
	// Provider is the API dialect and the key of the user's token.
	Provider Provider `json:"provider"`
	// Host is the lowercase web host (host or host:port).
	Host string `json:"host"`
	// Owner is the owner (GitHub, Gitea), workspace (Bitbucket) or
	// namespace, possibly nested as "group/sub" (GitLab).
	Owner string `json:"owner"`
	// Name is the repository's name, without ".git".
	Name string `json:"name"`
	// APIBase is the API of a declared self-hosted instance; empty for
	// the public hosts, whose API is the Client's. The user's token is
	// sent there: keep the repository URL and re-parse it rather than
	// taking a Repo from user input.
	APIBase string `json:"api_base,omitempty"`
}

// Path is "owner/name" (GitLab: "group/sub/name").
func (r Repo) Path() string { return r.Owner + "/" + r.Name }

// URL is the canonical https URL of the repository.
func (r Repo) URL() string { return "https://" + r.Host + "/" + r.Path() }

// String is host/owner/name.
func (r Repo) String() string { return r.Host + "/" + r.Path() }

// Repository path limits: GitLab nests namespaces up to 20 levels, and no
// provider allows a path segment this long.
const (
	maxRepoURL      = 2048
	maxSegments     = 21
	maxSegmentBytes = 255
)

// ParseRepo reads an https git URL — https://github.com/owner/name(.git),
// https://gitlab.com/group/sub/name, https://bitbucket.org/workspace/repo,
// https://codeberg.org/owner/repo, or a URL on one of the extra declared
// hosts — into a Repo. Other schemes (http, ssh, git@host:path),
// credentials in the URL, queries, fragments, web pages under the
// repository (/tree/main) and unknown hosts are refused with an error that
// says which; the error never repeats the URL's credentials.
func ParseRepo(repoURL string, extra ...Host) (Repo, error) {
	if len(repoURL) > maxRepoURL {
		return Repo{}, fmt.Errorf("gitprovider: the repository URL is longer than %d bytes", maxRepoURL)
	}
	s := strings.TrimSpace(repoURL)
	if s == "" {
		return Repo{}, errors.New("gitprovider: no repository URL")
	}
	if i := strings.Index(s, "://"); i < 0 {
		return Repo{}, errors.New("gitprovider: the repository must be an https URL (https://host/owner/name); ssh and scp-style addresses are not supported")
	} else if scheme := strings.ToLower(s[:i]); scheme != "https" {
		return Repo{}, fmt.Errorf("gitprovider: the repository must be an https URL, not %s://", clip(scheme, 16))
	}
	u, err := url.Parse(s)
	if err != nil {
		return Repo{}, errors.New("gitprovider: the repository URL is not a valid URL")
	}
	switch {
	case u.User != nil:
		return Repo{}, errors.New("gitprovider: the repository URL must not contain credentials; link the provider account instead")
	case u.RawQuery != "" || u.ForceQuery:
		return Repo{}, errors.New("gitprovider: the repository URL must not have a query (?...)")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return Repo{}, errors.New("gitprovider: the repository URL must not have a fragment (#...)")
	case u.Opaque != "" || u.Host == "":
		return Repo{}, errors.New("gitprovider: the repository URL has no host")
	}
	host := strings.ToLower(u.Host)
	if !validHostPort(host) {
		return Repo{}, errors.New("gitprovider: the repository URL's host is not a valid host name")
	}
	repo := Repo{Host: host}
	found := false
	for _, h := range extra {
		if strings.EqualFold(strings.TrimSpace(h.Host), host) {
			n, err := h.normalize()
			if err != nil {
				return Repo{}, err
			}
			repo.Provider, repo.APIBase, found = n.Kind, n.APIBase, true
			break
		}
	}
	if !found {
		name := strings.TrimSuffix(host, ":443")
		p, ok := publicHosts[name]
		if !ok {
			return Repo{}, fmt.Errorf("gitprovider: unknown git host %q (known: github.com, gitlab.com, bitbucket.org, codeberg.org and the declared hosts)", clip(host, 64))
		}
		repo.Provider, repo.Host = p, name
	}
	segs, err := repoSegments(u)
	if err != nil {
		return Repo{}, err
	}
	switch {
	case len(segs) < 2:
		return Repo{}, errors.New("gitprovider: the repository URL must name an owner and a repository (https://host/owner/name)")
	case repo.Provider != GitLab && len(segs) > 2:
		return Repo{}, fmt.Errorf("gitprovider: a %s repository URL is https://%s/owner/name, without anything after the name", repo.Provider, repo.Host)
	}
	repo.Owner, repo.Name = strings.Join(segs[:len(segs)-1], "/"), segs[len(segs)-1]
	if strings.HasSuffix(repo.Name, ".git") {
		return Repo{}, errors.New("gitprovider: the repository name must not end in .git.git")
	}
	return repo, nil
}

// repoSegments splits a repository URL's path into checked segments,
// without a trailing "/" or ".git".
func repoSegments(u *url.URL) ([]string, error) {
	if strings.Contains(u.RawPath, "%") {
		return nil, errors.New("gitprovider: the repository URL's path must not be percent-encoded")
	}
	p := strings.TrimSuffix(strings.TrimPrefix(u.Path, "/"), "/")
	p = strings.TrimSuffix(p, ".git")
	if p == "" {
		return nil, errors.New("gitprovider: the repository URL must name an owner and a repository (https://host/owner/name)")
	}
	segs := strings.Split(p, "/")
	if len(segs) > maxSegments {
		return nil, fmt.Errorf("gitprovider: the repository path has more than %d parts", maxSegments)
	}
	for _, seg := range segs {
		if err := checkSegment(seg); err != nil {
			return nil, err
		}
	}
	return segs, nil
}

// checkSegment accepts the names every provider allows: letters, digits,
// ".", "_" and "-", not starting with "-" and not "." or "..".
func checkSegment(seg string) error {
	switch {
	case seg == "":
		return errors.New("gitprovider: the repository path has an empty part (//)")
	case len(seg) > maxSegmentBytes:
		return fmt.Errorf("gitprovider: a part of the repository path is longer than %d bytes", maxSegmentBytes)
	case seg == "." || seg == "..":
		return errors.New("gitprovider: the repository path must not contain . or ..")
	case seg[0] == '-':
		return fmt.Errorf("gitprovider: %q: a part of the repository path must not start with -", clip(seg, 64))
	}
	for i := 0; i < len(seg); i++ {
		if c := seg[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("gitprovider: %q: the repository path may hold only letters, digits, '.', '_' and '-'", clip(seg, 64))
		}
	}
	return nil
}

// validHostPort accepts a DNS name or IP literal, with an optional port.
func validHostPort(hp string) bool {
	if strings.HasPrefix(hp, "[") && strings.HasSuffix(hp, "]") {
		return net.ParseIP(hp[1:len(hp)-1]) != nil
	}
	host, port := hp, ""
	if h, p, err := net.SplitHostPort(hp); err == nil {
		host, port = h, p
		if port == "" || len(port) > 5 {
			return false
		}
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return false
			}
		}
	} else if strings.Contains(hp, ":") {
		return false
	}
	if strings.HasPrefix(hp, "[") {
		return port != "" && net.ParseIP(host) != nil
	}
	if host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// clip bounds s to n bytes (on a rune boundary), marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
