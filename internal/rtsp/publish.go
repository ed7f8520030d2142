package rtsp

import (
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// onInterleaved takes one '$' frame from the client: media of a publisher,
// or RTCP of a player (its receiver reports only keep the session alive).
func (s *session) onInterleaved(c *conn, channel int, pkt []byte) {
	if s.getState() != stateRecord {
		return
	}
	t := int(s.byChan[channel]) - 1
	if t < 0 {
		return // an RTCP channel (odd) or one never set up
	}
	// Wake readers once per socket read rather than once per packet: a
	// keyframe arrives as dozens of packets in one read. The cap bounds the
	// delay when the buffer never drains.
	s.pending++
	flush := c.br.Buffered() == 0 || s.pending >= maxUnflushed
	if flush {
		s.pending = 0
	}
	s.publishPacket(c, t, pkt, time.Now(), flush)
}

const maxUnflushed = 16

// publishPacket turns one RTP packet into a frame: one copy, into the buffer
// every reader will share.
func (s *session) publishPacket(c *conn, track int, pkt []byte, recv time.Time, flush bool) {
	h, ok := codec.ParseRTP(pkt)
	if !ok {
		if n := s.garbageIn.Add(1); n == 1 || n%1000 == 0 {
			c.log.Warn("dropped a packet that is not RTP", "path", s.path, "track", track, "count", n)
		}
		return
	}
	s.pubMu.Lock()
	key := s.keys[track].Key(h)
	s.pub.Append(hub.NewRTPFrame(track, pkt, key, recv))
	if flush {
		s.pub.Flush()
	}
	s.pubMu.Unlock()
	s.packetsIn.Add(1)
	s.mediaBytes.Add(uint64(len(pkt)))
}

// readUDP reads one server socket of a UDP publisher (RTP) or player (RTCP)
// until it is closed. Datagrams from other hosts than the client are dropped.
func (c *conn) readUDP(t *trackSetup, rtp bool) {
	pc := t.rtcp
	if rtp {
		pc = t.rtp
	}
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if !from.IP.Equal(t.clientRTP.IP) {
			continue
		}
		c.touch()
		c.bytesIn.Add(uint64(n))
		if rtp {
			c.sess.publishPacket(c, t.index, buf[:n], time.Now(), true)
		}
	}
}
