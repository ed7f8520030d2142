package proxy

import (
	"encoding/binary"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// outlet is a proxy's side of the hub: one Publisher that outlives source
// sessions. A session begins with its tracks; when they match the
// publisher's (same kind, codecs, clock rates and payload types) the
// publisher is kept and frames carry on from where the last session left
// off: RTP keeps its SSRC, sequence numbers and timestamps run on (the gap
// in wall time becomes a gap in timestamps), access units' times likewise.
// Readers that stayed connected never see the source change, so no
// discontinuity is needed downstream. Other tracks mean a new stream.
type outlet struct {
	p *Proxy

	mu     sync.Mutex
	pub    *hub.Publisher
	kind   hub.Kind
	grace  *time.Timer // running while no session has resumed the publisher
	isLive bool        // the current session has written a frame

	rtp  []rtpRun
	keys []codec.KeyDetector
	// rtpShift moves a resumed session that would start in the past up
	// to now, every track alike (placeRTP); set at its first placed track.
	rtpShift    time.Duration
	rtpShiftSet bool

	auShift   time.Duration // added to the session's access-unit times
	auStarted bool          // auShift is set for this session
	auAny     bool          // some access unit went out on this publisher
	auLast    time.Duration // the latest DTS that went out
	lastWrite time.Time

	bytes atomic.Uint64
}

// rtpRun is one RTP track's continuity across sessions.
type rtpRun struct {
	rate    int
	started bool // this session's offsets are set (at its first packet)
	seqSet  bool // this session's sequence offset is set (at its first packet that went out)
	any     bool // a packet went out on this publisher
	// aligned: this session's timestamps map onto the stream's sender
	// reports (the first session, or a later one placed by its own
	// reports), so its reports are passed on. A session placed by the
	// wall-clock gap alone keeps them back: the hub's old reports still
	// fit its timeline roughly, new ones would move it under readers.
	aligned         bool
	sr              *hub.ClockRef // this session's latest sender report, before its first packet
	ssrc            uint32
	seqOff          uint16
	tsOff           uint32
	lastSeq, lastTS uint32
	lastAt          time.Time
}

// maxAlignSkew bounds how far a session placed by sender reports may land
// from where the wall-clock gap puts it; farther, the source's clock
// changed (a camera that rebooted without NTP) and the gap is trusted.
const maxAlignSkew = 5 * time.Second

// newSession resets what is per session.
func (o *outlet) newSession() {
	o.mu.Lock()
	o.isLive, o.auStarted, o.rtpShift, o.rtpShiftSet = false, false, 0, false
	for i := range o.rtp {
		o.rtp[i].started, o.rtp[i].seqSet, o.rtp[i].sr = false, false, nil
	}
	o.mu.Unlock()
}

func (o *outlet) sessionLive() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.isLive
}

func (o *outlet) published() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pub != nil
}

// armGrace starts the grace time of a stream whose source went away,
// unless it runs already (it counts from the first failure) or there is
// no stream. A session that resumes the stream stops it (begin).
func (o *outlet) armGrace(d time.Duration, log *slog.Logger) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pub == nil || o.grace != nil {
		return
	}
	pub := o.pub
	o.grace = time.AfterFunc(d, func() {
		o.mu.Lock()
		if o.pub != pub || o.grace == nil {
			o.mu.Unlock()
			return
		}
		o.grace = nil
		o.mu.Unlock()
		if o.dropIf(pub) {
			log.Warn("pull: the source stayed away longer than the grace time; the stream ended for its readers", "grace", d)
		}
	})
}

// drop ends the stream for its readers; it reports whether one was live.
func (o *outlet) drop() bool { return o.dropIf(nil) }

// dropIf drops the stream if it is still want's (nil: any).
func (o *outlet) dropIf(want *hub.Publisher) bool {
	o.mu.Lock()
	pub := o.pub
	if want != nil && pub != want {
		o.mu.Unlock()
		return false
	}
	if o.grace != nil {
		o.grace.Stop()
		o.grace = nil
	}
	o.pub = nil
	o.rtp, o.keys = nil, nil
	o.auAny = false
	o.mu.Unlock()
	if pub == nil {
		return false
	}
	pub.Close()
	return true
}

// begin starts a session with its tracks: it keeps the publisher when the
// tracks match, else publishes anew. The channel closes when the stream
// is closed on this server; the session should end then.
func (o *outlet) begin(kind hub.Kind, tracks []*hub.Track, sdp []byte) (<-chan struct{}, error) {
	if len(tracks) == 0 {
		return nil, errNoTracks
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pub != nil && !o.pub.Stream().Ended() && sameTracks(o.kind, o.pub.Stream().Tracks, kind, tracks) {
		if o.grace != nil {
			o.grace.Stop()
			o.grace = nil
		}
		o.p.m.log().Info("pull resumed on the same stream; its readers continue", "key", o.p.key)
		return o.pub.Done(), nil
	}
	if o.pub != nil {
		o.p.m.log().Warn("pull: the source's tracks changed; the stream starts anew and its readers must reconnect", "key", o.p.key)
		o.pub.Close()
		o.pub = nil
	}
	if o.grace != nil {
		o.grace.Stop()
		o.grace = nil
	}
	// ID is the source URL (credentials redacted): the API's originUrl.
	origin := hub.Origin{Proto: "pull", Remote: hostPort(o.p.src), ID: Redact(o.p.src)}
	pub, err := o.p.m.Hub.Publish(o.p.spec.Path, origin, kind, tracks, sdp)
	if err != nil {
		return nil, err
	}
	o.pub, o.kind = pub, kind
	o.rtp = make([]rtpRun, len(tracks))
	o.keys = make([]codec.KeyDetector, len(tracks))
	for i, t := range tracks {
		o.rtp[i].rate = t.Format.ClockRate()
		o.keys[i].Codec = t.Format.Codec()
	}
	o.auAny, o.auLast = false, 0
	return pub.Done(), nil
}

// sameTracks reports whether a session's tracks can go on in a stream
// published with others.
func sameTracks(ka hub.Kind, a []*hub.Track, kb hub.Kind, b []*hub.Track) bool {
	if ka != kb || len(a) != len(b) {
		return false
	}
	for i := range a {
		fa, fb := a[i].Format, b[i].Format
		if fa.Codec() != fb.Codec() || fa.ClockRate() != fb.ClockRate() || fa.PayloadType() != fb.PayloadType() {
			return false
		}
	}
	return true
}

// markLive tells the proxy at a session's first frame; called under o.mu.
func (o *outlet) markLive() {
	if !o.isLive {
		o.isLive = true
		o.p.live() // p.mu after o.mu: nothing takes them the other way round
	}
}

// writeRTP forwards one RTP packet of track, renumbered to continue the
// publisher's sequence and timeline.
func (o *outlet) writeRTP(track int, pkt []byte, now time.Time) {
	h, ok := codec.ParseRTP(pkt)
	if !ok {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pub == nil || track < 0 || track >= len(o.rtp) {
		return
	}
	c := &o.rtp[track]
	if !c.started {
		c.started = true
		if c.any {
			o.placeRTP(track, c, h.Timestamp, now)
		} else {
			c.ssrc, c.aligned = h.SSRC, true
		}
		if c.aligned && c.sr != nil { // the report that came ahead of the packet
			ref := *c.sr
			ref.RTPTime += c.tsOff
			o.pub.Stream().SetClockRef(track, ref)
		}
	}
	ts := h.Timestamp + c.tsOff
	if c.any && !c.seqSet && int32(ts-c.lastTS) <= 0 {
		// The source's first packets (its GOP cache, after a short
		// outage) repeat media that already went out: dropped, so
		// readers never see time go back.
		return
	}
	if !c.seqSet {
		c.seqSet = true
		if c.any {
			c.seqOff = uint16(c.lastSeq) + 1 - h.Seq
		}
	}
	f := hub.NewRTPFrame(track, pkt, false, now)
	b := f.Data[hub.RTPPrefix:]
	seq := h.Seq + c.seqOff
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], c.ssrc)
	h.Timestamp = ts
	f.Key = o.keys[track].Key(h)
	c.lastSeq, c.lastTS, c.lastAt, c.any = uint32(seq), ts, now, true
	o.bytes.Add(uint64(len(pkt)))
	o.pub.Write(f)
	o.markLive()
}

// placeRTP sets a resumed session's timestamp offset for a track whose
// first packet has timestamp ts. With a sender report of this session and
// one of the stream's, the packet lands where the stream's report puts its
// sender time (both sessions' reports count on the source's wall clock), so
// tracks stay lined up as the source sent them; but a session never starts
// in the past: a source that starts a player with its GOP cache sends
// media from up to a GOP ago at once, and the whole session (every track
// by the same time) moves up to where the wall-clock gap puts its first
// track. Without reports each track lands the wall-clock gap after its
// last packet.
func (o *outlet) placeRTP(track int, c *rtpRun, ts uint32, now time.Time) {
	gap := c.lastTS + uint32(max(hub.DurationToTicks(now.Sub(c.lastAt), int64(c.rate)), 1))
	c.tsOff, c.aligned = gap-ts, false
	old, ok := o.pub.Stream().ClockRef(track)
	if c.sr == nil || !ok || c.rate <= 0 {
		o.p.m.log().Debug("pull: a resumed track continues by the wall-clock gap (no sender report yet)", "key", o.p.key, "track", track)
		return
	}
	at := old.RTPAt(c.sr.NTPAt(ts))
	skew := hub.TicksToDuration(int64(int32(at-gap)), int64(c.rate))
	if skew < -maxAlignSkew || skew > maxAlignSkew {
		o.p.m.log().Debug("pull: a resumed track continues by the wall-clock gap (the source's clock moved)", "key", o.p.key, "track", track, "skew", skew)
		return
	}
	if !o.rtpShiftSet {
		o.rtpShiftSet, o.rtpShift = true, max(-skew, 0)
	}
	at += uint32(hub.DurationToTicks(o.rtpShift, int64(c.rate)))
	// Reports go on only when the session sits on the stream's own line.
	c.tsOff, c.aligned = at-ts, o.rtpShift == 0
	o.p.m.log().Debug("pull: a resumed track is placed by sender reports", "key", o.p.key, "track", track, "skew", skew, "shift", o.rtpShift)
}

// writeRTCP takes a source's RTCP: its sender reports map the track's RTP
// clock to the sender's wall clock (RFC 3550 section 6.4.1); shifted by the
// track's timestamp offset, they go on the stream for readers to align by.
// It reports a BYE (section 6.6): the source's stream ended.
func (o *outlet) writeRTCP(track int, pkt []byte, now time.Time) (bye bool) {
	pkts, err := rtcp.Unmarshal(pkt)
	if err != nil {
		return false
	}
	for _, p := range pkts {
		if _, ok := p.(*rtcp.Goodbye); ok {
			bye = true
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pub == nil || track < 0 || track >= len(o.rtp) {
		return bye
	}
	c := &o.rtp[track]
	for _, p := range pkts {
		sr, ok := p.(*rtcp.SenderReport)
		if !ok || c.rate <= 0 {
			continue
		}
		ref := hub.ClockRef{NTP: codec.NTPToTime(sr.NTPTime), RTPTime: sr.RTPTime, ClockRate: c.rate, Recv: now}
		if !c.started {
			c.sr = &ref // places the session's first packet (placeRTP)
			continue
		}
		if c.aligned {
			ref.RTPTime += c.tsOff
			o.pub.Stream().SetClockRef(track, ref)
		}
	}
	return bye
}

// writeAU forwards one access unit; f's times are the source's and are
// shifted to continue the publisher's timeline. f is owned by the outlet.
func (o *outlet) writeAU(track int, f *hub.Frame, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pub == nil || track < 0 || track >= len(o.pub.Stream().Tracks) {
		return
	}
	if !o.auStarted {
		o.auStarted = true
		start := time.Duration(0)
		if o.auAny {
			start = o.auLast + max(now.Sub(o.lastWrite), time.Millisecond)
		}
		o.auShift = start - f.DTS
	}
	f.Track = track
	f.DTS += o.auShift
	f.PTS += o.auShift
	if f.DTS < 0 { // a track that began a little before the first frame
		f.PTS -= f.DTS
		f.DTS = 0
	}
	if f.DTS > o.auLast {
		o.auLast = f.DTS
	}
	o.auAny, o.lastWrite = true, now
	if f.Recv.IsZero() {
		f.Recv = now
	}
	for _, b := range f.AU {
		o.bytes.Add(uint64(len(b)))
	}
	o.pub.Write(f)
	o.markLive()
}

// hostPort is the source's host:port (the scheme's default port when the
// URL names none), the pulled stream's origin address.
func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if u.Port() != "" {
		return u.Host
	}
	port := map[string]string{"rtsp": "554", "rtsps": "322", "rtmp": "1935", "http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	return net.JoinHostPort(u.Hostname(), port)
}
