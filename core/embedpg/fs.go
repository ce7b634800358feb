package embedpg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// account is the OS user the server runs as.
type account struct {
	name       string
	uid, gid   uint32
	groups     []uint32
	switchUser bool // the caller is root: run children with these credentials
}

// serverAccount returns the caller's own account, or the postgres OS user
// when the caller is root.
func serverAccount() (account, error) {
	if os.Geteuid() != 0 {
		a := account{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}
		if u, err := user.Current(); err == nil {
			a.name = u.Username
		} else {
			a.name = strconv.Itoa(os.Geteuid())
		}
		gids, _ := os.Getgroups()
		for _, g := range gids {
			a.groups = append(a.groups, uint32(g))
		}
		return a, nil
	}
	u, err := user.Lookup(ServerOSUser)
	if err != nil {
		return account{}, fmt.Errorf("embedpg: running as root, but PostgreSQL refuses to run as root and the OS user %q to run it as is missing "+
			"(create it, e.g. `useradd --system --user-group --home-dir /var/lib/postgresql postgres`, or run as an unprivileged user): %w", ServerOSUser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return account{}, fmt.Errorf("embedpg: OS user %q: %w", ServerOSUser, err)
	}
	a := account{name: u.Username, uid: uint32(uid), gid: uint32(gid), switchUser: true}
	if uid == 0 {
		return account{}, fmt.Errorf("embedpg: OS user %q has uid 0; PostgreSQL refuses to run as root", ServerOSUser)
	}
	gids, err := u.GroupIds()
	if err != nil {
		gids = []string{u.Gid}
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			a.groups = append(a.groups, uint32(n))
		}
	}
	return a, nil
}

// chown gives path to the server account when the caller is root.
func (a account) chown(path string) error {
	if !a.switchUser {
		return nil
	}
	if err := os.Lchown(path, int(a.uid), int(a.gid)); err != nil {
		return fmt.Errorf("embedpg: %w", err)
	}
	return nil
}

// canSearch reports whether the account may traverse the directory described
// by fi (POSIX permission bits; ACLs are not consulted).
func (a account) canSearch(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || a.uid == 0 {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == a.uid:
		return perm&0o100 != 0
	case a.inGroup(st.Gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

func (a account) inGroup(gid uint32) bool {
	if gid == a.gid {
		return true
	}
	for _, g := range a.groups {
		if g == gid {
			return true
		}
	}
	return false
}

// traversalError reports a directory the server account cannot traverse.
type traversalError struct {
	Dir  string
	Mode fs.FileMode
	UID  uint32
	User string
}

func (e *traversalError) Error() string {
	return fmt.Sprintf("embedpg: the server runs as OS user %q, which cannot traverse %s (mode %04o %s, owner uid %d); "+
		"choose a data directory outside it, or make it traversable (chmod o+x %s)",
		e.User, e.Dir, e.Mode.Perm(), e.Mode, e.UID, e.Dir)
}

// checkTraversable verifies that the account can traverse dir and every one
// of its ancestors.
func checkTraversable(dir string, a account) error {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("embedpg: %w", err)
		}
		if !a.canSearch(fi) {
			var uid uint32
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				uid = st.Uid
			}
			return &traversalError{Dir: p, Mode: fi.Mode(), UID: uid, User: a.name}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// prepareClusterDir creates the cluster directory (owned by the account,
// mode 0700) after checking that the account can reach it, and returns its
// absolute path with symbolic links resolved.
func prepareClusterDir(dir string, a account) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("embedpg: cluster directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return "", fmt.Errorf("embedpg: cluster directory: %w", err)
	}
	if err := os.Mkdir(abs, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("embedpg: cluster directory: %w", err)
	}
	root, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("embedpg: cluster directory: %w", err)
	}
	if fi, err := os.Stat(root); err != nil {
		return "", fmt.Errorf("embedpg: cluster directory: %w", err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("embedpg: cluster directory %s is not a directory", root)
	}
	if err := checkTraversable(filepath.Dir(root), a); err != nil {
		return "", err
	}
	if err := a.chown(root); err != nil {
		return "", err
	}
	if err := os.Chmod(root, 0o700); err != nil {
		return "", fmt.Errorf("embedpg: cluster directory: %w", err)
	}
	return root, nil
}

// locationFileName is the marker, in a relocated cluster's Dir, that names
// the directory the cluster actually lives in.
const locationFileName = "embedpg.location"

// clusterRoot prepares the cluster directory for dir (see
// prepareClusterDir) and returns it, with the location marker when the
// cluster lives elsewhere. It does when dir holds a marker, or when the
// caller is root, the account cannot traverse an ancestor of dir and dir
// holds no cluster yet: the cluster is then placed under RelocatedBase
// (parents mode 0755) and the marker written, so that later starts reuse
// that location whatever scheme picked it.
func clusterRoot(dir string, a account, log hclog.Logger) (root, marker string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("embedpg: cluster directory: %w", err)
	}
	marker = filepath.Join(abs, locationFileName)
	loc, err := firstLine(marker)
	switch {
	case err == nil:
		if !filepath.IsAbs(loc) {
			return "", "", fmt.Errorf("embedpg: %s names %q, which is not an absolute path", marker, loc)
		}
		if err := mkdirTraversable(filepath.Dir(loc)); err != nil {
			return "", "", err
		}
		if root, err = prepareClusterDir(loc, a); err != nil {
			return "", "", fmt.Errorf("embedpg: cluster of %s, relocated to %s by %s: %w", abs, loc, marker, err)
		}
		return root, marker, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", "", fmt.Errorf("embedpg: read %s: %w", marker, err)
	}

	root, err = prepareClusterDir(abs, a)
	var te *traversalError
	if err == nil || !a.switchUser || !errors.As(err, &te) {
		return root, "", err
	}
	if _, serr := os.Stat(filepath.Join(abs, "data", "PG_VERSION")); serr == nil {
		return "", "", err // never trade an existing cluster for an empty one
	}
	sum := sha256.Sum256([]byte(abs))
	loc = filepath.Join(RelocatedBase, hex.EncodeToString(sum[:8]))
	if err := mkdirTraversable(RelocatedBase); err != nil {
		return "", "", err
	}
	if root, err = prepareClusterDir(loc, a); err != nil {
		return "", "", err
	}
	if err := writeAtomic(marker, []byte(root+"\n"), 0o644); err != nil {
		return "", "", fmt.Errorf("embedpg: record the cluster's location: %w", err)
	}
	log.Info("relocating the cluster: its directory is out of reach of the server's OS user",
		"dir", abs, "user", a.name, "blocked_by", te.Dir, "location", root, "marker", marker)
	return root, marker, nil
}

// mkdirTraversable creates dir and its missing parents with mode 0755
// (whatever the umask).
func mkdirTraversable(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirTraversable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("embedpg: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("embedpg: %w", err)
	}
	return nil
}

// writeAtomic replaces path with data through a temporary file of its own,
// so concurrent writers never see or leave a partial file.
func writeAtomic(path string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	err = errors.Join(err, f.Chmod(perm), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// checkDataDirOwner fails clearly when an existing cluster belongs to
// another OS user than the one the server would run as.
func checkDataDirOwner(dataDir string, a account) error {
	fi, err := os.Stat(dataDir)
	if err != nil {
		return fmt.Errorf("embedpg: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != a.uid {
		return fmt.Errorf("embedpg: cluster %s belongs to uid %d, but the server would run as OS user %q (uid %d); "+
			"start it as its owner or chown -R the directory", dataDir, st.Uid, a.name, a.uid)
	}
	return nil
}

// ephemeralBases lists where ephemeral clusters go by default: a roomy
// tmpfs when there is one, then os.TempDir().
func ephemeralBases() []string {
	var bases []string
	for _, dir := range []string{memoryTempDir(), os.TempDir()} {
		if dir == "" {
			continue
		}
		if real, err := filepath.EvalSymlinks(dir); err == nil && !slices.Contains(bases, real) {
			bases = append(bases, real)
		}
	}
	return bases
}

// makeEphemeralDir creates a fresh cluster directory below base (or below
// the first of ephemeralBases when base is empty or unreachable for the
// account) and returns it with its owner lock held.
func makeEphemeralDir(base string, a account, log hclog.Logger) (string, *os.File, error) {
	if base != "" {
		abs, err := filepath.Abs(base)
		if err == nil {
			err = os.MkdirAll(abs, 0o755)
		}
		if err == nil {
			if abs, err = filepath.EvalSymlinks(abs); err == nil {
				err = checkTraversable(abs, a)
			}
		}
		if err != nil {
			log.Debug("ephemeral cluster goes under the temp directory instead", "dir", base, "reason", err)
			base = ""
		} else {
			base = abs
		}
	}
	if base == "" {
		var errs []error
		for _, dir := range ephemeralBases() {
			if err := checkTraversable(dir, a); err != nil {
				errs = append(errs, err)
				continue
			}
			base = dir
			break
		}
		if base == "" {
			return "", nil, fmt.Errorf("embedpg: no temp directory for an ephemeral cluster: %w", errors.Join(append(errs, errors.New("none usable"))...))
		}
	}
	root, err := os.MkdirTemp(base, ephemeralPrefix)
	if err != nil {
		return "", nil, fmt.Errorf("embedpg: ephemeral cluster directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(root, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err == nil {
		err = a.chown(root)
	}
	if err != nil {
		if lock != nil {
			_ = lock.Close()
		}
		_ = os.RemoveAll(root)
		return "", nil, fmt.Errorf("embedpg: ephemeral cluster directory: %w", err)
	}
	return root, lock, nil
}

// sweepEphemeral removes ephemeral cluster directories under ephemeralBases
// whose owning process died without calling Stop (a killed test binary). A
// live owner holds the directory's lock; a directory is also left alone
// while young (its owner may be between creating it and locking it) or while
// its server still runs.
func sweepEphemeral(log hclog.Logger, a account) {
	var matches []string
	for _, base := range ephemeralBases() {
		m, _ := filepath.Glob(filepath.Join(base, ephemeralPrefix+"*"))
		matches = append(matches, m...)
	}
	for _, dir := range matches {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || (st.Uid != a.uid && st.Uid != uint32(os.Geteuid())) {
			continue
		}
		lock, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			_ = lock.Close()
			continue
		}
		dataDir := filepath.Join(dir, "data")
		if pf, err := readPidFile(dataDir); err == nil && postmasterState(pf.pid, dataDir) != pidDead {
			_ = lock.Close()
			continue
		}
		if err := os.RemoveAll(dir); err == nil {
			log.Debug("removed abandoned ephemeral cluster", "dir", dir)
		}
		_ = lock.Close()
	}
}

// maxSocketPath is the longest unix socket path the kernel accepts
// (sizeof(sun_path) minus the terminating NUL).
const maxSocketPath = 107

// socketDir returns <root>/run, or a short directory under os.TempDir() with
// a name derived from root when the socket path would be too long.
func socketDir(root string, port int) (dir string, fallback bool, err error) {
	file := fmt.Sprintf("/.s.PGSQL.%d", port)
	dir = filepath.Join(root, "run")
	if len(dir)+len(file) <= maxSocketPath {
		return dir, false, nil
	}
	sum := sha256.Sum256([]byte(root))
	name := "wh-pg-" + hex.EncodeToString(sum[:8])
	for _, tmp := range []string{os.TempDir(), "/tmp"} {
		dir = filepath.Join(tmp, name)
		if len(dir)+len(file) <= maxSocketPath {
			return dir, true, nil
		}
	}
	return "", false, fmt.Errorf("embedpg: no socket directory short enough for %s (unix socket paths are limited to %d bytes)", root, maxSocketPath)
}

// ensureSocketDir creates the socket directory, owned by the account with
// mode 0700. A fallback directory lives in a shared temp directory, so an
// existing one must be a real directory owned by the account or the caller.
func ensureSocketDir(dir string, fallback bool, a account) error {
	if fallback {
		if err := checkTraversable(filepath.Dir(dir), a); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("embedpg: socket directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("embedpg: socket directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || (st.Uid != a.uid && st.Uid != uint32(os.Geteuid())) {
		return fmt.Errorf("embedpg: socket directory %s exists but is not a directory owned by %q or the caller", dir, a.name)
	}
	if err := a.chown(dir); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("embedpg: socket directory: %w", err)
	}
	return nil
}

// acquireLock takes an exclusive flock on path, polling until ctx is done.
func acquireLock(ctx context.Context, path string, a account) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedpg: lock: %w", err)
	}
	_ = a.chown(path)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("embedpg: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("embedpg: lock %s: another process is starting this cluster: %w", path, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// firstLine returns the first line of a file, trimmed.
func firstLine(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line), nil
}
