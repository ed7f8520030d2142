package rtpproxy

import (
	"log/slog"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/codec"
)

// payloadKind is what an RTP stream's payloads carry.
type payloadKind uint8

const (
	payloadUnknown payloadKind = iota
	payloadTS
	payloadPS
	payloadRaw // RTP of the codecs an SDP describes (a port opened with one)
)

func (k payloadKind) String() string {
	switch k {
	case payloadTS:
		return "mpegts"
	case payloadPS:
		return "ps"
	case payloadRaw:
		return "rtp"
	}
	return "unknown"
}

// session is one RTP stream: one SSRC on the shared port, or everything
// that reaches a port opened for one stream id.
type session struct {
	srv       *Server
	log       *slog.Logger
	key       sessionKey
	path      string
	ssrc      uint32
	remote    string
	transport string // "udp" or "tcp"
	localPort int
	owner     any // the TCP connection that created it; nil for UDP
	started   time.Time

	mu       sync.Mutex
	kind     payloadKind
	pt       uint8
	b        *builder
	ps       *psDemuxer
	ts       *tsDemuxer
	raw      *rawState
	reorder  reorderer
	closed   bool
	lastSeen time.Time
	packets  uint64
	bytes    uint64
	badPT    uint64
	lossLog  time.Time
	lossSeen uint64 // lost count at the last log line
}

type sessionKey struct {
	ssrc     uint32
	streamID string // set for a port opened for one stream: the SSRC does not matter
}

// handle takes one RTP packet of this stream. pkt may be reused after it returns.
func (s *session) handle(h codec.RTPHeader, pkt []byte, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.lastSeen = now
	s.packets++
	s.bytes += uint64(len(h.Payload))
	if s.kind == payloadRaw {
		s.handleRaw(h, pkt, now)
		return
	}
	if s.kind == payloadUnknown {
		s.kind = s.srv.kindOf(h)
		s.pt = h.PayloadType
		switch s.kind {
		case payloadPS:
			s.ps = newPSDemuxer(s.b)
		case payloadTS:
			s.ts = newTSDemuxer()
			s.srv.wg.Add(1)
			go func(ts *tsDemuxer, b *builder) {
				defer s.srv.wg.Done()
				ts.run(b, s.log)
			}(s.ts, s.b)
		default:
			s.badPT++
			s.kind = payloadUnknown
			if s.badPT == 1 {
				s.log.Warn("RTP stream with a payload that is neither MPEG-TS nor PS; its packets are dropped "+
					"(set [rtp_proxy] ps_pt / ts_pt to the payload type the sender uses)",
					"path", s.path, "remote", s.remote, "payload_type", h.PayloadType)
			}
			return
		}
	}
	if h.PayloadType != s.pt {
		s.badPT++
		return
	}
	s.reorder.push(h.Seq, h.Payload, h.Timestamp, h.Marker, now, s.deliver)
	s.logLoss(now)
}

// deliver runs with s.mu held, once per packet in sequence order.
func (s *session) deliver(payload []byte, _ uint32, _ bool, lost bool) {
	switch s.kind {
	case payloadPS:
		if lost {
			s.ps.reset()
		}
		s.ps.feed(payload)
	case payloadTS:
		s.ts.feed(payload)
	}
}

func (s *session) logLoss(now time.Time) {
	lost := s.reorder.lost
	if lost == s.lossSeen || now.Sub(s.lossLog) < 5*time.Second {
		return
	}
	s.log.Warn("RTP packets lost", "path", s.path, "remote", s.remote, "lost_since_last", lost-s.lossSeen,
		"lost_total", lost, "received", s.packets)
	s.lossLog, s.lossSeen = now, lost
}

// expired reports whether the stream has been silent for timeout or the hub ended it.
func (s *session) expired(now time.Time, timeout time.Duration) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ""
	}
	if now.Sub(s.lastSeen) > timeout {
		return true, "no packets for " + timeout.String()
	}
	if s.unready(now, s.srv.unreadyTimeout()) { // limits.go
		return true, reasonUnready
	}
	if s.b.hubEnded.Load() {
		return true, "ended by the hub"
	}
	if s.kind == payloadTS && s.ts.dead.Load() {
		return true, "demuxer stopped"
	}
	if s.kind == payloadRaw && s.raw.pub != nil {
		select {
		case <-s.raw.pub.Done():
			return true, "ended by the hub"
		default:
		}
	}
	return false, ""
}

// close ends the stream: the hub path is unpublished and the end logged.
func (s *session) close(reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.reorder.flushAll(s.deliver)
	var frames uint64
	lost := s.reorder.lost
	switch s.kind {
	case payloadTS:
		s.ts.close()
	case payloadRaw:
		for _, ro := range s.raw.reorder {
			ro.flushAll(s.deliverRaw)
		}
		lost = s.raw.lostTotal()
		if s.raw.pub != nil {
			s.raw.pub.Close()
		}
	default:
		frames = s.b.framesOut
		s.b.close()
	}
	attrs := []any{"path", s.path, "ssrc", ssrcHex(s.ssrc), "remote", s.remote, "transport", s.transport,
		"payload", s.kind.String(), "reason", reason, "duration", time.Since(s.started).Round(time.Millisecond).String(),
		"packets", s.packets, "bytes", s.bytes, "lost", lost, "late", s.reorder.late,
		"reordered", s.reorder.reordered}
	if s.ps != nil {
		attrs = append(attrs, "frames", frames, "ps_garbage_bytes", s.ps.garbage)
	}
	if s.ts != nil {
		attrs = append(attrs, "queue_drops", s.ts.drops.Load(), "decode_errors", s.ts.errors.Load())
	}
	if s.badPT > 0 {
		attrs = append(attrs, "wrong_payload_type", s.badPT)
	}
	ts := s.ts
	s.mu.Unlock()
	if ts != nil {
		// Let the demuxer unpublish before the path can be claimed again.
		select {
		case <-ts.done:
		case <-time.After(2 * time.Second):
		}
	}
	if s.droppedUnready(reason, attrs) { // limits.go
		return
	}
	s.log.Info("RTP stream ended", attrs...)
}

// stats is a snapshot for the API.
func (s *session) stats() (packets, bytes, lost uint64, kind payloadKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.raw != nil {
		return s.packets, s.bytes, s.raw.lostTotal(), s.kind
	}
	return s.packets, s.bytes, s.reorder.lost, s.kind
}
