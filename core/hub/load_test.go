package hub_test

import (
	"bufio"
	"context"
	"fmt"
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
	"testing"
	"time"

	"github.com/gobwas/ws"

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
	loadConnsEv = "WH_HUB_CONNS" // connections of TestManyConnections (default 1000)
)

// runLoadClients is the child: it connects every key, sends one heartbeat
// on each connection, prints "ready", and holds the connections (no
// goroutine each) until its stdin closes.
func runLoadClients() int {
	b, err := os.ReadFile(os.Getenv(loadEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	keys := strings.Fields(string(b))
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
