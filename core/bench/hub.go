package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// hubIdle measures the core's memory per connected idle worker: the RSS
// delta of the process running the core divided by N, N workers of the
// load generator (sdk/worker clients in another process) connected and
// heartbeating at the default interval. Plain connections at 1k and 10k;
// TLS at 1k.
func hubIdle(ctx context.Context, env *Env) ([]Result, error) {
	type size struct {
		n   int
		tls bool
	}
	sizes := []size{{1000, false}, {10000, false}, {1000, true}}
	if env.Quick {
		sizes = []size{{200, false}, {100, true}}
	}
	var out []Result
	for _, sz := range sizes {
		c, err := env.startCore(ctx, coreOptions{tls: sz.tls})
		if err != nil {
			return nil, err
		}
		res, err := idleRuns(ctx, env, c, sz.n, sz.tls)
		c.stop()
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

func idleRuns(ctx context.Context, env *Env, c *hubCore, n int, tlsOn bool) ([]Result, error) {
	lines, err := c.seedWorkers(ctx, "idle", n, false)
	if err != nil {
		return nil, err
	}
	var rss, goMem []float64
	var goroutines int
	for run := 0; run < env.Runs; run++ {
		beats := func() float64 {
			v, _ := c.metric("wisehosting_hub_envelopes_received_total", "type", wsproto.TypeHeartbeat)
			return v
		}
		before, beats0 := measureMemory(), beats()
		lg, err := env.startLoadgen(ctx, c, lines)
		if err != nil {
			return nil, err
		}
		// Steady state: everyone connected and heard from (each worker's
		// first heartbeat goes on connecting).
		if err := waitFor(ctx, time.Minute, func() bool { return c.d.Hub().Connected() == n && beats()-beats0 >= float64(n) }); err != nil {
			lg.stop()
			return nil, fmt.Errorf("%d of %d workers connected, %v heartbeats: %w", c.d.Hub().Connected(), n, beats()-beats0, err)
		}
		time.Sleep(2 * time.Second) // let registrations' garbage settle
		after := measureMemory()
		if err := lg.stop(); err != nil {
			return nil, err
		}
		if err := waitFor(ctx, time.Minute, func() bool { return c.d.Hub().Connected() == 0 }); err != nil {
			return nil, fmt.Errorf("workers still connected after the generator stopped: %w", err)
		}
		rss = append(rss, perKiB(after.rss, before.rss, n))
		goMem = append(goMem, perKiB(after.goHeap+after.goStack, before.goHeap+before.goStack, n))
		goroutines = after.goroutines - before.goroutines
		env.Log.Info("idle workers", "n", n, "tls", tlsOn, "rss_kib_per_conn", rss[len(rss)-1], "go_kib_per_conn", goMem[len(goMem)-1],
			"goroutines_added", goroutines)
	}
	kind, target, design := "plaintext", "≤ 8 KiB", "epoll (no goroutine per idle connection)"
	if tlsOn {
		kind, target, design = "TLS 1.3", "", "one reader goroutine per connection (TLS buffers records)"
	}
	return []Result{{
		Metric:  fmt.Sprintf("core RSS per idle worker, %s, %s connections", kind, commas(int64(n))),
		Value:   median(rss),
		Unit:    "KiB",
		Compare: fmt.Sprintf("Go heap+stacks %.1f KiB; %d goroutines added; %s", median(goMem), goroutines, design),
		Target:  target,
	}}, nil
}

func perKiB(after, before uint64, n int) float64 {
	return (float64(after) - float64(before)) / float64(n) / 1024
}

// hubEnvelopes measures signed envelopes verified and dispatched per
// second: 50 workers of the load generator send 90 % app_stats about
// their app and 10 % heartbeats, payloads of about 512 bytes, as fast as
// the core takes them, the generator sharing the machine with the core.
func hubEnvelopes(ctx context.Context, env *Env) ([]Result, error) {
	workers, d := 50, 10*time.Second
	if env.Quick {
		workers, d = 8, 2*time.Second
	}
	c, err := env.startCore(ctx, coreOptions{})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	lines, err := c.seedWorkers(ctx, "env", workers, true)
	if err != nil {
		return nil, err
	}
	count := func() (float64, error) {
		s, err := c.metric("wisehosting_hub_envelopes_received_total", "type", wsproto.TypeAppStats)
		if err != nil {
			return 0, err
		}
		h, err := c.metric("wisehosting_hub_envelopes_received_total", "type", wsproto.TypeHeartbeat)
		return s + h, err
	}
	var rates, sentRates []float64
	for run := 0; run < env.Runs; run++ {
		lg, err := env.startLoadgen(ctx, c, lines, "-flood", "-duration", d.String(), "-heartbeat", "1h")
		if err != nil {
			return nil, err
		}
		base, err := count()
		if err != nil {
			lg.stop()
			return nil, err
		}
		start := time.Now()
		sent, _, err := lg.run(ctx, d)
		if err != nil {
			lg.stop()
			return nil, err
		}
		// Whatever was sent and not yet dispatched is still counted: wait
		// for the counter to stop moving.
		got, el := base, time.Duration(0)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			v, err := count()
			if err != nil {
				lg.stop()
				return nil, err
			}
			if v == got {
				break
			}
			got, el = v, time.Since(start)
			time.Sleep(100 * time.Millisecond)
		}
		if err := lg.stop(); err != nil {
			return nil, err
		}
		rates = append(rates, (got-base)/el.Seconds())
		sentRates = append(sentRates, float64(sent)/d.Seconds())
		env.Log.Info("envelopes", "run", run+1, "dispatched", got-base, "sent", sent, "took", el)
	}
	rejected, err := c.metric("wisehosting_hub_rejected_envelopes_total")
	if err != nil {
		return nil, err
	}
	return []Result{{
		Metric: fmt.Sprintf("signed envelopes verified+dispatched, %d workers, 90%% app_stats/10%% heartbeat, 512 B", workers),
		Value:  median(rates), Unit: "/s",
		Compare: fmt.Sprintf("generator sent %s/s (same machine); %v rejected", formatValue(median(sentRates)), rejected),
		Target:  "≥ 100,000/s",
	}}, nil
}

// hubLogs measures runtime logs persisted: 128 workers of the load
// generator send runtime logs at the protocol's rate limit (256 KiB/s of
// line text each, 32 MiB/s together) in 64 KiB messages of 100-byte lines
// for 30 s. The rate is the line text the core wrote to runtime_logs per
// second over the run after its first 5 s (the pipeline filling); the lag
// is how long the last lines took to be written after the generator
// stopped. Beside it, in the same run, the ceiling: the same COPY the
// core's log writer issues, alone, as fast as it goes.
func hubLogs(ctx context.Context, env *Env) ([]Result, error) {
	workers, d, warm := 128, 30*time.Second, 5*time.Second
	if env.Quick {
		workers, d, warm = 8, 3*time.Second, time.Second
	}
	c, err := env.startCore(ctx, coreOptions{})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	lines, err := c.seedWorkers(ctx, "log", workers, true)
	if err != nil {
		return nil, err
	}
	persisted := func() (float64, error) {
		return c.metric("wisehosting_hub_runtime_log_bytes_persisted_total")
	}
	var rates, offered, lags []float64
	for run := 0; run < env.Runs; run++ {
		lg, err := env.startLoadgen(ctx, c, lines, "-log-rate", fmt.Sprint(wsproto.LogRate), "-duration", d.String())
		if err != nil {
			return nil, err
		}
		base, err := persisted()
		if err != nil {
			lg.stop()
			return nil, err
		}
		start := time.Now()
		if err := lg.begin(); err != nil {
			lg.stop()
			return nil, err
		}
		time.Sleep(warm)
		p0, err := persisted()
		if err != nil {
			lg.stop()
			return nil, err
		}
		t0 := time.Now()
		if _, _, err := lg.finish(ctx, d); err != nil {
			lg.stop()
			return nil, err
		}
		p1, err := persisted()
		if err != nil {
			lg.stop()
			return nil, err
		}
		t1 := time.Now()
		if err := lg.stop(); err != nil {
			return nil, err
		}
		if err := waitFor(ctx, time.Minute, func() bool {
			q, err := c.metric("wisehosting_hub_runtime_log_queue_bytes")
			return err == nil && q == 0
		}); err != nil {
			return nil, fmt.Errorf("log queue did not drain: %w", err)
		}
		lag := time.Since(t1)
		total, err := persisted()
		if err != nil {
			return nil, err
		}
		rates = append(rates, (p1-p0)/(1<<20)/t1.Sub(t0).Seconds())
		offered = append(offered, (total-base)/(1<<20)/t1.Sub(start).Seconds())
		lags = append(lags, float64(lag.Milliseconds()))
		env.Log.Info("runtime logs", "run", run+1, "mib", (total-base)/(1<<20), "rate", rates[len(rates)-1], "lag", lag)
	}
	dropped, err := c.metric("wisehosting_hub_runtime_log_bytes_dropped_total")
	if err != nil {
		return nil, err
	}
	ceiling, perLine, err := copyCeiling(ctx, c.store(), c.user.ID, env.Quick, env.Runs)
	if err != nil {
		return nil, err
	}
	return []Result{
		{Metric: fmt.Sprintf("runtime logs persisted, %d workers at the rate limit, %s", workers, d),
			Value: median(rates), Unit: "MiB/s",
			Compare: fmt.Sprintf("offered %.1f MiB/s; drained %.0f ms after the end; %.1f MiB dropped; raw COPY ceiling %.1f MiB/s",
				median(offered), median(lags), dropped/(1<<20), ceiling),
			Target: "≥ 32 MiB/s"},
		{Metric: "raw COPY, one row per 100-byte line (why rows hold chunks)", Value: perLine, Unit: "MiB/s",
			Compare: "same run, same table"},
	}, nil
}

// copyCeiling measures store.InsertRuntimeLogs alone, with the chunks the
// hub writes for 64 KiB messages of 100-byte lines (655 lines a row), 4 MiB
// of line text per COPY, for 5 s a run; and with one row per line.
func copyCeiling(ctx context.Context, st *store.Store, userID int64, quick bool, runs int) (chunked, perLine float64, err error) {
	apps, err := st.ListUserApps(ctx, userID)
	if err != nil || len(apps) == 0 {
		return 0, 0, fmt.Errorf("copy ceiling: apps: %v", err)
	}
	d := 5 * time.Second
	if quick {
		d = time.Second
	}
	measure := func(perRow int) (float64, error) {
		line := strings.Repeat("l", 100)
		text := strings.TrimSuffix(strings.Repeat(line+"\n", perRow), "\n")
		rows := max((4<<20)/(100*perRow), 1)
		batch := make([]store.LogChunk, rows)
		now := time.Now()
		for i := range batch {
			a := apps[i%len(apps)]
			batch[i] = store.LogChunk{AppID: a.ID, WorkerID: *a.WorkerID, Stream: store.StreamStdout, TS: now, TSEnd: now,
				Lines: perRow, Text: text}
		}
		var rates []float64
		for range runs {
			start, bytes := time.Now(), 0
			for time.Since(start) < d {
				if err := st.InsertRuntimeLogs(ctx, batch); err != nil {
					return 0, err
				}
				bytes += rows * perRow * 100
			}
			rates = append(rates, float64(bytes)/(1<<20)/time.Since(start).Seconds())
		}
		return median(rates), nil
	}
	if chunked, err = measure((64 << 10) / 100); err != nil {
		return 0, 0, err
	}
	if perLine, err = measure(1); err != nil {
		return 0, 0, err
	}
	return chunked, perLine, nil
}

// waitFor polls cond every 50 ms for up to d.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
