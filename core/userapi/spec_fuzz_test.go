package userapi

import (
	"regexp"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/core/store"
)

// The database's own checks (migration 001) on what ValidateAppName lets
// through as a name and a subdomain.
var (
	dbNameRE      = regexp.MustCompile(`^[a-z0-9-]{7,32}$`)
	dbSubdomainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// FuzzCheckSpec: whatever a user sends, an accepted name satisfies the
// database's checks, and an accepted spec names an https repository, a
// branch git accepts, and a Dockerfile inside the repository.
func FuzzCheckSpec(f *testing.F) {
	f.Add("hello-app", "https://github.com/ada/app", "main", "", "./run")
	f.Add("-bad-name", "file:///srv/x", "feat..x", "../Dockerfile", "")
	f.Add("ok-name-1", "https://user@host/x", "a/.b", "docker/app.Dockerfile", "x")
	f.Fuzz(func(t *testing.T, name, repo, branch, dockerfile, run string) {
		if ValidateAppName(name) == nil && (!dbNameRE.MatchString(name) || !dbSubdomainRE.MatchString(name)) {
			t.Fatalf("accepted name %q fails the database's checks", name)
		}
		in := specInput{GitRepo: &repo, GitBranch: &branch, Dockerfile: &dockerfile, RunCommand: &run}
		var spec store.AppSpec
		if err := in.apply(&spec, false); err != nil {
			return
		}
		if !strings.HasPrefix(spec.GitRepo, "https://") || strings.ContainsAny(spec.GitRepo, " \n\x00") {
			t.Fatalf("accepted repository %q", spec.GitRepo)
		}
		if b := spec.GitBranch; strings.Contains(b, "..") || strings.HasPrefix(b, "-") || !branchRE.MatchString(b) {
			t.Fatalf("accepted branch %q", b)
		}
		if d := spec.Dockerfile; d != "" && (strings.HasPrefix(d, "/") || strings.Contains("/"+d+"/", "/../")) {
			t.Fatalf("accepted Dockerfile %q outside the repository", d)
		}
		if spec.Dockerfile == "" && strings.TrimSpace(spec.RunCommand) == "" {
			t.Fatal("accepted a spec with neither a run command nor a Dockerfile")
		}
	})
}
