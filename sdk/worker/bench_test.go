package worker

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// TestMain doubles as a fake core process for TestMemoryPerClient, so that
// the clients' process holds nothing of the server's.
func TestMain(m *testing.M) {
	if os.Getenv("WH_FAKECORE_CHILD") == "1" {
		fc := startFakeCore(false)
		fc.set(func(fc *fakeCore) { fc.discard, fc.multi = true, true })
		fmt.Println(fc.srv.URL)
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent is done
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// benchStats is an app_stats payload of about 512 bytes.
var benchStats = wsproto.AppStats{Apps: []wsproto.AppStat{
	{AppID: 101, CPUPercent: 12.5, MemBytes: 123456789, MemLimit: 536870912, NetRxBytes: 987654321, NetTxBytes: 123456789, NetMbps: 1.5, DiskMbps: 0.2},
	{AppID: 102, CPUPercent: 2.25, MemBytes: 23456789, MemLimit: 268435456, NetRxBytes: 87654321, NetTxBytes: 23456789, NetMbps: 0.5, DiskMbps: 0.1},
	{AppID: 103, CPUPercent: 0.5, MemBytes: 3456789, MemLimit: 134217728, NetRxBytes: 7654321, NetTxBytes: 3456789, NetMbps: 0.05, DiskMbps: 0},
}}

// BenchmarkSend measures sealed sends over loopback, end to end: the
// benchmark ends when the fake core has read every frame ("verify": and
// decoded and verified it as the hub does).
func BenchmarkSend(b *testing.B) {
	for _, mode := range []string{"discard", "verify"} {
		for _, par := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/senders=%d", mode, par), func(b *testing.B) {
				fc := newFakeCore(b)
				fc.set(func(fc *fakeCore) { fc.discard = mode == "discard" })
				c := newClient(b, fc, nil)
				run(b, c)
				conn := fc.waitConn(b)
				if mode == "verify" {
					go func() { // keep the verified-message channel drained
						for {
							select {
							case <-conn.msgs:
							case <-conn.done:
								return
							}
						}
					}()
				}
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				per := b.N / par
				for g := 0; g < par; g++ {
					n := per
					if g == 0 {
						n += b.N % par
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < n; i++ {
							if err := c.SendAppStats(ctx, benchStats); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				for conn.frames.Load() < int64(b.N) {
					time.Sleep(100 * time.Microsecond)
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
				if n := len(conn.rejects); n > 0 {
					b.Fatalf("%d messages refused", n)
				}
			})
		}
	}
}

// TestMemoryPerClient measures what an idle connected client costs its
// process: WH_WORKER_MEMTEST=N runs N clients against a fake core in a
// child process and reports heap+stack, RSS and goroutines per client.
func TestMemoryPerClient(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WH_WORKER_MEMTEST"))
	if n <= 0 {
		t.Skip("set WH_WORKER_MEMTEST=N to measure N idle clients")
	}
	if os.Getenv("WH_WORKER_MEMPROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "WH_FAKECORE_CHILD=1")
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); child.Wait() }()
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	url = strings.TrimSpace(url)

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 30 * time.Second}
	mk := func(i int) *Client {
		c, err := New(Config{
			CoreURL: url, APIKey: "whk_fake-worker-key-0123456789abcdefghijklmnopqrstuv",
			Registration: testRegistration, HTTPClient: hc,
			// Spread the sockets over 127.0.0.x source addresses, as the
			// load generator does.
			Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%200))}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Warm up: one client through the whole path, so that one-off runtime
	// and package state is not charged to the N.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	warm := mk(0)
	go warm.Run(ctx)
	waitFor(t, 10*time.Second, "warm-up client", warm.Connected)

	var stack0, stack1 uint64
	settle := func(stack *uint64) (heap, rss uint64, g int) {
		for i := 0; i < 3; i++ {
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		*stack = ms.StackInuse
		return ms.HeapInuse + ms.StackInuse, vmRSS(t), runtime.NumGoroutine()
	}
	h0, r0, g0 := settle(&stack0)
	// Started in batches straight on their Run goroutines (a helper
	// goroutine per client would leave its g and stack in the runtime's
	// free lists and be counted here).
	clients := make([]*Client, n)
	for i := range clients {
		clients[i] = mk(i)
		go clients[i].Run(ctx)
		if i%100 == 99 || i == n-1 {
			for _, c := range clients[i-i%100 : i+1] {
				waitFor(t, 30*time.Second, "client connect", c.Connected)
			}
		}
	}
	hc.CloseIdleConnections()
	time.Sleep(time.Second)
	h1, r1, g1 := settle(&stack1)
	t.Logf("%d idle clients: heap+stack %.1f KiB/client (stack %.1f KiB), RSS %.1f KiB/client, %.2f goroutines/client",
		n, float64(h1-h0)/1024/float64(n), float64(stack1-stack0)/1024/float64(n),
		float64(int64(r1)-int64(r0))/1024/float64(n), float64(g1-g0)/float64(n))
	if p := os.Getenv("WH_WORKER_MEMPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		_ = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	cancel()
}

// vmRSS reads the process's resident set size in bytes.
func vmRSS(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
