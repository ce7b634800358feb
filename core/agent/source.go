package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// askpassScript answers git's credential prompts from the environment of
// the git process: the token never appears in an argv (printf is a shell
// builtin) nor on disk.
const askpassScript = `#!/bin/sh
# WiseHosting worker: git credential prompts for private repositories.
case "$1" in
Username*|username*) printf '%s\n' "${WH_GIT_USERNAME:-x-access-token}" ;;
*) printf '%s\n' "$WH_GIT_TOKEN" ;;
esac
`

// Environment variables through which the token reaches the askpass helper.
const (
	gitTokenEnv    = "WH_GIT_TOKEN"
	gitUsernameEnv = "WH_GIT_USERNAME"
)

func writeAskpass(dataDir string) (string, error) {
	p := filepath.Join(dataDir, "bin", "git-askpass")
	if b, err := os.ReadFile(p); err == nil && string(b) == askpassScript {
		return p, os.Chmod(p, 0o700)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(askpassScript), 0o700); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}

var (
	shaRE    = regexp.MustCompile(`^[0-9a-fA-F]{4,64}$`)
	scpURLRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:[^:]`)
)

// checkRepo validates a repository location and returns it as git should
// see it and as it may be shown (without credentials).
func checkRepo(repo string) (loc, shown string, err error) {
	switch {
	case repo == "":
		return "", "", errors.New("no git repository")
	case strings.HasPrefix(repo, "-"):
		return "", "", fmt.Errorf("invalid git repository %q", repo)
	case strings.HasPrefix(repo, "/"):
		return repo, repo, nil
	case scpURLRE.MatchString(repo):
		return repo, repo, nil
	}
	u, err := url.Parse(repo)
	if err != nil || u.Scheme == "" {
		return "", "", errors.New("invalid git repository: not an URL, an absolute path nor user@host:path")
	}
	switch u.Scheme {
	case "https", "http", "ssh", "git", "file":
	default:
		// ext:: and other remote helpers run commands: never.
		return "", "", fmt.Errorf("git repository scheme %q is not allowed (https, http, ssh, git, file)", u.Scheme)
	}
	return repo, u.Redacted(), nil
}

// gitEnv is the environment of git commands: the base environment, no
// terminal prompts, and the token only through the askpass helper.
func (a *Agent) gitEnv(token string) []string {
	vars := map[string]string{"GIT_TERMINAL_PROMPT": "0"}
	if token != "" {
		vars["GIT_ASKPASS"] = a.askpass
		vars[gitTokenEnv] = token
	}
	return mergeEnv(a.cfg.BaseEnv, vars)
}

// git runs a git command with its output in the build log.
func (a *Agent) git(ctx context.Context, dir, token string, bl *buildLog, args ...string) error {
	// An empty credential.helper resets the helpers of the user's and
	// system's config: nothing stores the token.
	cmd := exec.CommandContext(ctx, a.cfg.GitPath, append([]string{"-c", "credential.helper="}, args...)...)
	cmd.Dir = dir
	cmd.Env = a.gitEnv(token)
	if err := runGroup(cmd, bl); err != nil {
		return fmt.Errorf("git %s: %w", args[0], err)
	}
	return nil
}

// gitOutput runs a local git query in dir.
func (a *Agent) gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, a.cfg.GitPath, args...)
	cmd.Dir = dir
	cmd.Env = a.gitEnv("")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// fetchSource clones the payload's repository into dir (shallow, at the
// branch), checks out the pinned commit when there is one, and returns the
// commit's sha and subject.
func (a *Agent) fetchSource(ctx context.Context, p *wsproto.DeployPayload, dir string, bl *buildLog) (sha, subject string, err error) {
	loc, shown, err := checkRepo(p.GitRepo)
	if err != nil {
		return "", "", err
	}
	if u, err := url.Parse(loc); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			bl.addRedaction(pw)
		}
	}
	if p.CommitSHA != "" && !shaRE.MatchString(p.CommitSHA) {
		return "", "", fmt.Errorf("invalid commit sha %q", p.CommitSHA)
	}
	if strings.HasPrefix(p.GitBranch, "-") || strings.ContainsAny(p.GitBranch, "\x00\n\r ") {
		return "", "", fmt.Errorf("invalid branch %q", p.GitBranch)
	}
	bl.note("cloning " + shown + branchNote(p.GitBranch))
	args := []string{"clone", "--depth", "1", "--no-tags"}
	if p.GitBranch != "" {
		args = append(args, "--branch", p.GitBranch)
	}
	args = append(args, "--", loc, dir)
	if err := a.git(ctx, filepath.Dir(dir), p.GitToken, bl, args...); err != nil {
		return "", "", err
	}
	if p.CommitSHA != "" {
		want := p.CommitSHA + "^{commit}"
		if _, err := a.gitOutput(ctx, dir, "cat-file", "-e", want); err != nil {
			bl.note("fetching commit " + p.CommitSHA)
			if err := a.git(ctx, dir, p.GitToken, bl, "fetch", "--depth", "1", "origin", p.CommitSHA); err != nil {
				bl.note("the server does not serve single commits; fetching the history")
				if err := a.git(ctx, dir, p.GitToken, bl, "fetch", "--unshallow", "origin"); err != nil {
					return "", "", err
				}
			}
		}
		if err := a.git(ctx, dir, "", bl, "checkout", "--quiet", "--detach", p.CommitSHA); err != nil {
			return "", "", err
		}
	}
	if sha, err = a.gitOutput(ctx, dir, "rev-parse", "HEAD"); err != nil {
		return "", "", err
	}
	subject, _ = a.gitOutput(ctx, dir, "log", "-1", "--format=%s")
	bl.note("commit " + shortSHA(sha) + " " + subject)
	return sha, subject, nil
}

func branchNote(b string) string {
	if b == "" {
		return ""
	}
	return " (branch " + b + ")"
}
