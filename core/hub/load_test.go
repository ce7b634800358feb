package hub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wisehosting/wisehosting/core/hub"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// The memory test's workers run in a child process (this test binary
// re-executed), so that the parent's memory is the hub's alone and each
// process spends one descriptor per connection.
const (
	loadEnv     = "WH_HUB_LOAD_KEYS" // file of raw keys, one per line: run as the load generator
	loadURLEnv  = "WH_HUB_LOAD_URL"
	loadConnsEv = "WH_HUB_CONNS"          // connections of TestManyConnections (default 1000)
	loadLogsEnv = "WH_HUB_LOAD_LOGS"      // send runtime logs at the rate limit for this long
	logBenchEnv = "WH_HUB_LOG_BENCH"      // run TestRuntimeLogThroughput
	loadEnvsEnv = "WH_HUB_LOAD_ENVELOPES" // send app_stats/heartbeats as fast as possible for this long
	envBenchEnv = "WH_HUB_ENV_BENCH"      // run TestEnvelopeThroughput
)

// sendEnvelopes sends, on every connection, signed envelopes as fast as
// the core takes them for d: 90 % app_stats about the worker's app, 10 %
// heartbeats, payloads of about 512 bytes, 64 frames per write. It returns
// how many it sent.
func sendEnvelopes(conns []net.Conn, keys []string, apps []int64, d time.Duration) int64 {
	var wg sync.WaitGroup
	var total atomic.Int64
	for i, conn := range conns {
		wg.Go(func() {
			go func() { _, _ = io.Copy(io.Discard, conn) }()
			key := wsproto.EnvelopeKey(keys[i])
			stats := make([]wsproto.AppStat, 3)
			for j := range stats {
				stats[j] = wsproto.AppStat{AppID: apps[i], CPUPercent: 12.5, MemBytes: 123456789, MemLimit: 536870912,
					NetRxBytes: 987654321, NetTxBytes: 123456789, NetMbps: 1.25, DiskMbps: 0.5}
			}
			statsPayload, _ := json.Marshal(wsproto.AppStats{Apps: stats})
			hbPayload, _ := json.Marshal(struct {
				wsproto.Heartbeat
				Pad string `json:"pad"`
			}{wsproto.Heartbeat{CPUPercent: 10, MemoryPercent: 20, DiskPercent: 30, MemoryTotal: 1 << 34, MemoryUsed: 1 << 33,
				DiskTotal: 1 << 40, DiskUsed: 1 << 39, Load1: 0.5, RunningApps: 3}, strings.Repeat("p", 512-300)})
			var buf []byte
			seq := uint64(1)
			start := time.Now()
			for time.Since(start) < d {
				buf = buf[:0]
				for k := 0; k < 64; k++ {
					seq++
					env := &wsproto.Envelope{Type: wsproto.TypeAppStats, Seq: seq, TS: time.Now().UnixMilli(), Payload: statsPayload}
					if seq%10 == 0 {
						env.Type, env.Payload = wsproto.TypeHeartbeat, hbPayload
					}
					wsproto.Seal(key, wsproto.WorkerToCore, env)
					frame, _ := wsproto.Encode(env)
					bs, _ := ws.CompileFrame(ws.MaskFrame(ws.NewTextFrame(frame)))
					buf = append(buf, bs...)
				}
				if _, err := conn.Write(buf); err != nil {
					return
				}
				total.Add(64)
			}
		})
	}
	wg.Wait()
	return total.Load()
}

// sendLogs sends runtime logs on every connection at wsproto.LogRate for
// d: 64 KiB messages of 100-byte lines, four per second each.
func sendLogs(conns []net.Conn, keys []string, apps []int64, d time.Duration) {
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Go(func() {
			// Drain what the core sends (errors, if any) so it never blocks.
			go func() { _, _ = io.Copy(io.Discard, conn) }()
			key := wsproto.EnvelopeKey(keys[i])
			line := strings.Repeat("l", 100)
			msg := wsproto.RuntimeLog{Lines: make([]wsproto.LogLine, (64<<10)/100)}
			per := time.Second * time.Duration(64<<10) / wsproto.LogRate
			start := time.Now()
			for n := 0; time.Since(start) < d; n++ {
				if wait := time.Until(start.Add(time.Duration(n) * per)); wait > 0 {
					time.Sleep(wait)
				}
				ts := time.Now().UnixNano()
				for j := range msg.Lines {
					msg.Lines[j] = wsproto.LogLine{AppID: apps[i], TS: ts, Stream: "stdout", Line: line}
				}
				payload, _ := json.Marshal(msg)
				env := &wsproto.Envelope{Type: wsproto.TypeRuntimeLog, Seq: uint64(n + 2), TS: time.Now().UnixMilli(), Payload: payload}
				wsproto.Seal(key, wsproto.WorkerToCore, env)
				frame, _ := wsproto.Encode(env)
				bs, _ := ws.CompileFrame(ws.MaskFrame(ws.NewTextFrame(frame)))
				if _, err := conn.Write(bs); err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// runLoadClients is the child: it connects every key, sends one heartbeat
// on each connection, prints "ready", and holds the connections (no
// goroutine each) until its stdin closes.
func runLoadClients() int {
	b, err := os.ReadFile(os.Getenv(loadEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var keys []string
	var apps []int64
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		keys = append(keys, f[0])
		var app int64
		if len(f) > 1 {
			app, _ = strconv.ParseInt(f[1], 10, 64)
		}
		apps = append(apps, app)
	}
	url := os.Getenv(loadURLEnv)
	conns := make([]net.Conn, len(keys))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 32)
	for i, key := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			conn, err := loadClient(url, key)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			conns[i] = conn
		})
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "load client:", firstErr)
		return 1
	}
	fmt.Println("ready", len(conns))
	if d, _ := time.ParseDuration(os.Getenv(loadLogsEnv)); d > 0 {
		sendLogs(conns, keys, apps, d)
		fmt.Println("done")
	}
	if d, _ := time.ParseDuration(os.Getenv(loadEnvsEnv)); d > 0 {
		fmt.Println("done", sendEnvelopes(conns, keys, apps, d))
	}
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	for _, c := range conns {
		c.Close()
	}
	return 0
}

// loadClient connects with key and sends one heartbeat.
func loadClient(url, key string) (net.Conn, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		d := ws.Dialer{Timeout: 30 * time.Second, Header: ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + key}})}
		conn, br, _, err := d.Dial(context.Background(), url)
		if err != nil {
			lastErr = err
			time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
			continue
		}
		if br != nil {
			ws.PutReader(br)
		}
		env := &wsproto.Envelope{Type: wsproto.TypeHeartbeat, Seq: 1, TS: time.Now().UnixMilli(), Payload: []byte(`{"cpu_percent":1,"memory_percent":2,"disk_percent":3,"running_apps":0}`)}
		wsproto.Seal(wsproto.EnvelopeKey(key), wsproto.WorkerToCore, env)
		frame, _ := wsproto.Encode(env)
		bs, _ := ws.CompileFrame(ws.MaskFrame(ws.NewTextFrame(frame)))
		if _, err := conn.Write(bs); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
	return nil, lastErr
}

// memSnapshot is the hub process's memory after a full collection.
type memSnapshot struct {
	heap, stack, goSys, rss uint64
	goroutines              int
}

func snapshot() memSnapshot {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSnapshot{heap: ms.HeapAlloc, stack: ms.StackInuse, goSys: ms.Sys - ms.HeapReleased, goroutines: runtime.NumGoroutine()}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			s.rss = pages * uint64(os.Getpagesize())
		}
	}
	return s
}

func perConn(after, before uint64, n int) float64 {
	return (float64(after) - float64(before)) / float64(n) / 1024
}

// TestManyConnections holds 1,000 worker connections (WH_HUB_CONNS to
// change) from a load generator process, checks they are all served (one
// heartbeat each, written by one UPDATE), and logs the hub's memory per
// connection in both designs.
func TestManyConnections(t *testing.T) {
	n := 1000
	if v := os.Getenv(loadConnsEv); v != "" {
		n, _ = strconv.Atoi(v)
	}
	if testing.Short() {
		n = 200
	}
	for _, mode := range []struct {
		name       string
		goroutines bool
	}{{"epoll", false}, {"goroutines", true}} {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, envOpts{goroutines: mode.goroutines})
			keys := make([]string, n)
			for i := range keys {
				m, err := workerauth.Mint(e.cipher)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.st.CreateWorker(e.ctx, store.NewWorker{Name: fmt.Sprintf("load-%05d", i), Creds: m.Creds}); err != nil {
					t.Fatal(err)
				}
				keys[i] = m.APIKey
			}
			keyFile := filepath.Join(t.TempDir(), "keys")
			if err := os.WriteFile(keyFile, []byte(strings.Join(keys, "\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			before := snapshot()
			startLoad(t, e.url, keyFile)
			testutil.WaitFor(t, time.Minute, "every worker connected", func() bool { return e.hub.Connected() == n })
			testutil.WaitFor(t, time.Minute, "every heartbeat received", func() bool {
				return e.metric("wisehosting_hub_envelopes_received_total", "type", wsproto.TypeHeartbeat) == float64(n)
			})
			after := snapshot()
			if err := e.hub.FlushHeartbeats(e.ctx); err != nil {
				t.Fatal(err)
			}
			if calls, beats := e.cs.heartbeatCalls.Load(), e.cs.heartbeatBeats.Load(); calls != 1 || beats != int64(n) {
				t.Fatalf("%d heartbeats took %d UPDATEs of %d rows", n, calls, beats)
			}
			if got := scalar[int64](e, `SELECT count(*) FROM workers WHERE status = 'online' AND cpu_percent = 1`); got != int64(n) {
				t.Fatalf("%d workers online with their heartbeat, want %d", got, n)
			}
			t.Logf("%s, %d connections: hub memory per connection: Go heap %.2f KiB + stacks %.2f KiB = %.2f KiB; "+
				"Go runtime total %.2f KiB; process RSS %.2f KiB; goroutines %d -> %d (race detector: %v)",
				mode.name, n, perConn(after.heap, before.heap, n), perConn(after.stack, before.stack, n),
				perConn(after.heap+after.stack, before.heap+before.stack, n), perConn(after.goSys, before.goSys, n),
				perConn(after.rss, before.rss, n), before.goroutines, after.goroutines, raceEnabled)
			if !mode.goroutines && after.goroutines-before.goroutines > 16 {
				t.Fatalf("epoll mode grew from %d to %d goroutines for %d idle connections", before.goroutines, after.goroutines, n)
			}
			if !raceEnabled && !mode.goroutines {
				if kib := perConn(after.heap+after.stack, before.heap+before.stack, n); kib > 8 {
					t.Fatalf("%.2f KiB of Go memory per idle connection; the budget is 8", kib)
				}
			}
		})
	}
}

// startLoad runs the load generator over the keys in keyFile and returns
// its output once every connection is up; it stops at test cleanup.
func startLoad(t *testing.T, url, keyFile string, env ...string) *bufio.Reader {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), loadEnv+"="+keyFile, loadURLEnv+"="+url), env...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		t.Fatalf("load generator: %q %v", line, err)
	}
	return out
}

// TestRuntimeLogThroughput (WH_HUB_LOG_BENCH=1, or =N for N workers) has
// 128 workers send
// runtime logs at their full rate limit (32 MiB/s together) for 15 s, from
// a load generator process on the same machine, and logs what the hub
// persisted per second. It asserts nothing: it is a measurement for the
// README, and the race detector distorts it.
func TestRuntimeLogThroughput(t *testing.T) {
	if os.Getenv(logBenchEnv) == "" {
		t.Skip("set " + logBenchEnv + "=1 to measure")
	}
	workers, dur := 128, 15*time.Second
	if n, _ := strconv.Atoi(os.Getenv(logBenchEnv)); n > 1 {
		workers = n
	}
	e := newEnv(t, envOpts{tweak: func(o *hub.Options) { o.LogFlush = hub.DefaultLogFlush }})
	var lines []string
	for i := 0; i < workers; i++ {
		w, key := e.worker(fmt.Sprintf("log-%03d", i))
		app := e.runningApp(w)
		lines = append(lines, fmt.Sprintf("%s %d", key, app.ID))
	}
	keyFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keyFile, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	out := startLoad(t, e.url, keyFile, loadLogsEnv+"="+dur.String())
	start := time.Now()
	if line, err := out.ReadString('\n'); err != nil || !strings.HasPrefix(line, "done") {
		t.Fatalf("load generator: %q %v", line, err)
	}
	sent := time.Since(start)
	testutil.WaitFor(t, time.Minute, "log queue drained", func() bool {
		return e.metric("wisehosting_hub_runtime_log_queue_bytes") == 0
	})
	el := time.Since(start)
	bytes := e.metric("wisehosting_hub_runtime_log_bytes_persisted_total")
	t.Logf("runtime logs from %d workers: %.1f MiB persisted in %s (sent over %s): %.1f MiB/s; %v lines in %v COPYs; dropped: rate_limited %v B, queue_full %v lines, db_error %v lines",
		workers, bytes/(1<<20), el.Round(time.Millisecond), sent.Round(time.Millisecond), bytes/(1<<20)/el.Seconds(),
		e.metric("wisehosting_hub_runtime_log_lines_persisted_total"), e.metric("wisehosting_hub_runtime_log_copies_total"),
		e.metric("wisehosting_hub_runtime_log_bytes_dropped_total", "reason", "rate_limited"),
		e.metric("wisehosting_hub_runtime_log_lines_dropped_total", "reason", "queue_full"),
		e.metric("wisehosting_hub_runtime_log_lines_dropped_total", "reason", "db_error"))
}

// TestEnvelopeThroughput (WH_HUB_ENV_BENCH=1, or =N for N workers, default
// 50) has workers send signed envelopes (90 % app_stats, 10 % heartbeat,
// ~512-byte payloads) as fast as the hub verifies and dispatches them for
// 10 s, from a load generator process sharing the machine, and logs the
// rate. A measurement, not an assertion.
func TestEnvelopeThroughput(t *testing.T) {
	if os.Getenv(envBenchEnv) == "" {
		t.Skip("set " + envBenchEnv + "=1 to measure")
	}
	workers, dur := 50, 10*time.Second
	if n, _ := strconv.Atoi(os.Getenv(envBenchEnv)); n > 1 {
		workers = n
	}
	e := newEnv(t, envOpts{})
	var lines []string
	for i := 0; i < workers; i++ {
		w, key := e.worker(fmt.Sprintf("env-%03d", i))
		app := e.runningApp(w)
		lines = append(lines, fmt.Sprintf("%s %d", key, app.ID))
	}
	keyFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keyFile, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	count := func() float64 {
		return e.metric("wisehosting_hub_envelopes_received_total", "type", wsproto.TypeAppStats) +
			e.metric("wisehosting_hub_envelopes_received_total", "type", wsproto.TypeHeartbeat)
	}
	out := startLoad(t, e.url, keyFile, loadEnvsEnv+"="+dur.String())
	base, start := count(), time.Now()
	line, err := out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "done") {
		t.Fatalf("load generator: %q %v", line, err)
	}
	got, el := count()-base, time.Since(start)
	t.Logf("%d workers: %.0f envelopes verified and dispatched in %s: %.0f/s (generator reports %s sent); rejected: %v",
		workers, got, el.Round(time.Millisecond), got/el.Seconds(), strings.TrimSpace(strings.TrimPrefix(line, "done")),
		e.metric("wisehosting_hub_rejected_envelopes_total", "reason", wsproto.CodeBadClock)+
			e.metric("wisehosting_hub_rejected_envelopes_total", "reason", wsproto.CodeNotOwner))
}
