package alerts_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/events"
	"github.com/wisehosting/wisehosting/core/pluginhost"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/plugins/alerts/webhook"
	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/outbound/outboundtest"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/stdwebhook"
)

// TestSustainedSpikeOneWebhook follows the Done-when end to end: the
// threshold poller (fake clock, injected statistics) opens one CPU alert
// for a sustained spike; the outbox dispatcher hands its event to the
// webhook sink (over gRPC), which POSTs it signed to a receiver on
// loopback: one webhook, however long the spike lasts, and one for the
// resolution; a short spike sends none.
func TestSustainedSpikeOneWebhook(t *testing.T) {
	f := newFixture(t)
	secret, err := stdwebhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	key, err := stdwebhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	recv := outboundtest.Start(t, func(r *http.Request, body []byte) error {
		return stdwebhook.Verify(r.Header, body, time.Now(), 5*time.Minute, key)
	})

	p := webhook.New()
	if err := plugintest.Configure(p, webhook.Spec(), fmt.Sprintf("url = %q\nsecret = %q\nallow_private = true", recv.URL, secret)); err != nil {
		t.Fatal(err)
	}
	client := plugintest.Connect(t, p).(sdk.AlertSink)
	d, err := events.New(events.Options{Store: f.st, Poll: 10 * time.Millisecond, LockRetry: 50 * time.Millisecond,
		Sinks: []pluginhost.AlertSink{{Name: "ops", Events: []string{"app.*"}, AlertSink: client}}, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	go d.Run(ctx)
	counts := func() (cpu, resolved, bad int) {
		got := map[string]int{}
		for _, r := range recv.Requests() {
			var ev struct{ Type string }
			if err := json.Unmarshal(r.Body, &ev); err != nil {
				bad++
			}
			got[ev.Type]++
		}
		return got["app.cpu"], got["app.cpu.resolved"], bad + len(recv.Rejected())
	}
	delivered := func(when string, cpu, resolved int) {
		t.Helper()
		testutil.WaitFor(t, 10*time.Second, when, func() bool {
			var pending int
			_ = f.st.Pool().QueryRow(ctx, `SELECT count(*) FROM event_outbox WHERE status <> 'delivered'`).Scan(&pending)
			return pending == 0
		})
		if c, r, bad := counts(); c != cpu || r != resolved || bad != 0 {
			t.Fatalf("%s: %d app.cpu and %d app.cpu.resolved webhooks (%d rejected), want %d and %d", when, c, r, bad, cpu, resolved)
		}
	}

	const step = 30 * time.Second
	f.cpu(97) // 4 minutes over: nothing
	for range 8 {
		f.tick(t, step)
	}
	f.cpu(30)
	f.tick(t, step)
	delivered("a short spike", 0, 0)

	f.cpu(99) // 15 minutes over: one alert, one webhook
	for range 30 {
		f.tick(t, step)
	}
	f.expect(t, "a sustained spike", 1, 0, 1, 0)
	delivered("a sustained spike", 1, 0)

	f.cpu(10) // under for the window: resolved, one webhook
	for range 15 {
		f.tick(t, step)
	}
	f.expect(t, "back under", 0, 1, 1, 1)
	delivered("back under", 1, 1)
}
