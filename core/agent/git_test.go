package agent

import (
	"bytes"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// TestPrivateRepoToken clones a private repository over HTTP (git
// http-backend behind basic auth) with a token. While git waits for the
// authenticated request, the test reads /proc/<pid>/cmdline of every
// process: the token must be in none (it travels in git's environment to
// the askpass helper, whose printf is a shell builtin), nor in the build
// log or the result.
func TestPrivateRepoToken(t *testing.T) {
	t.Parallel()
	const token = "ghp_s3cr3tTokenNeverInArgv"
	src, sha := testRepo(t, nil)
	root := t.TempDir()
	gitIn(t, root, "clone", "-q", "--bare", src, filepath.Join(root, "app.git"))
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Root: "/git",
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	var mu sync.Mutex
	var unauthorized, authorized int
	var leaks, gitProcs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pw, ok := r.BasicAuth()
		if !ok || pw != token {
			mu.Lock()
			unauthorized++
			mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		// git is blocked on this request: look at every argv now.
		l, g := scanArgv(token)
		mu.Lock()
		authorized++
		leaks = append(leaks, l...)
		gitProcs = append(gitProcs, g...)
		mu.Unlock()
		backend.ServeHTTP(w, r)
	}))
	defer srv.Close()

	h := startAgent(t, testConfig(t))
	h.submit(deployJob(1, 60, srv.URL+"/git/app.git", func(p *wsproto.DeployPayload) { p.GitToken = token }))
	res := h.result(1, 20*time.Second)
	if !res.Success {
		t.Fatalf("deploy from the private repository failed: %s", res.Error)
	}
	if res.CommitSHA != sha {
		t.Errorf("commit %s, want %s", res.CommitSHA, sha)
	}
	mu.Lock()
	defer mu.Unlock()
	if unauthorized == 0 || authorized == 0 {
		t.Fatalf("the server saw %d unauthenticated and %d authenticated requests: the token did not go through askpass", unauthorized, authorized)
	}
	if len(gitProcs) == 0 {
		t.Fatal("the /proc scan saw no git process: it proves nothing")
	}
	t.Logf("git processes seen while authenticated: %q", gitProcs)
	if len(leaks) > 0 {
		t.Errorf("the token is in the argv of: %q", leaks)
	}
	for _, b := range of[wsproto.BuildLog](h.c, wsproto.TypeBuildLog) {
		if strings.Contains(b.Logs, token) {
			t.Error("the token is in the build log")
		}
	}
	if strings.Contains(res.Message+res.Error, token) {
		t.Error("the token is in the result")
	}
	// The askpass helper on disk holds no secret.
	b, err := os.ReadFile(filepath.Join(h.cfg.DataDir, "bin", "git-askpass"))
	if err != nil || bytes.Contains(b, []byte(token)) {
		t.Errorf("askpass helper: %v", err)
	}
}

// scanArgv returns the processes whose argv holds secret, and the argv of
// the git processes (to prove the scan sees them).
func scanArgv(secret string) (leaks, gits []string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		argv := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		if strings.Contains(argv, secret) {
			leaks = append(leaks, e.Name()+": "+argv)
		}
		if strings.Contains(argv, "git") && strings.Contains(argv, "/git/app.git") {
			gits = append(gits, argv)
		}
	}
	return leaks, gits
}

// TestPinnedCommit checks out CommitSHA, behind the branch head, through a
// shallow file:// clone.
func TestPinnedCommit(t *testing.T) {
	t.Parallel()
	repo, first := testRepo(t, nil)
	os.WriteFile(filepath.Join(repo, "later.txt"), []byte("x"), 0o644)
	gitIn(t, repo, "add", "-A")
	gitIn(t, repo, "commit", "-q", "-m", "second commit")
	h := startAgent(t, testConfig(t))
	h.submit(deployJob(1, 61, "file://"+repo, func(p *wsproto.DeployPayload) { p.CommitSHA = first }))
	res := h.result(1, 20*time.Second)
	if !res.Success {
		t.Fatal(res.Error)
	}
	if res.CommitSHA != first || res.CommitMessage != "first commit" {
		t.Errorf("commit %s %q, want %s", res.CommitSHA, res.CommitMessage, first)
	}
}
