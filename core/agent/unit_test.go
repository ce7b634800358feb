package agent

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// TestImportsOnlySDK: the agent is something a third party could have
// written — it imports the standard library, sdk/... and hclog, and
// nothing of core/ is among its dependencies.
func TestImportsOnlySDK(t *testing.T) {
	t.Parallel()
	const self = "github.com/wisehosting/wisehosting/core/agent"
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, _, _ := strings.Cut(line, " ")
		if strings.HasPrefix(path, "github.com/wisehosting/wisehosting/core/") && path != self {
			t.Errorf("the agent depends on %s", path)
		}
	}
	out, err = exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range strings.Fields(string(out)) {
		switch {
		case !strings.Contains(strings.SplitN(imp, "/", 2)[0], "."): // standard library
		case strings.HasPrefix(imp, "github.com/wisehosting/wisehosting/sdk/"):
		case imp == "github.com/hashicorp/go-hclog":
		default:
			t.Errorf("the agent imports %s (only the standard library, sdk/... and hclog)", imp)
		}
	}
}

func TestBuildLogCap(t *testing.T) {
	t.Parallel()
	b := newBuildLog()
	b.Write([]byte("HEAD-START\n"))
	chunk := strings.Repeat("x", 1000) + "\n"
	for i := 0; i < 2000; i++ {
		b.Write([]byte(chunk))
	}
	b.Write([]byte("TAIL-END\n"))
	s, _ := b.snapshot()
	if len(s) != wsproto.MaxBuildLog {
		t.Errorf("capped log is %d bytes, want %d", len(s), wsproto.MaxBuildLog)
	}
	if !strings.HasPrefix(s, "HEAD-START\n") || !strings.HasSuffix(s, "TAIL-END\n") || strings.Count(s, wsproto.TruncationMarker) != 1 {
		t.Error("capped log lacks head, tail or marker")
	}
	small := newBuildLog()
	small.Write([]byte("short\n"))
	small.addRedaction("secret")
	small.Write([]byte("token secret here\n"))
	if s, _ := small.snapshot(); s != "short\ntoken [REDACTED] here\n" {
		t.Errorf("small log %q", s)
	}
	if l := small.lastLines(); len(l) != 2 || l[1] != "token [REDACTED] here" {
		t.Errorf("last lines %q", l)
	}
}

func TestLineSplitter(t *testing.T) {
	t.Parallel()
	var lines []string
	s := &lineSplitter{emit: func(l string) { lines = append(lines, l) }}
	s.Write([]byte("a\r\nb"))
	s.Write([]byte("c\n" + strings.Repeat("é", wsproto.MaxLogLine) + "\n"))
	s.Write([]byte("partial"))
	s.flush()
	if lines[0] != "a" || lines[1] != "bc" || lines[len(lines)-1] != "partial" {
		t.Errorf("lines %q", lines[:2])
	}
	for _, l := range lines {
		if len(l) > wsproto.MaxLogLine || !strings.HasPrefix(l, "") {
			t.Errorf("line of %d bytes", len(l))
		}
		if strings.ContainsRune(l, '\uFFFD') {
			t.Error("a cut split a rune")
		}
	}
}

func TestLogShipperBatches(t *testing.T) {
	t.Parallel()
	var got []wsproto.RuntimeLog
	s := newLogShipper(func(_ context.Context, m wsproto.RuntimeLog) error {
		got = append(got, m)
		return nil
	}, func() bool { return true }, newTokenBucket(1<<30, 1<<30), time.Hour)
	for i := 0; i < wsproto.MaxLogLinesPerMessage+10; i++ {
		s.add(1, "stdout", "line")
	}
	s.flush(context.Background())
	if len(got) != 2 || len(got[0].Lines) != wsproto.MaxLogLinesPerMessage || len(got[1].Lines) != 10 {
		t.Errorf("batches of %d messages", len(got))
	}
	// Beyond the budget: dropped, then counted in a system line.
	tight := newLogShipper(func(_ context.Context, m wsproto.RuntimeLog) error { got = append(got, m); return nil },
		func() bool { return true }, newTokenBucket(1, 10), time.Hour)
	got = nil
	tight.add(2, "stdout", "12345")
	tight.add(2, "stdout", "this line is over the budget")
	tight.budget.burst, tight.budget.tokens = 1000, 1000
	tight.flush(context.Background())
	if len(got) != 1 || len(got[0].Lines) != 2 || got[0].Lines[1].Stream != "system" || !strings.Contains(got[0].Lines[1].Line, "1 log lines dropped") {
		t.Errorf("got %+v", got)
	}
}

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	line := "4242 (we ird) (name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 987654 1000 200 18446744073709551615"
	s, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if s.pid != 4242 || s.ppid != 1 || s.pgrp != 4242 || s.state != 'S' || s.ticks != 300 || s.start != 987654 {
		t.Errorf("%+v", s)
	}
	self, err := readProcStat(procRoot, os.Getpid())
	if err != nil || self.pid != os.Getpid() {
		t.Errorf("own stat: %+v %v", self, err)
	}
}

func TestParsePodmanStats(t *testing.T) {
	t.Parallel()
	in := `[{"id":"abc","name":"wh-a","cpu_percent":"12.34%","mem_usage":"1.5GB / 2GiB","net_io":"1.08kB / 796B","block_io":"4kB / 1MB","pids":"7"},
	        {"id":"def","name":"wh-b","cpu_percent":"--","mem_usage":"-- / --","netio":"2MiB / 1KiB","pids":3}]`
	m, err := parsePodmanStats([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	a, b := m["wh-a"], m["wh-b"]
	if a.cpu != 12.34 || a.mem != 1_500_000_000 || a.rx != 1080 || a.tx != 796 || a.pids != 7 || a.blockR != 4000 || a.blkW != 1_000_000 {
		t.Errorf("wh-a %+v", a)
	}
	if b.cpu != 0 || b.mem != 0 || b.rx != 2<<20 || b.tx != 1024 || b.pids != 3 {
		t.Errorf("wh-b %+v", b)
	}
}

func TestCheckRepo(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"https://github.com/a/b.git", "file:///srv/x", "/srv/repo", "git@github.com:a/b.git", "ssh://git@h/x"} {
		if _, _, err := checkRepo(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-upload-pack=evil", "ext::sh -c evil", "fd::3", "relative/path", "ftp://h/x"} {
		if _, _, err := checkRepo(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, shown, _ := checkRepo("https://user:tok@host/x.git"); strings.Contains(shown, "tok") {
		t.Errorf("shown %q", shown)
	}
}

func TestMergeEnvDropsTheKey(t *testing.T) {
	t.Parallel()
	env := mergeEnv([]string{"PATH=/bin", KeyEnv + "=whk_x", "HOME=/h"}, map[string]string{"HOME": "/app", KeyEnv: "y", "A": "1"})
	if strings.Join(env, " ") != "PATH=/bin A=1 HOME=/app" {
		t.Errorf("env %q", env)
	}
	if _, err := appEnv(map[string]string{"BAD-NAME": "x"}, 1); err == nil {
		t.Error("invalid name accepted")
	}
}

func TestHostSample(t *testing.T) {
	t.Parallel()
	h := newHostSampler(procRoot, t.TempDir())
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	hb := h.sample()
	if hb.MemoryTotal <= 0 || hb.MemoryUsed <= 0 || hb.MemoryUsed > hb.MemoryTotal || hb.DiskTotal <= 0 || hb.DiskUsed <= 0 {
		t.Errorf("heartbeat %+v", hb)
	}
	for _, p := range []float64{hb.CPUPercent, hb.MemoryPercent, hb.DiskPercent} {
		if p < 0 || p > 100 {
			t.Errorf("percentage %v", p)
		}
	}
	if hb.CPUPercent == 0 {
		t.Error("a busy loop left the CPU at 0%")
	}
	if hb.Load1 < 0 {
		t.Error("negative load")
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	parse := func(args []string, key string) (*Options, error) {
		var o Options
		fs := flag.NewFlagSet("worker run", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fv := o.Flags(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return &o, fv.Finish(func(k string) string {
			if k == KeyEnv {
				return key
			}
			return ""
		})
	}
	o, err := parse([]string{"-core", "https://c:8443", "-name", "w1", "-address", "10.8.0.5", "-runtime", "exec,podman",
		"-port-range", "30000-30099", "-capacity-memory", "2GiB", "-data-dir", "/var/lib/wh"}, "whk_key")
	if err != nil {
		t.Fatal(err)
	}
	reg := o.Registration("v1")
	if reg.Name != "w1" || reg.Address != "10.8.0.5" || reg.Capacity.Memory != 2<<30 ||
		reg.Capacity.CPU != int64(runtime.NumCPU())*1000 || len(reg.Runtimes) != 2 || o.PortMin != 30000 || o.PortMax != 30099 || o.APIKey != "whk_key" {
		t.Errorf("options %+v / %+v", o, reg)
	}
	if b, _ := json.Marshal(reg); strings.Contains(string(b), "whk_key") {
		t.Error("the key is in the registration")
	}
	if _, err := parse([]string{"-core", "https://c"}, ""); err == nil || !strings.Contains(err.Error(), KeyEnv) {
		t.Errorf("missing key: %v", err)
	}
	for _, bad := range [][]string{
		{"-core", "https://c", "-runtime", "docker"},
		{"-core", "https://c", "-port-range", "300-2"},
		{"-core", "https://c", "-log-level", "loud"},
		{"-name", "x"},
	} {
		if _, err := parse(bad, "k"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
