package server

import (
	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/metrics"
)

// newMetrics builds the registry /metrics serves. It only reads: the hub's
// counters and live lists, and the listeners' state as the start-up
// self-probe and shadow scan left it.
func (s *Server) newMetrics(checker *auth.Checker) *metrics.Metrics {
	m := metrics.New(metrics.Sources{
		Hub:       metrics.FromHub(s.Hub),
		Refusals:  checker.Refusals,
		Limits:    func() map[string]uint64 { return s.guard.warn.Counts() },
		Listeners: s.boundState,
		Accepted:  s.acceptedByListener,
		Version:   Version,
		Log:       s.Log.With("component", "metrics"),
	})
	m.SetAccess(metricsAccess(s.Config))
	s.OnReload([]string{"metrics"}, func(c *config.Config) { m.SetAccess(metricsAccess(c)) })
	return m
}

// metricsAccess is [metrics] as the handler applies it; a reload calls
// s.Metrics.SetAccess(metricsAccess(cfg)) to apply a change live.
func metricsAccess(cfg *config.Config) metrics.Access {
	return metrics.Access{Enable: cfg.Metrics.Enable, Secret: cfg.Metrics.Secret, Allow: cfg.Metrics.AllowIP}
}
