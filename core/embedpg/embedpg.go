// Package embedpg runs a private PostgreSQL server from the machine's
// PostgreSQL binaries (initdb and postgres), for the core's embedded-database
// default and for tests.
//
// The server listens on a unix socket only, in a directory private to the OS
// user that runs it, and trusts every connection on that socket; nothing is
// reachable over TCP. When the caller runs as root the server runs as the
// "postgres" OS user, because PostgreSQL refuses to run as root.
//
// The server is a direct child process that receives SIGTERM when its parent
// dies, so a crashed or killed caller never leaves an orphaned server behind.
// A second Start on a directory whose server another process already runs
// attaches to that server instead of starting one (see Cluster.Owned), unless
// Options.NoAttach asks for ownership, in which case it fails with a
// *HeldError naming the process that runs the server.
//
// Layout of a cluster directory:
//
//	<Dir>/data             PGDATA (mode 0700)
//	<Dir>/run              unix socket directory (or a short directory under os.TempDir())
//	<Dir>/embedpg.lock     serialises concurrent Starts on the same directory
//	<Dir>/embedpg.owner    the process running the server, while it runs (see HeldError)
//
// When the caller is root and an ancestor of Dir is closed to the postgres
// OS user (a checkout under /root, mode 0700), the cluster directory is
// placed in RelocatedBase/<first 16 hex digits of sha256(absolute Dir)>
// instead, and Dir only holds a marker file, embedpg.location, naming that
// directory; later Starts follow the marker.
package embedpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
)

const (
	// SuperUser is the name of the superuser role that initdb creates and
	// ConnString connects as.
	SuperUser = "wisehosting"
	// DefaultPort is the port number used when Settings has none. The server
	// listens on no TCP port; the number only names the socket file
	// (.s.PGSQL.<port>) inside the cluster's private socket directory.
	DefaultPort = 5432
	// ServerOSUser is the OS account the server runs as when the caller is root.
	ServerOSUser = "postgres"

	startTimeout    = 60 * time.Second
	stopTimeout     = 30 * time.Second
	quitTimeout     = 5 * time.Second
	childrenTimeout = 10 * time.Second
	lockFileName    = "embedpg.lock"
	ephemeralPrefix = "wh-embedpg-"
)

// RelocatedBase is where a root caller places the cluster directories of
// Dirs that the postgres OS user cannot reach (see the package comment).
const RelocatedBase = "/var/lib/wisehosting/embedpg"

// Options configures Start.
type Options struct {
	// Dir is the cluster directory, e.g. <data_dir>/postgres; it is created if
	// missing. It is required unless Ephemeral is set. As root, a Dir below a
	// directory the postgres OS user cannot traverse is relocated under
	// RelocatedBase (see the package comment); for other callers such a Dir
	// is an error. For an Ephemeral cluster Dir is optional: the cluster is
	// created in a fresh directory below Dir or, when Dir is empty or not
	// traversable by the server's OS user, below /dev/shm (a tmpfs with at
	// least 1 GiB free, where cloning databases is several times faster) or
	// else os.TempDir().
	Dir string
	// Logger receives the launcher's messages and, under the name
	// "postgres", the server's log. Nil discards them.
	Logger hclog.Logger
	// Ephemeral selects test mode: a fresh cluster in a fresh directory that
	// Stop removes, with durability traded for speed (initdb -N, fsync=off,
	// synchronous_commit=off, full_page_writes=off, smaller shared_buffers).
	Ephemeral bool
	// BinDir is the directory holding initdb and postgres; empty means
	// FindBinDir (preferring binaries matching an existing cluster's version).
	BinDir string
	// Settings are extra server settings passed as -c name=value. "port"
	// changes the socket file name; listen_addresses,
	// unix_socket_directories and unix_socket_permissions are managed by the
	// launcher and rejected.
	Settings map[string]string
	// NoAttach refuses to attach to a server that another process runs in
	// Dir: Start then returns a *HeldError instead. Use it for a process that
	// must own its server (one whose lifetime it controls), and retry to wait
	// for the other process to exit. Ignored for Ephemeral clusters.
	NoAttach bool
	// Owner describes the caller (e.g. "wisehosting serve") to other Starts:
	// it is recorded in <Dir>/embedpg.owner while the server this Start
	// launches runs, and reported as HeldError.Owner. Optional.
	Owner string
}

// HeldError is the error of a Start with Options.NoAttach on a cluster whose
// server another process runs.
type HeldError struct {
	// PID is the process running the server: the one whose Start launched
	// it, or the postmaster itself when that is unknown (a server started by
	// hand or by an older release) or gone.
	PID int
	// PostmasterPID is the PID of the PostgreSQL server.
	PostmasterPID int
	// Owner is the Options.Owner of the process that launched the server,
	// empty when it gave none or is unknown.
	Owner string
	// DataDir is the cluster's data directory.
	DataDir string
	// Stopping reports a server on its way down: it is shutting down, or
	// the process that launched it is gone.
	Stopping bool
}

// Error implements error.
func (e *HeldError) Error() string {
	pids := fmt.Sprintf("pid %d; postgres pid %d", e.PID, e.PostmasterPID)
	if e.PID == e.PostmasterPID {
		pids = fmt.Sprintf("postgres pid %d", e.PostmasterPID)
	}
	if e.Owner != "" {
		return fmt.Sprintf("embedpg: the PostgreSQL server of %s is run by another process, %s (%s)", e.DataDir, e.Owner, pids)
	}
	return fmt.Sprintf("embedpg: the PostgreSQL server of %s is run by another process (%s)", e.DataDir, pids)
}

// Cluster is a running PostgreSQL server started or attached to by Start.
type Cluster struct {
	dataDir      string
	sockDir      string
	sockFallback bool // sockDir is a short directory under os.TempDir()
	port         int
	owned        bool
	log          hclog.Logger

	// Owned clusters only.
	proc      *process
	ownerFile string // persistent: <root>/embedpg.owner, removed by Stop
	logs      *logSink
	tempRoot  string   // ephemeral: directory removed by Stop
	ownerLock *os.File // ephemeral: held for the cluster's lifetime
	stopping  atomic.Bool

	stopOnce sync.Once
	stopErr  error
}

// Start starts the cluster in opts.Dir (running initdb first when the
// directory holds no cluster yet), or attaches to the server another process
// already runs there, and returns once the server accepts connections. ctx
// bounds the whole start-up, which otherwise gives up after 60 seconds.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	port, settingArgs, err := serverSettings(opts.Settings, opts.Ephemeral)
	if err != nil {
		return nil, err
	}
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	} else if err := checkBinDir(binDir); err != nil {
		return nil, err
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}

	var root string
	var lock *os.File
	if opts.Ephemeral {
		sweepEphemeral(log, acct)
		root, lock, err = makeEphemeralDir(opts.Dir, acct, log)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				_ = os.RemoveAll(root)
				_ = lock.Close()
			}
		}()
	} else {
		if opts.Dir == "" {
			return nil, errors.New("embedpg: Options.Dir is required unless Ephemeral is set")
		}
		var marker string
		if root, marker, err = clusterRoot(opts.Dir, acct, log); err != nil {
			return nil, err
		}
		if marker != "" {
			defer func() {
				if err == nil {
					log.Info("the cluster lives outside its directory", "dir", opts.Dir, "location", root, "marker", marker)
				}
			}()
		}
		if lock, err = acquireLock(ctx, filepath.Join(root, lockFileName), acct); err != nil {
			return nil, err
		}
		// The lock only serialises start-ups: once a server runs, later
		// Starts find it through postmaster.pid and attach (or, with
		// NoAttach, report its owner).
		defer func() { _ = lock.Close() }()
	}
	dataDir := filepath.Join(root, "data")

	if !opts.Ephemeral {
		attached, aerr := attachExisting(ctx, dataDir, opts.NoAttach, log)
		if aerr != nil || attached != nil {
			return attached, aerr
		}
	}

	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		if err := checkDataDirOwner(dataDir, acct); err != nil {
			return nil, err
		}
		if opts.BinDir == "" {
			if binDir, err = matchBinDir(ctx, binDir, dataDir); err != nil {
				return nil, err
			}
		}
		log.Debug("reusing cluster", "data_dir", dataDir, "bin_dir", binDir)
	} else {
		began := time.Now()
		if err := initdb(ctx, binDir, root, dataDir, acct, opts.Ephemeral, log); err != nil {
			return nil, err
		}
		log.Info("initialised cluster", "data_dir", dataDir, "bin_dir", binDir, "took", time.Since(began).Round(time.Millisecond))
	}

	sockDir, fallback, err := socketDir(root, port)
	if err != nil {
		return nil, err
	}
	if err := ensureSocketDir(sockDir, fallback, acct); err != nil {
		return nil, err
	}
	if err := clearForeignLock(filepath.Join(sockDir, fmt.Sprintf(".s.PGSQL.%d.lock", port)), dataDir, log); err != nil {
		return nil, err
	}

	c = &Cluster{
		dataDir:      dataDir,
		sockDir:      sockDir,
		sockFallback: fallback,
		port:         port,
		owned:        true,
		log:          log,
	}
	if opts.Ephemeral {
		c.tempRoot, c.ownerLock = root, lock
	}
	if err := c.launch(ctx, binDir, acct, settingArgs); err != nil {
		return nil, err
	}
	if !opts.Ephemeral {
		// Written while the start-up lock is held, so a Start that finds the
		// server also finds its owner.
		c.ownerFile = filepath.Join(root, ownerFileName)
		if err := writeOwnerFile(c.ownerFile, ownerInfo{pid: os.Getpid(), postmaster: c.proc.pid(), label: opts.Owner}); err != nil {
			log.Warn("cannot record the server's owner; other processes will see only the postgres pid", "error", err)
		}
	}
	return c, nil
}

// launch starts the postmaster and waits until it accepts connections; on
// failure the server is killed.
func (c *Cluster) launch(ctx context.Context, binDir string, acct account, settingArgs []string) error {
	args := []string{"-D", c.dataDir,
		"-c", "listen_addresses=",
		"-c", "unix_socket_directories=" + quoteSocketDir(c.sockDir),
		"-c", "unix_socket_permissions=0700",
		"-c", "port=" + strconv.Itoa(c.port),
		"-c", "logging_collector=off",
		"-c", "log_line_prefix=[%p] ",
	}
	args = append(args, settingArgs...)

	c.logs = newLogSink(c.log.Named("postgres"))
	began := time.Now()
	p, err := spawn(binDir, "postgres", args, c.dataDir, acct, syscall.SIGTERM, c.logs)
	if err != nil {
		return fmt.Errorf("embedpg: start postgres: %w", err)
	}
	c.proc = p
	if err := c.waitReady(ctx); err != nil {
		c.kill()
		return err
	}
	c.log.Info("postgres started", "pid", p.pid(), "data_dir", c.dataDir, "socket_dir", c.sockDir,
		"took", time.Since(began).Round(time.Millisecond))
	go c.watch()
	return nil
}

// waitReady polls postmaster.pid until the server reports "ready", then
// confirms with a real connection.
func (c *Cluster) waitReady(ctx context.Context) error {
	var lastErr error
	for {
		select {
		case <-c.proc.done:
			c.waitChildren()
			return fmt.Errorf("embedpg: postgres exited during start-up (%v); server log:\n%s", c.proc.err, c.logs.tail(30))
		default:
		}
		pf, err := readPidFile(c.dataDir)
		if err == nil && pf.pid == c.proc.pid() && (pf.status == "ready" || pf.status == "") {
			if lastErr = ping(ctx, c.ConnString("postgres")); lastErr == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return fmt.Errorf("embedpg: postgres did not become ready: %w; server log:\n%s", lastErr, c.logs.tail(30))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// watch logs an unexpected exit of the server.
func (c *Cluster) watch() {
	<-c.proc.done
	if !c.stopping.Load() {
		c.waitChildren()
		c.log.Error("postgres exited unexpectedly", "error", c.proc.err, "log", c.logs.tail(20))
	}
}

// kill stops a server that failed to start, without a grace period.
func (c *Cluster) kill() {
	c.stopping.Store(true)
	c.proc.signal(syscall.SIGQUIT)
	select {
	case <-c.proc.done:
	case <-time.After(quitTimeout):
		c.proc.killGroup()
		<-c.proc.done
	}
	c.waitChildren()
}

// waitChildren waits until every server process has exited, which is when
// the last of them closes the log pipe they share.
func (c *Cluster) waitChildren() bool {
	select {
	case <-c.logs.done:
		return true
	case <-time.After(childrenTimeout):
		return false
	}
}

// ConnString returns a pgx key/value connection string for database (empty
// means "postgres") over the cluster's unix socket, as SuperUser.
func (c *Cluster) ConnString(database string) string {
	if database == "" {
		database = "postgres"
	}
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		quoteConnValue(c.sockDir), c.port, SuperUser, quoteConnValue(database))
}

// Owned reports whether this Cluster started the server. It is false when
// Start attached to a server another process runs; Stop then leaves it
// running.
func (c *Cluster) Owned() bool { return c.owned }

// Stop shuts the server down if this Cluster owns it: a fast shutdown
// (SIGINT), escalating to an immediate shutdown (SIGQUIT) and then SIGKILL
// when it takes longer than 30 seconds or ctx is done first. An Ephemeral
// cluster's directory is removed. Stop is idempotent and safe for concurrent
// use; it returns an error when the server had to be forced down or had
// exited unexpectedly before Stop.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() { c.stopErr = c.stop(ctx) })
	return c.stopErr
}

func (c *Cluster) stop(ctx context.Context) error {
	if !c.owned {
		return nil
	}
	var errs []error
	crashed := false
	select {
	case <-c.proc.done:
		crashed = true
	default:
	}
	c.stopping.Store(true)
	if crashed {
		errs = append(errs, fmt.Errorf("embedpg: postgres had exited before Stop: %v", c.proc.err))
	} else {
		c.proc.signal(syscall.SIGINT)
		timer := time.NewTimer(stopTimeout)
		select {
		case <-c.proc.done:
			timer.Stop()
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
		select {
		case <-c.proc.done:
			if c.proc.err != nil {
				errs = append(errs, fmt.Errorf("embedpg: stop: postgres exited with %w", c.proc.err))
			}
		default:
			c.log.Warn("postgres did not shut down in time; forcing an immediate shutdown", "pid", c.proc.pid())
			c.kill()
			errs = append(errs, errors.New("embedpg: stop: postgres did not shut down in time and was forced down"))
		}
	}
	if !c.waitChildren() {
		errs = append(errs, fmt.Errorf("embedpg: stop: server processes of %s still running after %s", c.dataDir, childrenTimeout))
	} else {
		c.log.Debug("postgres stopped", "data_dir", c.dataDir)
	}
	if c.sockFallback {
		_ = os.Remove(c.sockDir) // only when empty; the name is stable for the next Start
	}
	if c.ownerFile != "" {
		removeOwnerFile(c.ownerFile, c.proc.pid())
	}
	if c.tempRoot != "" {
		if err := os.RemoveAll(c.tempRoot); err != nil {
			errs = append(errs, fmt.Errorf("embedpg: stop: remove ephemeral cluster: %w", err))
		}
		_ = c.ownerLock.Close()
	}
	return errors.Join(errs...)
}

// serverSettings validates opts.Settings and returns the port and the -c
// arguments for the mode and the caller's settings, in a stable order.
func serverSettings(settings map[string]string, ephemeral bool) (int, []string, error) {
	port := DefaultPort
	var args []string
	if ephemeral {
		for _, kv := range []string{
			"fsync=off", "synchronous_commit=off", "full_page_writes=off",
			"shared_buffers=32MB", "max_connections=300",
			"max_wal_size=128MB", "min_wal_size=32MB", // bounded footprint on a tmpfs
		} {
			args = append(args, "-c", kv)
		}
	}
	names := make([]string, 0, len(settings))
	for name := range settings {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		value := settings[name]
		key := strings.ToLower(strings.TrimSpace(name))
		switch {
		case key == "" || strings.ContainsAny(key, "= \t\n"):
			return 0, nil, fmt.Errorf("embedpg: invalid setting name %q", name)
		case key == "listen_addresses" || key == "unix_socket_directories" || key == "unix_socket_permissions":
			return 0, nil, fmt.Errorf("embedpg: setting %q is managed by the launcher (unix socket only)", name)
		case key == "port":
			p, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil || p < 1 || p > 65535 {
				return 0, nil, fmt.Errorf("embedpg: invalid port setting %q", value)
			}
			port = p
			continue
		}
		args = append(args, "-c", key+"="+value)
	}
	return port, args, nil
}

// ping opens and closes one connection.
func ping(ctx context.Context, connString string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// quoteConnValue quotes a key/value connection-string value when needed.
func quoteConnValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n'\\") {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(v) + "'"
}

// quoteSocketDir quotes a directory for the comma-separated
// unix_socket_directories list when needed.
func quoteSocketDir(dir string) string {
	if !strings.ContainsAny(dir, ", \t\"") {
		return dir
	}
	return `"` + strings.ReplaceAll(dir, `"`, `""`) + `"`
}
