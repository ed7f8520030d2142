package server

import (
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/proxy"
)

// newProxies makes the pull proxies' manager before the hub, whose
// observer it is (on-demand start, no-reader stop); Start sets its Hub.
func (s *Server) newProxies() *proxy.Manager {
	cfg := s.Config
	return &proxy.Manager{
		Log:   s.Log.With("component", "proxy"),
		Grace: time.Duration(cfg.Proxy.GraceMS) * time.Millisecond,
		NoReaderDelay: func() time.Duration {
			return time.Duration(s.CurrentConfig().General.StreamNoneReaderDelayMS) * time.Millisecond
		},
	}
}

// startPulls adds the [proxy] app/stream=URL pulls; Start calls it once
// everything listens. A bad line is logged with its fix and skipped.
func (s *Server) startPulls() {
	cfg := s.Config.Proxy
	for _, p := range cfg.Pulls {
		_, err := s.proxies.Add(pullSpec(cfg, p))
		if err != nil {
			s.Log.Error("[proxy] pull not started", "path", p.Path, "url", proxy.Redact(p.URL), "err", err,
				"fix", "correct the line in the config's [proxy] section")
		}
	}
}

func pullSpec(cfg config.Proxy, p config.Pull) proxy.Spec {
	return proxy.Spec{Path: p.Path, URL: p.URL, RetryCount: cfg.RetryCount, Transport: proxy.Transport(cfg.RTPType),
		Timeout: time.Duration(cfg.TimeoutSec * float64(time.Second)), OnDemand: cfg.OnDemand}
}

// Proxies returns the pull proxies; nil before Start.
func (s *Server) Proxies() *proxy.Manager { return s.proxies }
