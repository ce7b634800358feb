package embedpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ErrNoBinaries is wrapped by the errors of FindBinDir and Start when the
// PostgreSQL server binaries are missing.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found")

const installHint = "install them (Debian/Ubuntu: apt-get install postgresql; Fedora/RHEL: dnf install postgresql-server; macOS: brew install postgresql), " +
	"or point database.url at an existing PostgreSQL server"

// binGlobs are the per-version directories of distribution packages.
var binGlobs = []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"}

// FindBinDir returns the directory holding the initdb and postgres
// executables: the one found on PATH, else the highest version under
// /usr/lib/postgresql/*/bin (Debian, Ubuntu) or /usr/pgsql-*/bin (RHEL).
// When there is none the error tells how to install PostgreSQL.
func FindBinDir() (string, error) {
	return findBinDir(os.Getenv("PATH"), binGlobs)
}

func findBinDir(path string, globs []string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !isExecutable(filepath.Join(dir, "initdb")) {
			continue
		}
		// Prefer the real directory of a symlinked initdb (/usr/local/bin/initdb
		// -> /usr/lib/postgresql/15/bin/initdb).
		if real, err := filepath.EvalSymlinks(filepath.Join(dir, "initdb")); err == nil && hasServerBinaries(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	if dirs := versionedBinDirs(globs); len(dirs) > 0 {
		return dirs[0], nil
	}
	return "", fmt.Errorf("embedpg: %w on PATH or under %s; %s", ErrNoBinaries, strings.Join(globs, " or "), installHint)
}

// versionedBinDirs lists the complete binary directories matching globs,
// highest version first.
func versionedBinDirs(globs []string) []string {
	var dirs []string
	for _, g := range globs {
		matches, _ := filepath.Glob(g)
		for _, m := range matches {
			if hasServerBinaries(m) {
				dirs = append(dirs, m)
			}
		}
	}
	sort.SliceStable(dirs, func(i, j int) bool {
		return versionLess(dirVersion(dirs[j]), dirVersion(dirs[i]))
	})
	return dirs
}

var versionRE = regexp.MustCompile(`\d+(?:\.\d+)?`)

// dirVersion extracts the version from .../postgresql/15/bin or /usr/pgsql-15/bin.
func dirVersion(binDir string) string {
	return versionRE.FindString(filepath.Base(filepath.Dir(binDir)))
}

func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func hasServerBinaries(dir string) bool {
	return isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres"))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// checkBinDir validates an explicit Options.BinDir.
func checkBinDir(dir string) error {
	if !hasServerBinaries(dir) {
		return fmt.Errorf("embedpg: %w in %s; %s", ErrNoBinaries, dir, installHint)
	}
	return nil
}

var serverVersionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// binMajor returns the major version of binDir/postgres ("15", or "9.6" for
// releases before 10).
func binMajor(ctx context.Context, binDir string) (string, error) {
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("embedpg: postgres --version: %w", err)
	}
	m := serverVersionRE.FindStringSubmatch(string(out))
	if m == nil {
		return "", fmt.Errorf("embedpg: postgres --version: unexpected output %q", strings.TrimSpace(string(out)))
	}
	if major, _ := strconv.Atoi(m[1]); major < 10 && m[2] != "" {
		return m[1] + "." + m[2], nil
	}
	return m[1], nil
}

// matchBinDir returns binDir when its postgres matches the version of the
// existing cluster in dataDir, else the installed directory of that version
// (a distribution upgrade installs the new major next to the old one).
func matchBinDir(ctx context.Context, binDir, dataDir string) (string, error) {
	want, err := firstLine(filepath.Join(dataDir, "PG_VERSION"))
	if err != nil {
		return "", fmt.Errorf("embedpg: %w", err)
	}
	have, err := binMajor(ctx, binDir)
	if err != nil {
		return "", err
	}
	if have == want {
		return binDir, nil
	}
	for _, dir := range versionedBinDirs(binGlobs) {
		if dirVersion(dir) == want {
			return dir, nil
		}
	}
	return "", fmt.Errorf("embedpg: cluster %s was created by PostgreSQL %s, but %s holds PostgreSQL %s; "+
		"install PostgreSQL %s server binaries or upgrade the cluster with pg_upgrade", dataDir, want, binDir, have, want)
}

// initdb creates the cluster in a staging directory and renames it into
// place, so a start-up killed halfway never leaves a half-initialised
// cluster that a later Start would try to reuse.
func initdb(ctx context.Context, binDir, root, dataDir string, a account, ephemeral bool, log hclog.Logger) error {
	staging := dataDir + ".initdb"
	if err := os.RemoveAll(staging); err != nil {
		return fmt.Errorf("embedpg: initdb: %w", err)
	}
	if err := os.Mkdir(staging, 0o700); err != nil {
		return fmt.Errorf("embedpg: initdb: %w", err)
	}
	if err := a.chown(staging); err != nil {
		return err
	}
	args := []string{"-D", staging, "-U", SuperUser,
		"--auth-local=trust", "--auth-host=reject", "-E", "UTF8", "--locale=C"}
	if ephemeral {
		args = append(args, "-N")
	}
	sink := newLogSink(log.Named("initdb"))
	sink.level = hclog.Debug
	p, err := spawn(binDir, "initdb", args, root, a, syscall.SIGKILL, sink)
	if err != nil {
		return fmt.Errorf("embedpg: initdb: %w", err)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.killGroup()
		<-p.done
	}
	select {
	case <-sink.done:
	case <-time.After(childrenTimeout):
	}
	if p.err != nil || ctx.Err() != nil {
		_ = os.RemoveAll(staging)
		return fmt.Errorf("embedpg: initdb: %w; output:\n%s", errors.Join(p.err, ctx.Err()), sink.tail(30))
	}
	if err := os.Rename(staging, dataDir); err != nil {
		return fmt.Errorf("embedpg: initdb: move cluster into place: %w", err)
	}
	return nil
}
