package nginx

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// fakeArg, as the test binary's first argument, makes it a stand-in for
// nginx (see TestMain): test binary fakeArg <record file> <label> <exit
// code> [<stderr text> [<sleep>]] appends the label to the record file,
// writes the text to stderr ("repeat:<n>:<text>" writes it n times),
// sleeps, and exits with the code.
const fakeArg = "wisehosting-fake-nginx"

func TestMain(m *testing.M) {
	if len(os.Args) >= 5 && os.Args[1] == fakeArg {
		os.Exit(fakeNginx(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func fakeNginx(args []string) int {
	f, err := os.OpenFile(args[0], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 99
	}
	fmt.Fprintln(f, args[1])
	f.Close()
	if len(args) > 3 {
		text := args[3]
		// "repeat:<n>:<text>" is text n times.
		if spec, ok := strings.CutPrefix(text, "repeat:"); ok {
			n, t, _ := strings.Cut(spec, ":")
			count, _ := strconv.Atoi(n)
			text = strings.Repeat(t, count)
		}
		fmt.Fprint(os.Stderr, text)
	}
	if len(args) > 4 {
		d, _ := time.ParseDuration(args[4])
		time.Sleep(d)
	}
	code, _ := strconv.Atoi(args[2])
	return code
}

// fake is a fake test or reload command: the test binary as fakeArg.
func fake(t *testing.T, record, label string, code int, extra ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{exe, fakeArg, record, label, strconv.Itoa(code)}, extra...)
	var q []string
	for _, a := range argv {
		q = append(q, strconv.Quote(a))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// applyEnv is a directory to apply into and a record of the commands run.
type applyEnv struct {
	t      *testing.T
	dir    string
	record string
}

func newApplyEnv(t *testing.T) *applyEnv {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "conf.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &applyEnv{t: t, dir: dir, record: filepath.Join(base, "record")}
}

// plugin returns a plugin applying into e.dir whose test command exits with
// testCode (writing testErr) and whose reload command exits with
// reloadCode.
func (e *applyEnv) plugin(testCode, reloadCode int, testErr string, extra string) (*Plugin, *plugintest.LogBuffer) {
	e.t.Helper()
	testCmd := fake(e.t, e.record, "test", testCode)
	if testErr != "" {
		testCmd = fake(e.t, e.record, "test", testCode, testErr)
	}
	return newTestPlugin(e.t, fmt.Sprintf("dir = %q\ntest_command = %s\nreload_command = %s\n%s",
		e.dir, testCmd, fake(e.t, e.record, "reload", reloadCode), extra))
}

// runs returns the commands run so far, and forgets them.
func (e *applyEnv) runs() string {
	e.t.Helper()
	b, err := os.ReadFile(e.record)
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		e.t.Fatal(err)
	}
	os.Remove(e.record)
	return strings.Join(strings.Fields(string(b)), ",")
}

// snapshot is every entry of a directory: name → mode and content.
func (e *applyEnv) snapshot() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, en := range entries {
		info, err := en.Info()
		if err != nil {
			e.t.Fatal(err)
		}
		content := ""
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(filepath.Join(e.dir, en.Name()))
			if err != nil {
				e.t.Fatal(err)
			}
			content = string(b)
		} else if info.Mode()&fs.ModeSymlink != 0 {
			content, _ = os.Readlink(filepath.Join(e.dir, en.Name()))
		}
		out[en.Name()] = info.Mode().String() + "\n" + content
	}
	return out
}

func (e *applyEnv) write(name, content string, mode fs.FileMode) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, name), []byte(content), mode); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(e.dir, name), mode); err != nil {
		e.t.Fatal(err)
	}
}

func (e *applyEnv) names() string {
	e.t.Helper()
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	var n []string
	for _, en := range entries {
		n = append(n, en.Name())
	}
	return strings.Join(n, " ")
}

func apply(p *Plugin, routes []*pluginv1.Route, gen uint64) (*pluginv1.ApplyResponse, error) {
	return p.Apply(context.Background(), &pluginv1.ApplyRequest{Routes: routes, Generation: gen})
}

func TestApply(t *testing.T) {
	e := newApplyEnv(t)
	foreign := "# the operator's own server\nserver { listen 81; }\n"
	e.write("notes.conf", foreign, 0o600)
	e.write("README", "not a config\n", 0o644)
	e.write(".wisehosting-123.tmp", "left over by a crash", 0o644)
	p, logs := e.plugin(0, 0, "", "")

	resp, err := apply(p, smallTable(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetApplied() || resp.GetMessage() != "5 files written, 0 removed; nginx reloaded; 1 routes left out as invalid" {
		t.Errorf("response %v", resp)
	}
	if got := e.runs(); got != "test,reload" {
		t.Errorf("commands run: %s", got)
	}
	if got := e.names(); got != "README _wisehosting.conf api-v2.conf blog.conf notes.conf shop.conf v6.conf" {
		t.Errorf("files: %s", got)
	}
	// The files are Render's.
	rendered := splitDocument(t, renderOK(t, p, smallTable()))
	for name, want := range rendered {
		got, err := os.ReadFile(filepath.Join(e.dir, name))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
		if st, _ := os.Stat(filepath.Join(e.dir, name)); st.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v", name, st.Mode())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "notes.conf")); string(b) != foreign {
		t.Errorf("the foreign file changed: %q", b)
	}
	if !strings.Contains(logs.String(), `"nginx configuration applied"`) {
		t.Errorf("log: %s", logs)
	}

	// The same table (in another order): nothing written, nothing run.
	before := e.snapshot()
	table := smallTable()
	table[0], table[3] = table[3], table[0]
	resp, err = apply(p, table, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetApplied() || !strings.Contains(resp.GetMessage(), "nothing changed, nginx not reloaded") {
		t.Errorf("response %v", resp)
	}
	if got := e.runs(); got != "" {
		t.Errorf("commands run for an unchanged table: %s", got)
	}
	assertSame(t, before, e.snapshot())

	// blog removed, shop changed, a new app.
	table = smallTable()[:4]
	table = append(table[:1], table[2:]...) // without blog
	table[0] = &pluginv1.Route{AppId: 3, Name: "shop", Hosts: []string{"shop.apps.example.com"}, Upstream: "http://10.8.0.9:8080"}
	table = append(table, &pluginv1.Route{AppId: 7, Name: "new", Hosts: []string{"new.apps.example.com"}, Upstream: "http://10.8.0.2:9000"})
	resp, err = apply(p, table, 3)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetMessage() != "2 files written, 1 removed; nginx reloaded" {
		t.Errorf("response %v", resp)
	}
	if got := e.runs(); got != "test,reload" {
		t.Errorf("commands run: %s", got)
	}
	if got := e.names(); got != "README _wisehosting.conf api-v2.conf new.conf notes.conf shop.conf v6.conf" {
		t.Errorf("files: %s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "shop.conf")); !strings.Contains(string(b), "proxy_pass http://10.8.0.9:8080;") {
		t.Errorf("shop.conf: %s", b)
	}

	// An empty table removes every app's file; the shared file stays.
	if _, err := apply(p, nil, 4); err != nil {
		t.Fatal(err)
	}
	if got := e.names(); got != "README _wisehosting.conf notes.conf" {
		t.Errorf("files: %s", got)
	}
}

// A failing test puts every file back as it was and reports nginx's
// output; nginx is not reloaded.
func TestApplyTestFails(t *testing.T) {
	e := newApplyEnv(t)
	e.write("notes.conf", "server { listen 81; }\n", 0o600)
	good, _ := e.plugin(0, 0, "", "")
	if _, err := apply(good, smallTable(), 1); err != nil {
		t.Fatal(err)
	}
	e.runs()
	// The operator made one of the plugin's files group-writable: the mode
	// is restored too.
	if err := os.Chmod(filepath.Join(e.dir, "v6.conf"), 0o664); err != nil {
		t.Fatal(err)
	}
	before := e.snapshot()

	stderr := "nginx: [emerg] host not found in upstream \"no-such-host.invalid\" in " + e.dir + "/shop.conf:9\nnginx: configuration file /etc/nginx/nginx.conf test failed\n"
	bad, _ := e.plugin(1, 0, stderr, "listen = [\"8080\"]")
	table := smallTable()[:4]
	table = append(table[:1], table[2:]...) // blog removed
	table[0] = &pluginv1.Route{AppId: 3, Name: "shop", Hosts: []string{"shop.apps.example.com"}, Upstream: "http://no-such-host.invalid:8080"}
	table = append(table, &pluginv1.Route{AppId: 7, Name: "new", Hosts: []string{"new.apps.example.com"}, Upstream: "http://10.8.0.2:9000"})
	resp, err := apply(bad, table, 2)
	if err == nil {
		t.Fatalf("apply succeeded: %v", resp)
	}
	for _, want := range []string{"nginx: apply: configuration test failed", "exit status 1", `host not found in upstream "no-such-host.invalid"`, "test failed", "previous files were restored"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if got := e.runs(); got != "test" {
		t.Errorf("commands run: %s", got)
	}
	assertSame(t, before, e.snapshot())

	// The plugin that last reloaded nginx still sees nothing to do.
	resp, err = apply(good, smallTable(), 3)
	if err != nil || !strings.Contains(resp.GetMessage(), "nothing changed") {
		t.Errorf("apply = %v, %v", resp, err)
	}
	if got := e.runs(); got != "" {
		t.Errorf("commands run: %s", got)
	}
}

func assertSame(t *testing.T, want, got map[string]string) {
	t.Helper()
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s is gone", name)
		} else if g != w {
			t.Errorf("%s differs:\n got: %q\nwant: %q", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s appeared", name)
		}
	}
}

// A long answer of the test command is cut short in the error.
func TestApplyTestOutputTruncated(t *testing.T) {
	e := newApplyEnv(t)
	p, _ := e.plugin(1, 0, "repeat:2000:nginx: [emerg] ünïcode error line\n", "")
	_, err := apply(p, smallTable(), 1)
	if err == nil {
		t.Fatal("apply succeeded")
	}
	if len(err.Error()) > 3000 || !strings.Contains(err.Error(), "bytes more)") {
		t.Errorf("error of %d bytes: %.300s…", len(err.Error()), err)
	}
	if !strings.Contains(err.Error(), "nginx: [emerg] ünïcode error line") {
		t.Errorf("error: %.300s", err)
	}
	if got := e.names(); got != "" {
		t.Errorf("files left: %s", got)
	}
}

// A test command that hangs is stopped at the time limit, and the files
// are restored.
func TestApplyTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a time limit")
	}
	e := newApplyEnv(t)
	p, _ := newTestPlugin(t, fmt.Sprintf("dir = %q\ntimeout = \"1s\"\ntest_command = %s\nreload_command = %s",
		e.dir, fake(t, e.record, "test", 0, "", "20s"), fake(t, e.record, "reload", 0)))
	start := time.Now()
	_, err := apply(p, smallTable(), 1)
	if err == nil || !strings.Contains(err.Error(), "stopped (time limit 1s)") {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("apply took %v", took)
	}
	if got := e.names(); got != "" {
		t.Errorf("files left: %s", got)
	}
	if got := e.runs(); got != "test" {
		t.Errorf("commands run: %s", got)
	}
}

// A failing reload is an error; the tested files stay, and the next apply
// reloads although nothing changed.
func TestApplyReloadFails(t *testing.T) {
	e := newApplyEnv(t)
	cfg := func(reloadCode int, reloadErr string) string {
		return fmt.Sprintf("dir = %q\ntest_command = %s\nreload_command = %s", e.dir,
			fake(t, e.record, "test", 0), fake(t, e.record, "reload", reloadCode, reloadErr))
	}
	p, _ := newTestPlugin(t, cfg(1, `nginx: [error] invalid PID number "" in "/run/nginx.pid"`))
	_, err := apply(p, smallTable(), 1)
	if err == nil || !strings.Contains(err.Error(), "reload failed") || !strings.Contains(err.Error(), "invalid PID number") {
		t.Fatalf("err = %v", err)
	}
	if got := e.runs(); got != "test,reload" {
		t.Errorf("commands run: %s", got)
	}
	if got := e.names(); got != "_wisehosting.conf api-v2.conf blog.conf shop.conf v6.conf" {
		t.Errorf("files: %s", got)
	}
	// Still failing: tried again.
	if _, err := apply(p, smallTable(), 2); err == nil {
		t.Fatal("apply succeeded")
	}
	if got := e.runs(); got != "test,reload" {
		t.Errorf("commands run: %s", got)
	}
	// nginx is back: reloaded although nothing changed, then left alone.
	if err := configure(t, p, cfg(0, "")); err != nil {
		t.Fatal(err)
	}
	resp, err := apply(p, smallTable(), 3)
	if err != nil || resp.GetMessage() != "0 files written, 0 removed; nginx reloaded; 1 routes left out as invalid" {
		t.Fatalf("apply = %v, %v", resp, err)
	}
	if got := e.runs(); got != "test,reload" {
		t.Errorf("commands run: %s", got)
	}
	if _, err := apply(p, smallTable(), 4); err != nil {
		t.Fatal(err)
	}
	if got := e.runs(); got != "" {
		t.Errorf("commands run: %s", got)
	}
}

// A plugin that finds its files already in place (it restarted) reloads
// once: it cannot know whether nginx loaded them.
func TestApplyFirstCallReloads(t *testing.T) {
	e := newApplyEnv(t)
	p1, _ := e.plugin(0, 0, "", "")
	if _, err := apply(p1, smallTable(), 1); err != nil {
		t.Fatal(err)
	}
	e.runs()
	before := e.snapshot()
	p2, _ := e.plugin(0, 0, "", "")
	resp, err := apply(p2, smallTable(), 1)
	if err != nil || !strings.HasPrefix(resp.GetMessage(), "0 files written, 0 removed; nginx reloaded") {
		t.Fatalf("apply = %v, %v", resp, err)
	}
	if got := e.runs(); got != "test,reload" {
		t.Errorf("commands run: %s", got)
	}
	assertSame(t, before, e.snapshot())
	if _, err := apply(p2, smallTable(), 2); err != nil {
		t.Fatal(err)
	}
	if got := e.runs(); got != "" {
		t.Errorf("commands run: %s", got)
	}
}

// Files the plugin did not write are never touched: an app whose file name
// is taken is left out; a foreign shared file stops the apply.
func TestApplyForeignFiles(t *testing.T) {
	e := newApplyEnv(t)
	foreign := "server { listen 80; server_name shop.example.org; return 503; }\n"
	e.write("shop.conf", foreign, 0o644)
	if err := os.Symlink("/etc/passwd", filepath.Join(e.dir, "blog.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(e.dir, "v6.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Looks like ours but is not: the marker must start the first line.
	e.write("api-v2.conf", "\n"+Marker+"\n", 0o644)
	before := e.snapshot()
	p, logs := e.plugin(0, 0, "", "")
	resp, err := apply(p, smallTable(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetApplied() || !strings.Contains(resp.GetMessage(), "4 apps left out because a file the plugin does not own has their name") {
		t.Errorf("response %v", resp)
	}
	after := e.snapshot()
	for name, want := range before {
		if after[name] != want {
			t.Errorf("%s changed", name)
		}
	}
	if got := e.names(); got != "_wisehosting.conf api-v2.conf blog.conf shop.conf v6.conf" {
		t.Errorf("files: %s", got)
	}
	if !strings.Contains(logs.String(), `"file":"shop.conf"`) {
		t.Errorf("no warning about shop.conf: %s", logs)
	}

	e2 := newApplyEnv(t)
	e2.write(SharedFile, "map $x $y {}\n", 0o644)
	p2, _ := e2.plugin(0, 0, "", "")
	if _, err := apply(p2, smallTable(), 1); err == nil || !strings.Contains(err.Error(), "_wisehosting.conf exists") {
		t.Fatalf("err = %v", err)
	}
	if got := e2.names(); got != SharedFile {
		t.Errorf("files: %s", got)
	}
	if got := e2.runs(); got != "" {
		t.Errorf("commands run: %s", got)
	}
}

func TestApplyMissingDir(t *testing.T) {
	e := newApplyEnv(t)
	p, _ := newTestPlugin(t, fmt.Sprintf("dir = %q\ntest_command = %s\nreload_command = %s",
		filepath.Join(e.dir, "nope"), fake(t, e.record, "test", 0), fake(t, e.record, "reload", 0)))
	_, err := apply(p, smallTable(), 1)
	if err == nil || !strings.Contains(err.Error(), "does not exist: create it and include") || !strings.Contains(err.Error(), "nope/*.conf") {
		t.Fatalf("err = %v", err)
	}
}

func TestApplyMissingProgram(t *testing.T) {
	e := newApplyEnv(t)
	p, _ := newTestPlugin(t, fmt.Sprintf("dir = %q\nnginx = \"wisehosting-no-such-nginx\"", e.dir))
	_, err := apply(p, smallTable(), 1)
	if err == nil || !strings.Contains(err.Error(), `program "wisehosting-no-such-nginx" not found in PATH or /usr/sbin`) {
		t.Fatalf("err = %v", err)
	}
	if got := e.names(); got != "" {
		t.Errorf("files left: %s", got)
	}
}

// A write that fails halfway is undone.
func TestApplyWriteFails(t *testing.T) {
	e := newApplyEnv(t)
	p, _ := e.plugin(0, 0, "", "")
	if _, err := apply(p, smallTable()[:1], 1); err != nil {
		t.Fatal(err)
	}
	e.runs()
	before := e.snapshot()
	// v6.conf is written after blog.conf and shop.conf: a non-empty
	// directory where it goes makes its rename fail (also for root).
	changes := []change{
		{name: "blog.conf", data: []byte(Marker + " new\n"), mode: fileMode},
		{name: "shop.conf", data: []byte(Marker + " changed\n"), prev: mustRead(t, filepath.Join(e.dir, "shop.conf")), mode: fileMode},
		{name: "v6.conf", data: []byte(Marker + " v6\n"), mode: fileMode},
	}
	if err := os.MkdirAll(filepath.Join(e.dir, "v6.conf", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	done, err := commit(e.dir, changes)
	if err == nil || len(done) != 2 {
		t.Fatalf("commit = %d done, %v", len(done), err)
	}
	if err := rollback(e.dir, done); err != nil {
		t.Fatal(err)
	}
	after := e.snapshot()
	delete(after, "v6.conf")
	assertSame(t, before, after)
	if strings.Contains(e.names(), ".tmp") {
		t.Errorf("temporary file left: %s", e.names())
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCappedBuffer(t *testing.T) {
	b := &cappedBuffer{max: 10}
	for _, s := range []string{"12345", "678", "90abc", "def"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if b.buf.String() != "1234567890" || b.dropped != 6 {
		t.Errorf("kept %q, dropped %d", b.buf.String(), b.dropped)
	}
	if got := quoteOutput(b); got != "1234567890 … (6 bytes more)" {
		t.Errorf("quoteOutput = %q", got)
	}
}

// After a Configure, the first apply reloads even if the files are in
// place: the new settings may name another nginx.
func TestApplyAfterConfigureReloads(t *testing.T) {
	e := newApplyEnv(t)
	p, _ := e.plugin(0, 0, "", "")
	for range 2 {
		if _, err := apply(p, smallTable(), 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.runs(); got != "test,reload" {
		t.Errorf("commands run: %s", got)
	}
	if err := configure(t, p, fmt.Sprintf("dir = %q\ntest_command = %s\nreload_command = %s\ntimeout = \"1m\"",
		e.dir, fake(t, e.record, "test", 0), fake(t, e.record, "reload", 0))); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := apply(p, smallTable(), 2); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.runs(); got != "test,reload" {
		t.Errorf("commands run: %s", got)
	}
}
