package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// stage copies src (a path) into a fresh directory as wisehosting.hcl next
// to a generated data/secret and a data/short-secret, and returns the copy's
// path and the secret.
func stage(t *testing.T, src string) (path, secret string) {
	t.Helper()
	text, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	return stageSource(t, string(text))
}

// stageSource writes text as wisehosting.hcl in a fresh directory next to a
// generated data/secret and a data/short-secret.
func stageSource(t *testing.T, text string) (path, secret string) {
	t.Helper()
	dir := t.TempDir()
	secret = writeSecret(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "data", "short-secret"), []byte("sh0rt-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "wisehosting.hcl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, secret
}

func TestValidateRepoConfig(t *testing.T) {
	t.Parallel()
	path, secret := stage(t, filepath.Join("..", "..", "wisehosting.hcl"))

	res := runInProcess(t, "validate", path)
	if res.code != 0 {
		t.Fatalf("validate of the repository's wisehosting.hcl failed:\n%s", res)
	}
	if want := path + ": valid (5 plugin blocks)\n"; res.stdout != want {
		t.Errorf("stdout = %q, want %q", res.stdout, want)
	}
	if res.stderr != "" {
		t.Errorf("stderr should be empty on success, got:\n%s", res.stderr)
	}
	if strings.Contains(res.stdout+res.stderr, secret) {
		t.Errorf("validate printed the server secret:\n%s", res)
	}

	res = runInProcess(t, "validate", "-q", path)
	if res.code != 0 || res.stdout != "" || res.stderr != "" {
		t.Errorf("validate -q should exit 0 and print nothing, got:\n%s", res)
	}
}

func TestValidateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fixture string // under testdata/
		summary string // the diagnostic's summary
		line    int
		snippet string // the source line as printed, after "NN: "
		detail  string
		col     int // column of the diagnostic's subject
	}{
		{
			name:    "typo'd attribute",
			fixture: "typo.hcl",
			summary: "Unsupported argument",
			line:    15,
			snippet: `  pol_interval = "**"`,
			detail:  `An argument named "pol_interval" is not expected here. Did you mean "poll_interval"?`,
			col:     3,
		},
		{
			name:    "bad duration",
			fixture: "bad-duration.hcl",
			summary: "Invalid duration",
			line:    14,
			snippet: `  poll_interval = "*********"`,
			detail:  `scheduler.poll_interval: invalid duration "5 parsecs": unknown unit " parsecs"`,
			col:     19,
		},
		{
			name:    "short secret from file()",
			fixture: "short-secret-file.hcl",
			summary: "Invalid server.secret",
			line:    7,
			snippet: `  secret = file("*****************")`,
			detail:  "server.secret: the secret must be at least 16 characters long",
			col:     12,
		},
		{
			name:    "short literal secret",
			fixture: "short-secret-literal.hcl",
			summary: "Invalid server.secret",
			line:    7,
			snippet: `    secret = "***********"`,
			detail:  "server.secret: the secret must be at least 16 characters long",
			col:     14,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, secret := stage(t, filepath.Join("testdata", tc.fixture))
			res := runInProcess(t, "validate", path)
			if res.code != 1 {
				t.Fatalf("want exit 1 for an invalid config, got:\n%s", res)
			}
			if res.stdout != "" {
				t.Errorf("stdout should be empty on failure, got %q", res.stdout)
			}
			out := res.stderr
			pos := path + ":" + strconv.Itoa(tc.line) + ":" + strconv.Itoa(tc.col)
			for _, want := range []string{
				pos + ": error: " + tc.summary + "\n",
				strconv.Itoa(tc.line) + " | " + tc.snippet + "\n",
				tc.detail,
			} {
				if !strings.Contains(out, want) {
					t.Errorf("stderr lacks %q:\n%s", want, out)
				}
			}
			if n := strings.Count(out, ": error: "); n != 1 {
				t.Errorf("want exactly one error, got %d:\n%s", n, out)
			}
			for _, s := range []string{secret, "sh0rt-s3cret", "tiny-s3cr3t"} {
				if strings.Contains(out, s) {
					t.Errorf("stderr shows the secret %q:\n%s", s, out)
				}
			}
		})
	}
}

// TestValidateNeverPrintsSecrets runs validate on configs that put secrets
// in many shapes right where the diagnostics point, and checks that no
// secret value reaches the output.
func TestValidateNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	const platform = "platform {\n  domain = \"apps.localhost\"\n}\n"
	tests := []struct {
		name     string
		src      string // SECRET is replaced by a fresh random value
		short    bool   // SECRET has fewer than 16 characters
		wantCode int
	}{
		{name: "valid literal secret", src: "server {\n  secret = \"SECRET\"\n}\n", wantCode: 0},
		{name: "typo next to a literal secret", src: "server {\n  secret = \"SECRET\"\n  listn  = \"127.0.0.1:1\"\n}\n", wantCode: 1},
		{name: "short literal secret", src: "server {\n  secret = \"SECRET\"\n}\n", short: true, wantCode: 1},
		{name: "short heredoc secret", src: "server {\n  secret = <<EOT\nSECRET\nEOT\n}\n", short: true, wantCode: 1},
		{name: "short secret in a template", src: "server {\n  secret = \"SECRET${1}\"\n}\n", short: true, wantCode: 1},
		{name: "syntax error on the secret's line", src: "server {\n  secret = \"SECRET\" bogus\n}\n", wantCode: 1},
		{name: "unterminated secret", src: "server {\n  secret = \"SECRET\n}\n", wantCode: 1},
		{name: "secret of the wrong type", src: "server {\n  secret = [\"SECRET\"]\n}\n", wantCode: 1},
		{name: "metrics token and database password", src: "server {\n  secret = \"SECRET\"\n  metrics_token = \"SECRET\"\n}\n" +
			"database {\n  url = \"postgres://u:SECRET@db.internal/wh\"\n  password = \"SECRET\"\n  max_conns = \"many\"\n}\n", wantCode: 1},
		{name: "short env() default", src: "server {\n  secret = env(\"WH_TEST_UNSET_7F3A\", \"SECRET\")\n}\n", short: true, wantCode: 1},
		{name: "short secret in a conditional", src: "server {\n  secret = true ? \"SECRET\" : \"x\"\n}\n", short: true, wantCode: 1},
		{name: "secret in a binary operation", src: "server {\n  secret = \"SECRET\" + 1\n}\n", wantCode: 1},
		{name: "redefined secret", src: "server {\n  secret = \"SECRET\"\n  secret = \"SECRET\"\n}\n", wantCode: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := make([]byte, 8)
			if _, err := rand.Read(raw); err != nil {
				t.Fatal(err)
			}
			value := "Zq" + hex.EncodeToString(raw) + "-never-print-me" // 33 characters
			if tc.short {
				value = "Zq" + hex.EncodeToString(raw[:5]) // 12 characters
			}
			path, _ := stageSource(t, platform+strings.ReplaceAll(tc.src, "SECRET", value))
			res := runInProcess(t, "validate", path)
			if res.code != tc.wantCode {
				t.Fatalf("want exit %d, got:\n%s", tc.wantCode, res)
			}
			leaked := strings.Contains(res.stdout+res.stderr, value)
			if leaked {
				t.Errorf("validate printed the secret %q:\n%s", value, res)
			}
		})
	}
}

func TestValidateMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "absent.hcl")
	res := runInProcess(t, "validate", path)
	if res.code != 1 {
		t.Fatalf("want exit 1 for a missing file, got:\n%s", res)
	}
	if !strings.Contains(res.stderr, "Cannot read configuration file") || !strings.Contains(res.stderr, path) {
		t.Errorf("stderr should say the file cannot be read and name it:\n%s", res.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{nil, "Usage:\n  wisehosting serve"},
		{[]string{"bogus"}, `wisehosting: unknown command "bogus"`},
		{[]string{"validate", "a.hcl", "b.hcl"}, `wisehosting: usage: validate takes one file, got ["a.hcl" "b.hcl"]`},
		{[]string{"validate", "-nope"}, "flag provided but not defined: -nope"},
		{[]string{"serve", "extra"}, `wisehosting: usage: serve takes no arguments, got ["extra"]`},
		{[]string{"serve", "-nope"}, "flag provided but not defined: -nope"},
		{[]string{"migrate", "sideways"}, "wisehosting: usage: migrate [up|status] [-config FILE]"},
		{[]string{"migrate", "status", "extra"}, "wisehosting: usage: migrate [up|status] [-config FILE]"},
		{[]string{"worker"}, "wisehosting worker add -name NAME"},
		{[]string{"worker", "frobnicate"}, `unknown worker command "frobnicate"`},
		{[]string{"worker", "add"}, "wisehosting worker add -name NAME"},
		{[]string{"worker", "add", "-name", "w1", "extra"}, "wisehosting worker add -name NAME"},
		{[]string{"worker", "rotate-key"}, "wisehosting worker rotate-key NAME"},
		{[]string{"worker", "rotate-key", "a", "b"}, "wisehosting worker rotate-key NAME"},
		{[]string{"worker", "list", "extra"}, "wisehosting worker list [-json]"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(append([]string{"wisehosting"}, tc.args...), " "), func(t *testing.T) {
			t.Parallel()
			res := runInProcess(t, tc.args...)
			if res.code != 2 {
				t.Errorf("want exit 2 for a usage error, got:\n%s", res)
			}
			if !strings.Contains(res.stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, res.stderr)
			}
			if res.stdout != "" {
				t.Errorf("stdout should be empty on a usage error, got %q", res.stdout)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	res := runInProcess(t, "help")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "wisehosting — self-hosted PaaS control plane") || res.stderr != "" {
		t.Errorf("help: want usage on stdout and exit 0, got:\n%s", res)
	}
	res = runInProcess(t, "version")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "wisehosting dev (go") || res.stderr != "" {
		t.Errorf("version: want %q and exit 0, got:\n%s", "wisehosting dev (go…)", res)
	}
}

// TestBinaryExitCodes checks that the real process exits with run's codes
// and prints diagnostics to stderr.
func TestBinaryExitCodes(t *testing.T) {
	t.Parallel()
	good, _ := stage(t, filepath.Join("..", "..", "wisehosting.hcl"))
	typo, _ := stage(t, filepath.Join("testdata", "typo.hcl"))
	tests := []struct {
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{[]string{"validate", good}, 0, "valid (5 plugin blocks)", ""},
		{[]string{"validate", typo}, 1, "", `Did you mean "poll_interval"?`},
		{[]string{"bogus"}, 2, "", `unknown command "bogus"`},
		{[]string{"validate", good, typo}, 2, "", "validate takes one file"},
	}
	for _, tc := range tests {
		res := runBinary(t, []string{"NO_COLOR=1"}, tc.args...)
		if res.code != tc.code || !strings.Contains(res.stdout, tc.wantStdout) || !strings.Contains(res.stderr, tc.wantStderr) {
			t.Errorf("wisehosting %s: want exit %d, stdout with %q, stderr with %q; got:\n%s",
				strings.Join(tc.args, " "), tc.code, tc.wantStdout, tc.wantStderr, res)
		}
	}
}
