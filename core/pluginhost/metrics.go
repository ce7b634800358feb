package pluginhost

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the host's Prometheus series, labelled kind and name.
type metrics struct {
	up       *prometheus.GaugeVec
	restarts *prometheus.CounterVec
}

// newMetrics creates the series and registers them on reg (nil: none). A
// second host on the same registry shares the first one's series.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wisehosting_plugin_up",
			Help: "1 while the plugin runs and is configured, 0 while it is down, restarting or stopped.",
		}, []string{"kind", "name"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wisehosting_plugin_restarts_total",
			Help: "Restart attempts after the plugin crashed.",
		}, []string{"kind", "name"}),
	}
	if reg == nil {
		return m
	}
	if err := reg.Register(m.up); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if g, ok := are.ExistingCollector.(*prometheus.GaugeVec); ok {
				m.up = g
			}
		}
	}
	if err := reg.Register(m.restarts); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if c, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				m.restarts = c
			}
		}
	}
	return m
}
