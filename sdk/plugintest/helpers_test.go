package plugintest_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec"
	"github.com/wisehosting/wisehosting/sdk/mock"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// recorder is a testing.TB that records failures; Fatal ends the calling
// goroutine as testing.T's does.
type recorder struct {
	testing.TB
	mu    sync.Mutex
	fails []string
	fatal bool
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fails = append(r.fails, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.mu.Lock()
	r.fatal = true
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

// run calls f with a recorder in a goroutine of its own and returns what
// it recorded.
func run(t *testing.T, f func(tb testing.TB)) (fails []string, fatal bool) {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.fails, r.fatal
}

func TestDeliver(t *testing.T) {
	events := []*pluginv1.Event{{Id: "a"}, {Id: "b"}}
	answer := func(ids ...string) func(context.Context, *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
		return func(context.Context, *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
			resp := &pluginv1.DeliverResponse{}
			for _, id := range ids {
				resp.Results = append(resp.Results, &pluginv1.DeliveryResult{EventId: id})
			}
			return resp, nil
		}
	}
	tests := []struct {
		name    string
		deliver func(context.Context, *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error)
		wantErr string
	}{
		{"one result per event", nil, ""},
		{"error", func(context.Context, *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
			return nil, fmt.Errorf("boom")
		}, "Deliver: boom"},
		{"a result missing", answer("a"), "1 results for 2 events"},
		{"out of order", answer("b", "a"), `result 0 is for "b", want "a"`},
	}
	for _, tt := range tests {
		sink := &mock.AlertSink{DeliverFunc: tt.deliver}
		var got []*pluginv1.DeliveryResult
		fails, fatal := run(t, func(tb testing.TB) { got = plugintest.Deliver(tb, sink, events...) })
		if tt.wantErr == "" {
			if len(fails) != 0 || len(got) != 2 || got[1].GetEventId() != "b" {
				t.Errorf("%s: %v, %q", tt.name, got, fails)
			}
			continue
		}
		if !fatal || len(fails) != 1 || !strings.Contains(fails[0], tt.wantErr) {
			t.Errorf("%s: failures %q (fatal %v), want %q", tt.name, fails, fatal, tt.wantErr)
		}
	}
}

func TestCheckInfo(t *testing.T) {
	info := func(kind, name, version, desc string) func(context.Context) (*pluginv1.InfoResponse, error) {
		return func(context.Context) (*pluginv1.InfoResponse, error) {
			return &pluginv1.InfoResponse{Kind: kind, Name: name, Version: version, Description: desc}, nil
		}
	}
	tests := []struct {
		name  string
		p     sdk.Plugin
		fails int
	}{
		{"good", &mock.AlertSink{InfoFunc: info(sdk.KindAlerts, "x", "1.0.0", "Does x.")}, 0},
		{"no description", &mock.AlertSink{InfoFunc: info(sdk.KindAlerts, "x", "1.0.0", "")}, 1},
		{"other version", &mock.AlertSink{InfoFunc: info(sdk.KindAlerts, "x", "2.0.0", "Does x.")}, 1},
		{"other kind", &mock.Scheduler{InfoFunc: info(sdk.KindAlerts, "x", "1.0.0", "Does x.")}, 1}, // KindOf says scheduler
		{"other kind everywhere", &mock.Scheduler{InfoFunc: info(sdk.KindScheduler, "x", "1.0.0", "Does x.")}, 2},
	}
	for _, tt := range tests {
		fails, _ := run(t, func(tb testing.TB) { plugintest.CheckInfo(tb, tt.p, sdk.KindAlerts, "x", "1.0.0") })
		if len(fails) != tt.fails {
			t.Errorf("%s: failures %q, want %d", tt.name, fails, tt.fails)
		}
	}
}

// counter is a plugin with one setting, n, that logs it when configured.
type counter struct {
	sdk.Base
	cfg struct {
		N int `json:"n"`
	}
	log hclog.Logger
}

func newCounter(l hclog.Logger) *counter {
	c := &counter{log: l}
	c.Base = sdk.Base{Kind: sdk.KindAlerts, Name: "counter", Version: "1.0.0",
		Spec: hclspec.Object(map[string]*pluginv1.Spec{"n": hclspec.Attr("n", "number", true, "A number.")})}
	c.Config = &c.cfg
	c.Validate = func() error {
		c.log.Info("configured", "n", c.cfg.N)
		return nil
	}
	return c
}

func TestConfigureNew(t *testing.T) {
	var c *counter
	var buf *plugintest.LogBuffer
	if fails, _ := run(t, func(tb testing.TB) { c, buf = plugintest.ConfigureNew(tb, newCounter, newCounter(nil).Spec, "n = 7") }); len(fails) != 0 {
		t.Fatalf("failures %q", fails)
	}
	if c.cfg.N != 7 || !strings.Contains(buf.String(), `"n":7`) {
		t.Fatalf("n = %d, log %q", c.cfg.N, buf)
	}
	fails, fatal := run(t, func(tb testing.TB) { plugintest.ConfigureNew(tb, newCounter, newCounter(nil).Spec, `n = "seven"`) })
	if !fatal || len(fails) != 1 || !strings.HasPrefix(fails[0], "Configure: ") {
		t.Fatalf("a bad config: failures %q (fatal %v)", fails, fatal)
	}
}

func TestDeliverAtOnce(t *testing.T) {
	var inflight, most atomic.Int32
	slow := func(_ context.Context, req *pluginv1.DeliverRequest) (*pluginv1.DeliverResponse, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		resp := &pluginv1.DeliverResponse{}
		for _, ev := range req.GetEvents() {
			outcome := pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED
			if ev.GetId() == "fail" {
				outcome = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED
			}
			resp.Results = append(resp.Results, &pluginv1.DeliveryResult{EventId: ev.GetId(), Outcome: outcome})
		}
		return resp, nil
	}
	sink := &mock.AlertSink{DeliverFunc: slow}
	var asked atomic.Int32
	fails, _ := run(t, func(tb testing.TB) {
		plugintest.DeliverAtOnce(tb, sink, 3, func(c int) []*pluginv1.Event {
			asked.Add(1)
			return []*pluginv1.Event{{Id: fmt.Sprintf("c%d-a", c)}, {Id: fmt.Sprintf("c%d-b", c)}}
		})
	})
	if len(fails) != 0 || asked.Load() != 3 || most.Load() < 2 {
		t.Fatalf("failures %q, %d calls, at most %d at once", fails, asked.Load(), most.Load())
	}
	fails, _ = run(t, func(tb testing.TB) {
		plugintest.DeliverAtOnce(tb, sink, 2, func(c int) []*pluginv1.Event { return []*pluginv1.Event{{Id: "ok"}, {Id: "fail"}} })
	})
	if len(fails) != 2 || !strings.HasPrefix(fails[0], "Deliver ") || !strings.Contains(fails[0], ": result ") {
		t.Fatalf("failures %q, want one per call", fails)
	}
}

func TestCheckResult(t *testing.T) {
	const (
		delivered = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED
		retry     = pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_RETRY
	)
	r := &pluginv1.DeliveryResult{EventId: "a", Outcome: retry, RetryAfterMs: 30000, Message: "answered 429; retry after 30s"}
	tests := []struct {
		name  string
		r     *pluginv1.DeliveryResult
		want  plugintest.WantResult
		fails int
		fatal bool
	}{
		{"as wanted", r, plugintest.WantResult{Outcome: retry, RetryAfterMin: 30 * time.Second, RetryAfterMax: 30 * time.Second,
			Has: []string{"429", "30s"}, HasNot: []string{"\n"}}, 0, false},
		{"other outcome", r, plugintest.WantResult{Outcome: delivered}, 1, true},
		{"retry after out of bounds", r, plugintest.WantResult{Outcome: retry, RetryAfterMax: time.Second}, 1, false},
		{"message lacks one, has another", r, plugintest.WantResult{Outcome: retry, RetryAfterMax: time.Minute,
			Has: []string{"503"}, HasNot: []string{"429"}}, 2, false},
		{"long message", &pluginv1.DeliveryResult{Outcome: delivered, Message: strings.Repeat("x", plugintest.MaxResultMessage+1)},
			plugintest.WantResult{Outcome: delivered}, 1, false},
	}
	for _, tt := range tests {
		fails, fatal := run(t, func(tb testing.TB) { plugintest.CheckResult(tb, tt.r, tt.want) })
		if len(fails) != tt.fails || fatal != tt.fatal {
			t.Errorf("%s: failures %q (fatal %v), want %d (fatal %v)", tt.name, fails, fatal, tt.fails, tt.fatal)
		}
	}
}
