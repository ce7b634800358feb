package plugintest

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// LogBuffer collects a plugin's log in a test; it is safe for concurrent
// writers.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// JSONLogger returns a Trace-level logger writing JSON lines into a new
// LogBuffer, as sdk.Logger writes them to the core.
func JSONLogger() (hclog.Logger, *LogBuffer) {
	buf := &LogBuffer{}
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: buf, JSONFormat: true}), buf
}

// Configure decodes the HCL body src against spec exactly as the core
// decodes a plugin's config block (diagnostics come back as the error) and
// passes the result to p.Configure with sdk.APIVersion1.
func Configure(p sdk.Plugin, spec *pluginv1.Spec, src string) error {
	js, diags := decode.Source(spec, []byte(src), "test.hcl", nil)
	if diags.HasErrors() {
		return diags
	}
	return p.Configure(context.Background(), &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js})
}

// ConfigureNew returns the plugin newPlugin makes with a JSONLogger,
// configured with the HCL body src of spec (see Configure), and the buffer
// its log goes to. The test fails when Configure does.
func ConfigureNew[P sdk.Plugin](t testing.TB, newPlugin func(hclog.Logger) P, spec *pluginv1.Spec, src string) (P, *LogBuffer) {
	t.Helper()
	l, buf := JSONLogger()
	p := newPlugin(l)
	if err := Configure(p, spec, src); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return p, buf
}

// CheckInfo fails the test unless p's Info names kind, name and version
// and has a description, and sdk.KindOf(p) is kind.
func CheckInfo(t testing.TB, p sdk.Plugin, kind, name, version string) {
	t.Helper()
	info, err := p.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.GetKind() != kind || info.GetName() != name || info.GetVersion() != version || info.GetDescription() == "" {
		t.Errorf("info = %v, want kind %q, name %q, version %q and a description", info, kind, name, version)
	}
	if k := sdk.KindOf(p); k != kind {
		t.Errorf("KindOf = %q, want %q", k, kind)
	}
}

// Deliver passes events to sink's Deliver and returns the results. The
// test fails unless Deliver succeeds with one result per event, for that
// event, in the order of the events.
func Deliver(t testing.TB, sink sdk.AlertSink, events ...*pluginv1.Event) []*pluginv1.DeliveryResult {
	t.Helper()
	resp, err := sink.Deliver(context.Background(), &pluginv1.DeliverRequest{Events: events})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(resp.GetResults()) != len(events) {
		t.Fatalf("%d results for %d events", len(resp.GetResults()), len(events))
	}
	for i, r := range resp.GetResults() {
		if r.GetEventId() != events[i].GetId() {
			t.Fatalf("result %d is for %q, want %q", i, r.GetEventId(), events[i].GetId())
		}
	}
	return resp.GetResults()
}

// DeliverAtOnce makes calls Deliver calls to sink at the same time, call c
// with the events events(c) returns, waits for them all, and fails the
// test unless each returns one DELIVERED result per event: for tests of a
// sink's bound on the requests in flight across concurrent calls.
func DeliverAtOnce(t testing.TB, sink sdk.AlertSink, calls int, events func(call int) []*pluginv1.Event) {
	t.Helper()
	var wg sync.WaitGroup
	for c := range calls {
		wg.Go(func() {
			evs := events(c)
			resp, err := sink.Deliver(context.Background(), &pluginv1.DeliverRequest{Events: evs})
			if err != nil || len(resp.GetResults()) != len(evs) {
				t.Errorf("Deliver %d: %v, %d results for %d events", c, err, len(resp.GetResults()), len(evs))
				return
			}
			for _, r := range resp.GetResults() {
				if r.GetOutcome() != pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED {
					t.Errorf("Deliver %d: result %v", c, r)
				}
			}
		})
	}
	wg.Wait()
}

// MaxResultMessage is the longest result message CheckResult accepts: a
// message is for a log line or a row in the UI, a few hundred bytes of an
// answer at most.
const MaxResultMessage = 1024

// WantResult is what CheckResult expects of a DeliveryResult.
type WantResult struct {
	// Outcome is the result's outcome.
	Outcome pluginv1.DeliveryOutcome
	// RetryAfterMin and RetryAfterMax bound its retry_after_ms.
	RetryAfterMin, RetryAfterMax time.Duration
	// Has are strings its message holds; HasNot strings it does not.
	Has, HasNot []string
}

// CheckResult fails the test unless r is as want says and its message is
// at most MaxResultMessage bytes long. A wrong outcome ends the test.
func CheckResult(t testing.TB, r *pluginv1.DeliveryResult, want WantResult) {
	t.Helper()
	if r.GetOutcome() != want.Outcome {
		t.Fatalf("outcome %v, want %v (%s)", r.GetOutcome(), want.Outcome, r.GetMessage())
	}
	after := time.Duration(r.GetRetryAfterMs()) * time.Millisecond
	if after < want.RetryAfterMin || after > want.RetryAfterMax {
		t.Errorf("retry after %v, want %v to %v", after, want.RetryAfterMin, want.RetryAfterMax)
	}
	for _, m := range want.Has {
		if !strings.Contains(r.GetMessage(), m) {
			t.Errorf("message %q lacks %q", r.GetMessage(), m)
		}
	}
	for _, m := range want.HasNot {
		if strings.Contains(r.GetMessage(), m) {
			t.Errorf("message %q has %q", r.GetMessage(), m)
		}
	}
	if len(r.GetMessage()) > MaxResultMessage {
		t.Errorf("message of %d bytes", len(r.GetMessage()))
	}
}
