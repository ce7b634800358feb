package hub

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// Reasons of wisehosting_hub_rejected_envelopes_total beyond the wsproto
// error codes, and of the log drop counters.
const (
	reasonBadMACClose = "bad_mac_close" // the connection was closed after too many bad MACs
	reasonQueueFull   = "queue_full"    // the log writer's queue was full
	reasonDBError     = "db_error"      // the COPY failed
	reasonTooMany     = "too_many_lines"
	reasonShutdown    = "shutdown"
)

// hubMetrics are the hub's Prometheus collectors.
type hubMetrics struct {
	connections     prometheus.Gauge
	upgrades        *prometheus.CounterVec
	closes          *prometheus.CounterVec
	received        *prometheus.CounterVec
	rejected        *prometheus.CounterVec
	panics          prometheus.Counter
	hbFlushes       prometheus.Counter
	hbBeats         prometheus.Counter
	logLines        prometheus.Counter
	logBytes        prometheus.Counter
	logDropLines    *prometheus.CounterVec
	logDropBytes    *prometheus.CounterVec
	logBatches      prometheus.Counter
	busDrops        prometheus.Counter
	pushes          *prometheus.CounterVec
	logQueueBytes   prometheus.GaugeFunc
	liveStatsGauged prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, h *Hub) (*hubMetrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metrics.Namespace, Subsystem: "hub", Name: name, Help: help}
	}
	m := &hubMetrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts(opts("connections", "Worker WebSocket connections open on this core."))),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts(opts("upgrades_total",
			"WebSocket upgrade attempts by result (ok, unauthorized, handshake, error).")), []string{"result"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("closes_total",
			"Worker connections closed, by reason.")), []string{"reason"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts(opts("envelopes_received_total",
			"Verified envelopes received from workers, by message type.")), []string{"type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts(opts("rejected_envelopes_total",
			"Frames and envelopes refused, by reason (a wsproto error code).")), []string{"reason"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts(opts("dispatch_panics_total",
			"Message handlers that panicked (recovered; the message got an internal error)."))),
		hbFlushes: prometheus.NewCounter(prometheus.CounterOpts(opts("heartbeat_flushes_total",
			"Batched heartbeat UPDATEs written."))),
		hbBeats: prometheus.NewCounter(prometheus.CounterOpts(opts("heartbeats_flushed_total",
			"Worker heartbeats written by the batched UPDATEs (after coalescing)."))),
		logLines: prometheus.NewCounter(prometheus.CounterOpts(opts("runtime_log_lines_persisted_total",
			"Runtime log lines written to runtime_logs."))),
		logBytes: prometheus.NewCounter(prometheus.CounterOpts(opts("runtime_log_bytes_persisted_total",
			"Bytes of runtime log text written to runtime_logs."))),
		logDropLines: prometheus.NewCounterVec(prometheus.CounterOpts(opts("runtime_log_lines_dropped_total",
			"Runtime log lines dropped, by reason.")), []string{"reason"}),
		logDropBytes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("runtime_log_bytes_dropped_total",
			"Runtime log bytes dropped, by reason (rate_limited counts payload bytes).")), []string{"reason"}),
		logBatches: prometheus.NewCounter(prometheus.CounterOpts(opts("runtime_log_copies_total",
			"COPY statements the runtime log writer ran."))),
		busDrops: prometheus.NewCounter(prometheus.CounterOpts(opts("log_bus_dropped_total",
			"Runtime log lines not delivered to a slow log bus subscriber."))),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("jobs_sent_total",
			"Job frames sent to workers, by cause (push, replay).")), []string{"cause"}),
	}
	m.logQueueBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("runtime_log_queue_bytes",
		"Runtime log bytes waiting for the writer.")), func() float64 { return float64(h.logs.queued.Load()) })
	m.liveStatsGauged = prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("live_app_stats",
		"Apps with live statistics in memory.")), func() float64 { return float64(h.stats.Len()) })
	for _, c := range []prometheus.Collector{m.connections, m.upgrades, m.closes, m.received, m.rejected, m.panics,
		m.hbFlushes, m.hbBeats, m.logLines, m.logBytes, m.logDropLines, m.logDropBytes, m.logBatches, m.busDrops,
		m.pushes, m.logQueueBytes, m.liveStatsGauged} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("hub: register metrics: %w", err)
		}
	}
	// Pre-create the label values dashboards expect, so they read 0, not
	// "no data".
	for _, code := range []string{wsproto.CodeBadFrame, wsproto.CodeBadMAC, wsproto.CodeBadClock, wsproto.CodeReplayed,
		wsproto.CodeUnknownType, wsproto.CodeBadPayload, wsproto.CodeNotOwner, wsproto.CodeRateLimited,
		wsproto.CodeTooLarge, wsproto.CodeInternal} {
		m.rejected.WithLabelValues(code)
	}
	for _, t := range knownTypes {
		m.received.WithLabelValues(t)
	}
	return m, nil
}

// knownTypes are the worker → core message types (label values).
var knownTypes = []string{wsproto.TypeHeartbeat, wsproto.TypeJobStatus, wsproto.TypeJobResult, wsproto.TypeAppStats,
	wsproto.TypeAppStatus, wsproto.TypeViolation, wsproto.TypeRuntimeLog, wsproto.TypeBuildLog}
