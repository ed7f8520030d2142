package rtpproxy

import (
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// esCodec is the codec of one elementary stream found in a TS or PS.
type esCodec uint8

const (
	esUnknown esCodec = iota
	esH264
	esH265
	esAAC
	esG711A
	esG711U
	esOpus
)

func (c esCodec) String() string {
	switch c {
	case esH264:
		return "H264"
	case esH265:
		return "H265"
	case esAAC:
		return "AAC"
	case esG711A:
		return "G711A"
	case esG711U:
		return "G711U"
	case esOpus:
		return "Opus"
	}
	return "unknown"
}

func (c esCodec) video() bool { return c == esH264 || c == esH265 }

// elemStream is one elementary stream as the demuxer sees it, with the codec
// parameters collected so far.
type elemStream struct {
	id    int // PS stream_id or TS PID
	codec esCodec

	vps, sps, pps []byte
	aac           *mpeg4audio.AudioSpecificConfig
	channels      int // Opus

	track int // index in the published tracks; -1 when not published

	clock unwrap // 33-bit 90 kHz timestamps made monotonic
}

func (e *elemStream) ready() bool {
	switch e.codec {
	case esH264:
		return e.sps != nil && e.pps != nil
	case esH265:
		return e.vps != nil && e.sps != nil && e.pps != nil
	case esAAC:
		return e.aac != nil
	case esG711A, esG711U:
		return true
	case esOpus:
		return e.channels > 0
	}
	return false
}

// unwrap extends MPEG's 33-bit 90 kHz clock past its 26.5-hour wrap.
type unwrap struct {
	init bool
	last int64 // last raw value
	acc  int64 // unwrapped value of last
}

const (
	clock33  = int64(1) << 33
	clockHz  = 90000
	maxClock = clock33 - 1
)

// diff33 is b-a on the 33-bit circle, in (-2^32, 2^32].
func diff33(a, b int64) int64 {
	d := (b - a) & maxClock
	if d > clock33/2 {
		d -= clock33
	}
	return d
}

func (u *unwrap) do(v int64) int64 {
	v &= maxClock
	if !u.init {
		u.init, u.last, u.acc = true, v, v
		return v
	}
	u.acc += diff33(u.last, v)
	u.last = v
	return u.acc
}

// Limits of the wait before publishing. Tracks are fixed at publish, so the
// builder holds frames until every stream it knows has its parameters.
const (
	maxPending     = 1024                 // frames held before publishing; older ones are dropped
	undeclaredSpan = 400 * clockHz / 1000 // without a PSM/PMT, media time to watch for more streams
	publishWait    = 3 * time.Second      // then publish whatever is ready
)

type pendingFrame struct {
	es       *elemStream
	key      bool
	au       [][]byte
	pts, dts int64 // unwrapped 90 kHz
}

// builder turns elementary-stream access units into a hub stream: it
// collects the tracks and their parameters, publishes once they are known,
// and then writes frames. One goroutine uses a builder at a time.
type builder struct {
	hub    *hub.Hub
	log    *slog.Logger
	path   string
	origin hub.Origin

	streams  []*elemStream
	declared bool // a PSM or PMT listed the streams: no need to watch for more

	pending   []pendingFrame
	firstData time.Time
	minDTS    int64
	maxDTS    int64

	pub     *hub.Publisher
	base    int64 // unwrapped 90 kHz time that becomes PTS 0
	refused bool  // the hub refused the path; frames are dropped
	ended   bool

	framesOut   uint64
	unsupported map[int]bool // stream ids already logged as unsupported

	tap func(*hub.Frame) // tests: sees every frame written

	// hubEnded is set once the hub has ended the stream (takeover,
	// shutdown); the session, in another goroutine for TS, polls it.
	hubEnded atomic.Bool
	// decided is set once the hub took the stream or refused it; the
	// session, in another goroutine for TS, reads it (unready_timeout_sec).
	decided atomic.Bool
}

func newBuilder(h *hub.Hub, log *slog.Logger, path string, origin hub.Origin) *builder {
	return &builder{hub: h, log: log, path: path, origin: origin}
}

// stream returns the elementary stream with id, adding it with codec c when
// new. A stream whose codec changes under the same id is re-declared only
// before publishing.
func (b *builder) stream(id int, c esCodec) *elemStream {
	for _, e := range b.streams {
		if e.id == id {
			if e.codec != c && b.pub == nil {
				e.codec = c
				e.vps, e.sps, e.pps, e.aac = nil, nil, nil, nil
			}
			return e
		}
	}
	if c == esUnknown {
		return nil
	}
	e := &elemStream{id: id, codec: c, track: -1}
	b.streams = append(b.streams, e)
	return e
}

func (b *builder) logUnsupported(id int, what string) {
	if b.unsupported == nil {
		b.unsupported = map[int]bool{}
	}
	if b.unsupported[id] {
		return
	}
	b.unsupported[id] = true
	b.log.Warn("RTP stream carries an elementary stream Berth cannot use; it is ignored",
		"path", b.path, "stream_id", fmt.Sprintf("0x%x", id), "type", what)
}

// video takes one access unit of H.264/H.265 NAL units (without start codes).
func (b *builder) video(e *elemStream, pts, dts int64, nalus [][]byte) {
	if b.ended || b.refused || len(nalus) == 0 {
		return
	}
	key := false
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch e.codec {
		case esH264:
			switch n[0] & 0x1f {
			case 5:
				key = true
			case 7:
				if !eq(e.sps, n) && b.pub == nil {
					e.sps = clone(n)
				}
			case 8:
				if !eq(e.pps, n) && b.pub == nil {
					e.pps = clone(n)
				}
			}
		case esH265:
			if len(n) < 2 {
				continue
			}
			switch t := (n[0] >> 1) & 0x3f; {
			case t >= 16 && t <= 21:
				key = true
			case t == 32 && b.pub == nil:
				e.vps = clone(n)
			case t == 33 && b.pub == nil:
				e.sps = clone(n)
			case t == 34 && b.pub == nil:
				e.pps = clone(n)
			}
		}
	}
	d := e.clock.do(dts)
	p := d + diff33(dts, pts)
	b.frame(pendingFrame{es: e, key: key, au: nalus, pts: p, dts: d})
}

// audio takes one audio frame; pts is its 90 kHz presentation time.
func (b *builder) audio(e *elemStream, pts int64, frame []byte) {
	if b.ended || b.refused || len(frame) == 0 {
		return
	}
	t := e.clock.do(pts)
	b.frame(pendingFrame{es: e, au: [][]byte{frame}, pts: t, dts: t})
}

func (b *builder) frame(f pendingFrame) {
	if b.pub != nil {
		b.write(f)
		return
	}
	now := time.Now()
	if b.firstData.IsZero() {
		b.firstData = now
		b.minDTS, b.maxDTS = f.dts, f.dts
	}
	if f.dts < b.minDTS {
		b.minDTS = f.dts
	}
	if f.dts > b.maxDTS {
		b.maxDTS = f.dts
	}
	if len(b.pending) >= maxPending {
		copy(b.pending, b.pending[1:])
		b.pending = b.pending[:len(b.pending)-1]
	}
	b.pending = append(b.pending, f)
	b.maybePublish(now)
}

// maybePublish publishes once every known stream has its parameters (and,
// when no PSM/PMT listed the streams, after enough media to have seen them
// all), or after publishWait with the streams that are ready.
func (b *builder) maybePublish(now time.Time) {
	all, any := true, false
	for _, e := range b.streams {
		if e.ready() {
			any = true
		} else {
			all = false
		}
	}
	if !any {
		return
	}
	settled := b.declared || b.maxDTS-b.minDTS >= undeclaredSpan
	if !(all && settled) && now.Sub(b.firstData) < publishWait {
		return
	}
	b.publish()
}

func (b *builder) publish() {
	var ready []*elemStream
	for _, e := range b.streams {
		if e.ready() {
			ready = append(ready, e)
		} else if e.codec != esUnknown {
			b.log.Warn("RTP stream: a track never showed its codec parameters; it is left out",
				"path", b.path, "codec", e.codec.String(), "stream_id", e.id)
		}
	}
	// Video first: players pick the first track as the main one.
	sort.SliceStable(ready, func(i, j int) bool { return ready[i].codec.video() && !ready[j].codec.video() })
	tracks := make([]*hub.Track, 0, len(ready))
	for i, e := range ready {
		e.track = i
		tracks = append(tracks, buildTrack(e))
	}
	pub, err := b.hub.Publish(b.path, b.origin, hub.KindAU, tracks, nil)
	if err != nil {
		b.refused = true
		b.decided.Store(true)
		b.pending = nil
		b.log.Warn("RTP stream refused by the hub; its packets are dropped until it stops",
			"path", b.path, "remote", b.origin.Remote, "err", err)
		return
	}
	b.pub = pub
	b.decided.Store(true)
	b.base = b.minDTS
	var codecs []string
	for _, e := range ready {
		codecs = append(codecs, e.codec.String())
	}
	b.log.Info("RTP stream published", "path", b.path, "remote", b.origin.Remote, "tracks", codecs)
	for _, f := range b.pending {
		b.write(f)
	}
	b.pending = nil
}

func (b *builder) write(f pendingFrame) {
	if f.es.track < 0 {
		return
	}
	select {
	case <-b.pub.Done():
		b.ended = true
		b.hubEnded.Store(true)
		return
	default:
	}
	fr := &hub.Frame{
		Track: f.es.track, Key: f.key, AU: f.au,
		PTS: ticksToDuration(f.pts - b.base), DTS: ticksToDuration(f.dts - b.base),
		Recv: time.Now(),
	}
	if b.tap != nil {
		b.tap(fr)
	}
	b.pub.Write(fr)
	b.framesOut++
}

// close unpublishes. Safe to call more than once.
func (b *builder) close() {
	b.ended = true
	if b.pub != nil {
		b.pub.Close()
		b.pub = nil
	}
	b.pending = nil
}

// ticksToDuration converts 90 kHz ticks; frames from before the stream's
// first frame (audio that arrived late) are clamped to 0.
func ticksToDuration(t int64) time.Duration {
	if t < 0 {
		return 0
	}
	return time.Duration(t * 100000 / 9)
}

func buildTrack(e *elemStream) *hub.Track {
	switch e.codec {
	case esH264:
		return codec.H264Track(e.sps, e.pps)
	case esH265:
		return codec.H265Track(e.vps, e.sps, e.pps)
	case esAAC:
		return codec.AACTrackConfig(e.aac)
	case esG711A:
		return codec.G711Track(true, 8000, 1)
	case esG711U:
		return codec.G711Track(false, 8000, 1)
	case esOpus:
		return codec.OpusTrack(e.channels)
	}
	return nil
}

func eq(a, b []byte) bool { return string(a) == string(b) }

func clone(b []byte) []byte { return append([]byte(nil), b...) }
