package server

import (
	"net"
	"net/http"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/limits"
	"github.com/berthmedia/berth/internal/ports"
)

// Limits against abuse (docs/reliability.md#limits-against-abuse): the
// connection caps every TCP listener shares, the HTTP port's head and body
// limits, and the API's rate. The protocol servers get their own limits
// from the config where they read requests (rtsp, rtmp, rtpproxy).
type serverLimits struct {
	warn  *limits.Warner // every refusal's line, the protocol servers' too: one rate limit per cause
	conns limits.Conns
	api   limits.Rate
}

// setLimits applies the config's caps; a reload of the connection caps or
// the API rate applies them to what comes next (open connections stay).
func (s *Server) setLimits(cfg *config.Config) {
	l := &s.guard
	if l.warn == nil {
		l.warn = &limits.Warner{Log: s.Log.With("component", "limits")}
		l.conns.Warn, l.api.Warn = l.warn, l.warn
		l.conns.Exempt = ports.IsSelfProbe // it proves the listeners whatever the caps
		s.OnReload([]string{"general.max_connections", "general.max_connections_per_ip", "general.limits_exempt_loopback",
			"api.max_requests_per_second", "api.max_request_burst"}, s.setLimits)
	}
	c := cfg.Limits
	l.conns.Set(c.MaxConnections, c.MaxConnectionsPerIP, c.ExemptLoopback)
	l.api.Set(float64(c.APIRequestsPerSecond), c.APIRequestBurst, c.ExemptLoopback)
}

// limitListener counts the connections of listener name against the caps;
// on the HTTP ports it logs net/http's head refusals too.
func (s *Server) limitListener(name string, l net.Listener) net.Listener {
	if name == "http" || name == "https" {
		return s.guard.conns.HTTPListener(l, name, s.guard.warn)
	}
	return s.guard.conns.Listener(l, name)
}

// limitHTTP sets the HTTP server's head limits and wraps its handler in the
// body cap ([http] maxReqSize).
func (s *Server) limitHTTP(h *http.Server, cfg *config.Config) {
	c := cfg.Limits
	h.MaxHeaderBytes = c.HTTPMaxHeaderBytes
	h.ReadHeaderTimeout = time.Duration(c.HTTPHeaderTimeoutSec) * time.Second
	h.IdleTimeout = time.Duration(c.HTTPKeepAliveSecond) * time.Second
	h.Handler = limits.BodyHandler(int64(c.HTTPMaxReqSize), "http.maxReqSize", s.guard.warn, h.Handler)
}

// limitAPI puts the API behind the per-IP rate ([api] max_requests_per_second).
func (s *Server) limitAPI(h http.Handler) http.Handler { return s.guard.api.Handler("api", h) }
