package userapi

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/hostname"
)

// Bounds of an app's spec.
const (
	maxCommand    = 4096
	maxEnvVars    = 200
	maxEnvValue   = 32 << 10
	maxRepoURL    = 2048
	maxBranch     = 255
	maxDockerfile = 255
)

var (
	branchRE = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)
	shaRE    = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
)

// checkRepo validates a git repository URL: https with a host and no
// credentials, query or fragment; or, when the operator allows it, a local
// path (absolute, or file://).
func checkRepo(repo string, allowLocal bool) error {
	if repo == "" {
		return fmt.Errorf("git_repo is required")
	}
	if len(repo) > maxRepoURL || strings.ContainsAny(repo, "\x00\n\r\t ") {
		return fmt.Errorf("git_repo is not a valid URL")
	}
	if strings.HasPrefix(repo, "/") || strings.HasPrefix(repo, "file://") {
		if !allowLocal {
			return fmt.Errorf("git_repo %q is a local path, which this platform does not allow: use an https:// URL", repo)
		}
		p := strings.TrimPrefix(repo, "file://")
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
			return fmt.Errorf("git_repo %q is not a clean absolute path", repo)
		}
		return nil
	}
	u, err := url.Parse(repo)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("git_repo must be an https:// URL of a git repository, like https://github.com/owner/repo")
	}
	if err := hostname.Valid(strings.ToLower(u.Hostname())); err != nil {
		return fmt.Errorf("git_repo must name its git host by a DNS name, like github.com (%s)", err.(*hostname.Error).Reason)
	}
	if u.User != nil {
		return fmt.Errorf("git_repo must not carry credentials: link your git provider account for private repositories")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("git_repo must not have a query or fragment")
	}
	if strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("git_repo %q names no repository", repo)
	}
	return nil
}

// checkBranch applies git's ref-name rules that matter here.
func checkBranch(b string) error {
	switch {
	case len(b) > maxBranch:
		return fmt.Errorf("git_branch is longer than %d characters", maxBranch)
	case !branchRE.MatchString(b):
		return fmt.Errorf("git_branch %q may hold only letters, digits and . _ / -", b)
	case strings.HasPrefix(b, "-"), strings.HasPrefix(b, "/"), strings.HasSuffix(b, "/"), strings.HasSuffix(b, "."),
		strings.HasSuffix(b, ".lock"), strings.Contains(b, ".."), strings.Contains(b, "//"), strings.Contains(b, "/."):
		return fmt.Errorf("git_branch %q is not a valid branch name", b)
	}
	return nil
}

// checkSHA validates a commit id (7 to 64 lowercase hex digits).
func checkSHA(sha string) error {
	if !shaRE.MatchString(sha) {
		return fmt.Errorf("commit_sha %q is not a commit id (7 to 64 lowercase hex digits)", sha)
	}
	return nil
}

func checkCommand(field, cmd string) error {
	if len(cmd) > maxCommand {
		return fmt.Errorf("%s is longer than %d bytes", field, maxCommand)
	}
	if strings.ContainsRune(cmd, 0) {
		return fmt.Errorf("%s contains a NUL byte", field)
	}
	return nil
}

// checkDockerfile validates a Dockerfile path inside the repository.
func checkDockerfile(f string) error {
	if len(f) > maxDockerfile || strings.ContainsAny(f, "\x00\n\r") {
		return fmt.Errorf("dockerfile is not a valid path")
	}
	if strings.HasPrefix(f, "/") || path.Clean(f) != f || f == "." || strings.HasPrefix(f, "../") || f == ".." {
		return fmt.Errorf("dockerfile %q must be a clean path inside the repository, like Dockerfile or docker/app.Dockerfile", f)
	}
	return nil
}

// checkEnv validates env var keys and values.
func checkEnv(env map[string]string) error {
	if len(env) > maxEnvVars {
		return fmt.Errorf("at most %d env vars", maxEnvVars)
	}
	for k, v := range env {
		if err := checkEnvVar(k, v); err != nil {
			return err
		}
	}
	return nil
}

func checkEnvVar(k, v string) error {
	if !store.ValidEnvKey(k) {
		return fmt.Errorf("env var name %q must match ^[A-Z][A-Z0-9_]{0,63}$", k)
	}
	if len(v) > maxEnvValue {
		return fmt.Errorf("env var %s is longer than %d bytes", k, maxEnvValue)
	}
	if strings.ContainsRune(v, 0) {
		return fmt.Errorf("env var %s contains a NUL byte", k)
	}
	return nil
}

// specInput is the part of a create or update request that describes how
// the app is built and run; nil fields are left as they are.
type specInput struct {
	GitRepo      *string `json:"git_repo"`
	GitBranch    *string `json:"git_branch"`
	BuildCommand *string `json:"build_command"`
	RunCommand   *string `json:"run_command"`
	Dockerfile   *string `json:"dockerfile"`
	Port         *int    `json:"port"`
}

// apply merges in onto spec and validates the result. The runtime follows
// from the Dockerfile: podman with one, exec without.
func (in specInput) apply(spec *store.AppSpec, allowLocal bool) error {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = strings.TrimSpace(*src)
		}
	}
	set(&spec.GitRepo, in.GitRepo)
	set(&spec.GitBranch, in.GitBranch)
	if in.BuildCommand != nil {
		spec.BuildCommand = *in.BuildCommand
	}
	if in.RunCommand != nil {
		spec.RunCommand = *in.RunCommand
	}
	set(&spec.Dockerfile, in.Dockerfile)
	if err := checkRepo(spec.GitRepo, allowLocal); err != nil {
		return err
	}
	if spec.GitBranch == "" {
		spec.GitBranch = "main"
	}
	if err := checkBranch(spec.GitBranch); err != nil {
		return err
	}
	if err := checkCommand("build_command", spec.BuildCommand); err != nil {
		return err
	}
	if err := checkCommand("run_command", spec.RunCommand); err != nil {
		return err
	}
	spec.Runtime = "exec"
	if spec.Dockerfile != "" {
		if err := checkDockerfile(spec.Dockerfile); err != nil {
			return err
		}
		spec.Runtime = "podman"
	} else if strings.TrimSpace(spec.RunCommand) == "" {
		return fmt.Errorf("an app needs a run_command (how to start it) or a dockerfile")
	}
	if in.Port != nil && (*in.Port < 1 || *in.Port > 65535) {
		return fmt.Errorf("port must be between 1 and 65535, not %d", *in.Port)
	}
	return nil
}
