package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route"
)

// Temporary files are named tempPrefix*tempSuffix: hidden, and not *.conf,
// so no include glob picks one up.
const (
	tempPrefix = ".wisehosting-"
	tempSuffix = ".tmp"
)

// fileMode is the mode of the files the plugin creates.
const fileMode fs.FileMode = 0o644

// Bounds of a command's output: kept while it runs, and quoted in an error.
const (
	maxOutputKept   = 64 << 10
	maxOutputQuoted = 2048
	// maxCommandQuoted bounds the command line an error quotes.
	maxCommandQuoted = 512
)

// waitDelay is how long a command's output pipes may stay open after it
// exited or was killed (a child it started may hold them).
const waitDelay = 5 * time.Second

// sbinDirs are searched for a bare program name not found in PATH: the
// plugin may run with a PATH without the sbin directories.
var sbinDirs = []string{"/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/local/nginx/sbin"}

// Apply implements sdk.ProxyApplier: it writes the route table's files into
// dir, tests the configuration and reloads nginx (see the package
// documentation). Applied is true when nginx was reloaded with this table,
// or when the files already held it.
func (p *Plugin) Apply(ctx context.Context, req *pluginv1.ApplyRequest) (*pluginv1.ApplyResponse, error) {
	s := p.settings.Load()
	checked, skipped := route.Prepare(req.GetRoutes())
	route.LogSkipped(p.log, "nginx", skipped, len(req.GetRoutes()), req.GetGeneration())

	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	start := time.Now()

	disk, err := readDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("nginx: apply: %w", err)
	}
	p.removeTemps(s.dir, disk.temps)
	if _, taken := disk.foreign[SharedFile]; taken {
		return nil, fmt.Errorf("nginx: apply: %s exists in %s but was not written by the plugin (its first line does not start with %q); move it away",
			SharedFile, s.dir, Marker)
	}

	want := files(s, checked)
	blocked := 0
	kept := want[:0]
	for _, f := range want {
		if _, taken := disk.foreign[f.name]; taken {
			blocked++
			p.log.Warn("app left out of the nginx configuration: a file with its name exists and was not written by the plugin",
				"route", f.route.Name, "app_id", f.route.Route.GetAppId(), "file", f.name, "dir", s.dir)
			continue
		}
		kept = append(kept, f)
	}
	want = kept

	changes := diff(disk.owned, want)
	if len(changes) == 0 && p.reloadedWith == s {
		return &pluginv1.ApplyResponse{Applied: true, Message: summary(0, 0, blocked, skipped, "nothing changed, nginx not reloaded")}, nil
	}

	written, removed := 0, 0
	wasReloaded := p.reloadedWith
	if len(changes) > 0 {
		done, err := commit(s.dir, changes)
		if err != nil {
			err = fmt.Errorf("writing the files: %w", err)
			if rerr := rollback(s.dir, done); rerr != nil {
				err = errors.Join(err, fmt.Errorf("restoring the previous files: %w", rerr))
			}
			return nil, fmt.Errorf("nginx: apply: %w", err)
		}
		for _, c := range changes {
			if c.data == nil {
				removed++
			} else {
				written++
			}
		}
		// Whatever happens next, nginx has not loaded these files.
		p.reloadedWith = nil
	}

	if err := run(ctx, s.timeout, s.testCmd); err != nil {
		err = fmt.Errorf("configuration test failed: %w", err)
		if len(changes) > 0 {
			if rerr := rollback(s.dir, changes); rerr != nil {
				err = errors.Join(err, fmt.Errorf("restoring the previous files: %w", rerr))
			} else {
				// The files are what they were before this call.
				p.reloadedWith = wasReloaded
				err = fmt.Errorf("%w (the previous files were restored)", err)
			}
		}
		return nil, fmt.Errorf("nginx: apply: %w", err)
	}
	if err := run(ctx, s.timeout, s.reloadCmd); err != nil {
		return nil, fmt.Errorf("nginx: apply: reload failed (the tested files stay in place; the next apply reloads again): %w", err)
	}
	p.reloadedWith = s
	p.log.Info("nginx configuration applied", "generation", req.GetGeneration(), "apps", len(want)-1,
		"written", written, "removed", removed, "took", time.Since(start).Round(time.Millisecond))
	return &pluginv1.ApplyResponse{Applied: true, Message: summary(written, removed, blocked, skipped, "nginx reloaded")}, nil
}

// summary is the message of a successful Apply.
func summary(written, removed, blocked int, skipped []route.Skipped, what string) string {
	msg := fmt.Sprintf("%d files written, %d removed; %s", written, removed, what)
	left := 0
	for _, s := range skipped {
		if s.Host == "" {
			left++
		}
	}
	if left > 0 {
		msg += fmt.Sprintf("; %d routes left out as invalid", left)
	}
	if blocked > 0 {
		msg += fmt.Sprintf("; %d apps left out because a file the plugin does not own has their name", blocked)
	}
	return msg
}

// onDisk is what readDir found in dir.
type onDisk struct {
	// owned are the plugin's files (first line starting with Marker), by
	// name.
	owned map[string]ownedFile
	// foreign are the other *.conf entries.
	foreign map[string]struct{}
	// temps are leftover temporary files of an interrupted Apply.
	temps []string
}

// ownedFile is a file of the plugin found on disk.
type ownedFile struct {
	data []byte
	mode fs.FileMode
}

// readDir reads the *.conf files of dir, telling the plugin's from the
// others.
func readDir(dir string) (*onDisk, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("directory %s does not exist: create it and include %s in the http block of nginx.conf",
				dir, filepath.Join(dir, "*.conf"))
		}
		return nil, fmt.Errorf("reading directory %s: %w", dir, err)
	}
	d := &onDisk{owned: map[string]ownedFile{}, foreign: map[string]struct{}{}}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) && strings.HasSuffix(name, tempSuffix) && e.Type().IsRegular() {
			d.temps = append(d.temps, name)
			continue
		}
		if !strings.HasSuffix(name, ".conf") {
			continue
		}
		if !e.Type().IsRegular() { // a directory, a symlink, …: never the plugin's
			d.foreign[name] = struct{}{}
			continue
		}
		data, mode, ours, err := readOwned(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		if ours {
			d.owned[name] = ownedFile{data: data, mode: mode}
		} else {
			d.foreign[name] = struct{}{}
		}
	}
	return d, nil
}

// readOwned reads path if its first line starts with Marker (ours), only
// that line's start otherwise.
func readOwned(path string) (data []byte, mode fs.FileMode, ours bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, false, err
	}
	if !st.Mode().IsRegular() {
		return nil, 0, false, nil
	}
	head := make([]byte, len(Marker))
	if _, err := io.ReadFull(f, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, false, nil // too short to be ours
		}
		return nil, 0, false, fmt.Errorf("reading %s: %w", path, err)
	}
	if string(head) != Marker {
		return nil, 0, false, nil
	}
	rest, err := io.ReadAll(f)
	if err != nil {
		return nil, 0, false, fmt.Errorf("reading %s: %w", path, err)
	}
	return append(head, rest...), st.Mode().Perm(), true, nil
}

// removeTemps deletes temporary files an interrupted Apply left behind.
func (p *Plugin) removeTemps(dir string, names []string) {
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			p.log.Warn("cannot remove a leftover temporary file", "file", n, "dir", dir, "error", err)
		}
	}
}

// change is one file to write or remove, with what it replaces.
type change struct {
	name string
	data []byte // nil: remove the file
	// prev is the file's previous content, nil when it did not exist; mode
	// its previous mode.
	prev []byte
	mode fs.FileMode
}

// diff lists the changes that turn the owned files into want.
func diff(owned map[string]ownedFile, want []file) []change {
	var out []change
	wanted := make(map[string]struct{}, len(want))
	for _, f := range want {
		wanted[f.name] = struct{}{}
		old, ok := owned[f.name]
		switch {
		case !ok:
			out = append(out, change{name: f.name, data: f.data, mode: fileMode})
		case !bytes.Equal(old.data, f.data):
			out = append(out, change{name: f.name, data: f.data, prev: old.data, mode: old.mode})
		}
	}
	var gone []change
	for name, old := range owned {
		if _, ok := wanted[name]; !ok {
			gone = append(gone, change{name: name, prev: old.data, mode: old.mode})
		}
	}
	// Map order is random: remove in name order, so runs repeat.
	slices.SortFunc(gone, func(a, b change) int { return strings.Compare(a.name, b.name) })
	return append(out, gone...)
}

// commit makes the changes in dir, each file atomically, then syncs dir.
// It returns the changes made so far, also on error, for rollback.
func commit(dir string, changes []change) ([]change, error) {
	for i, c := range changes {
		var err error
		if c.data == nil {
			err = os.Remove(filepath.Join(dir, c.name))
			if errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
		} else {
			mode := fileMode
			if c.prev != nil {
				mode = c.mode
			}
			err = writeAtomic(dir, c.name, c.data, mode)
		}
		if err != nil {
			return changes[:i], err
		}
	}
	return changes, syncDir(dir)
}

// rollback undoes changes (as commit made them), newest first: files that
// existed get their previous bytes and mode back, new ones are removed.
func rollback(dir string, changes []change) error {
	var errs []error
	for i := len(changes) - 1; i >= 0; i-- {
		c := changes[i]
		if c.prev == nil {
			if err := os.Remove(filepath.Join(dir, c.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if err := writeAtomic(dir, c.name, c.prev, c.mode); err != nil {
			errs = append(errs, err)
		}
	}
	if err := syncDir(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// writeAtomic replaces dir/name with data: written to a temporary file in
// dir, synced, and renamed over the old file.
func writeAtomic(dir, name string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*"+tempSuffix)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			err = fmt.Errorf("writing %s: %w", name, err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// syncDir makes dir's entries (renames, removals) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// run runs argv directly (no shell) within timeout. A failure carries the
// command's output (stderr and stdout), cut short.
func run(ctx context.Context, timeout time.Duration, argv []string) error {
	path, err := lookProgram(argv[0])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	out := &cappedBuffer{max: maxOutputKept}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = waitDelay
	err = cmd.Run()
	if err == nil {
		return nil
	}
	what := strings.Join(argv, " ")
	if len(what) > maxCommandQuoted {
		what = strings.ToValidUTF8(what[:maxCommandQuoted], "") + "…"
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = fmt.Errorf("stopped (time limit %v): %w", timeout, ctxErr)
	}
	if o := quoteOutput(out); o != "" {
		return fmt.Errorf("%s: %w: %s", what, err, o)
	}
	return fmt.Errorf("%s: %w (no output)", what, err)
}

// lookProgram finds a program: a path as is; a bare name in PATH, then in
// sbinDirs.
func lookProgram(name string) (string, error) {
	if strings.ContainsRune(name, '/') {
		return name, nil
	}
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("program %q not found in PATH or %s", name, strings.Join(sbinDirs, ", "))
}

// quoteOutput is a command's output for an error message: valid UTF-8,
// trimmed, at most maxOutputQuoted bytes and a note of what was cut.
func quoteOutput(b *cappedBuffer) string {
	o := bytes.TrimSpace(b.buf.Bytes())
	cut := b.dropped
	if len(o) > maxOutputQuoted {
		cut += len(o) - maxOutputQuoted
		o = o[:maxOutputQuoted]
		for len(o) > 0 && !utf8.Valid(o) { // do not split a character
			o = o[:len(o)-1]
		}
	}
	s := strings.ToValidUTF8(string(o), "\uFFFD")
	if cut > 0 {
		s += fmt.Sprintf(" … (%d bytes more)", cut)
	}
	return s
}

// cappedBuffer keeps the first max bytes written to it and counts the rest.
type cappedBuffer struct {
	buf     bytes.Buffer
	max     int
	dropped int
}

// Write implements io.Writer; it never fails.
func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		if room > 0 {
			b.buf.Write(p[:room])
		}
		b.dropped += len(p) - max(room, 0)
		return len(p), nil
	}
	b.buf.Write(p)
	return len(p), nil
}
