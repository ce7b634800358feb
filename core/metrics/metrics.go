// Package metrics builds the Prometheus registry the core exposes at
// /metrics. There is no global registry: the daemon creates one and every
// subsystem registers its own collectors on it.
package metrics

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
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

// Sum gathers g and adds up the counters and gauges named name whose
// labels include the given name/value pairs (no pairs: every series). It is
// how benchmarks and tests read the core's own metrics.
func Sum(g prometheus.Gatherer, name string, labels ...string) (float64, error) {
	if len(labels)%2 != 0 {
		return 0, fmt.Errorf("metrics: sum %s: labels come in name/value pairs", name)
	}
	mfs, err := g.Gather()
	if err != nil {
		return 0, fmt.Errorf("metrics: gather: %w", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				if !hasLabel(m.GetLabel(), labels[i], labels[i+1]) {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum, nil
}

func hasLabel(pairs []*dto.LabelPair, name, value string) bool {
	for _, lp := range pairs {
		if lp.GetName() == name && lp.GetValue() == value {
			return true
		}
	}
	return false
}
