package rtpproxy

import (
	"fmt"
	"strconv"
	"time"

	"github.com/berthmedia/berth/internal/limits"
)

// Limits against abuse (docs/reliability.md#limits-against-abuse). Every
// RTP packet with a new SSRC on a shared port makes a stream, with its
// demuxer, reorder buffer and (for TS) a goroutine: a sender of random
// SSRCs could make thousands a second, each held until the silence
// timeout. Two limits bound that: a cap on the streams one port holds at
// once, and a short timeout for an SSRC that never becomes a stream (no
// decodable tracks), instead of the stream's timeoutSec.
const (
	defaultMaxSSRCPerPort = 256              // [rtp_proxy] max_ssrc_per_port
	defaultUnreadyTimeout = 10 * time.Second // [rtp_proxy] unready_timeout_sec
)

func (s *Server) maxSSRCPerPort() int {
	if s.MaxSSRCPerPort > 0 {
		return s.MaxSSRCPerPort
	}
	return defaultMaxSSRCPerPort
}

func (s *Server) unreadyTimeout() time.Duration {
	if s.UnreadyTimeout > 0 {
		return s.UnreadyTimeout
	}
	return defaultUnreadyTimeout
}

// warner is the rate-limited logger of the refusals: Warn, which Berth
// shares between every protocol, or else one of the server's own.
func (s *Server) warner() *limits.Warner { return s.ownWarn.Get(s.Warn, s.Log) }

// portFull reports whether port already holds max_ssrc_per_port streams;
// s.mu is held. The scan is bounded by the cap of every port together and
// runs only for a packet of an SSRC that has no stream yet.
func (s *Server) portFull(port int) bool {
	n, max := 0, s.maxSSRCPerPort()
	for _, ss := range s.sessions {
		if ss.localPort == port {
			if n++; n >= max {
				return true
			}
		}
	}
	return false
}

// refuseSSRC logs (rate-limited) the packets of a new SSRC dropped on a
// full port.
func (s *Server) refuseSSRC(ssrc uint32, remote, transport string, port int) {
	n := s.ssrcRefused.Add(1)
	s.warner().Warn("rtp_proxy.max_ssrc_per_port", strconv.Itoa(port),
		fmt.Sprintf("RTP proxy port %d already has [rtp_proxy] max_ssrc_per_port=%d streams; packets of the new SSRC %s from %s are dropped. Raise [rtp_proxy] max_ssrc_per_port if this many senders are real",
			port, s.maxSSRCPerPort(), ssrcHex(ssrc), remote),
		"port", port, "transport", transport, "refused_total", n)
}

// unready reports whether a stream has sent packets for unready_timeout
// without becoming a stream of the hub; s.mu of the session is held.
func (ss *session) unready(now time.Time, timeout time.Duration) bool {
	if ss.b.decided.Load() || (ss.raw != nil && (ss.raw.pub != nil || ss.raw.refused)) {
		return false
	}
	return now.Sub(ss.started) > timeout
}

// reasonUnready ends a stream that never became one (unready_timeout_sec).
const reasonUnready = "not a stream within [rtp_proxy] unready_timeout_sec: no decodable tracks; dropped"

// droppedUnready logs the end of an SSRC that never became a stream: its
// own line at debug (a sender of random SSRCs makes one per SSRC) and a
// rate-limited warning with the key. It reports whether it logged.
func (ss *session) droppedUnready(reason string, attrs []any) bool {
	if reason != reasonUnready {
		return false
	}
	ss.log.Debug("RTP stream ended", attrs...)
	n := ss.srv.unreadyDropped.Add(1)
	ss.srv.warner().Warn("rtp_proxy.unready_timeout_sec", strconv.Itoa(ss.localPort),
		fmt.Sprintf("RTP proxy port %d dropped SSRC %s from %s: no decodable stream within [rtp_proxy] unready_timeout_sec=%s. Raise [rtp_proxy] unready_timeout_sec if a real sender needs longer (a long GOP, a late PSM/PMT)",
			ss.localPort, ssrcHex(ss.ssrc), ss.remote, ss.srv.unreadyTimeout()),
		"port", ss.localPort, "transport", ss.transport, "dropped_total", n)
	return true
}
