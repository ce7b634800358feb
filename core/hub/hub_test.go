package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wisehosting/wisehosting/core/hub"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// modes runs a test against both connection designs: the epoll readiness
// loop (plain connections) and a reader goroutine per connection (what TLS
// connections use).
func modes(t *testing.T, fn func(t *testing.T, o envOpts)) {
	t.Run("epoll", func(t *testing.T) { fn(t, envOpts{}) })
	t.Run("goroutines", func(t *testing.T) { fn(t, envOpts{goroutines: true}) })
}

func TestUpgradeAuthentication(t *testing.T) {
	e := newEnv(t, envOpts{})
	w, key := e.worker("edge-1")
	old, _ := secrets.NewJWTIssuer(storetest.Secret, func() time.Time { return time.Now().Add(-secrets.JWTTTL - time.Minute) })
	expired, _, err := old.Sign(w.ID, w.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := secrets.NewJWTIssuer("another-secret-0123456789abcdef", nil)
	forgedTok, _, _ := forged.Sign(w.ID, w.KeyID)
	cases := []struct {
		name, bearer string
	}{
		{"no credential", ""},
		{"garbage", "not-a-key"},
		{"server secret", storetest.Secret},
		{"hash of the server secret", secrets.HashAPIKey(storetest.Secret)},
		{"expired JWT", expired},
		{"JWT signed with another secret", forgedTok},
		{"lookup hash of the key", secrets.HashAPIKey(key)},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialErr(e.url, tc.bearer, nil)
			var se ws.StatusError
			if !errors.As(err, &se) || int(se) != http.StatusUnauthorized {
				t.Fatalf("dial = %v, want 401", err)
			}
			if got := e.metric("wisehosting_hub_upgrades_total", "result", "unauthorized"); got != float64(i+1) {
				t.Fatalf("unauthorized upgrades = %v, want %d", got, i+1)
			}
		})
	}
	// The 401 is the API's JSON error, sent before any upgrade.
	req, _ := http.NewRequest("GET", e.srv.URL+hub.Path, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Authorization", "Bearer "+storetest.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(body), `"code":"unauthorized"`) {
		t.Fatalf("401 response = %d %s", resp.StatusCode, body)
	}

	// The raw key and a current JWT are accepted; connecting brings the
	// worker online.
	if err := e.st.SetWorkerStatus(e.ctx, w.ID, "offline"); err != nil {
		t.Fatal(err)
	}
	c := e.connect(w, key)
	c.sync()
	if got := scalar[string](e, `SELECT status FROM workers WHERE id = $1`, w.ID); got != "online" {
		t.Fatalf("status after connect = %s", got)
	}
	c2 := dial(t, e.url, e.token(w), wsproto.EnvelopeKey(key))
	c2.sync()
	if e.metric("wisehosting_hub_upgrades_total", "result", "ok") != 2 {
		t.Fatal("ok upgrades not counted")
	}
}

func TestKeyRotationClosesConnectionAndInvalidatesCache(t *testing.T) {
	e := newEnv(t, envOpts{})
	w, key := e.worker("edge-1")
	bystander, bkey := e.worker("edge-2")
	tok := e.token(w)
	c := e.connect(w, key) // caches the raw key
	c.sync()
	b := e.connect(bystander, bkey)
	if e.keys.Len() != 2 {
		t.Fatalf("key cache holds %d keys, want 2", e.keys.Len())
	}
	w2, newKey, err := workerauth.RotateKey(e.ctx, e.st, e.cipher, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The NOTIFY closes the live connection, whose envelope key is gone.
	if code := c.expectClosed(); code != 4002 {
		t.Fatalf("close code after rotation = %d, want 4002", code)
	}
	if e.keys.Len() != 1 {
		t.Fatalf("key cache holds %d keys after rotation, want the bystander's only", e.keys.Len())
	}
	for name, bearer := range map[string]string{"old raw key": key, "JWT of the old key": tok} {
		if _, err := dialErr(e.url, bearer, nil); !isStatus(err, 401) {
			t.Fatalf("%s after rotation: %v, want 401", name, err)
		}
	}
	c2 := dial(t, e.url, e.token(w2), wsproto.EnvelopeKey(newKey))
	c2.sync()
	c3 := dial(t, e.url, newKey, wsproto.EnvelopeKey(newKey))
	c3.sync()
	b.sync() // the other worker was not disturbed
}

// A worker the health check takes offline (on any core: the NOTIFY
// reaches every hub) loses its connection, so that if it is alive it
// reconnects and the connect path brings it online again.
func TestWorkerTakenOfflineIsDisconnected(t *testing.T) {
	e := newEnv(t, envOpts{})
	w, key := e.worker("edge-1")
	bw, bkey := e.worker("edge-2")
	c := e.connect(w, key)
	c.sync()
	b := e.connect(bw, bkey)
	b.sync()
	if _, err := e.st.Pool().Exec(e.ctx, `UPDATE workers SET last_heartbeat = now() - interval '10 minutes' WHERE id = $1`, w.ID); err != nil {
		t.Fatal(err)
	}
	off, err := e.st.TakeSilentWorkersOffline(e.ctx, 2*time.Minute)
	if err != nil || len(off) != 1 || off[0].ID != w.ID {
		t.Fatalf("offline = %+v, %v", off, err)
	}
	if code := c.expectClosed(); code != 4004 {
		t.Fatalf("close code = %d, want 4004", code)
	}
	b.sync() // the other worker is untouched
	c2 := e.connect(w, key)
	c2.sync()
	if got := scalar[string](e, `SELECT status FROM workers WHERE id = $1`, w.ID); got != "online" {
		t.Fatalf("status after reconnecting = %s", got)
	}
}

func isStatus(err error, code int) bool {
	var se ws.StatusError
	return errors.As(err, &se) && int(se) == code
}

func TestEnvelopeRejections(t *testing.T) {
	modes(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		w, key := e.worker("edge-1")
		bw, bkey := e.worker("edge-2")
		app := e.runningApp(bw)
		c := e.connect(w, key)
		b := e.connect(bw, bkey)

		tampered := c.envelope(wsproto.TypeHeartbeat, wsproto.Heartbeat{CPUPercent: 10})
		tampered.Payload = json.RawMessage(`{"cpu_percent":99}`)
		reflected := &wsproto.Envelope{Type: wsproto.TypeHeartbeat, Seq: 1 << 40, TS: time.Now().UnixMilli(), Payload: json.RawMessage(`{}`)}
		wsproto.Seal(wsproto.EnvelopeKey(key), wsproto.CoreToWorker, reflected)
		skewed := c.envelope(wsproto.TypeHeartbeat, wsproto.Heartbeat{})
		skewed.TS = time.Now().Add(-2 * wsproto.MaxClockSkew).UnixMilli()
		wsproto.Seal(c.key, wsproto.WorkerToCore, skewed)
		replayed := c.envelope(wsproto.TypeHeartbeat, wsproto.Heartbeat{})
		c.sendEnv(replayed)
		c.sync()

		cases := []struct {
			name string
			code string
			send func() uint64
		}{
			{"tampered MAC", wsproto.CodeBadMAC, func() uint64 { c.sendEnv(tampered); return tampered.Seq }},
			{"signed for the other direction", wsproto.CodeBadMAC, func() uint64 { c.sendEnv(reflected); return reflected.Seq }},
			{"replayed seq", wsproto.CodeReplayed, func() uint64 { c.sendEnv(replayed); return replayed.Seq }},
			{"skewed clock", wsproto.CodeBadClock, func() uint64 { c.sendEnv(skewed); return skewed.Seq }},
			{"unknown type", wsproto.CodeUnknownType, func() uint64 { return c.send("teleport", map[string]int{"x": 1}) }},
			{"not an envelope", wsproto.CodeBadFrame, func() uint64 {
				if err := c.frame(ws.OpText, []byte("not json")); err != nil {
					t.Fatal(err)
				}
				return 0
			}},
			{"bad payload", wsproto.CodeBadPayload, func() uint64 {
				return c.send(wsproto.TypeHeartbeat, map[string]string{"cpu_percent": "high"})
			}},
			{"job of another worker", wsproto.CodeNotOwner, func() uint64 {
				return c.send(wsproto.TypeJobStatus, wsproto.JobStatus{JobID: 999999, Status: "processing"})
			}},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := e.metric("wisehosting_hub_rejected_envelopes_total", "reason", tc.code)
				seq := tc.send()
				c.expectError(tc.code, seq)
				if tc.code == wsproto.CodeUnknownType {
					before++ // sync's own barrier is also counted below
				}
				c.sync()
				if got := e.metric("wisehosting_hub_rejected_envelopes_total", "reason", tc.code); got != before+1 {
					t.Fatalf("rejected{%s} went from %v to %v", tc.code, before, got)
				}
				// The other worker keeps being served.
				b.send(wsproto.TypeAppStats, wsproto.AppStats{Apps: []wsproto.AppStat{{AppID: app.ID, CPUPercent: float64(i + 1)}}})
				b.sync()
				if st, ok := e.hub.AppStatsLive(app.ID); !ok || st.CPUPercent != float64(i+1) {
					t.Fatalf("bystander's stats = %+v, %v", st, ok)
				}
			})
		}
		// After all that, the connection still works.
		c.send(wsproto.TypeHeartbeat, wsproto.Heartbeat{CPUPercent: 1})
		c.sync()
	})
}

func TestRepeatedBadMACsCloseTheConnection(t *testing.T) {
	modes(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		w, key := e.worker("edge-1")
		c := e.connect(w, key)
		for i := 0; i < 10; i++ {
			env := c.envelope(wsproto.TypeHeartbeat, wsproto.Heartbeat{})
			env.MAC = strings.Repeat("A", 43)
			c.sendEnv(env)
		}
		if code := c.expectClosed(); code != 4003 {
			t.Fatalf("close code = %d, want 4003", code)
		}
		if got := e.metric("wisehosting_hub_rejected_envelopes_total", "reason", wsproto.CodeBadMAC); got != 10 {
			t.Fatalf("bad_mac count = %v", got)
		}
		testutil.WaitFor(t, waitLong, "worker unregistered", func() bool { return !e.hub.IsConnected(w.ID) })
	})
}

func TestOversizeFrameClosesTheConnection(t *testing.T) {
	modes(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		w, key := e.worker("edge-1")
		bw, bkey := e.worker("edge-2")
		c := e.connect(w, key)
		b := e.connect(bw, bkey)
		if err := c.frame(ws.OpText, bytes.Repeat([]byte{'x'}, wsproto.MaxFrameSize+1)); err != nil {
			t.Logf("write of the oversize frame cut short: %v", err) // the core may close first
		}
		c.expectError(wsproto.CodeTooLarge, 0)
		if code := c.expectClosed(); code != ws.StatusMessageTooBig {
			t.Fatalf("close code = %d, want 1009", code)
		}
		if e.metric("wisehosting_hub_rejected_envelopes_total", "reason", wsproto.CodeTooLarge) != 1 {
			t.Fatal("too_large not counted")
		}
		b.send(wsproto.TypeHeartbeat, wsproto.Heartbeat{})
		b.sync()
		// A fragmented message beyond the limit is refused the same way.
		c2 := e.connect(w, key)
		half := bytes.Repeat([]byte{'x'}, wsproto.MaxFrameSize/2+1)
		for _, f := range []ws.Frame{ws.NewFrame(ws.OpText, false, half), ws.NewFrame(ws.OpContinuation, true, half)} {
			bs, _ := ws.CompileFrame(ws.MaskFrame(f))
			if _, err := c2.writeLocked(bs); err != nil {
				break
			}
		}
		c2.expectError(wsproto.CodeTooLarge, 0)
		c2.expectClosed()
	})
}

func TestFragmentedMessagesAndPings(t *testing.T) {
	modes(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		w, key := e.worker("edge-1")
		c := e.connect(w, key)
		env := c.envelope("fragmented.unknown", map[string]string{"pad": bytesOf(70<<10, 'p')})
		b, _ := wsproto.Encode(env)
		// Text, a ping between fragments, then the rest.
		f1, _ := ws.CompileFrame(ws.MaskFrame(ws.NewFrame(ws.OpText, false, b[:40000])))
		p, _ := ws.CompileFrame(ws.MaskFrame(ws.NewPingFrame([]byte("hi"))))
		f2, _ := ws.CompileFrame(ws.MaskFrame(ws.NewFrame(ws.OpContinuation, true, b[40000:])))
		for _, bs := range [][]byte{f1, p, f2} {
			if _, err := c.writeLocked(bs); err != nil {
				t.Fatal(err)
			}
		}
		c.expectError(wsproto.CodeUnknownType, env.Seq)
	})
}

func TestHeartbeatsAreCoalesced(t *testing.T) {
	e := newEnv(t, envOpts{})
	const workers, beats = 5, 20
	var clients []*client
	var ids []int64
	for i := 0; i < workers; i++ {
		w, key := e.worker("edge-" + string(rune('a'+i)))
		clients = append(clients, e.connect(w, key))
		ids = append(ids, w.ID)
	}
	for n := 1; n <= beats; n++ {
		for i, c := range clients {
			c.send(wsproto.TypeHeartbeat, wsproto.Heartbeat{CPUPercent: float64(n), MemoryPercent: float64(i), RunningApps: int64(n)})
		}
	}
	for _, c := range clients {
		c.sync()
	}
	if got := e.metric("wisehosting_hub_envelopes_received_total", "type", wsproto.TypeHeartbeat); got != workers*beats {
		t.Fatalf("heartbeats received = %v", got)
	}
	if e.cs.heartbeatCalls.Load() != 0 {
		t.Fatal("a heartbeat was written before the flush")
	}
	before := time.Now()
	if err := e.hub.FlushHeartbeats(e.ctx); err != nil {
		t.Fatal(err)
	}
	if calls, n := e.cs.heartbeatCalls.Load(), e.cs.heartbeatBeats.Load(); calls != 1 || n != workers {
		t.Fatalf("%d heartbeats of %d workers cost %d UPDATEs of %d rows; want 1 of %d", workers*beats, workers, calls, n, workers)
	}
	for i, id := range ids {
		var cpu, mem float64
		var apps int64
		var at time.Time
		if err := e.st.Pool().QueryRow(e.ctx, `SELECT cpu_percent, memory_percent, running_apps, last_heartbeat FROM workers WHERE id = $1`, id).
			Scan(&cpu, &mem, &apps, &at); err != nil {
			t.Fatal(err)
		}
		if cpu != beats || mem != float64(i) || apps != beats || at.After(before) || before.Sub(at) > waitLong {
			t.Fatalf("worker %d: cpu %v mem %v apps %d at %v; want the latest beat at the core's receive time", i, cpu, mem, apps, at)
		}
	}
	if err := e.hub.FlushHeartbeats(e.ctx); err != nil || e.cs.heartbeatCalls.Load() != 1 {
		t.Fatalf("an empty flush wrote: %v", err)
	}
	if e.metric("wisehosting_hub_heartbeat_flushes_total") != 1 || e.metric("wisehosting_hub_heartbeats_flushed_total") != workers {
		t.Fatal("flush metrics")
	}
}

func TestJobPushReplayAndResult(t *testing.T) {
	modes(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		w, key := e.worker("edge-1")
		d1 := e.deploy(w)
		if e.hub.PushJob(w.ID, d1.Job.ID) {
			t.Fatal("PushJob to a worker connected elsewhere claimed success")
		}
		// Replay on connect.
		c := e.connect(w, key)
		j := c.expectJob()
		if j.JobID != d1.Job.ID || j.Type != store.JobDeploy || j.DeploymentID != d1.Deployment.ID || j.Payload == nil ||
			j.Payload.GitToken != "ghp_secret" || j.Payload.Limits.Memory != 256<<20 {
			t.Fatalf("replayed job = %+v", j)
		}
		seq := c.send(wsproto.TypeJobStatus, wsproto.JobStatus{JobID: d1.Job.ID, Status: "processing", Progress: 10})
		c.sync()
		if got := scalar[string](e, `SELECT status FROM jobs WHERE id = $1`, d1.Job.ID); got != store.JobProcessing {
			t.Fatalf("job status after processing (seq %d) = %s", seq, got)
		}
		// Push while connected.
		d2 := e.deploy(w)
		if !e.hub.PushJob(w.ID, d2.Job.ID) {
			t.Fatal("PushJob to a connected worker did nothing")
		}
		if j := c.expectJob(); j.JobID != d2.Job.ID {
			t.Fatalf("pushed job = %+v", j)
		}
		// The result settles the app and emits the deployment event; the
		// next assigned job is replayed.
		c.send(wsproto.TypeJobResult, wsproto.JobResult{JobID: d1.Job.ID, Success: true, Port: 20005, ContainerID: "pid-1\x00", CommitSHA: "abc1234"})
		if j := c.expectJob(); j.JobID != d2.Job.ID {
			t.Fatalf("job replayed after the result = %+v", j)
		}
		app, err := e.st.FindAppByID(e.ctx, d1.App.ID)
		if err != nil {
			t.Fatal(err)
		}
		if app.Status != store.AppRunning || app.Port != 20005 || app.WorkerID == nil || *app.WorkerID != w.ID || app.ContainerID != "pid-1" {
			t.Fatalf("app after result = %+v", app)
		}
		if got := scalar[string](e, `SELECT status FROM deployments WHERE id = $1`, d1.Deployment.ID); got != store.DeploymentSucceeded {
			t.Fatalf("deployment = %s", got)
		}
		if got := scalar[string](e, `SELECT string_agg(type, ',') FROM event_outbox WHERE app_id = $1`, d1.App.ID); got != event.DeploymentSucceeded {
			t.Fatalf("outbox = %s", got)
		}
		// A repeated result is refused and changes nothing.
		seq = c.send(wsproto.TypeJobResult, wsproto.JobResult{JobID: d1.Job.ID, Success: false})
		c.expectError(wsproto.CodeNotOwner, seq)
		// A failed deploy releases capacity.
		c.send(wsproto.TypeJobResult, wsproto.JobResult{JobID: d2.Job.ID, Success: false, Error: "build failed"})
		c.sync()
		if got := scalar[string](e, `SELECT status FROM apps WHERE id = $1`, d2.App.ID); got != store.AppFailed {
			t.Fatalf("failed app = %s", got)
		}
		if got := scalar[int64](e, `SELECT used_cpu FROM workers WHERE id = $1`, w.ID); got != 500 {
			t.Fatalf("used cpu = %d, want only the running app's 500", got)
		}
		if e.metric("wisehosting_hub_jobs_sent_total", "cause", "replay") != 2 || e.metric("wisehosting_hub_jobs_sent_total", "cause", "push") != 1 {
			t.Fatal("job send metrics")
		}
	})
}

func TestAppStatsOwnershipAndTTL(t *testing.T) {
	e := newEnv(t, envOpts{})
	wa, ka := e.worker("edge-a")
	wb, kb := e.worker("edge-b")
	app := e.runningApp(wa)
	other := e.runningApp(wb)
	a := e.connect(wa, ka)
	b := e.connect(wb, kb)

	seq := b.send(wsproto.TypeAppStats, wsproto.AppStats{Apps: []wsproto.AppStat{{AppID: app.ID, CPUPercent: 99}, {AppID: other.ID, CPUPercent: 5}}})
	b.expectError(wsproto.CodeNotOwner, seq)
	if _, ok := e.hub.AppStatsLive(app.ID); ok {
		t.Fatal("another worker's report about the app was stored")
	}
	if st, ok := e.hub.AppStatsLive(other.ID); !ok || st.CPUPercent != 5 {
		t.Fatal("the worker's own app in the same message was dropped")
	}
	for i := 0; i < 20; i++ {
		a.send(wsproto.TypeAppStats, wsproto.AppStats{Apps: []wsproto.AppStat{{AppID: app.ID, CPUPercent: 42.5, MemBytes: 100 << 20,
			MemLimit: 256 << 20, NetRxBytes: 1000, NetTxBytes: 234, NetMbps: 1.5, DiskMbps: 0.25}}})
	}
	a.sync()
	st, ok := e.hub.AppStatsLive(app.ID)
	if !ok || st.WorkerID != wa.ID || st.CPUPercent != 42.5 || st.MemBytes != 100<<20 || st.MemLimit != 256<<20 ||
		st.NetTotalBytes != 1234 || st.NetMbps != 1.5 || st.DiskMbps != 0.25 {
		t.Fatalf("live stats = %+v, %v", st, ok)
	}
	if n := e.cs.appIDLoads.Load(); n > 3 {
		t.Fatalf("ownership loaded %d times for 22 messages; it must be cached", n)
	}
	e.clock.advance(hub.StatsTTL + time.Second)
	if _, ok := e.hub.AppStatsLive(app.ID); ok {
		t.Fatal("stats outlived their TTL")
	}
}

func TestRuntimeLogs(t *testing.T) {
	modes(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		wa, ka := e.worker("edge-a")
		wb, _ := e.worker("edge-b")
		app := e.runningApp(wa)
		foreign := e.runningApp(wb)
		sub := e.hub.Bus().Subscribe([]int64{app.ID}, 16)
		defer sub.Close()
		a := e.connect(wa, ka)

		ts := time.Now().Add(-time.Minute).UnixNano()
		long := bytesOf(wsproto.MaxLogLine+500, 'L')
		seq := a.send(wsproto.TypeRuntimeLog, wsproto.RuntimeLog{Lines: []wsproto.LogLine{
			{AppID: app.ID, TS: ts, Stream: "stdout", Line: "\x1b[31mred\x1b[0m and \x1b]0;title\x07plain"},
			{AppID: app.ID, TS: ts + 1, Stream: "stdout", Line: "nul\x00byte\r"},
			{AppID: foreign.ID, TS: ts, Stream: "stdout", Line: "not mine"},
			{AppID: app.ID, TS: ts + 2, Stream: "stderr", Line: "oops\nsecond"},
			{AppID: app.ID, TS: ts + 3, Stream: "weird", Line: long},
		}})
		a.expectError(wsproto.CodeNotOwner, seq)

		var got []hub.LogLine
		for len(got) < 4 {
			select {
			case batch := <-sub.C:
				got = append(got, batch...)
			case <-time.After(waitLong):
				t.Fatalf("bus delivered %d lines", len(got))
			}
		}
		texts := map[string]string{}
		for _, l := range got {
			if l.AppID != app.ID || l.WorkerID != wa.ID {
				t.Fatalf("line %+v", l)
			}
			texts[l.Stream+":"+l.Line[:min(len(l.Line), 8)]] = l.Line
		}
		if texts["stdout:red and "] != "red and plain" || texts["stdout:nulbyte"] != "nulbyte" ||
			texts["stderr:oops sec"] != "oops second" || len(texts["stdout:LLLLLLLL"]) != wsproto.MaxLogLine {
			t.Fatalf("sanitized lines = %q", texts)
		}
		testutil.WaitFor(t, waitLong, "lines persisted", func() bool {
			return scalar[int64](e, `SELECT coalesce(sum(line_count), 0) FROM runtime_logs WHERE app_id = $1`, app.ID) == 4
		})
		if n := scalar[int64](e, `SELECT count(*) FROM runtime_logs WHERE app_id = $1`, foreign.ID); n != 0 {
			t.Fatal("a line of another worker's app was stored")
		}
		stdout := scalar[string](e, `SELECT line FROM runtime_logs WHERE app_id = $1 AND stream = 'stdout' AND line_count = 3`, app.ID)
		if lines := strings.Split(stdout, "\n"); len(lines) != 3 || lines[0] != "red and plain" || lines[1] != "nulbyte" {
			t.Fatalf("stored stdout chunk = %q", stdout)
		}
		if first := scalar[time.Time](e, `SELECT ts FROM runtime_logs WHERE app_id = $1 AND stream = 'stderr'`, app.ID); !first.Equal(time.Unix(0, ts+2).Truncate(time.Microsecond)) {
			t.Fatalf("stored ts = %v, want the line's", first)
		}
		if e.metric("wisehosting_hub_runtime_log_lines_persisted_total") != 4 ||
			e.metric("wisehosting_hub_runtime_log_lines_dropped_total", "reason", wsproto.CodeNotOwner) != 1 {
			t.Fatal("log metrics")
		}
	})
}

func TestLogFloodIsRateLimited(t *testing.T) {
	modes(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		wa, ka := e.worker("edge-a")
		wb, kb := e.worker("edge-b")
		app := e.runningApp(wa)
		bapp := e.runningApp(wb)
		sub := e.hub.Bus().Subscribe([]int64{bapp.ID}, 64)
		defer sub.Close()
		a := e.connect(wa, ka)
		b := e.connect(wb, kb)

		// 3 MiB at once, in 128 KiB messages: the 1 MiB burst passes, the
		// rest (minus what refills meanwhile) is refused.
		line := bytesOf(1000, 'f')
		lines := make([]wsproto.LogLine, 128)
		for i := range lines {
			lines[i] = wsproto.LogLine{AppID: app.ID, Line: line}
		}
		start := time.Now()
		const msgs = 24
		for i := 0; i < msgs; i++ {
			a.send(wsproto.TypeRuntimeLog, wsproto.RuntimeLog{Lines: lines})
		}
		barrier := a.send("sync.barrier", nil)
		limited := 0
		for {
			env := a.next()
			var er wsproto.Error
			_ = json.Unmarshal(env.Payload, &er)
			if env.ReplyTo == barrier {
				break
			}
			if er.Code != wsproto.CodeRateLimited {
				t.Fatalf("unexpected answer %s", env.Payload)
			}
			limited++
		}
		elapsed := time.Since(start)
		msgSize := len(mustJSON(wsproto.RuntimeLog{Lines: lines}))
		maxPass := (wsproto.LogBurst + int(elapsed.Seconds()*wsproto.LogRate) + msgSize) / msgSize
		if passed := msgs - limited; limited == 0 || passed > maxPass || passed < wsproto.LogBurst/msgSize {
			t.Fatalf("%d of %d messages passed in %s; want about %d", passed, msgs, elapsed, wsproto.LogBurst/msgSize)
		}
		if got := e.metric("wisehosting_hub_rejected_envelopes_total", "reason", wsproto.CodeRateLimited); got != float64(limited) {
			t.Fatalf("rate_limited counted %v, answered %d", got, limited)
		}
		if e.metric("wisehosting_hub_runtime_log_bytes_dropped_total", "reason", wsproto.CodeRateLimited) == 0 {
			t.Fatal("dropped bytes not counted")
		}
		// Meanwhile another worker's logs flow.
		b.send(wsproto.TypeRuntimeLog, wsproto.RuntimeLog{Lines: []wsproto.LogLine{{AppID: bapp.ID, Line: "still here"}}})
		select {
		case got := <-sub.C:
			if got[0].Line != "still here" {
				t.Fatalf("bystander line = %+v", got)
			}
		case <-time.After(waitLong):
			t.Fatal("bystander's log line never arrived")
		}
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestBuildLogIsCapped(t *testing.T) {
	e := newEnv(t, envOpts{})
	wa, ka := e.worker("edge-a")
	wb, kb := e.worker("edge-b")
	d := e.deploy(wa)
	a := e.connect(wa, ka)
	a.expectJob()
	b := e.connect(wb, kb)

	logs := bytesOf(300<<10, 'h') + "\x1b[1mbold\x1b[0m" + bytesOf(300<<10, 't')
	a.send(wsproto.TypeBuildLog, wsproto.BuildLog{DeploymentID: d.Deployment.ID, JobID: d.Job.ID, Logs: logs})
	a.sync()
	stored := scalar[string](e, `SELECT build_logs FROM deployments WHERE id = $1`, d.Deployment.ID)
	if len(stored) > wsproto.MaxBuildLog || !strings.Contains(stored, wsproto.TruncationMarker) ||
		!strings.HasPrefix(stored, "hhhh") || !strings.HasSuffix(stored, "tttt") || strings.Contains(stored, "\x1b") {
		t.Fatalf("stored build log: %d bytes, prefix %q, suffix %q", len(stored), stored[:8], stored[len(stored)-8:])
	}
	seq := b.send(wsproto.TypeBuildLog, wsproto.BuildLog{DeploymentID: d.Deployment.ID, Logs: "forged"})
	b.expectError(wsproto.CodeNotOwner, seq)
	if got := scalar[string](e, `SELECT left(build_logs, 4) FROM deployments WHERE id = $1`, d.Deployment.ID); got != "hhhh" {
		t.Fatal("another worker overwrote the build log")
	}
}

func TestNewConnectionReplacesOld(t *testing.T) {
	modes(t, func(t *testing.T, o envOpts) {
		e := newEnv(t, o)
		w, key := e.worker("edge-1")
		first := e.connect(w, key)
		first.sync()
		second := dial(t, e.url, e.token(w), wsproto.EnvelopeKey(key))
		if code := first.expectClosed(); code != 4001 {
			t.Fatalf("old connection closed with %d, want 4001", code)
		}
		second.sync()
		if e.hub.Connected() != 1 || e.metric("wisehosting_hub_connections") != 1 {
			t.Fatalf("connected = %d, gauge %v", e.hub.Connected(), e.metric("wisehosting_hub_connections"))
		}
		// The new connection gets pushes.
		d := e.deploy(w)
		e.hub.PushJob(w.ID, d.Job.ID)
		if j := second.expectJob(); j.JobID != d.Job.ID {
			t.Fatalf("job = %+v", j)
		}
	})
}

func TestAppStatusAndViolation(t *testing.T) {
	e := newEnv(t, envOpts{})
	wa, ka := e.worker("edge-a")
	wb, kb := e.worker("edge-b")
	crashing := e.runningApp(wa)
	stopping := e.runningApp(wa)
	violating := e.runningApp(wa)
	a := e.connect(wa, ka)
	b := e.connect(wb, kb)

	a.send(wsproto.TypeAppStats, wsproto.AppStats{Apps: []wsproto.AppStat{{AppID: stopping.ID, CPUPercent: 3}}})
	a.send(wsproto.TypeAppStatus, wsproto.AppStatus{AppID: crashing.ID, Status: "crashloop", RestartCount: 5, Message: "exit 1"})
	a.send(wsproto.TypeAppStatus, wsproto.AppStatus{AppID: crashing.ID, Status: "crashloop", RestartCount: 6})
	a.send(wsproto.TypeAppStatus, wsproto.AppStatus{AppID: stopping.ID, Status: "stopped"})
	a.send(wsproto.TypeViolation, wsproto.Violation{AppID: violating.ID, Kind: "memory", Message: "OOM"})
	seq := b.send(wsproto.TypeAppStatus, wsproto.AppStatus{AppID: violating.ID, Status: "stopped"})
	b.expectError(wsproto.CodeNotOwner, seq)
	seq = b.send(wsproto.TypeViolation, wsproto.Violation{AppID: crashing.ID, Kind: "cpu"})
	b.expectError(wsproto.CodeNotOwner, seq)
	seq = a.send(wsproto.TypeAppStatus, wsproto.AppStatus{AppID: crashing.ID, Status: "exploded"})
	a.expectError(wsproto.CodeBadPayload, seq)
	a.sync()

	row := func(id int64) (status string, restarts int64, worker *int64, reason string) {
		if err := e.st.Pool().QueryRow(e.ctx, `SELECT status, restart_count, worker_id, violation_reason FROM apps WHERE id = $1`, id).
			Scan(&status, &restarts, &worker, &reason); err != nil {
			t.Fatal(err)
		}
		return
	}
	if s, n, _, _ := row(crashing.ID); s != "crashloop" || n != 6 {
		t.Fatalf("crashing app: %s, %d restarts", s, n)
	}
	if s, _, wk, _ := row(stopping.ID); s != "stopped" || wk != nil {
		t.Fatalf("stopped app: %s on %v", s, wk)
	}
	if s, _, _, r := row(violating.ID); s != "violated" || r != "memory: OOM" {
		t.Fatalf("violating app: %s %q", s, r)
	}
	if got := scalar[int64](e, `SELECT used_cpu FROM workers WHERE id = $1`, wa.ID); got != 1000 {
		t.Fatalf("used cpu = %d; the stopped app's capacity must be released", got)
	}
	if _, ok := e.hub.AppStatsLive(stopping.ID); ok {
		t.Fatal("a stopped app kept its live stats")
	}
	got := scalar[string](e, `SELECT string_agg(type, ',' ORDER BY id) FROM event_outbox WHERE type LIKE 'app.%'`)
	if got != "app.crashloop,app.stopped,app.violation" {
		t.Fatalf("events = %s", got)
	}
}

func TestTLSConnections(t *testing.T) {
	e := newEnv(t, envOpts{tls: true})
	w, key := e.worker("edge-1")
	d := e.deploy(w)
	c := dial(t, e.url, e.token(w), wsproto.EnvelopeKey(key))
	if j := c.expectJob(); j.JobID != d.Job.ID {
		t.Fatalf("job = %+v", j)
	}
	c.send(wsproto.TypeHeartbeat, wsproto.Heartbeat{CPUPercent: 7})
	c.sync()
	if err := e.hub.FlushHeartbeats(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := scalar[float64](e, `SELECT cpu_percent FROM workers WHERE id = $1`, w.ID); got != 7 {
		t.Fatalf("cpu = %v", got)
	}
}

func TestKeepalive(t *testing.T) {
	modes(t, func(t *testing.T, o envOpts) {
		o.tweak = func(opts *hub.Options) { opts.PingPeriod, opts.PongWait = 100*time.Millisecond, 600*time.Millisecond }
		e := newEnv(t, o)
		w, key := e.worker("edge-1")
		// A client that answers pings stays; one that sends nothing and
		// answers nothing is closed after PongWait.
		c := e.connect(w, key)
		w2, key2 := e.worker("edge-2")
		rawDial(t, e.url, key2)
		testutil.WaitFor(t, waitLong, "silent worker connected", func() bool { return e.hub.IsConnected(w2.ID) })
		testutil.WaitFor(t, waitLong, "silent worker dropped", func() bool { return !e.hub.IsConnected(w2.ID) })
		if !e.hub.IsConnected(w.ID) {
			t.Fatal("the worker answering pings was dropped")
		}
		c.sync()
		if e.metric("wisehosting_hub_closes_total", "reason", "pong_timeout") != 1 {
			t.Fatal("pong timeout not counted")
		}
	})
}

// rawDial connects and never reads nor writes again.
func rawDial(t *testing.T, url, bearer string) {
	t.Helper()
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + bearer}})}
	conn, _, _, err := d.Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
}

func TestPruneRuntimeLogs(t *testing.T) {
	e := newEnv(t, envOpts{tweak: func(o *hub.Options) { o.LogRetention = 24 * time.Hour }})
	w, _ := e.worker("edge-1")
	app := e.runningApp(w)
	now := time.Now()
	err := e.st.InsertRuntimeLogs(e.ctx, []store.LogChunk{
		{AppID: app.ID, WorkerID: w.ID, Stream: "stdout", TS: now.Add(-48 * time.Hour), TSEnd: now.Add(-47 * time.Hour), Lines: 2, Text: "old\nold"},
		{AppID: app.ID, WorkerID: w.ID, Stream: "stdout", TS: now.Add(-25 * time.Hour), TSEnd: now.Add(-time.Hour), Lines: 2, Text: "straddles\nthe cutoff"},
		{AppID: app.ID, WorkerID: w.ID, Stream: "stdout", TS: now, TSEnd: now, Lines: 1, Text: "new"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Another core pruning right now: this one skips.
	held, err := e.st.Pool().Acquire(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Exec(e.ctx, `SELECT pg_advisory_lock($1)`, store.LockPruneRuntimeLogs); err != nil {
		t.Fatal(err)
	}
	if ran, _, err := e.hub.PruneRuntimeLogs(e.ctx); err != nil || ran {
		t.Fatalf("prune while another core holds the lock: ran=%v err=%v", ran, err)
	}
	if _, err := held.Exec(e.ctx, `SELECT pg_advisory_unlock($1)`, store.LockPruneRuntimeLogs); err != nil {
		t.Fatal(err)
	}
	held.Release()
	ran, n, err := e.hub.PruneRuntimeLogs(e.ctx)
	if err != nil || !ran || n != 1 {
		t.Fatalf("prune: ran=%v deleted=%d err=%v", ran, n, err)
	}
	if got := scalar[string](e, `SELECT string_agg(line, '|' ORDER BY id) FROM runtime_logs`); got != "straddles\nthe cutoff|new" {
		t.Fatalf("left = %q", got)
	}
}

func TestCloseSendsGoingAwayAndFlushes(t *testing.T) {
	e := newEnv(t, envOpts{tweak: func(o *hub.Options) { o.LogFlush = time.Hour }})
	w, key := e.worker("edge-1")
	app := e.runningApp(w)
	c := e.connect(w, key)
	c.send(wsproto.TypeHeartbeat, wsproto.Heartbeat{CPUPercent: 33})
	c.send(wsproto.TypeRuntimeLog, wsproto.RuntimeLog{Lines: []wsproto.LogLine{{AppID: app.ID, Line: "last words"}}})
	c.sync()
	if err := e.hub.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
	if code := c.expectClosed(); code != ws.StatusGoingAway {
		t.Fatalf("close code = %d, want 1001", code)
	}
	if got := scalar[float64](e, `SELECT cpu_percent FROM workers WHERE id = $1`, w.ID); got != 33 {
		t.Fatal("pending heartbeat not flushed at close")
	}
	if got := scalar[int64](e, `SELECT count(*) FROM runtime_logs WHERE line = 'last words'`); got != 1 {
		t.Fatal("queued logs not written at close")
	}
	if _, err := dialErr(e.url, key, nil); !isStatus(err, http.StatusServiceUnavailable) {
		t.Fatalf("dial after close = %v, want 503", err)
	}
}
