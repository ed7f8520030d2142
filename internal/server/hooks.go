package server

import (
	"context"
	"time"

	"github.com/berthmedia/berth/internal/hooks"
	"github.com/berthmedia/berth/internal/rtpproxy"
)

// startHooks makes the web hooks client before the hub, whose observer it
// is. Every hook is asked only while [hook] enable=1 and its URL is set, so
// the client exists even when hooks are off (a reload can turn them on).
func (s *Server) startHooks() {
	s.hooks = hooks.New(s.Config, s.Log.With("component", "hooks"))
	// URLs, enable, timeouts and the ids in the bodies apply to the next
	// call; maxStreamWaitMS is read by the protocol servers at start.
	s.OnReload([]string{"hook", "general.mediaServerId", "general.streamNoneReaderDelayMS", "general.flowThreshold"}, s.hooks.SetConfig)
}

// Hooks returns the web hooks client (for metrics' Observe and reload's
// SetConfig); nil before Start.
func (s *Server) Hooks() *hooks.Client { return s.hooks }

// streamWait is how long a player of a missing stream waits for it
// ([general] maxStreamWaitMS), only while on_stream_not_found is set: its
// hook server is who would start the stream, and without one a player
// should hear "not found" at once, as before hooks.
func (s *Server) streamWait() time.Duration {
	if w := s.edgeWait(); w > 0 { // an edge's readers wait for its origins ([cluster] timeout_sec, origin.go)
		return w
	}
	onDemand := s.Config.Proxy.OnDemand && len(s.Config.Proxy.Pulls) > 0 // [proxy] pulls start with their first reader
	onDemand = onDemand || s.cluster != nil                              // so do edge pulls of other nodes' streams (cluster.go)
	if !onDemand && (s.hooks == nil || !s.hooks.Enabled("on_stream_not_found")) {
		return 0
	}
	return time.Duration(s.Config.General.MaxStreamWaitMS) * time.Millisecond
}

// rtpTimeout reports a silent openRtpServer port (on_rtp_server_timeout).
func (s *Server) rtpTimeout(p rtpproxy.PortInfo) {
	s.hooks.RTPServerTimeout(p.Port, p.StreamID, p.TCPMode, p.SSRC)
}

// hooksStarted sends on_server_started and starts on_server_keepalive;
// Start calls it once everything listens.
func (s *Server) hooksStarted() {
	s.hooks.ServerStarted()
	s.stopKeepalive = s.hooks.Keepalive(s.keepaliveData)
}

// keepaliveData is on_server_keepalive's statistics: ZLMediaKit sends its
// object counts; Berth sends the counts it has.
func (s *Server) keepaliveData() map[string]any {
	streams := s.Hub.Streams()
	readers := 0
	for _, st := range streams {
		readers += st.Readers()
	}
	stats := s.Hub.Stats()
	return map[string]any{"MediaSource": len(streams), "Reader": readers,
		"Published": stats.Published, "Ended": stats.Ended, "NotFound": stats.NotFound}
}

// stopHooks ends the keepalive, lets queued notifications out, sends on_server_exited (bounded by ctx and
// timeoutSec, best effort) and stops the client. Shutdown calls it after the
// streams have ended.
func (s *Server) stopHooks(ctx context.Context) {
	if s.hooks == nil {
		return
	}
	if s.stopKeepalive != nil {
		s.stopKeepalive()
	}
	// The streams' last notifications first, for at most timeoutSec.
	drain, cancel := context.WithTimeout(ctx, time.Duration(s.Config.Hook.TimeoutSec*float64(time.Second)))
	s.hooks.Drain(drain)
	cancel()
	s.hooks.ServerExited(ctx)
	s.hooks.Close()
}
