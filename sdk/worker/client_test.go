package worker

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// testLogger logs to t at the level in WH_TEST_LOG (off by default).
func testLogger(t testing.TB) hclog.Logger {
	lvl := hclog.LevelFromString(os.Getenv("WH_TEST_LOG"))
	if lvl == hclog.NoLevel {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: lvl, Output: tWriter{t}})
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var testRegistration = wsproto.RegisterRequest{
	Name:     "edge-1",
	IP:       "192.0.2.7",
	Address:  "10.8.0.7",
	Zone:     "eu",
	Capacity: wsproto.Capacity{CPU: 4000, Memory: 8 << 30},
	Runtimes: []string{wsproto.RuntimeExec},
	Version:  "test",
}

// newClient returns a client of fc with fast backoff; mut adjusts it.
func newClient(t testing.TB, fc *fakeCore, mut func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		CoreURL:      fc.srv.URL,
		APIKey:       fc.apiKey,
		Registration: testRegistration,
		Logger:       testLogger(t),
		MinBackoff:   10 * time.Millisecond,
		MaxBackoff:   200 * time.Millisecond,
		HTTPClient:   &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second},
	}
	if mut != nil {
		mut(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run starts c.Run; stop cancels it and returns its error; done delivers
// that error once Run returns by itself.
func run(t testing.TB, c *Client) (stop func() error, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	ended := make(chan struct{})
	out := make(chan error, 1)
	go func() {
		err = c.Run(ctx)
		close(ended)
		out <- err
	}()
	stop = func() error {
		cancel()
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop, out
}

func recvJob(t testing.TB, c *Client) wsproto.Job {
	t.Helper()
	select {
	case j := <-c.Jobs():
		return j
	case <-time.After(10 * time.Second):
		t.Fatal("no job delivered")
		return wsproto.Job{}
	}
}

func noJob(t testing.TB, c *Client) {
	t.Helper()
	select {
	case j := <-c.Jobs():
		t.Fatalf("unexpected job delivered: %+v", j)
	default:
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRegisterConnectPushAndSendEveryType(t *testing.T) {
	fc := newFakeCore(t)
	fc.set(func(fc *fakeCore) { fc.heartbeatMS = 5000 })
	c := newClient(t, fc, nil)
	stop, _ := run(t, c)
	conn := fc.waitConn(t)
	waitFor(t, 5*time.Second, "Connected", c.Connected)

	if got := c.Worker(); got.ID != 42 || got.Name != "edge-1" || got.Address != "10.8.0.7" {
		t.Fatalf("Worker() = %+v", got)
	}
	if got := c.HeartbeatInterval(); got != 5*time.Second {
		t.Fatalf("HeartbeatInterval() = %v", got)
	}
	fc.mu.Lock()
	reg := fc.registered
	fc.mu.Unlock()
	if !reflect.DeepEqual(reg, testRegistration) {
		t.Fatalf("the core got registration %+v", reg)
	}

	job := wsproto.Job{JobID: 7, Type: "deploy", AppID: 3, DeploymentID: 11, Payload: &wsproto.DeployPayload{
		AppID: 3, AppUUID: "u-3", AppName: "hello", Subdomain: "hello", Runtime: wsproto.RuntimeExec,
		GitRepo: "/srv/hello", Env: map[string]string{"PORT": "8080"}, Limits: wsproto.Limits{CPU: 500, Memory: 256 << 20},
	}}
	if err := conn.send(wsproto.TypeJob, 0, job); err != nil {
		t.Fatal(err)
	}
	if got := recvJob(t, c); !reflect.DeepEqual(got, job) {
		t.Fatalf("job = %+v, want %+v", got, job)
	}

	ctx := ctxT(t)
	msgs := []struct {
		typ     string
		payload any
		send    func() error
	}{
		{wsproto.TypeHeartbeat, wsproto.Heartbeat{CPUPercent: 12.5, MemoryPercent: 40, RunningApps: 2}, nil},
		{wsproto.TypeJobStatus, wsproto.JobStatus{JobID: 7, Status: "processing", Progress: 10}, nil},
		{wsproto.TypeJobResult, wsproto.JobResult{JobID: 7, Success: true, Port: 20001, CommitSHA: "abc"}, nil},
		{wsproto.TypeAppStats, wsproto.AppStats{Apps: []wsproto.AppStat{{AppID: 3, CPUPercent: 1.5, MemBytes: 1 << 20, NetRxBytes: 10}}}, nil},
		{wsproto.TypeAppStatus, wsproto.AppStatus{AppID: 3, Status: wsproto.AppCrashloop, RestartCount: 5, ExitCode: 1}, nil},
		{wsproto.TypeViolation, wsproto.Violation{AppID: 3, Kind: "memory", Message: "oom"}, nil},
		{wsproto.TypeRuntimeLog, wsproto.RuntimeLog{Lines: []wsproto.LogLine{{AppID: 3, TS: 1, Stream: "stdout", Line: "hi \"there\" <b>"}}}, nil},
		{wsproto.TypeBuildLog, wsproto.BuildLog{DeploymentID: 11, JobID: 7, Logs: "step 1\nstep 2\n"}, nil},
	}
	msgs[0].send = func() error { return c.SendHeartbeat(ctx, msgs[0].payload.(wsproto.Heartbeat)) }
	msgs[1].send = func() error { return c.SendJobStatus(ctx, msgs[1].payload.(wsproto.JobStatus)) }
	msgs[2].send = func() error { return c.SendJobResult(ctx, msgs[2].payload.(wsproto.JobResult)) }
	msgs[3].send = func() error { return c.SendAppStats(ctx, msgs[3].payload.(wsproto.AppStats)) }
	msgs[4].send = func() error { return c.SendAppStatus(ctx, msgs[4].payload.(wsproto.AppStatus)) }
	msgs[5].send = func() error { return c.SendViolation(ctx, msgs[5].payload.(wsproto.Violation)) }
	msgs[6].send = func() error { return c.SendRuntimeLog(ctx, msgs[6].payload.(wsproto.RuntimeLog)) }
	msgs[7].send = func() error { return c.SendBuildLog(ctx, msgs[7].payload.(wsproto.BuildLog)) }
	for i, m := range msgs {
		if err := m.send(); err != nil {
			t.Fatalf("send %s: %v", m.typ, err)
		}
		e := conn.next(t)
		if e.Type != m.typ || e.Seq != uint64(i+1) || e.ReplyTo != 0 {
			t.Fatalf("message %d: type %s seq %d, want %s seq %d", i, e.Type, e.Seq, m.typ, i+1)
		}
		want, _ := json.Marshal(m.payload)
		if string(e.Payload) != string(want) {
			t.Fatalf("%s payload = %s, want %s", m.typ, e.Payload, want)
		}
	}

	// A type the core does not know: the core answers with an error frame,
	// which the client verifies and delivers on Errors().
	if err := c.Send(ctx, "no_such_type", map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-c.Errors():
		if e.Code != wsproto.CodeUnknownType {
			t.Fatalf("error frame %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no error frame delivered")
	}

	// Payloads that are not JSON objects are refused before anything is sent.
	if err := c.Send(ctx, wsproto.TypeHeartbeat, []int{1}); err == nil {
		t.Fatal("an array payload was sent")
	}
	if err := c.Send(ctx, "", nil); err == nil {
		t.Fatal("an empty type was sent")
	}
	if err := c.Send(ctx, wsproto.TypeBuildLog, wsproto.BuildLog{Logs: strings.Repeat("x", wsproto.MaxFrameSize)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize message: %v", err)
	}

	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	st := c.Stats()
	if st.Connects != 1 || st.Sent != 9 || st.Received != 2 || st.Rejected != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Cancelling says goodbye with a close frame (1001 going away).
	waitFor(t, 5*time.Second, "close frame", func() bool { return conn.closeRx.Load() == int32(ws.StatusGoingAway) })
	if err := c.Send(ctx, wsproto.TypeHeartbeat, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Run: %v", err)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	fc := newFakeCore(t)
	fc.set(func(fc *fakeCore) { fc.ttl = 1200 * time.Millisecond; fc.acceptRawKey = false })
	c := newClient(t, fc, nil)
	run(t, c)
	conn := fc.waitConn(t)
	fc.mu.Lock()
	first := fc.registerToken
	fc.mu.Unlock()
	if conn.token != first {
		t.Fatal("the first connection did not use the registration's token")
	}
	// Refreshed halfway through each short life, with the connection up.
	waitFor(t, 5*time.Second, "two refreshes", func() bool { return fc.refreshes.Load() >= 2 })
	time.Sleep(1300 * time.Millisecond) // the registration token has expired now

	conn.close()
	conn2 := fc.waitConn(t)
	if conn2.token == first {
		t.Fatal("reconnected with the expired registration token")
	}
	if n := fc.expiredBearers.Load(); n != 0 {
		t.Fatalf("%d upgrades presented an expired token", n)
	}

	// With refresh failing, the token runs out; a reconnect then refreshes
	// first instead of presenting the expired token.
	fc.set(func(fc *fakeCore) { fc.refreshStatus = http.StatusServiceUnavailable })
	time.Sleep(1300 * time.Millisecond)
	conn2.close()
	time.Sleep(300 * time.Millisecond)
	if c.Connected() {
		t.Fatal("connected although no valid token could be had")
	}
	fc.set(func(fc *fakeCore) { fc.refreshStatus = 0 })
	fc.waitConn(t)
	if n := fc.expiredBearers.Load(); n != 0 {
		t.Fatalf("%d upgrades presented an expired token", n)
	}
	if c.Stats().Refreshes < 3 {
		t.Fatalf("stats %+v", c.Stats())
	}
}

func TestUpgradeRefusedRefreshesToken(t *testing.T) {
	fc := newFakeCore(t)
	fc.set(func(fc *fakeCore) { fc.acceptRawKey = false })
	c := newClient(t, fc, nil)
	run(t, c)
	conn := fc.waitConn(t)
	// The core forgets every JWT (as after a key rotation and back, or a
	// secret rotation): the upgrade is refused with 401, the client fetches
	// a fresh token with its key and gets in.
	fc.set(func(fc *fakeCore) { fc.tokens = map[string]time.Time{} })
	conn.close()
	conn2 := fc.waitConn(t)
	if conn2.token == conn.token || fc.refreshes.Load() != 1 {
		t.Fatalf("token %q after %d refreshes", conn2.token, fc.refreshes.Load())
	}
}

func TestReconnectRestartsSequences(t *testing.T) {
	fc := newFakeCore(t)
	c := newClient(t, fc, nil)
	run(t, c)
	conn := fc.waitConn(t)
	ctx := ctxT(t)
	for i := 1; i <= 3; i++ {
		if err := c.SendHeartbeat(ctx, wsproto.Heartbeat{RunningApps: int64(i)}); err != nil {
			t.Fatal(err)
		}
		if e := conn.next(t); e.Seq != uint64(i) {
			t.Fatalf("seq %d, want %d", e.Seq, i)
		}
	}
	if err := conn.send(wsproto.TypeJob, 0, wsproto.Job{JobID: 1, Type: "stop"}); err != nil {
		t.Fatal(err)
	}
	recvJob(t, c)

	conn.close() // the core drops the connection
	conn2 := fc.waitConn(t)
	waitFor(t, 5*time.Second, "reconnect", c.Connected)
	if err := c.SendHeartbeat(ctx, wsproto.Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	if e := conn2.next(t); e.Seq != 1 {
		t.Fatalf("first seq on the new connection = %d, want 1", e.Seq)
	}
	// The core's sequence restarts too, and the replayed job is delivered
	// again: consumers dedup by job id.
	if err := conn2.send(wsproto.TypeJob, 0, wsproto.Job{JobID: 1, Type: "stop"}); err != nil {
		t.Fatal(err)
	}
	if j := recvJob(t, c); j.JobID != 1 {
		t.Fatalf("job %+v", j)
	}
	if st := c.Stats(); st.Connects != 2 || st.Rejected != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReconnectBackoffGrows(t *testing.T) {
	fc := newFakeCore(t)
	fc.set(func(fc *fakeCore) { fc.upgradeStatus = http.StatusServiceUnavailable })
	const minB, maxB = 20 * time.Millisecond, 400 * time.Millisecond
	c := newClient(t, fc, func(cfg *Config) { cfg.MinBackoff, cfg.MaxBackoff = minB, maxB })
	run(t, c)
	waitFor(t, 10*time.Second, "8 attempts", func() bool { return len(fc.attempts()) >= 8 })
	at := fc.attempts()
	var gaps []time.Duration
	for i := 1; i < len(at); i++ {
		gaps = append(gaps, at[i].Sub(at[i-1]))
	}
	t.Logf("gaps between attempts: %v", gaps)
	// Delay k (from 0) is drawn from [d/2, d] with d = min·2^k capped at max.
	const slack = 150 * time.Millisecond // scheduling noise, upward only
	for k, g := range gaps[:7] {
		d := minB << k
		if d > maxB {
			d = maxB
		}
		if g < d/2 || g > d+slack {
			t.Errorf("gap %d = %v, want within [%v, %v]", k, g, d/2, d)
		}
	}
	fc.set(func(fc *fakeCore) { fc.upgradeStatus = 0 })
	fc.waitConn(t)
}

func TestRefreshAt(t *testing.T) {
	c := &Client{cfg: Config{MaxBackoff: 30 * time.Second}}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		life, want time.Duration
	}{
		{15 * time.Minute, 13 * time.Minute}, // RefreshSkew before expiry
		{time.Minute, 30 * time.Second},      // short-lived: halfway
		{-time.Minute, 30 * time.Second},     // expired on arrival (clock skew): no refresh loop
		{0, 30 * time.Second},
	} {
		c.tokenFrom, c.tokenExp = from, from.Add(tt.life)
		if got := c.refreshAtLocked().Sub(from); got != tt.want {
			t.Errorf("life %v: refresh after %v, want %v", tt.life, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for round := 0; round < 2; round++ {
		for i, w := range want {
			w *= time.Millisecond
			if d := b.next(); d < w/2 || d > w {
				t.Fatalf("round %d delay %d = %v, want in [%v, %v]", round, i, d, w/2, w)
			}
		}
		b.reset()
	}
}

func TestRegisterUnauthorizedIsPermanent(t *testing.T) {
	fc := newFakeCore(t)
	c := newClient(t, fc, func(cfg *Config) { cfg.APIKey = "whk_wrong" })
	_, done := run(t, c)
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Run = %v, want ErrUnauthorized", err)
		}
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != 401 || he.Code != "unauthorized" {
			t.Fatalf("Run = %#v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run kept retrying a refused key")
	}
	if n := fc.registers.Load(); n != 1 {
		t.Fatalf("%d registrations, want 1", n)
	}
}

func TestRegisterRejectedIsPermanentTransientRetried(t *testing.T) {
	fc := newFakeCore(t)
	fc.set(func(fc *fakeCore) { fc.registerStatus, fc.registerFails = http.StatusBadRequest, -1 })
	c := newClient(t, fc, nil)
	_, done := run(t, c)
	select {
	case err := <-done:
		if !errors.Is(err, ErrRejected) || errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Run = %v, want ErrRejected", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run kept retrying a rejected registration")
	}

	for _, status := range []int{http.StatusServiceUnavailable, http.StatusConflict, http.StatusTooManyRequests} {
		fc := newFakeCore(t)
		fc.set(func(fc *fakeCore) { fc.registerStatus, fc.registerFails = status, 3 })
		c := newClient(t, fc, nil)
		run(t, c)
		fc.waitConn(t)
		if n := fc.registers.Load(); n != 4 {
			t.Fatalf("status %d: %d registrations, want 4", status, n)
		}
	}
}

func TestRefreshUnauthorizedStopsRun(t *testing.T) {
	fc := newFakeCore(t)
	fc.set(func(fc *fakeCore) { fc.ttl = 400 * time.Millisecond })
	c := newClient(t, fc, nil)
	_, done := run(t, c)
	conn := fc.waitConn(t)
	fc.set(func(fc *fakeCore) { fc.refreshStatus = http.StatusUnauthorized }) // key rotated
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Run = %v, want ErrUnauthorized", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop on a refused key")
	}
	waitFor(t, 2*time.Second, "the connection to close", func() bool {
		select {
		case <-conn.done:
			return true
		default:
			return false
		}
	})
}

func TestForgedFramesFromCoreAreDropped(t *testing.T) {
	fc := newFakeCore(t)
	c := newClient(t, fc, nil)
	run(t, c)
	conn := fc.waitConn(t)

	good := conn.seal(wsproto.TypeJob, 0, wsproto.Job{JobID: 1, Type: "deploy"})
	if err := conn.sendEnvelope(good); err != nil {
		t.Fatal(err)
	}
	if j := recvJob(t, c); j.JobID != 1 {
		t.Fatalf("job %+v", j)
	}

	forged := map[string]func() *wsproto.Envelope{
		"replayed": func() *wsproto.Envelope { return good },
		"tampered": func() *wsproto.Envelope {
			e := conn.seal(wsproto.TypeJob, 0, wsproto.Job{JobID: 2, Type: "deploy"})
			e.Payload = []byte(`{"job_id":3,"type":"delete"}`)
			return e
		},
		"skewed": func() *wsproto.Envelope {
			e := conn.seal(wsproto.TypeJob, 0, wsproto.Job{JobID: 4})
			e.TS = time.Now().Add(-2 * wsproto.MaxClockSkew).UnixMilli()
			wsproto.Seal(fc.key, wsproto.CoreToWorker, e)
			return e
		},
		"reflected": func() *wsproto.Envelope {
			e := conn.seal(wsproto.TypeJob, 0, wsproto.Job{JobID: 5})
			wsproto.Seal(fc.key, wsproto.WorkerToCore, e)
			return e
		},
		"other key": func() *wsproto.Envelope {
			e := conn.seal(wsproto.TypeJob, 0, wsproto.Job{JobID: 6})
			wsproto.Seal(wsproto.EnvelopeKey("whk_someone-else"), wsproto.CoreToWorker, e)
			return e
		},
		"unknown type": func() *wsproto.Envelope { return conn.seal("reboot", 0, map[string]int{"now": 1}) },
		"bad payload":  func() *wsproto.Envelope { return conn.seal(wsproto.TypeJob, 0, map[string]string{"job_id": "x"}) },
	}
	for name, mk := range forged {
		if err := conn.sendEnvelope(mk()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if err := conn.sendRaw(ws.OpText, []byte(`{"type":"job","seq":`)); err != nil {
		t.Fatal(err)
	}
	if err := conn.sendRaw(ws.OpBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	// Frames are handled in order: once this one is out, all above were seen.
	if err := conn.send(wsproto.TypeJob, 0, wsproto.Job{JobID: 9, Type: "stop"}); err != nil {
		t.Fatal(err)
	}
	if j := recvJob(t, c); j.JobID != 9 {
		t.Fatalf("a forged job was delivered: %+v", j)
	}
	noJob(t, c)
	if st := c.Stats(); st.Rejected != uint64(len(forged)+2) || st.Received != 2 {
		t.Fatalf("stats %+v, want %d rejected", st, len(forged)+2)
	}
	if !c.Connected() {
		t.Fatal("forged frames cost the connection")
	}
}

func TestErrorsNeverBlock(t *testing.T) {
	fc := newFakeCore(t)
	c := newClient(t, fc, nil)
	run(t, c)
	conn := fc.waitConn(t)
	for i := 0; i < 100; i++ {
		if err := conn.send(wsproto.TypeError, uint64(i+1), wsproto.Error{Code: wsproto.CodeRateLimited, Message: "slow down"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.send(wsproto.TypeJob, 0, wsproto.Job{JobID: 5}); err != nil {
		t.Fatal(err)
	}
	recvJob(t, c)
	if st := c.Stats(); st.ErrorsDropped != 100-errorsBuffer || len(c.Errors()) != errorsBuffer {
		t.Fatalf("stats %+v, %d buffered", st, len(c.Errors()))
	}
}

func TestSendWaitsForConnection(t *testing.T) {
	fc := newFakeCore(t)
	c := newClient(t, fc, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.SendHeartbeat(ctx, wsproto.Heartbeat{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send before Run = %v, want DeadlineExceeded", err)
	}

	sent := make(chan error, 1)
	go func() { sent <- c.SendHeartbeat(ctxT(t), wsproto.Heartbeat{RunningApps: 9}) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-sent:
		t.Fatalf("Send returned before a connection: %v", err)
	default:
	}
	stop, _ := run(t, c)
	conn := fc.waitConn(t)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if e := conn.next(t); e.Type != wsproto.TypeHeartbeat || e.Seq != 1 {
		t.Fatalf("got %s seq %d", e.Type, e.Seq)
	}

	// Disconnected (the core refuses upgrades): Send waits, bounded by ctx.
	fc.set(func(fc *fakeCore) { fc.upgradeStatus = http.StatusServiceUnavailable })
	conn.close()
	waitFor(t, 5*time.Second, "disconnect", func() bool { return !c.Connected() })
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := c.SendHeartbeat(ctx2, wsproto.Heartbeat{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send while disconnected = %v", err)
	}
	go func() { sent <- c.SendHeartbeat(ctxT(t), wsproto.Heartbeat{}) }()
	fc.set(func(fc *fakeCore) { fc.upgradeStatus = 0 })
	conn2 := fc.waitConn(t)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if e := conn2.next(t); e.Seq != 1 {
		t.Fatalf("seq %d", e.Seq)
	}

	// A Send waiting when Run ends returns ErrClosed.
	fc.set(func(fc *fakeCore) { fc.upgradeStatus = http.StatusServiceUnavailable })
	conn2.close()
	waitFor(t, 5*time.Second, "disconnect", func() bool { return !c.Connected() })
	go func() { sent <- c.SendHeartbeat(context.Background(), wsproto.Heartbeat{}) }()
	time.Sleep(20 * time.Millisecond)
	stop()
	select {
	case err := <-sent:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("waiting Send after Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting Send outlived Run")
	}
}

func TestConcurrentSend(t *testing.T) {
	fc := newFakeCore(t)
	c := newClient(t, fc, nil)
	run(t, c)
	conn := fc.waitConn(t)
	const goroutines, each = 32, 100
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				var err error
				if i%2 == 0 {
					err = c.SendAppStats(ctx, wsproto.AppStats{Apps: []wsproto.AppStat{{AppID: int64(g), CPUPercent: float64(i)}}})
				} else {
					err = c.SendRuntimeLog(ctx, wsproto.RuntimeLog{Lines: []wsproto.LogLine{{AppID: int64(g), Stream: "stdout", Line: strings.Repeat("l", i*50)}}})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Written whole and in seq order, every one verified by the core.
	for want := uint64(1); want <= goroutines*each; want++ {
		if e := conn.next(t); e.Seq != want {
			t.Fatalf("seq %d, want %d", e.Seq, want)
		}
	}
}

func TestKeepalive(t *testing.T) {
	fc := newFakeCore(t)
	c := newClient(t, fc, nil)
	c.pingAfter, c.pongWait = 100*time.Millisecond, time.Second
	run(t, c)
	conn := fc.waitConn(t)

	// The core pings; the client pongs.
	if err := conn.ping(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "pong", func() bool { return conn.pongs.Load() >= 1 })

	// Nothing to read: the client pings, the core answers, the connection
	// stays.
	waitFor(t, 5*time.Second, "three pings", func() bool { return conn.pings.Load() >= 3 })
	if c.Stats().Connects != 1 {
		t.Fatal("a healthy connection was dropped")
	}

	// A core that stops answering is dropped after pongWait; the client
	// reconnects.
	fc.set(func(fc *fakeCore) { fc.mute = true })
	start := time.Now()
	<-conn.done
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("silent core dropped after %v", d)
	}
	fc.set(func(fc *fakeCore) { fc.mute = false })
	fc.waitConn(t)
}

func TestNoGoroutineLeak(t *testing.T) {
	fc := newFakeCore(t)
	hc := &http.Client{Transport: &http.Transport{}}
	base := runtime.NumGoroutine()

	c := newClient(t, fc, func(cfg *Config) { cfg.HTTPClient = hc })
	c.pingAfter = 30 * time.Millisecond
	stop, _ := run(t, c)
	conn := fc.waitConn(t)
	if err := conn.send(wsproto.TypeJob, 0, wsproto.Job{JobID: 1}); err != nil {
		t.Fatal(err)
	}
	recvJob(t, c)
	conn.close()
	fc.waitConn(t)
	if err := c.SendHeartbeat(ctxT(t), wsproto.Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a few keepalive pings
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	fc.Close()
	hc.CloseIdleConnections()

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTLSAndDialer(t *testing.T) {
	fc := newFakeCoreTLS(t)
	c := newClient(t, fc, func(cfg *Config) {
		cfg.HTTPClient = fc.srv.Client() // its TLS config trusts the test CA, for the WebSocket too
		cfg.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	})
	if !strings.HasPrefix(c.wsURL, "wss://") {
		t.Fatalf("ws URL %s", c.wsURL)
	}
	run(t, c)
	conn := fc.waitConn(t)
	if ip := conn.nc.RemoteAddr().(*net.TCPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 3)) {
		t.Fatalf("connected from %v, want the Dialer's 127.0.0.3", ip)
	}
	if err := c.SendHeartbeat(ctxT(t), wsproto.Heartbeat{RunningApps: 1}); err != nil {
		t.Fatal(err)
	}
	conn.next(t)
	if err := conn.send(wsproto.TypeJob, 0, wsproto.Job{JobID: 3}); err != nil {
		t.Fatal(err)
	}
	recvJob(t, c)

	// A client that does not trust the core's certificate never connects.
	fc2 := newFakeCoreTLS(t)
	c2 := newClient(t, fc2, nil)
	run(t, c2)
	time.Sleep(300 * time.Millisecond)
	if c2.Connected() || fc2.registers.Load() != 0 {
		t.Fatal("connected to an untrusted core")
	}
}

func TestNewValidates(t *testing.T) {
	ok := Config{CoreURL: "http://127.0.0.1:8443", APIKey: "whk_x"}
	for name, mut := range map[string]func(*Config){
		"no key":           func(c *Config) { c.APIKey = "" },
		"no url":           func(c *Config) { c.CoreURL = "" },
		"ws scheme":        func(c *Config) { c.CoreURL = "ws://127.0.0.1" },
		"no host":          func(c *Config) { c.CoreURL = "http:///x" },
		"query":            func(c *Config) { c.CoreURL = "http://h/?a=b" },
		"user":             func(c *Config) { c.CoreURL = "http://u:p@h/" },
		"backoff inverted": func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond },
	} {
		cfg := ok
		mut(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	c, err := New(Config{CoreURL: "https://core.example.com:8443/prefix/", APIKey: "whk_x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.base != "https://core.example.com:8443/prefix" || c.wsURL != "wss://core.example.com:8443/prefix/v1/workers/ws" {
		t.Fatalf("base %q ws %q", c.base, c.wsURL)
	}
	if c.cfg.MinBackoff != DefaultMinBackoff || c.cfg.MaxBackoff != DefaultMaxBackoff || c.HeartbeatInterval() != DefaultHeartbeatInterval {
		t.Fatalf("defaults: %+v", c.cfg)
	}
	if err := c.Run(ctxCanceled()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a cancelled context = %v", err)
	}
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
}

func ctxCanceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestCapBuildLog(t *testing.T) {
	if s := "short"; CapBuildLog(s) != s {
		t.Fatal("short log changed")
	}
	head, tail := strings.Repeat("h", wsproto.MaxBuildLog), strings.Repeat("t", wsproto.MaxBuildLog)
	got := CapBuildLog(head + tail)
	if want := head[:wsproto.MaxBuildLog/2] + wsproto.TruncationMarker + tail[wsproto.MaxBuildLog/2:]; got != want {
		t.Fatalf("capped log: %d bytes", len(got))
	}
	multi := strings.Repeat("é", wsproto.MaxBuildLog) // 2 bytes each
	if got := CapBuildLog("x" + multi); !strings.HasPrefix(got, "x") || !utf8Valid(got) {
		t.Fatal("cut inside a character")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
