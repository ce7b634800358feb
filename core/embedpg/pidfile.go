package embedpg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// pidFile is the content of postmaster.pid: PID, data directory, start time,
// port, first socket directory, listen address, shared memory key, status.
type pidFile struct {
	pid     int
	port    int
	sockDir string
	status  string // "starting", "stopping", "ready", "standby"; empty before PostgreSQL 10
}

var errBadPidFile = errors.New("malformed postmaster.pid")

func readPidFile(dataDir string) (pidFile, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return pidFile{}, err
	}
	lines := strings.Split(string(b), "\n")
	var pf pidFile
	if pf.pid, err = strconv.Atoi(strings.TrimSpace(lines[0])); err != nil || pf.pid <= 0 {
		return pidFile{}, errBadPidFile
	}
	if len(lines) > 3 {
		pf.port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	if len(lines) > 4 {
		pf.sockDir = strings.TrimSpace(lines[4])
	}
	if len(lines) > 7 {
		pf.status = strings.TrimSpace(lines[7])
	}
	return pf, nil
}

type pidState int

const (
	pidDead    pidState = iota // no such process (or a zombie): the file is stale
	pidForeign                 // a live process that is not a server for this data directory (PID reused)
	pidLive                    // a server for this data directory, or a live process we cannot inspect
)

// postmasterState classifies the process named by a lock file of dataDir.
// A postmaster changes into its data directory before it writes its lock
// files, so a live process with another working directory is an unrelated
// process that reuses the PID of a server that died. When the working
// directory cannot be read the process counts as live: a lock file is never
// removed unless its server is known to be gone.
func postmasterState(pid int, dataDir string) pidState {
	if pid <= 0 {
		return pidDead
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return pidDead
	}
	if isZombie(pid) {
		return pidDead
	}
	cwd, err := processCwd(pid)
	if err != nil {
		return pidLive
	}
	if cwd != dataDir {
		return pidForeign
	}
	return pidLive
}

// clearForeignLock removes a lock file (postmaster.pid or a socket's .lock)
// whose PID now belongs to an unrelated live process. PostgreSQL itself
// ignores lock files of dead processes, but refuses to start when the PID
// was reused.
func clearForeignLock(path, dataDir string, log hclog.Logger) error {
	line, err := firstLine(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("embedpg: %w", err)
	}
	pid, _ := strconv.Atoi(line)
	if postmasterState(pid, dataDir) != pidForeign {
		return nil
	}
	log.Info("removing stale lock file whose PID belongs to another process", "file", path, "pid", pid)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("embedpg: remove stale lock file: %w", err)
	}
	return nil
}

// ownerFileName records, next to the data directory, which process launched
// the running server.
const ownerFileName = "embedpg.owner"

// ownerInfo is the content of the owner file: the launching process, the
// postmaster it launched and its Options.Owner, one per line.
type ownerInfo struct {
	pid        int
	postmaster int
	label      string
}

// writeOwnerFile replaces path atomically with o.
func writeOwnerFile(path string, o ownerInfo) error {
	label := strings.Join(strings.Fields(o.label), " ") // one line
	if err := writeAtomic(path, fmt.Appendf(nil, "%d\n%d\n%s\n", o.pid, o.postmaster, label), 0o600); err != nil {
		return fmt.Errorf("embedpg: owner file: %w", err)
	}
	return nil
}

// readOwnerFile parses an owner file.
func readOwnerFile(path string) (ownerInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ownerInfo{}, err
	}
	lines := strings.Split(string(b), "\n")
	var o ownerInfo
	if len(lines) < 3 {
		return ownerInfo{}, fmt.Errorf("embedpg: malformed owner file %s", path)
	}
	var err1, err2 error
	o.pid, err1 = strconv.Atoi(lines[0])
	o.postmaster, err2 = strconv.Atoi(lines[1])
	if err1 != nil || err2 != nil || o.pid <= 0 || o.postmaster <= 0 {
		return ownerInfo{}, fmt.Errorf("embedpg: malformed owner file %s", path)
	}
	o.label = strings.TrimSpace(lines[2])
	return o, nil
}

// removeOwnerFile removes the owner file if it still describes postmaster:
// once the server is down a new owner may have replaced it.
func removeOwnerFile(path string, postmaster int) {
	if o, err := readOwnerFile(path); err == nil && o.postmaster == postmaster {
		_ = os.Remove(path)
	}
}

// heldError describes the live server of dataDir named by pf, with its
// owner when the owner file describes that server and the owner still runs.
func heldError(dataDir string, pf pidFile) *HeldError {
	e := &HeldError{PID: pf.pid, PostmasterPID: pf.pid, DataDir: dataDir, Stopping: pf.status == "stopping"}
	o, err := readOwnerFile(filepath.Join(filepath.Dir(dataDir), ownerFileName))
	switch {
	case err != nil || o.postmaster != pf.pid:
	case errors.Is(syscall.Kill(o.pid, 0), syscall.ESRCH) || isZombie(o.pid):
		e.Stopping = true // the server gets SIGTERM when its launcher dies
	default:
		e.PID, e.Owner = o.pid, o.label
	}
	return e
}

// attachExisting looks for a live server in dataDir. It returns an unowned
// Cluster when one accepts connections, nil when there is none (any stale
// postmaster.pid is handled), and an error when a live server does not
// become reachable in time. With noAttach a live server is not attached to:
// the error is a *HeldError at once.
func attachExisting(ctx context.Context, dataDir string, noAttach bool, log hclog.Logger) (*Cluster, error) {
	pidPath := filepath.Join(dataDir, "postmaster.pid")
	var badSince time.Time
	var lastErr error
	for {
		pf, err := readPidFile(dataDir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil
		case errors.Is(err, errBadPidFile):
			// A postmaster writes the whole file right after creating it, so
			// one that stays malformed is the remnant of a crash during
			// start-up, which PostgreSQL would refuse to overwrite.
			if badSince.IsZero() {
				badSince = time.Now()
			} else if time.Since(badSince) > time.Second {
				log.Info("removing malformed postmaster.pid", "file", pidPath)
				if err := os.Remove(pidPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, fmt.Errorf("embedpg: remove malformed postmaster.pid: %w", err)
				}
				return nil, nil
			}
		case err != nil:
			return nil, fmt.Errorf("embedpg: read postmaster.pid: %w", err)
		default:
			switch postmasterState(pf.pid, dataDir) {
			case pidDead:
				log.Debug("ignoring stale postmaster.pid", "pid", pf.pid)
				return nil, nil
			case pidForeign:
				if err := clearForeignLock(pidPath, dataDir, log); err != nil {
					return nil, err
				}
				if pf.sockDir != "" && pf.port > 0 {
					if err := clearForeignLock(filepath.Join(pf.sockDir, fmt.Sprintf(".s.PGSQL.%d.lock", pf.port)), dataDir, log); err != nil {
						return nil, err
					}
				}
				return nil, nil
			}
			if noAttach {
				return nil, heldError(dataDir, pf)
			}
			if pf.sockDir == "" || pf.port <= 0 {
				lastErr = errors.New("postmaster.pid names no unix socket")
				break
			}
			if pf.status != "ready" && pf.status != "" {
				lastErr = fmt.Errorf("server status %q", pf.status)
				break
			}
			c := &Cluster{dataDir: dataDir, sockDir: pf.sockDir, port: pf.port, log: log}
			if lastErr = ping(ctx, c.ConnString("postgres")); lastErr == nil {
				log.Info("attached to running postgres", "pid", pf.pid, "data_dir", dataDir, "socket_dir", pf.sockDir)
				return c, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("embedpg: a server (PID %d) holds %s but does not accept connections (%v); stop it, or remove %s if no such server runs: %w",
				pf.pid, dataDir, lastErr, pidPath, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
