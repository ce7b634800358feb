package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// wsWorker connects to a daemon's hub as a worker with its raw key.
func wsWorker(t *testing.T, url, key string, tlsCfg *tls.Config) net.Conn {
	t.Helper()
	d := ws.Dialer{TLSConfig: tlsCfg, Header: ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + key}})}
	conn, _, _, err := d.Dial(context.Background(), url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// heartbeat sends one signed heartbeat.
func heartbeat(t *testing.T, conn net.Conn, key string, seq uint64, cpu float64) {
	t.Helper()
	env := &wsproto.Envelope{Type: wsproto.TypeHeartbeat, Seq: seq, TS: time.Now().UnixMilli(),
		Payload: json.RawMessage(fmt.Sprintf(`{"cpu_percent":%v,"memory_percent":1,"disk_percent":1,"running_apps":0}`, cpu))}
	wsproto.Seal(wsproto.EnvelopeKey(key), wsproto.WorkerToCore, env)
	b, _ := wsproto.Encode(env)
	if err := wsutil.WriteClientText(conn, b); err != nil {
		t.Fatal(err)
	}
}

// closeCode reads until the server closes and returns its close code.
func closeCode(t *testing.T, conn net.Conn) ws.StatusCode {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := wsutil.ReadServerData(conn)
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

func statsOf(t *testing.T, client *http.Client, base string) map[string]int64 {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer "+storetest.Secret)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]int64
	if resp.StatusCode != 200 || json.Unmarshal(body, &m) != nil {
		t.Fatalf("GET /v1/stats: %d %s", resp.StatusCode, body)
	}
	return m
}

// TestWorkerHub checks the hub's wiring in the daemon, in plain HTTP and
// TLS: workers connect to /v1/workers/ws, /v1/stats counts them, a key
// rotation made by another process (the CLI; here another store on the
// same database) closes the live connection through NOTIFY, and shutdown
// closes connections with "going away" after writing pending heartbeats.
func TestWorkerHub(t *testing.T) {
	t.Parallel()
	for _, withTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[withTLS], func(t *testing.T) {
			t.Parallel()
			server, scheme, client := "", "http", &http.Client{Timeout: 10 * time.Second}
			var tlsCfg *tls.Config
			if withTLS {
				certFile, keyFile, cert := selfSignedCert(t, t.TempDir())
				server = fmt.Sprintf("  tls_cert = %s\n  tls_key = %s", hclString(certFile), hclString(keyFile))
				roots := x509.NewCertPool()
				roots.AddCert(cert)
				tlsCfg = &tls.Config{RootCAs: roots}
				scheme = "https"
				client.Transport = &http.Transport{TLSClientConfig: tlsCfg}
			}
			cfg := testConfig(t, server)
			r := start(t, cfg, nil)
			ctx := context.Background()
			st, cipher := r.d.db.Store, r.d.db.Cipher
			w1, key1, err := workerauth.AddWorker(ctx, st, cipher, "edge-1", "", "")
			if err != nil {
				t.Fatal(err)
			}
			w2, key2, err := workerauth.AddWorker(ctx, st, cipher, "edge-2", "", "")
			if err != nil {
				t.Fatal(err)
			}
			base := scheme + "://" + r.addr
			wsURL := strings.Replace(base, "http", "ws", 1) + "/v1/workers/ws"
			c1 := wsWorker(t, wsURL, key1, tlsCfg)
			c2 := wsWorker(t, wsURL, key2, tlsCfg)
			testutil.WaitFor(t, 10*time.Second, "both workers connected", func() bool {
				m := statsOf(t, client, base)
				return m["connected_workers"] == 2 && m["online_workers"] == 2 && m["total_workers"] == 2
			})

			// The CLI rotates edge-1's key from another process: here, a
			// store of its own on the daemon's database.
			cli, err := store.Open(ctx, store.Options{ConnString: r.d.db.ConnString, MaxConns: 2, Cipher: cipher})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			if _, _, err := workerauth.RotateKey(ctx, cli, cipher, w1.ID); err != nil {
				t.Fatal(err)
			}
			if code := closeCode(t, c1); code != 4002 {
				t.Fatalf("close code after rotation = %d, want 4002", code)
			}

			heartbeat(t, c2, key2, 1, 42)
			testutil.WaitFor(t, 10*time.Second, "heartbeat received", func() bool {
				return received(t, r.d, "heartbeat") == 1
			})
			if err := r.stop(t, 30*time.Second); err != nil {
				t.Fatalf("Serve: %v", err)
			}
			if code := closeCode(t, c2); code != ws.StatusGoingAway {
				t.Fatalf("close code at shutdown = %d, want 1001", code)
			}
			var cpu float64
			if err := cli.Pool().QueryRow(ctx, `SELECT cpu_percent FROM workers WHERE id = $1`, w2.ID).Scan(&cpu); err != nil || cpu != 42 {
				t.Fatalf("heartbeat pending at shutdown: cpu_percent = %v, %v; want 42", cpu, err)
			}
		})
	}
}

// received reads wisehosting_hub_envelopes_received_total{type=typ}.
func received(t *testing.T, d *Daemon, typ string) float64 {
	t.Helper()
	v, err := metrics.Sum(d.Registry(), "wisehosting_hub_envelopes_received_total", "type", typ)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
