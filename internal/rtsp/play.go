package rtsp

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pion/rtcp"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/fanout"
	"github.com/berthmedia/berth/internal/hub"
)

const (
	batchFrames      = 32              // frames taken from the ring per wake-up, written with one writev (a 4 Mb/s P frame is ~15 packets; 32 keeps the per-reader batch and the socket's iovec array at ~2.5 KB)
	senderReportTime = 5 * time.Second // RTCP SR interval per track (RFC 3550 6.2 allows this order)
)

// player is one PLAY's media state, in one heap object made once: the
// batch, the iovecs and the net.Buffers a write needs would each escape
// and allocate per write if they were locals.
//
// A TCP player on Linux is event-driven (playevents.go): its hub reader
// wakes one of the server's sender goroutines, which writes the batch with
// one non-blocking writev, so an idle player costs no goroutine and a
// frame costs no goroutine wake-up per player. A UDP player is too: its
// sends never wait (fanout.UDPSender) and the poller reads its RTCP. A
// player where the socket cannot be written that way runs loop in a
// goroutine of its own, which blocks in Read and in the write.
type player struct {
	c      *conn
	rd     *hub.Reader
	done   chan struct{}
	tracks []*trackSetup
	udp    bool

	b      *playBatch // the batch being built and written; nil while an event-driven player waits
	nb     net.Buffers
	report []byte // interleaved RTCP frames due in the next write

	// last is each track's newest packet sent; what a sender report needs
	// from it is parsed only when a report is due, not per packet.
	last        []*hub.Frame
	startAt     time.Time // the publisher's time of the keyframe the play starts on (beforeStart)
	sent, bytes uint64
	udpDropped  uint64 // UDP: packets the socket buffer could not take
	udpFailed   uint64 // UDP: packets the socket refused otherwise (udpErr the last why)
	udpErr      error
	lastSR      time.Time
	wdl         time.Time // when the write deadline was last pushed forward

	ev eventState // the event-driven player's state (playevents.go)
}

// playBatch is what one write of a player needs: the frames taken from the
// ring, their interleaved headers and the buffers of the writev (2.2 KB).
// An event-driven player borrows one from batchPool for its turn only (and
// while a write or the rest of a frame is pending), so a waiting player
// holds none; a player with a goroutine of its own keeps one.
type playBatch struct {
	frames  [batchFrames]*hub.Frame
	hdrs    [4 * batchFrames]byte
	backing [2*batchFrames + 1][]byte // +1: sender reports ahead of the packets
}

var batchPool = sync.Pool{New: func() any { return new(playBatch) }}

// takeBatch gives p a batch if it has none.
func (p *player) takeBatch() {
	if p.b == nil {
		p.b = batchPool.Get().(*playBatch)
	}
}

// releaseBatch gives p's batch back, holding no frame from it.
func (p *player) releaseBatch() {
	if p.b != nil {
		clear(p.b.backing[:])
		batchPool.Put(p.b)
		p.b = nil
	}
}

// startPlay starts the media of a PLAY: event-driven where it can be,
// else in a goroutine of its own.
func (c *conn) startPlay(rd *hub.Reader, done chan struct{}) {
	sess := c.sess
	p := &player{c: c, rd: rd, done: done, tracks: sess.tracks, udp: sess.udp, lastSR: time.Now()}
	p.last = make([]*hub.Frame, len(p.tracks))
	if p.udp {
		for _, t := range p.tracks {
			// One reader per RTCP socket for the session's life: a PLAY
			// after PAUSE starts this again.
			if t != nil && !t.rtcpReading {
				t.rtcpReading = true
				c.watchRTCP(t)
			}
		}
	}
	if p.startEvents() {
		return
	}
	go p.loop()
}

// loop follows the hub reader and writes to the client until the reader
// ends (publisher left, PAUSE, TEARDOWN) or the client stops taking data.
func (p *player) loop() {
	p.takeBatch()
	defer p.releaseBatch()
	var err error
	for {
		var n int
		n, err = p.rd.Read(p.b.frames[:])
		// The first packets of a video frame whose rest the publisher is
		// still delivering: take the rest before writing (the hub wakes us
		// when the frame is whole), so the frame goes out in one writev
		// and this reader wakes once per frame, not per publisher read.
		for err == nil && n < len(p.b.frames) && p.b.frames[n-1].MidFrame() {
			var m int
			m, err = p.rd.Read(p.b.frames[n:])
			n += m
		}
		readErr := err
		err = nil
		now := time.Now()
		if bufs := p.batch(n, now); len(bufs) > 0 {
			if err = p.writeBlocking(bufs, now); err != nil {
				break
			}
		}
		if readErr != nil {
			err = readErr
			break
		}
	}
	p.finish(err)
}

// batch takes frames[:n] for one write: sent at once over UDP, or turned
// into the buffers of one writev over TCP, preceded by the sender reports
// that are due. A track's first report goes out before its first packet:
// a player then maps every packet by it, instead of guessing timestamps
// and correcting them later (ffmpeg's correction steps audio back).
func (p *player) batch(n int, now time.Time) [][]byte {
	b := p.b
	for i, f := range b.frames[:n] {
		t := trackAt(p.tracks, f.Track)
		if t == nil {
			continue
		}
		if !t.seen && p.last[f.Track] == nil && p.beforeStart(f) {
			b.frames[i] = nil
			continue
		}
		p.last[f.Track] = f
	}
	if firstOfTrack(p.tracks, p.last) || now.Sub(p.lastSR) >= senderReportTime {
		p.lastSR = now
		observe(p.tracks, p.last)
		// Over UDP the reports go out here, ahead of the packets below.
		p.report = p.c.appendReports(p.report[:0], p.rd.Stream(), p.tracks, now, false)
	}
	bufs := b.backing[:0]
	if len(p.report) > 0 {
		bufs = append(bufs, p.report)
	}
	for i, f := range b.frames[:n] {
		b.frames[i] = nil
		if f == nil { // dropped by beforeStart
			continue
		}
		t := trackAt(p.tracks, f.Track)
		if t == nil {
			continue
		}
		pkt := f.RTP()
		t.packets++
		t.octets += uint32(len(pkt))
		p.sent++
		p.bytes += uint64(len(pkt))
		if p.udp {
			// Never waits: a datagram the socket buffer cannot take is
			// dropped, as the network would, and counted.
			switch err := t.rtpOut.Send(pkt); {
			case errors.Is(err, fanout.ErrWouldBlock):
				p.udpDropped++
			case err != nil:
				p.udpFailed++
				p.udpErr = err
			}
			continue
		}
		if t.channel == 2*f.Track {
			bufs = append(bufs, f.Data) // the shared header already names our channel
		} else {
			h := b.hdrs[4*i : 4*i+4]
			h[0], h[1], h[2], h[3] = '$', byte(t.channel), byte(len(pkt)>>8), byte(len(pkt))
			bufs = append(bufs, h, pkt)
		}
	}
	return bufs
}

// writeBlocking writes bufs, waiting for the socket up to writeTimeout.
func (p *player) writeBlocking(bufs [][]byte, now time.Time) error {
	p.c.wmu.Lock()
	defer p.c.wmu.Unlock()
	return p.writeLocked(bufs, now)
}

// writeLocked is writeBlocking for a caller that holds wmu.
func (p *player) writeLocked(bufs [][]byte, now time.Time) error {
	c := p.c
	// Moving the deadline costs a runtime timer update; once a second is
	// enough (a stuck client is dropped after 9-10 s).
	if now.Sub(p.wdl) >= time.Second {
		c.nc.SetWriteDeadline(now.Add(writeTimeout))
		p.wdl = now
	}
	p.nb = bufs
	w, err := p.nb.WriteTo(c.nc)
	if err == nil {
		err = p.ev.w.Flush() // over TLS: what the socket did not take of a sealed batch
	}
	p.report = p.report[:0]
	c.bytesOut.Add(uint64(w))
	return err
}

// finish logs the end of the play, sends the goodbye of a stream that
// ended, and closes the connection where the end calls for it.
func (p *player) finish(err error) {
	defer close(p.done)
	c := p.c
	if p.udpDropped > 0 {
		c.log.Warn("play over UDP lost packets: the server's socket buffer was full; raise net.core.wmem_default or play over TCP (-rtsp_transport tcp)",
			"path", c.sess.path, "packets_dropped", p.udpDropped)
	}
	if p.udpFailed > 0 {
		c.log.Warn("play over UDP lost packets: sending to the client's port "+clientRTPAddr(p.tracks)+" failed ("+p.udpErr.Error()+"); check the route to the client, or play over TCP (-rtsp_transport tcp)",
			"path", c.sess.path, "packets_failed", p.udpFailed)
	}
	c.log.Info("play ended", "path", c.sess.path, "packets_out", p.sent, "bytes_out", p.bytes, "reason", playEndReason(err))
	switch {
	case errors.Is(err, hub.ErrEnded):
		// RFC 3550 BYE is the closest thing RTSP 1.0 has to a server-sent
		// TEARDOWN; then close, so the player ends at once.
		observe(p.tracks, p.last)
		now := time.Now()
		if b := c.appendReports(nil, p.rd.Stream(), p.tracks, now, true); len(b) > 0 {
			c.wmu.Lock()
			c.nc.SetWriteDeadline(now.Add(writeTimeout))
			n, _ := c.nc.Write(b)
			c.wmu.Unlock()
			c.bytesOut.Add(uint64(n))
		}
		c.close("stream ended: the publisher left")
	case errors.Is(err, hub.ErrSlowReader):
		c.close("dropped: the client did not keep up with the stream")
	case errors.Is(err, hub.ErrReaderClosed):
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Warn("slow reader dropped: it took nothing for "+writeTimeout.String(), "path", c.sess.path)
		c.close("dropped: the client stopped reading")
	default:
		c.close("write to the client failed: " + err.Error())
	}
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

// startSkew is how far before the keyframe a play starts on its first
// audio packet may begin.
const startSkew = 50 * time.Millisecond

// beforeStart reports, for the first packet of a track in a play, an audio
// packet that begins well before the keyframe the play starts on, by the
// publisher's sender reports. Publishers pack several AAC frames into one
// packet and send it after its last frame (ffmpeg: up to ~100 ms), so the
// first audio packet after a keyframe may begin 100 ms before it; dropping
// it starts the player's audio and video together. The first video packet
// (the keyframe) sets the start; without reports nothing is dropped.
func (p *player) beforeStart(f *hub.Frame) bool {
	st := p.rd.Stream()
	ref, ok := st.ClockRef(f.Track)
	if !ok || f.Track >= len(st.Tracks) {
		return false
	}
	h, ok := codec.ParseRTP(f.RTP())
	if !ok {
		return false
	}
	at := ref.NTPAt(h.Timestamp)
	if st.Tracks[f.Track].Video {
		if p.startAt.IsZero() {
			p.startAt = at
		}
		return false
	}
	return !p.startAt.IsZero() && at.Before(p.startAt.Add(-startSkew))
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
// sent (packet and octet counts are kept per packet by batch).
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

// appendReports builds an RTCP sender report (and a BYE when bye) per track
// that has sent media, so players can align audio and video. Over UDP they
// go out at once on each track's RTCP port; over TCP they are appended to
// dst as interleaved frames for the caller's next write. The wall clock
// maps to the RTP clock by the publisher's own reports when it sent them
// (exact), else by the last packet's arrival.
func (c *conn) appendReports(dst []byte, st *hub.Stream, tracks []*trackSetup, now time.Time, bye bool) []byte {
	for _, t := range tracks {
		if t == nil || !t.seen || t.clockRate <= 0 {
			continue
		}
		rtpTime := t.lastTS + uint32(now.Sub(t.lastRecv).Seconds()*float64(t.clockRate))
		if ts, ok := st.RTPTimeAt(t.index, now); ok {
			rtpTime = ts
		}
		pkts := []rtcp.Packet{&rtcp.SenderReport{
			SSRC: t.ssrc, NTPTime: codec.NTPTime(now), RTPTime: rtpTime, PacketCount: t.packets, OctetCount: t.octets,
		}}
		if bye {
			pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{t.ssrc}, Reason: "stream ended"})
		}
		buf, err := rtcp.Marshal(pkts)
		if err != nil {
			continue
		}
		if t.rtcpOut != nil {
			t.rtcpOut.Send(buf)
			continue
		}
		dst = append(dst, '$', byte(t.channel+1), byte(len(buf)>>8), byte(len(buf)))
		dst = append(dst, buf...)
	}
	return dst
}

// clientRTPAddr names where the first UDP track's packets go, for a line
// about failed sends.
func clientRTPAddr(tracks []*trackSetup) string {
	for _, t := range tracks {
		if t != nil && t.clientRTP != nil {
			return t.clientRTP.String()
		}
	}
	return "?"
}
