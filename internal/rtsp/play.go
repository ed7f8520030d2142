package rtsp

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/pion/rtcp"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

const (
	batchFrames      = 32              // frames taken from the ring per wake-up, written with one writev (a 4 Mb/s P frame is ~15 packets; 32 keeps the per-reader batch and the socket's iovec array at ~2.5 KB)
	senderReportTime = 5 * time.Second // RTCP SR interval per track (RFC 3550 6.2 allows this order)
)

// playLoop follows the hub reader and writes to the client until the reader
// ends (publisher left, PAUSE, TEARDOWN) or the client stops taking data.
func (c *conn) playLoop(rd *hub.Reader, done chan struct{}) {
	defer close(done)
	sess := c.sess
	// The batch lives in one heap object made once: a net.Buffers local to
	// the loop would escape through WriteTo and allocate on every write.
	b := &playBatch{}
	frames := b.frames[:]
	hdrs := b.hdrs[:]
	udp := sess.udp
	tracks := sess.tracks
	var sent, bytes uint64
	lastSR := time.Now()
	if udp {
		for _, t := range tracks {
			// One reader per RTCP socket for the session's life: a PLAY
			// after PAUSE runs this loop again, and each extra reader would
			// hold a goroutine and a 64 KB buffer until TEARDOWN.
			if t != nil && !t.rtcpReading {
				t.rtcpReading = true
				go c.readUDP(t, false)
			}
		}
	}
	// last is each track's newest packet sent; what a sender report needs
	// from it is parsed only when a report is due, not per packet.
	last := make([]*hub.Frame, len(tracks))
	var wdl time.Time // when the write deadline was last pushed forward
	var err error
	for {
		var n int
		n, err = rd.Read(frames)
		// The first packets of a video frame whose rest the publisher is
		// still delivering: take the rest before writing (the hub wakes us
		// when the frame is whole), so the frame goes out in one writev
		// and this reader wakes once per frame, not per publisher read.
		for err == nil && n < len(frames) && frames[n-1].MidFrame() {
			var m int
			m, err = rd.Read(frames[n:])
			n += m
		}
		readErr := err
		err = nil
		bufs := b.backing[:0]
		for i := 0; i < n; i++ {
			f := frames[i]
			frames[i] = nil
			t := trackAt(tracks, f.Track)
			if t == nil {
				continue
			}
			pkt := f.RTP()
			last[f.Track] = f
			t.packets++
			t.octets += uint32(len(pkt))
			sent++
			bytes += uint64(len(pkt))
			if udp {
				t.rtp.WriteToUDP(pkt, t.clientRTP)
				continue
			}
			if t.channel == 2*f.Track {
				bufs = append(bufs, f.Data) // the shared header already names our channel
			} else {
				h := hdrs[4*i : 4*i+4]
				h[0], h[1], h[2], h[3] = '$', byte(t.channel), byte(len(pkt)>>8), byte(len(pkt))
				bufs = append(bufs, h, pkt)
			}
		}
		now := time.Now()
		// A track's first report goes out before its first packet: a player
		// then maps every packet by it, instead of guessing timestamps and
		// correcting them later (ffmpeg's correction can step audio back).
		if firstOfTrack(tracks, last) {
			observe(tracks, last)
			c.sendReports(rd.Stream(), tracks, now, false)
		}
		if !udp && len(bufs) > 0 {
			c.wmu.Lock()
			// Moving the deadline costs a runtime timer update; once a
			// second is enough (a stuck client is dropped after 9-10 s).
			if now.Sub(wdl) >= time.Second {
				c.nc.SetWriteDeadline(now.Add(writeTimeout))
				wdl = now
			}
			var w int64
			b.nb = bufs
			w, err = b.nb.WriteTo(c.nc)
			c.wmu.Unlock()
			c.bytesOut.Add(uint64(w))
			if err != nil {
				break
			}
		}
		if readErr != nil {
			err = readErr
			break
		}
		if now.Sub(lastSR) >= senderReportTime {
			lastSR = now
			observe(tracks, last)
			c.sendReports(rd.Stream(), tracks, now, false)
		}
	}
	c.log.Info("play ended", "path", sess.path, "packets_out", sent, "bytes_out", bytes, "reason", playEndReason(err))
	switch {
	case errors.Is(err, hub.ErrEnded):
		// RFC 3550 BYE is the closest thing RTSP 1.0 has to a server-sent
		// TEARDOWN; then close, so the player ends at once.
		observe(tracks, last)
		c.sendReports(rd.Stream(), tracks, time.Now(), true)
		c.close("stream ended: the publisher left")
	case errors.Is(err, hub.ErrSlowReader):
		c.close("dropped: the client did not keep up with the stream")
	case errors.Is(err, hub.ErrReaderClosed):
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Warn("slow reader dropped: it took nothing for "+writeTimeout.String(), "path", sess.path)
		c.close("dropped: the client stopped reading")
	default:
		c.close("write to the client failed: " + err.Error())
	}
}

type playBatch struct {
	frames  [batchFrames]*hub.Frame
	hdrs    [4 * batchFrames]byte
	backing [2 * batchFrames][]byte
	nb      net.Buffers
}

func playEndReason(err error) string {
	switch {
	case errors.Is(err, hub.ErrEnded):
		return "publisher left"
	case errors.Is(err, hub.ErrReaderClosed):
		return "stopped by the client"
	case errors.Is(err, hub.ErrSlowReader):
		return "client too slow"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "client stopped reading for " + writeTimeout.String() + "; dropped it (the stream and other readers go on)"
	}
	return err.Error()
}

func trackAt(ts []*trackSetup, i int) *trackSetup {
	if i < len(ts) {
		return ts[i]
	}
	return nil
}

// firstOfTrack reports whether the batch holds the first packet of a track.
func firstOfTrack(tracks []*trackSetup, last []*hub.Frame) bool {
	for i, f := range last {
		if f != nil && !tracks[i].seen {
			return true
		}
	}
	return false
}

// observe keeps what a sender report needs from each track's last packet
// sent (packet and octet counts are kept per packet by playLoop).
func observe(tracks []*trackSetup, last []*hub.Frame) {
	for i, f := range last {
		if f == nil {
			continue
		}
		last[i] = nil
		if h, ok := codec.ParseRTP(f.RTP()); ok {
			t := tracks[i]
			t.ssrc, t.lastTS, t.lastRecv, t.seen = h.SSRC, h.Timestamp, f.Recv, true
		}
	}
}

// sendReports sends an RTCP sender report (and a BYE when bye) per track
// that has sent media, so players can align audio and video. The wall clock
// maps to the RTP clock by the publisher's own reports when it sent them
// (exact), else by the last packet's arrival.
func (c *conn) sendReports(st *hub.Stream, tracks []*trackSetup, now time.Time, bye bool) {
	for _, t := range tracks {
		if t == nil || !t.seen || t.clockRate <= 0 {
			continue
		}
		rtpTime := t.lastTS + uint32(now.Sub(t.lastRecv).Seconds()*float64(t.clockRate))
		if ts, ok := st.RTPTimeAt(t.index, now); ok {
			rtpTime = ts
		}
		pkts := []rtcp.Packet{&rtcp.SenderReport{
			SSRC: t.ssrc, NTPTime: ntpTime(now), RTPTime: rtpTime, PacketCount: t.packets, OctetCount: t.octets,
		}}
		if bye {
			pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{t.ssrc}, Reason: "stream ended"})
		}
		buf, err := rtcp.Marshal(pkts)
		if err != nil {
			continue
		}
		if t.rtcp != nil {
			t.rtcp.WriteToUDP(buf, t.clientRTCP)
			continue
		}
		frame := make([]byte, 4+len(buf))
		frame[0], frame[1], frame[2], frame[3] = '$', byte(t.channel+1), byte(len(buf)>>8), byte(len(buf))
		copy(frame[4:], buf)
		c.wmu.Lock()
		c.nc.SetWriteDeadline(now.Add(writeTimeout))
		n, _ := c.nc.Write(frame)
		c.wmu.Unlock()
		c.bytesOut.Add(uint64(n))
	}
}

// ntpTime is RFC 3550's 64-bit NTP timestamp.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800
	s := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return s<<32 | frac
}
