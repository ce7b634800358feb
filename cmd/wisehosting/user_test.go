package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/accounts"
)

// `user add` checks its flags before it reads the configuration (which
// does not even exist here).
func TestUserAddRejectsBadFlags(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.hcl")
	tests := []struct {
		args []string
		want string
	}{
		{nil, "user add: -email is required"},
		{[]string{"-email", "  "}, "user add: -email is required"},
		{[]string{"-email", "not-an-address"}, `-email "not-an-address" is not an e-mail address`},
		{[]string{"-email", "Ada <ada@example.com>"}, "want the bare address"},
		{[]string{"-email", "ada@example.com", "-plan", "Pro"}, `-plan "Pro" is not a plan id`},
		{[]string{"-email", "ada@example.com", "-token-name", " "}, "-token-name must be 1 to 100 characters"},
		{[]string{"-email", "ada@example.com", "-token-name", strings.Repeat("n", 101)}, "-token-name must be 1 to 100"},
		{[]string{"-email", "ada@example.com", "extra"}, `unexpected arguments ["extra"]`},
		{[]string{"-nope"}, "flag provided but not defined: -nope"},
	}
	for _, tc := range tests {
		res := runInProcess(t, append([]string{"user", "add", "-config", missing}, tc.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, tc.want) || res.stdout != "" || strings.Contains(res.stderr, "configuration file") {
			t.Errorf("user add %q: want exit 2 with %q and nothing read, got:\n%s", tc.args, tc.want, res)
		}
	}
	for _, args := range [][]string{{"user"}, {"user", "frob"}, {"user", "list", "extra"}} {
		if res := runInProcess(t, args...); res.code != 2 || !strings.Contains(res.stderr, "wisehosting user add -email EMAIL") {
			t.Errorf("%q: want exit 2 with the usage, got:\n%s", args, res)
		}
	}
	// Good flags get as far as the missing configuration.
	res := runInProcess(t, "user", "add", "-config", missing, "-email", "Ada@Example.com", "-plan", "pro_2", "-token-name", "laptop")
	if res.code != 1 || !strings.Contains(res.stderr, "Cannot read configuration file") {
		t.Errorf("good flags: want the missing config reported (exit 1), got:\n%s", res)
	}
}

// userToken returns the token `user add` printed: alone on the last line
// of stdout, and nowhere else.
func userToken(t *testing.T, res result) string {
	t.Helper()
	if res.code != 0 {
		t.Fatalf("user add: want exit 0, got:\n%s", res)
	}
	lines := strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
	tok := lines[len(lines)-1]
	if err := accounts.ParseToken(accounts.APITokenPrefix, tok); err != nil {
		t.Fatalf("the last line of stdout is not an API token (%v):\n%s", err, res)
	}
	if strings.Count(res.stdout+res.stderr, tok) != 1 {
		t.Fatalf("the token must be printed once, on stdout:\n%s", res)
	}
	return tok
}

// TestUserAddLogin runs `user add` and `user list` against the embedded
// cluster with no server up, then `serve`, and logs in with the tokens
// `user add` minted, through the real API.
func TestUserAddLogin(t *testing.T) {
	t.Parallel()
	root := sharedTempDir(t)
	t.Cleanup(func() { requireNoClusterProcs(t, root) })
	writeSecret(t, root)
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	cfg := filepath.Join(root, "wisehosting.hcl")
	writeServeConfig(t, cfg, filepath.Join(root, "data"), addr, "10s")

	res := runBinary(t, nil, "user", "add", "-email", "Ada@Example.com", "-name", "Ada", "-plan", "pro", "-config", cfg)
	first := userToken(t, res)
	if !strings.HasPrefix(res.stdout, "created user ada@example.com (id ") || !strings.Contains(res.stdout, "plan pro).") ||
		!strings.Contains(res.stdout, `API token "cli"`) || !strings.Contains(res.stdout, "wisehosting login -core "+base) {
		t.Errorf("user add:\n%s", res)
	}
	requireNoClusterProcs(t, root)

	res = runBinary(t, nil, "user", "add", "-email", "ada@example.com", "-plan", "team", "-token-name", "ci", "-config", cfg)
	second := userToken(t, res)
	if second == first || !strings.HasPrefix(res.stdout, "found existing user (plan changed from pro) ada@example.com") ||
		!strings.Contains(res.stdout, "plan team).") || !strings.Contains(res.stdout, `API token "ci"`) {
		t.Errorf("user add of an existing user:\n%s", res)
	}
	runBinary(t, nil, "user", "add", "-email", "grace@example.com", "-config", cfg)

	res = runBinary(t, nil, "user", "list", "-config", cfg)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if res.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "ID  EMAIL") ||
		strings.Join(strings.Fields(lines[1])[1:7], " ") != "ada@example.com Ada team 0 2 false" ||
		strings.Join(strings.Fields(lines[2])[1:7], " ") != "grace@example.com - free 0 1 false" {
		t.Errorf("user list:\n%s", res)
	}
	res = runBinary(t, nil, "user", "list", "-json", "-config", cfg)
	var users []struct {
		Email  string `json:"email"`
		Plan   string `json:"plan"`
		Tokens int    `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &users); err != nil || len(users) != 2 || users[0].Tokens != 2 || users[1].Plan != "free" {
		t.Errorf("user list -json (%v):\n%s", err, res)
	}
	if strings.Contains(res.stdout, first) || strings.Contains(res.stdout, second) {
		t.Error("user list printed a token")
	}
	requireNoClusterProcs(t, root)

	// Both tokens log in through the real API.
	srv := startServe(t, cfg)
	srv.waitHealthy(t, base, 30*time.Second)
	conf := filepath.Join(t.TempDir(), "cli", "cli.json")
	for _, tok := range []string{first, second} {
		res = runBinary(t, []string{envCLIConfig + "=" + conf, envToken + "=" + tok}, "login", "-core", base)
		if res.code != 0 || res.stdout != "logged in as ada@example.com at "+base+"\n" {
			t.Errorf("login with a token from user add:\n%s", res)
		}
	}
	raw, err := os.ReadFile(conf)
	if err != nil || !strings.Contains(string(raw), second) {
		t.Errorf("the credentials file holds %s (%v), want the last token", raw, err)
	}
	res = runBinary(t, []string{envCLIConfig + "=" + conf, envToken + "=wht_" + strings.Repeat("A", 43)}, "login", "-core", base)
	if res.code != 1 || !strings.Contains(res.stderr, "login: check the token with "+base+": unauthorized:") {
		t.Errorf("login with an unknown token:\n%s", res)
	}
	srv.stop(t, os.Interrupt)
}
