// Package worker is a Go client for the WiseHosting worker protocol (see
// sdk/wsproto and its PROTOCOL.md): it registers a worker with the core,
// keeps its JWT fresh, holds the worker WebSocket open (reconnecting with
// jittered exponential backoff), signs every message it sends and verifies
// every message it receives.
//
// Typical use:
//
//	c, err := worker.New(worker.Config{
//		CoreURL: "https://core.example.com:8443",
//		APIKey:  os.Getenv("WISEHOSTING_WORKER_KEY"),
//		Registration: wsproto.RegisterRequest{
//			Address:  "10.8.0.5",
//			Capacity: wsproto.Capacity{CPU: 4000, Memory: 8 << 30},
//			Runtimes: []string{wsproto.RuntimeExec},
//		},
//	})
//	if err != nil { ... }
//	go func() {
//		for {
//			select {
//			case job := <-c.Jobs(): // dedup by JobID: the core replays
//				...
//			case <-ctx.Done():
//				return
//			}
//		}
//	}()
//	err = c.Run(ctx) // until ctx ends, or the key is refused
//
// # Cost per client
//
// The client is written so that a load generator can run thousands of
// simulated workers in one process. While connected and idle a client holds
// one goroutine (the one running [Client.Run], parked in a socket read;
// registration, token refresh and the handshake run on short-lived
// goroutines so that its stack stays at 4 KiB), no read or write buffer
// (frames are built in and read into buffers from a shared pool, held only
// for one message), an HMAC state, and two timers (keepalive and JWT
// refresh). Measured with TestMemoryPerClient (WH_WORKER_MEMTEST=N, the
// fake core in a child process, 127.0.0.x source addresses): 10–11 KiB of
// Go heap and stack per idle plaintext client (of which 4 KiB stack) and
// 13–17 KiB of RSS, at 1000 and 5000 clients; one goroutine each. Kernel
// socket buffers are not included; TLS adds its record buffers.
//
// [Client.Send] writes on the caller's goroutine, under the connection's
// write lock; pongs to the core's pings are written by the reading
// goroutine under the same lock.
package worker
