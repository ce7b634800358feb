package embedpg

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/testutil"
)

const (
	helperEnv    = "EMBEDPG_TEST_HELPER" // "persistent" or "ephemeral": run startAndHang instead of the tests
	helperDirEnv = "EMBEDPG_TEST_DIR"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(startAndHang(mode))
	}
	os.Exit(m.Run())
}

// startAndHang is the child side of TestKilledParent: start a cluster,
// report it, and wait to be killed.
func startAndHang(mode string) int {
	c, err := Start(context.Background(), Options{Dir: os.Getenv(helperDirEnv), Ephemeral: mode == "ephemeral"})
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	root := filepath.Dir(c.dataDir)
	fmt.Printf("READY %d %s\n", c.proc.pid(), root)
	time.Sleep(time.Hour)
	return 0
}

// testDir returns a fresh directory the postgres OS user can traverse
// (t.TempDir() is mode 0700 and owned by the caller).
func testDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "embedpg-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func start(t *testing.T, opts Options) *Cluster {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t)
	}
	c, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

func connect(t *testing.T, c *Cluster) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), c.ConnString("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func stop(t *testing.T, c *Cluster) {
	t.Helper()
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// gone reports whether pid no longer runs (an unreaped zombie counts as gone).
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || isZombie(pid)
}

func TestFindBinDir(t *testing.T) {
	dir, err := FindBinDir()
	if err != nil {
		t.Fatalf("FindBinDir: %v", err)
	}
	if !hasServerBinaries(dir) {
		t.Fatalf("FindBinDir = %s, which lacks initdb or postgres", dir)
	}

	_, err = findBinDir("", []string{filepath.Join(t.TempDir(), "*", "bin")})
	if !errors.Is(err, ErrNoBinaries) || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("missing binaries: got %v, want ErrNoBinaries with an install hint", err)
	}

	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "16", "17"} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"initdb", "postgres"} {
			if v == "17" && name == "postgres" {
				continue // incomplete installation: skipped
			}
			if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := findBinDir("", []string{filepath.Join(root, "*", "bin")})
	if want := filepath.Join(root, "16", "bin"); err != nil || got != want {
		t.Fatalf("findBinDir = %q, %v; want the highest complete version %q", got, err, want)
	}
	got, err = findBinDir(filepath.Join(root, "15", "bin"), []string{filepath.Join(root, "*", "bin")})
	if want := filepath.Join(root, "15", "bin"); err != nil || got != want {
		t.Fatalf("findBinDir with PATH = %q, %v; want PATH entry %q", got, err, want)
	}

	if err := checkBinDir(t.TempDir()); !errors.Is(err, ErrNoBinaries) || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("checkBinDir on an empty dir: %v", err)
	}
}

func TestStartStopReuse(t *testing.T) {
	dir := filepath.Join(testDir(t), "pg data") // a space exercises connection-string quoting

	began := time.Now()
	c := start(t, Options{Dir: dir})
	t.Logf("cold start (initdb + start): %s", time.Since(began).Round(time.Millisecond))
	if !c.Owned() {
		t.Fatal("Owned() = false for a server this Start launched")
	}
	conn := connect(t, c)
	if _, err := conn.Exec(t.Context(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')"); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(t.Context())
	stop(t, c)
	stop(t, c) // idempotent
	if _, err := os.Stat(filepath.Join(c.dataDir, "postmaster.pid")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("postmaster.pid after Stop: %v", err)
	}
	if !gone(c.proc.pid()) {
		t.Fatal("postmaster still running after Stop")
	}

	began = time.Now()
	c2 := start(t, Options{Dir: dir})
	t.Logf("warm start (existing cluster): %s", time.Since(began).Round(time.Millisecond))
	var v string
	if err := connect(t, c2).QueryRow(t.Context(), "SELECT v FROM kept").Scan(&v); err != nil || v != "still here" {
		t.Fatalf("table after restart: %q, %v", v, err)
	}
	stop(t, c2)
}

func TestServerAccount(t *testing.T) {
	c := start(t, Options{Dir: filepath.Join(testDir(t), "pg")})
	acct, err := serverAccount()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 && (acct.name != ServerOSUser || !acct.switchUser) {
		t.Fatalf("as root the server account is %+v, want %q", acct, ServerOSUser)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.proc.pid()))
	if err != nil {
		t.Fatal(err)
	}
	wantUID := fmt.Sprintf("Uid:\t%d\t", acct.uid)
	if !strings.Contains(string(status), wantUID) {
		t.Fatalf("postmaster does not run as %s (uid %d):\n%s", acct.name, acct.uid, status)
	}
	for path, wantMode := range map[string]fs.FileMode{c.dataDir: 0o700, filepath.Dir(c.dataDir): 0o700, c.sockDir: 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != acct.uid || fi.Mode().Perm() != wantMode {
			t.Errorf("%s: uid %d mode %04o, want uid %d mode %04o", path, st.Uid, fi.Mode().Perm(), acct.uid, wantMode)
		}
	}
	sock := filepath.Join(c.sockDir, fmt.Sprintf(".s.PGSQL.%d", c.port))
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket %s: %v, %v; want mode 0700", sock, fi.Mode(), err)
	}
	var listen, hba string
	conn := connect(t, c)
	if err := conn.QueryRow(t.Context(), "SELECT current_setting('listen_addresses')").Scan(&listen); err != nil || listen != "" {
		t.Fatalf("listen_addresses = %q, %v; want unix socket only", listen, err)
	}
	if err := conn.QueryRow(t.Context(), "SELECT string_agg(type || ':' || auth_method, ',' ORDER BY line_number) FROM pg_hba_file_rules").Scan(&hba); err != nil {
		t.Fatal(err)
	}
	for _, rule := range strings.Split(hba, ",") {
		if typ, method, _ := strings.Cut(rule, ":"); method == "trust" && typ != "local" {
			t.Fatalf("pg_hba trusts non-local connections: %s", hba)
		}
	}
}

// TestAncestorNotTraversable: as root, a Dir below a directory the postgres
// OS user cannot traverse (a checkout under /root) gets its cluster under
// RelocatedBase, found again through the marker in Dir; an existing cluster
// is never relocated, and a non-root caller keeps the error.
func TestAncestorNotTraversable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another OS user")
	}
	private := t.TempDir() // mode 0700, owned by root
	dir := filepath.Join(private, "checkout", "data", "postgres")
	abs, _ := filepath.Abs(dir)
	sum := sha256.Sum256([]byte(abs))
	reloc := filepath.Join(RelocatedBase, hex.EncodeToString(sum[:8]))
	moved := reloc + "-moved"
	var created []string // parents of RelocatedBase this test created, innermost first
	for p := RelocatedBase; p != "/"; p = filepath.Dir(p) {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			created = append(created, p)
		}
	}
	t.Cleanup(func() {
		_ = os.RemoveAll(reloc)
		_ = os.RemoveAll(moved)
		for _, p := range created {
			_ = os.Remove(p) // only if empty
		}
	})
	acct, err := serverAccount()
	if err != nil {
		t.Fatal(err)
	}

	c := start(t, Options{Dir: dir})
	if want := filepath.Join(reloc, "data"); c.dataDir != want {
		t.Fatalf("data dir %s, want %s", c.dataDir, want)
	}
	if loc, err := firstLine(filepath.Join(dir, locationFileName)); err != nil || loc != reloc {
		t.Fatalf("marker in %s: %q, %v; want %s", dir, loc, err, reloc)
	}
	for p := RelocatedBase; p != "/"; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o005 != 0o005 {
			t.Errorf("%s: %v, %v; want a parent others can traverse", p, fi.Mode(), err)
		}
	}
	for path, wantMode := range map[string]fs.FileMode{reloc: 0o700, c.dataDir: 0o700, c.sockDir: 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != acct.uid || fi.Mode().Perm() != wantMode {
			t.Errorf("%s: uid %d mode %04o, want uid %d mode %04o", path, st.Uid, fi.Mode().Perm(), acct.uid, wantMode)
		}
	}
	if _, err := connect(t, c).Exec(t.Context(), "CREATE TABLE kept (v int)"); err != nil {
		t.Fatal(err)
	}
	stop(t, c)

	// The marker, not the hash, says where the cluster is.
	if err := os.Rename(reloc, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, locationFileName), []byte(moved+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c = start(t, Options{Dir: dir})
	if c.dataDir != filepath.Join(moved, "data") {
		t.Fatalf("restart: data dir %s, want the marker's %s", c.dataDir, moved)
	}
	if _, err := connect(t, c).Exec(t.Context(), "SELECT * FROM kept"); err != nil {
		t.Fatalf("restart through the marker lost the cluster: %v", err)
	}
	stop(t, c)
	if _, err := os.Stat(reloc); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("restart created %s although the marker names %s", reloc, moved)
	}

	t.Run("existing cluster is not relocated", func(t *testing.T) {
		base := testDir(t)
		dir := filepath.Join(base, "pg")
		stop(t, start(t, Options{Dir: dir}))
		if err := os.Chmod(base, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := Start(t.Context(), Options{Dir: dir, Logger: testutil.Logger(t)})
		var te *traversalError
		if !errors.As(err, &te) || te.Dir != base || !strings.Contains(err.Error(), "0700") {
			t.Fatalf("Start on a cluster under the closed %s: got %v, want an error naming it and its mode", base, err)
		}
		if _, err := os.Stat(filepath.Join(dir, locationFileName)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("marker written for an existing cluster: %v", err)
		}
	})

	t.Run("non-root caller keeps the error", func(t *testing.T) {
		private := t.TempDir()
		user := acct
		user.switchUser = false // a non-root caller: the server runs as itself
		_, _, err := clusterRoot(filepath.Join(private, "pg"), user, testutil.Logger(t))
		var te *traversalError
		if !errors.As(err, &te) || !strings.HasPrefix(private, te.Dir) {
			t.Fatalf("got %v, want a traversal error naming %s or a parent", err, private)
		}
		if _, err := os.Stat(filepath.Join(private, "pg", locationFileName)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("marker written for a non-root caller: %v", err)
		}
	})

	t.Run("ephemeral", func(t *testing.T) {
		// An ephemeral cluster moves to a directory of its own instead.
		c := start(t, Options{Dir: private, Ephemeral: true})
		if strings.HasPrefix(c.dataDir, private) {
			t.Fatalf("ephemeral cluster under the non-traversable %s", private)
		}
		if err := ping(t.Context(), c.ConnString("")); err != nil {
			t.Fatal(err)
		}
		stop(t, c)
	})
}

func TestMkdirTraversable(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b")
	if err := mkdirTraversable(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(base, "a"), dir} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, %v; want mode 0755 under umask 077", p, fi.Mode(), err)
		}
	}
	if fi, _ := os.Stat(base); fi.Mode().Perm() != 0o700 {
		t.Errorf("an existing parent was changed: %v", fi.Mode())
	}
}

func TestCanSearch(t *testing.T) {
	a := account{name: "postgres", uid: 101, gid: 104, groups: []uint32{103}}
	for _, tc := range []struct {
		uid, gid uint32
		mode     fs.FileMode
		want     bool
	}{
		{0, 0, 0o700, false},
		{0, 0, 0o701, true},
		{0, 0, 0o755, true},
		{101, 0, 0o700, true},
		{101, 0, 0o070, false},
		{0, 104, 0o750, true},
		{0, 103, 0o710, true},
		{0, 105, 0o750, false},
	} {
		fi := fakeDirInfo{mode: tc.mode, st: &syscall.Stat_t{Uid: tc.uid, Gid: tc.gid}}
		if got := a.canSearch(fi); got != tc.want {
			t.Errorf("uid %d gid %d mode %04o: canSearch = %v, want %v", tc.uid, tc.gid, tc.mode, got, tc.want)
		}
	}
}

type fakeDirInfo struct {
	fs.FileInfo
	mode fs.FileMode
	st   *syscall.Stat_t
}

func (f fakeDirInfo) Mode() fs.FileMode { return fs.ModeDir | f.mode }
func (f fakeDirInfo) Sys() any          { return f.st }

func TestAttach(t *testing.T) {
	dir := filepath.Join(testDir(t), "pg")
	first := start(t, Options{Dir: dir})
	second := start(t, Options{Dir: dir})
	if second.Owned() {
		t.Fatal("second Start on a running cluster: Owned() = true, want an attached cluster")
	}
	if second.ConnString("x") != first.ConnString("x") {
		t.Fatalf("attached ConnString %q differs from %q", second.ConnString("x"), first.ConnString("x"))
	}
	if err := ping(t.Context(), second.ConnString("")); err != nil {
		t.Fatalf("attached cluster: %v", err)
	}
	stop(t, second)
	if err := ping(t.Context(), first.ConnString("")); err != nil {
		t.Fatalf("Stop of the attached cluster stopped the server: %v", err)
	}
	stop(t, first)
}

// TestNoAttach: a Start that must own the server reports who runs it
// instead of attaching, and owns it once that process has stopped it.
func TestNoAttach(t *testing.T) {
	dir := filepath.Join(testDir(t), "pg")
	first := start(t, Options{Dir: dir, Owner: "test owner"})
	ownerFile := filepath.Join(filepath.Dir(first.dataDir), ownerFileName)
	postmaster := first.proc.pid()

	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		prepare      func(t *testing.T)
		wantPID      int
		wantOwner    string
		wantStopping bool
	}{
		{name: "owner recorded", prepare: func(*testing.T) {}, wantPID: os.Getpid(), wantOwner: "test owner"},
		{name: "owner file of another server", prepare: func(t *testing.T) {
			if err := writeOwnerFile(ownerFile, ownerInfo{pid: 1, postmaster: postmaster + 1, label: "stale"}); err != nil {
				t.Fatal(err)
			}
		}, wantPID: postmaster},
		{name: "owner gone", prepare: func(t *testing.T) {
			if err := writeOwnerFile(ownerFile, ownerInfo{pid: dead.Process.Pid, postmaster: postmaster, label: "gone"}); err != nil {
				t.Fatal(err)
			}
		}, wantPID: postmaster, wantStopping: true},
		{name: "no owner file", prepare: func(t *testing.T) {
			if err := os.Remove(ownerFile); err != nil {
				t.Fatal(err)
			}
		}, wantPID: postmaster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.prepare(t)
			c, err := Start(t.Context(), Options{Dir: dir, NoAttach: true, Logger: testutil.Logger(t)})
			var held *HeldError
			if !errors.As(err, &held) {
				if c != nil {
					_ = c.Stop(context.Background())
				}
				t.Fatalf("NoAttach Start on a running server: %v, want a *HeldError", err)
			}
			want := HeldError{PID: tc.wantPID, PostmasterPID: postmaster, Owner: tc.wantOwner, DataDir: first.dataDir, Stopping: tc.wantStopping}
			if *held != want {
				t.Fatalf("HeldError %+v, want %+v", *held, want)
			}
			for _, s := range []string{first.dataDir, fmt.Sprint(tc.wantPID)} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %s", err, s)
				}
			}
		})
	}
	if err := ping(t.Context(), first.ConnString("")); err != nil {
		t.Fatalf("the refused Starts disturbed the server: %v", err)
	}
	stop(t, first)

	second := start(t, Options{Dir: dir, NoAttach: true, Owner: "second"})
	if !second.Owned() {
		t.Fatal("NoAttach Start on a stopped cluster does not own it")
	}
	if o, err := readOwnerFile(ownerFile); err != nil || o != (ownerInfo{pid: os.Getpid(), postmaster: second.proc.pid(), label: "second"}) {
		t.Fatalf("owner file %+v, %v", o, err)
	}
	attached := start(t, Options{Dir: dir})
	if attached.Owned() {
		t.Fatal("a plain Start no longer attaches")
	}
	stop(t, attached)
	stop(t, second)
	if _, err := os.Stat(ownerFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("owner file left after Stop: %v", err)
	}
}

func TestConcurrentStart(t *testing.T) {
	dir := filepath.Join(testDir(t), "pg")
	var wg sync.WaitGroup
	clusters := make([]*Cluster, 3)
	errs := make([]error, 3)
	for i := range clusters {
		wg.Go(func() { clusters[i], errs[i] = Start(t.Context(), Options{Dir: dir, Logger: testutil.Logger(t)}) })
	}
	wg.Wait()
	owned := 0
	for i, c := range clusters {
		if errs[i] != nil {
			t.Fatalf("Start %d: %v", i, errs[i])
		}
		t.Cleanup(func() { _ = c.Stop(context.Background()) })
		if c.Owned() {
			owned++
		}
	}
	if owned != 1 {
		t.Fatalf("%d of 3 concurrent Starts own the server, want exactly 1", owned)
	}
	for _, c := range clusters {
		if !c.Owned() {
			stop(t, c)
		}
	}
	for _, c := range clusters {
		if c.Owned() {
			stop(t, c)
		}
	}
}

func TestKilledParent(t *testing.T) {
	for _, mode := range []string{"persistent", "ephemeral"} {
		t.Run(mode, func(t *testing.T) {
			base := testDir(t)
			dir := filepath.Join(base, "pg")
			if mode == "ephemeral" {
				dir = ""
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperDirEnv+"="+dir)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

			lines := make(chan string, 1)
			go func() {
				line, _ := bufio.NewReader(out).ReadString('\n')
				lines <- line
			}()
			var line string
			select {
			case line = <-lines:
			case <-time.After(90 * time.Second):
				t.Fatal("child did not start a cluster in time")
			}
			var pid int
			var root string
			if _, err := fmt.Sscanf(line, "READY %d %s", &pid, &root); err != nil {
				t.Fatalf("child: %q", line)
			}
			if mode == "ephemeral" {
				t.Cleanup(func() { _ = os.RemoveAll(root) })
			}

			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			began := time.Now()
			testutil.WaitFor(t, 10*time.Second, "postgres to exit after its parent was killed", func() bool { return gone(pid) })
			t.Logf("server exited %s after its parent was SIGKILLed", time.Since(began).Round(time.Millisecond))
			dataDir := filepath.Join(root, "data")
			testutil.WaitFor(t, 10*time.Second, "a clean shutdown (postmaster.pid removed)", func() bool {
				_, err := os.Stat(filepath.Join(dataDir, "postmaster.pid"))
				return errors.Is(err, fs.ErrNotExist)
			})

			switch mode {
			case "persistent":
				stop(t, start(t, Options{Dir: dir}))
			case "ephemeral":
				// The next ephemeral Start sweeps the abandoned directory once it is old enough.
				acct, err := serverAccount()
				if err != nil {
					t.Fatal(err)
				}
				sweepEphemeral(hclog.NewNullLogger(), acct)
				if _, err := os.Stat(root); err != nil {
					t.Fatalf("young abandoned cluster swept too early: %v", err)
				}
				old := time.Now().Add(-2 * time.Minute)
				if err := os.Chtimes(root, old, old); err != nil {
					t.Fatal(err)
				}
				sweepEphemeral(hclog.NewNullLogger(), acct)
				if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("abandoned ephemeral cluster %s not swept: %v", root, err)
				}
			}
		})
	}
}

func TestSweepKeepsLiveEphemeral(t *testing.T) {
	c := start(t, Options{Ephemeral: true})
	root := filepath.Dir(c.dataDir)
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(root, old, old); err != nil {
		t.Fatal(err)
	}
	acct, _ := serverAccount()
	sweepEphemeral(hclog.NewNullLogger(), acct)
	if err := ping(t.Context(), c.ConnString("")); err != nil {
		t.Fatalf("sweep broke a live ephemeral cluster: %v", err)
	}
	stop(t, c)
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stop left the ephemeral directory %s: %v", root, err)
	}
}

func TestStalePidFile(t *testing.T) {
	dir := filepath.Join(testDir(t), "pg")

	t.Run("crashed server", func(t *testing.T) {
		c := start(t, Options{Dir: dir})
		pid := c.proc.pid()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := c.Stop(t.Context()); err == nil {
			t.Fatal("Stop after a crash: want an error reporting it")
		}
		if _, err := os.Stat(filepath.Join(c.dataDir, "postmaster.pid")); err != nil {
			t.Fatalf("expected a stale postmaster.pid after SIGKILL: %v", err)
		}
		c2 := start(t, Options{Dir: dir})
		if !c2.Owned() {
			t.Fatal("Start attached to a dead server")
		}
		stop(t, c2)
	})

	t.Run("PID reused by another process", func(t *testing.T) {
		c := start(t, Options{Dir: dir})
		stop(t, c)
		sleeper := exec.Command("sleep", "60")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
		pid := sleeper.Process.Pid
		pidFile := fmt.Sprintf("%d\n%s\n1700000000\n%d\n%s\n\n  1234567   1234567\nready   \n", pid, c.dataDir, c.port, c.sockDir)
		sockLock := filepath.Join(c.sockDir, fmt.Sprintf(".s.PGSQL.%d.lock", c.port))
		for _, path := range []string{filepath.Join(c.dataDir, "postmaster.pid"), sockLock} {
			if err := os.WriteFile(path, []byte(pidFile), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		c2 := start(t, Options{Dir: dir})
		if !c2.Owned() {
			t.Fatal("Start attached to an unrelated process")
		}
		if gone(pid) {
			t.Fatal("the unrelated process was killed")
		}
		stop(t, c2)
	})

	t.Run("malformed", func(t *testing.T) {
		c := start(t, Options{Dir: dir})
		stop(t, c)
		if err := os.WriteFile(filepath.Join(c.dataDir, "postmaster.pid"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		stop(t, start(t, Options{Dir: dir}))
	})
}

func TestPostmasterState(t *testing.T) {
	dataDir := t.TempDir()
	if got := postmasterState(os.Getpid(), dataDir); got != pidForeign {
		t.Errorf("live process in another directory: %v, want pidForeign", got)
	}
	cwd, _ := os.Getwd()
	if got := postmasterState(os.Getpid(), cwd); got != pidLive {
		t.Errorf("live process in the data directory: %v, want pidLive", got)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if got := postmasterState(dead.Process.Pid, dataDir); got != pidDead {
		t.Errorf("exited process: %v, want pidDead", got)
	}
}

func TestSocketPathFallback(t *testing.T) {
	long := filepath.Join(testDir(t), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	for p := long; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		_ = os.Chmod(p, 0o755)
	}
	dir := filepath.Join(long, "pg")
	c := start(t, Options{Dir: dir})
	if !c.sockFallback || !strings.HasPrefix(filepath.Base(c.sockDir), "wh-pg-") {
		t.Fatalf("socket dir %s for a %d-byte cluster path: want a short fallback", c.sockDir, len(dir))
	}
	if len(c.sockDir) > 60 {
		t.Fatalf("fallback socket dir too long: %s", c.sockDir)
	}
	again, _, _ := socketDir(filepath.Dir(c.dataDir), c.port)
	if again != c.sockDir {
		t.Fatalf("fallback socket dir not stable: %s then %s", c.sockDir, again)
	}
	if err := ping(t.Context(), c.ConnString("")); err != nil {
		t.Fatal(err)
	}
	stop(t, c)
	if _, err := os.Stat(c.sockDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("fallback socket dir left after Stop: %v", err)
	}

	short, fallback, err := socketDir("/srv/wisehosting/postgres", 5432)
	if err != nil || fallback || short != "/srv/wisehosting/postgres/run" {
		t.Fatalf("short path: %s %v %v", short, fallback, err)
	}
}

func TestEphemeralSettings(t *testing.T) {
	c := start(t, Options{Ephemeral: true, Settings: map[string]string{"port": "6543", "work_mem": "7MB"}})
	if !strings.HasPrefix(filepath.Base(filepath.Dir(c.dataDir)), ephemeralPrefix) {
		t.Fatalf("ephemeral data dir %s", c.dataDir)
	}
	if _, err := os.Stat(filepath.Join(c.sockDir, ".s.PGSQL.6543")); err != nil {
		t.Fatalf("port setting: %v", err)
	}
	conn := connect(t, c)
	for name, want := range map[string]string{"work_mem": "7MB", "fsync": "off", "full_page_writes": "off", "synchronous_commit": "off"} {
		var got string
		if err := conn.QueryRow(t.Context(), "SELECT current_setting($1)", name).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}

	for _, bad := range []map[string]string{{"listen_addresses": "*"}, {"Unix_Socket_Directories": "/tmp"}, {"port": "x"}, {"a=b": "c"}} {
		if _, err := Start(t.Context(), Options{Ephemeral: true, Settings: bad}); err == nil {
			t.Errorf("Settings %v accepted", bad)
		}
	}
	if _, err := Start(t.Context(), Options{}); err == nil {
		t.Error("Start without Dir accepted")
	}
}

func TestStartFailureShowsLog(t *testing.T) {
	_, err := Start(t.Context(), Options{Ephemeral: true, Logger: testutil.Logger(t), Settings: map[string]string{"shared_buffers": "nonsense"}})
	if err == nil || !strings.Contains(err.Error(), "shared_buffers") {
		t.Fatalf("got %v, want an error quoting the server log", err)
	}
	t.Logf("error: %v", err)
}

func TestLineLevel(t *testing.T) {
	for line, want := range map[string]hclog.Level{
		"[12] LOG:  database system is ready to accept connections":        hclog.Debug,
		"[12] WARNING:  out of shared memory":                              hclog.Warn,
		"[12] FATAL:  data directory has wrong ownership":                  hclog.Warn,
		"[12] FATAL:  terminating connection due to administrator command": hclog.Debug,
		"[12] PANIC:  could not write to file":                             hclog.Error,
		"[12] ERROR:  relation \"x\" does not exist":                       hclog.Debug,
		"[12] HINT:  ...": hclog.Trace, // inherits
		"postgres: could not access directory \"/x\": No such file or directory": hclog.Info,
	} {
		if got := lineLevel(line, hclog.Trace); got != want {
			t.Errorf("%q: %v, want %v", line, got, want)
		}
	}
}

func TestQuoting(t *testing.T) {
	for in, want := range map[string]string{"/run/pg": "/run/pg", "a b": `'a b'`, `it's`: `'it\'s'`, "": "''"} {
		if got := quoteConnValue(in); got != want {
			t.Errorf("quoteConnValue(%q) = %s, want %s", in, got, want)
		}
	}
	if got := quoteSocketDir(`/a,b`); got != `"/a,b"` {
		t.Errorf("quoteSocketDir = %s", got)
	}
	if _, err := pgx.ParseConfig((&Cluster{sockDir: "/tmp/a b", port: 5432}).ConnString("db'x")); err != nil {
		t.Errorf("ConnString does not parse: %v", err)
	}
}
