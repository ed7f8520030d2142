package rtsp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtcp"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/fanout"
	"github.com/berthmedia/berth/internal/hub"
)

// onInterleaved takes one '$' frame from the client: media of a publisher,
// or RTCP of a player (its receiver reports only keep the session alive).
func (s *session) onInterleaved(c *conn, channel int, pkt []byte) {
	if s.getState() != stateRecord || s.publishing == nil || s.byChan == nil { // nil: a UDP publisher
		return
	}
	switch v := int(s.byChan[channel]); {
	case v < 0:
		s.onRTCP(c, -v-1, pkt, time.Now())
	case v > 0:
		s.publishPacket(c, v-1, pkt, time.Now(), false)
		s.pending++
	}
	// Wake readers once per socket read rather than once per packet: a
	// keyframe arrives as dozens of packets in one read. Checked after
	// every frame, RTCP included, so a report at the end of a read does not
	// hold the media before it; the cap bounds the delay when the buffer
	// never drains.
	if s.pending > 0 && (c.br.Buffered() == 0 || s.pending >= maxUnflushed) {
		s.pending = 0
		s.pubMu.Lock()
		s.pub.Flush()
		s.pubMu.Unlock()
	}
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
		} else {
			c.sess.onRTCP(c, t.index, buf[:n], time.Now())
		}
	}
}

// watchRTCP reads a UDP player's RTCP port, whose receiver reports keep the
// session alive, through the server's poller: a short goroutine when a
// report comes, instead of one per track (and its 64 KB buffer) for the
// session's life. Where the poller cannot watch it, readUDP reads it.
func (c *conn) watchRTCP(t *trackSetup) {
	w, ok := c.s.poller.Watch(t.rtcp, func() { go c.drainRTCP(t) })
	if !ok {
		go c.readUDP(t, false)
		return
	}
	t.rtcpWatch = w
	w.Arm()
}

// rtcpBufPool lends drainRTCP a buffer for its turn: a player's reports
// are a few hundred bytes every few seconds.
var rtcpBufPool = sync.Pool{New: func() any { return new([1500]byte) }}

// drainRTCP reads the datagrams waiting on a UDP player's RTCP port, then
// waits on the poller again; it ends when the socket is closed.
func (c *conn) drainRTCP(t *trackSetup) {
	buf := rtcpBufPool.Get().(*[1500]byte)
	defer rtcpBufPool.Put(buf)
	client, _ := netip.AddrFromSlice(t.clientRTP.IP)
	client = client.Unmap()
	for {
		n, from, err := fanout.TryRecvFrom(t.rtcp, buf[:])
		switch {
		case errors.Is(err, fanout.ErrWouldBlock):
			t.rtcpWatch.Arm()
			return
		case errors.Is(err, net.ErrClosed):
			return // the session ended
		case err != nil:
			continue // an ICMP error of an earlier send; reading it cleared it
		case from != client:
			continue
		}
		c.touch()
		c.bytesIn.Add(uint64(n))
	}
}

// rtcpChannel is the interleaved channel of a track's RTCP: the second of
// the client's pair, else the one after its RTP channel; -1 when out of
// range.
func rtcpChannel(rtpChannel int, ids *[2]int) int {
	ch := rtpChannel + 1
	if ids != nil && ids[1] != ids[0] {
		ch = ids[1]
	}
	if ch < 0 || ch > 255 {
		return -1
	}
	return ch
}

// onRTCP takes an RTCP compound packet of a publisher's track (interleaved
// or on the UDP RTCP port) and records its sender report, the exact
// mapping of the track's RTP clock to the sender's wall clock, on the
// stream (RFC 3550 6.4.1). Readers use it: the RTP to AU conversion to
// line tracks up, RTSP players' own sender reports. Players' receiver
// reports, and anything that does not parse, only keep the session alive.
func (s *session) onRTCP(c *conn, track int, pkt []byte, recv time.Time) {
	if s.getState() != stateRecord || s.publishing == nil {
		return
	}
	s.pubMu.Lock()
	pub := s.pub
	s.pubMu.Unlock()
	if pub == nil {
		return
	}
	st := pub.Stream()
	if track < 0 || track >= len(st.Tracks) || st.Tracks[track].Format == nil {
		return
	}
	rate := st.Tracks[track].Format.ClockRate()
	sr, ok := parseSenderReport(pkt)
	if !ok || rate <= 0 {
		return
	}
	first := false
	if _, had := st.ClockRef(track); !had {
		first = true
	}
	st.SetClockRef(track, hub.ClockRef{NTP: sr.NTP, RTPTime: sr.RTPTime, ClockRate: rate, Recv: recv})
	if first {
		c.log.Debug("publisher sends RTCP sender reports; tracks are aligned by them", "path", s.path, "track", track)
	}
}

// senderReport is what a sender report says about its source's clocks.
type senderReport struct {
	SSRC    uint32
	NTP     time.Time
	RTPTime uint32
}

// parseSenderReport returns the first sender report of an RTCP compound
// packet. It never panics on any input.
func parseSenderReport(b []byte) (senderReport, bool) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return senderReport{}, false
	}
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok {
			return senderReport{SSRC: sr.SSRC, NTP: codec.NTPToTime(sr.NTPTime), RTPTime: sr.RTPTime}, true
		}
	}
	return senderReport{}, false
}
