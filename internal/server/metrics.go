package server

import (
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/metrics"
	"github.com/berthmedia/berth/internal/ports"
)

// newMetrics builds the registry /metrics serves. It only reads: the hub's
// counters and live lists, and the listeners' state as the start-up
// self-probe and shadow scan left it.
func (s *Server) newMetrics() *metrics.Metrics {
	m := metrics.New(metrics.Sources{
		Hub:       metrics.FromHub(s.Hub),
		Listeners: func() ports.State { return s.bound.State() },
		Accepted:  s.acceptedByListener,
		Version:   Version,
		Log:       s.Log.With("component", "metrics"),
	})
	m.SetAccess(metricsAccess(s.Config))
	return m
}

// metricsAccess is [metrics] as the handler applies it; a reload calls
// s.Metrics.SetAccess(metricsAccess(cfg)) to apply a change live.
func metricsAccess(cfg *config.Config) metrics.Access {
	return metrics.Access{Enable: cfg.Metrics.Enable, Secret: cfg.Metrics.Secret, Allow: cfg.Metrics.AllowIP}
}
