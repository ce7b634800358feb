// Package metrics builds the Prometheus registry the core exposes at
// /metrics. There is no global registry: the daemon creates one and every
// subsystem registers its own collectors on it.
package metrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every WiseHosting metric.
const Namespace = "wisehosting"

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// PoolCollector exports pgxpool statistics.
type PoolCollector struct {
	pool  *pgxpool.Pool
	descs map[string]*prometheus.Desc
}

// NewPoolCollector returns a collector reading pool.Stat() at each scrape.
func NewPoolCollector(pool *pgxpool.Pool) *PoolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "db_pool", name), help, nil, nil)
	}
	return &PoolCollector{pool: pool, descs: map[string]*prometheus.Desc{
		"acquired":      d("acquired_conns", "Connections currently acquired."),
		"idle":          d("idle_conns", "Idle connections."),
		"total":         d("total_conns", "Open connections."),
		"max":           d("max_conns", "Maximum pool size."),
		"acquires":      d("acquires_total", "Successful acquires."),
		"empty":         d("empty_acquires_total", "Acquires that had to wait for a connection."),
		"canceled":      d("canceled_acquires_total", "Acquires canceled by their context."),
		"acquire_secs":  d("acquire_seconds_total", "Total time spent acquiring connections."),
		"new_conns":     d("new_conns_total", "Connections opened."),
		"lifetime_kill": d("max_lifetime_destroys_total", "Connections closed for exceeding their lifetime."),
	}}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	g := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.descs[k], prometheus.GaugeValue, v) }
	n := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.descs[k], prometheus.CounterValue, v) }
	g("acquired", float64(s.AcquiredConns()))
	g("idle", float64(s.IdleConns()))
	g("total", float64(s.TotalConns()))
	g("max", float64(s.MaxConns()))
	n("acquires", float64(s.AcquireCount()))
	n("empty", float64(s.EmptyAcquireCount()))
	n("canceled", float64(s.CanceledAcquireCount()))
	n("acquire_secs", s.AcquireDuration().Seconds())
	n("new_conns", float64(s.NewConnsCount()))
	n("lifetime_kill", float64(s.MaxLifetimeDestroyCount()))
}
