package pusher

import (
	"context"
	"time"

	"github.com/pion/rtcp"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/rtspclient"
)

// srPeriod is how often the pusher sends RTCP sender reports, as Berth's
// RTSP server does to its players (RFC 3550 section 6.2 suggests 5 s).
const srPeriod = 5 * time.Second

// rtspTarget publishes to an RTSP server: ANNOUNCE with an SDP of the
// stream's tracks, SETUP of each (TCP interleaved or UDP), RECORD, then
// the RTP packets of the hub's RTP view: the publisher's own packets for
// an RTSP or RTP source, packets made from access units otherwise.
type rtspTarget struct {
	c      *rtspclient.Client
	st     *hub.Stream
	tracks []srTrack
	lastSR time.Time
}

// srTrack is what a sender report of one track needs (RFC 3550 6.4.1).
type srTrack struct {
	rate            int
	ssrc, lastTS    uint32
	lastRecv        time.Time
	packets, octets uint32
	seen, reported  bool
}

func dialRTSP(ctx context.Context, spec Spec, st *hub.Stream) (*rtspTarget, error) {
	sdp, err := codec.SDP(st.Tracks)
	if err != nil {
		return nil, err
	}
	tr := rtspclient.TCP
	if spec.RTPType == 1 {
		tr = rtspclient.UDP
	}
	c, err := rtspclient.Dial(ctx, spec.DstURL, rtspclient.Options{Transport: tr, Timeout: spec.Timeout, UserAgent: "Berth pusher"})
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	desc, err := c.Announce(sdp)
	if err != nil {
		return nil, err
	}
	if err := c.SetupAll(desc); err != nil {
		return nil, err
	}
	if err := c.Record(); err != nil {
		return nil, err
	}
	t := &rtspTarget{c: c, st: st, tracks: make([]srTrack, len(st.Tracks))}
	for i, tk := range st.Tracks {
		t.tracks[i].rate = tk.Format.ClockRate()
	}
	ok = true
	return t, nil
}

func (t *rtspTarget) kind() hub.Kind          { return hub.KindRTP }
func (t *rtspTarget) failed() <-chan struct{} { return t.c.Done() }
func (t *rtspTarget) err() error              { return t.c.Err() }
func (t *rtspTarget) remote() string          { return t.c.Conn().RemoteAddr().String() }
func (t *rtspTarget) close()                  { t.c.Close() }
func (t *rtspTarget) abort()                  { t.c.Conn().Close() }

func (t *rtspTarget) write(frames []*hub.Frame) error {
	for _, f := range frames {
		if f.Track < 0 || f.Track >= len(t.tracks) {
			continue
		}
		pkt := f.RTP()
		tk := &t.tracks[f.Track]
		if h, ok := codec.ParseRTP(pkt); ok {
			tk.ssrc, tk.lastTS, tk.lastRecv, tk.seen = h.SSRC, h.Timestamp, f.Recv, true
			if tk.lastRecv.IsZero() {
				tk.lastRecv = time.Now()
			}
			if !tk.reported {
				// A track's first report goes ahead of its first packet, so
				// the target (and its players) can line tracks up at once.
				tk.reported = true
				t.report(f.Track, time.Now())
			}
		}
		if err := t.c.WritePacket(f.Track, pkt); err != nil {
			return err
		}
		tk.packets++
		tk.octets += uint32(max(len(pkt)-12, 0))
	}
	if now := time.Now(); now.Sub(t.lastSR) >= srPeriod {
		t.lastSR = now
		for i := range t.tracks {
			t.report(i, now)
		}
	}
	return nil
}

// report sends track i's sender report: the wall clock mapped to its RTP
// clock by the source's own reports where it sent them, else by the last
// packet's arrival, as Berth's RTSP server reports to its players.
func (t *rtspTarget) report(i int, now time.Time) {
	tk := &t.tracks[i]
	if !tk.seen || tk.rate <= 0 {
		return
	}
	rtpTime := tk.lastTS + uint32(now.Sub(tk.lastRecv).Seconds()*float64(tk.rate))
	if ts, ok := t.st.RTPTimeAt(i, now); ok {
		rtpTime = ts
	}
	buf, err := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: tk.ssrc, NTPTime: codec.NTPTime(now),
		RTPTime: rtpTime, PacketCount: tk.packets, OctetCount: tk.octets}})
	if err == nil {
		t.c.WriteRTCP(i, buf) // a lost report costs nothing; the next one comes in 5 s
	}
}
