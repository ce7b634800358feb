package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `worker add` checks its flags the way the API and the database will,
// before it opens anything: a bad flag exits 2 with a precise message and
// no configuration is read (the -config file does not even exist).
func TestWorkerAddRejectsBadFlags(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.hcl")
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"name with spaces", []string{"-name", "not a name!"}, `worker name "not a name!" is invalid`},
		{"name starting with a dot", []string{"-name", ".edge"}, `worker name ".edge" is invalid`},
		{"name of 64 characters", []string{"-name", strings.Repeat("a", 64)}, "is invalid: use 1 to 63"},
		{"uppercase zone", []string{"-name", "w1", "-zone", "EU"}, `-zone: "EU" is not a valid DNS label: it contains uppercase letters; write "eu"`},
		{"zone with a dot", []string{"-name", "w1", "-zone", "eu.1"}, "-zone:"},
		{"empty zone", []string{"-name", "w1", "-zone", ""}, "-zone:"},
		{"address with a port", []string{"-name", "w1", "-address", "10.0.0.1:80"}, "-address: address must be an IP address or a host name, without scheme or port"},
		{"address with a scheme", []string{"-name", "w1", "-address", "http://w1.internal"}, "-address:"},
		{"single-label address", []string{"-name", "w1", "-address", "worker1"}, "single label"},
		{"metadata endpoint", []string{"-name", "w1", "-address", "169.254.169.254"}, "link-local"},
		{"unspecified address", []string{"-name", "w1", "-address", "0.0.0.0"}, "unspecified"},
		{"multicast address", []string{"-name", "w1", "-address", "ff02::1", "-allow-loopback"}, "multicast"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runInProcess(t, append([]string{"worker", "add", "-config", missing}, tc.args...)...)
			if res.code != 2 {
				t.Fatalf("want exit 2 for a bad flag, got:\n%s", res)
			}
			if !strings.Contains(res.stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, res.stderr)
			}
			if res.stdout != "" || strings.Contains(res.stderr, "configuration file") {
				t.Errorf("nothing should be read or printed after a bad flag:\n%s", res)
			}
		})
	}
}

// Good flags get past the checks: with a missing config file, the command
// then fails reading it (exit 1).
func TestWorkerAddAcceptsGoodFlags(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.hcl")
	for _, args := range [][]string{
		{"-name", "edge-1"},
		{"-name", "Edge_1.eu", "-zone", "eu-west-1"},
		{"-name", strings.Repeat("a", 63), "-address", "10.8.0.2"},
		{"-name", "w1", "-address", "fd00::2"},
		{"-name", "w1", "-address", "w1.wg.example.internal"},
		{"-name", "w1", "-address", "127.0.0.1"}, // loopback: decided once the config is read
	} {
		res := runInProcess(t, append([]string{"worker", "add", "-config", missing}, args...)...)
		if res.code != 1 || !strings.Contains(res.stderr, "Cannot read configuration file") {
			t.Errorf("%q: want the flags accepted and the missing config reported (exit 1), got:\n%s", args, res)
		}
	}
}

// A loopback address needs -allow-loopback or the config's
// worker.allow_loopback_address; refused, nothing is opened.
func TestWorkerAddLoopback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, extra string) string {
		p := filepath.Join(dir, name)
		src := "data_dir = \"data-" + name + "\"\nplatform {\n  domain = \"apps.example.com\"\n}\nserver {\n  secret = \"0123456789abcdef\"\n}\n" +
			"logging {\n  level = \"error\"\n}\n" + extra
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The embedded database: had the command opened it, data-strict.hcl
	// would exist.
	strict := write("strict.hcl", "")
	// An unreachable database: getting that far proves the address was
	// accepted, without starting Postgres.
	unreachable := "database {\n  url = \"postgres://wh@127.0.0.1:1/wh?connect_timeout=2\"\n}\n"
	strictUnreachable := write("strict-unreachable.hcl", unreachable)
	allowing := write("allowing.hcl", unreachable+"worker {\n  allow_loopback_address = true\n}\n")

	tests := []struct {
		name     string
		args     []string
		accepted bool
	}{
		{"refused by default", []string{"-config", strict, "-address", "127.0.0.1"}, false},
		{"IPv6 refused by default", []string{"-config", strict, "-address", "::1"}, false},
		{"localhost refused by default", []string{"-config", strict, "-address", "localhost"}, false},
		{"allowed by the flag", []string{"-config", strictUnreachable, "-address", "127.0.0.1", "-allow-loopback"}, true},
		{"allowed by the config", []string{"-config", allowing, "-address", "::1"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runInProcess(t, append([]string{"worker", "add", "-name", "w1"}, tc.args...)...)
			if !tc.accepted {
				if res.code != 2 || !strings.Contains(res.stderr, "loopback address") || !strings.Contains(res.stderr, "-allow-loopback") ||
					!strings.Contains(res.stderr, "allow_loopback_address = true") {
					t.Fatalf("want exit 2 with how to allow loopback, got:\n%s", res)
				}
				return
			}
			if res.code != 1 || strings.Contains(res.stderr, "loopback") || !strings.Contains(res.stderr, "127.0.0.1:1") {
				t.Fatalf("want the address accepted and the unreachable database reported (exit 1), got:\n%s", res)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "data-strict.hcl")); err == nil {
		t.Error("the data directory was created: a command touched the data before its flags were checked")
	}
}
