package codec

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpfragmented"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtplpcm"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpsimpleaudio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"

	"github.com/berthmedia/berth/internal/hub"
)

// codecKind is what a track's frames are, for both directions.
type codecKind uint8

const (
	kindNone codecKind = iota
	kindH264
	kindH265
	kindAAC
	kindLATM
	kindOpus
	kindG711
	kindAV1
)

func (k codecKind) String() string {
	return [...]string{"unsupported", "H264", "H265", "AAC", "AAC-LATM", "Opus", "G711", "AV1"}[k]
}

func kindOf(f format.Format) codecKind {
	switch f := f.(type) {
	case *format.H264:
		return kindH264
	case *format.H265:
		return kindH265
	case *format.AV1:
		return kindAV1
	case *format.MPEG4Audio:
		if f.Config != nil {
			return kindAAC
		}
	case *format.MPEG4AudioLATM:
		if AACConfig(f) != nil {
			return kindLATM
		}
	case *format.Opus:
		return kindOpus
	case *format.G711:
		return kindG711
	}
	return kindNone
}

// formatName names a format in logs.
func formatName(f format.Format) string {
	if f == nil {
		return "none"
	}
	return f.Codec() //nolint:staticcheck // the only name every format has
}

// depacketizer turns a stream's RTP packets into access units: the RTP to
// AU conversion. One runs per converter goroutine; it is not shared.
type depacketizer struct {
	log    *slog.Logger
	path   string
	stream *hub.Stream // where the publisher's sender reports are
	tl     timeline
	tracks []*depackTrack // nil where the track's codec is not converted
	pkt    rtp.Packet     // reused: decoders keep only the payload bytes
	panics int            // recovered decoder panics; the fuzz target wants none

	// AUs held until every track has settled on the timeline.
	settled   bool
	held      []heldAU
	holdStart time.Time
	// shift moves every track later so that no held AU starts before 0
	// (a B-frame stream's first DTS precedes its first PTS).
	shift time.Duration
}

// heldAU is an AU waiting for its track's offset; pts and dts are raw.
type heldAU struct {
	t        *depackTrack
	f        *hub.Frame
	pts, dts int64
}

// depackTrack is one track's decoder state.
type depackTrack struct {
	index  int
	kind   codecKind
	format format.Format
	clock  trackClock
	// reorder is the video's reorder delay in clock ticks, known at its
	// first AU: how much later than its decoding a keyframe shows.
	reorder int64
	// frameDur is the video frame duration in ticks from the SPS, 0 when
	// unknown; keyDec and sinceKey count decoding times from a keyframe.
	frameDur int64
	keyDec   int64
	sinceKey int64

	h264 *rtph264.Decoder
	h265 *rtph265.Decoder
	av1  *rtpav1.Decoder
	aac  *rtpmpeg4audio.Decoder
	latm *rtpfragmented.Decoder
	opus *rtpsimpleaudio.Decoder
	g711 *rtplpcm.Decoder

	latmFmt *format.MPEG4AudioLATM
	dts264  h264.DTSExtractor
	dts265  h265.DTSExtractor

	// params are the latest parameter sets (H.264: SPS, PPS; H.265: VPS,
	// SPS, PPS), from the SDP and then from the stream itself.
	params [3][]byte
	// waitKey drops video AUs until a random access point, after the start
	// or a DTS error: nothing before it decodes.
	waitKey bool

	// pending tracks the H.264 decoder's buffered AU: gortsplib splits AUs
	// on a timestamp change as well as on the marker bit, and then returns
	// the previous AU while the current packet starts the next one.
	pending      bool
	pendingTS    uint32
	pendingTicks int64

	lastDTS  time.Duration
	emitted  bool
	drops    uint64
	lastWarn time.Time
}

func newDepacketizer(s *hub.Stream, log *slog.Logger) *depacketizer {
	d := &depacketizer{log: log, path: s.Path, stream: s, tl: timeline{since: s.Since}, tracks: make([]*depackTrack, len(s.Tracks))}
	for i, t := range s.Tracks {
		dt, err := newDepackTrack(i, t.Format)
		if err != nil {
			log.Warn("RTP to AU: track not converted; RTMP and FLV readers will not get it",
				"path", s.Path, "track", i, "codec", formatName(t.Format), "cause", err)
			continue
		}
		d.tracks[i] = dt
	}
	return d
}

// errUnsupported says a codec has no RTP to AU conversion.
var errUnsupported = errors.New("codec has no conversion between RTP and access units (supported: H264, H265, AV1, AAC, Opus, G711)")

func newDepackTrack(i int, f format.Format) (*depackTrack, error) {
	if f == nil {
		return nil, errUnsupported
	}
	t := &depackTrack{index: i, kind: kindOf(f), format: f, clock: trackClock{rate: int64(f.ClockRate())}}
	if t.clock.rate <= 0 {
		return nil, fmt.Errorf("clock rate %d is invalid", t.clock.rate)
	}
	var err error
	switch f := f.(type) {
	case *format.H264:
		t.params[0], t.params[1] = f.SPS, f.PPS
		t.waitKey = true
		t.dts264.Initialize()
		// A publisher that announces packetization-mode=0 (single NAL unit)
		// still sends packets mode 1 decodes: mode 1 is a superset.
		t.h264 = &rtph264.Decoder{PacketizationMode: 1}
		err = t.h264.Init()
	case *format.H265:
		t.params[0], t.params[1], t.params[2] = f.VPS, f.SPS, f.PPS
		t.waitKey = true
		t.dts265.Initialize()
		t.h265, err = f.CreateDecoder()
	case *format.AV1:
		t.waitKey = true
		t.av1, err = f.CreateDecoder()
	case *format.MPEG4Audio:
		if t.kind == kindNone {
			return nil, errors.New("AAC track has no config in the SDP")
		}
		t.aac, err = f.CreateDecoder()
	case *format.MPEG4AudioLATM:
		if t.kind == kindNone {
			return nil, errors.New("AAC-LATM track has no StreamMuxConfig in the SDP")
		}
		t.latmFmt = f
		t.latm, err = f.CreateDecoder()
	case *format.Opus:
		t.opus, err = f.CreateDecoder()
	case *format.G711:
		t.g711, err = f.CreateDecoder()
	default:
		return nil, errUnsupported
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// push depacketizes one RTP frame and appends the access units it
// completes to out. It never panics on any input: a broken packet or AU is
// dropped with a rate-limited log line and the stream goes on.
func (d *depacketizer) push(f *hub.Frame, out []*hub.Frame) (res []*hub.Frame) {
	if f.Track < 0 || f.Track >= len(d.tracks) || d.tracks[f.Track] == nil || len(f.Data) < hub.RTPPrefix {
		return out
	}
	t := d.tracks[f.Track]
	h, ok := ParseRTP(f.RTP())
	if !ok {
		d.drop(t, "packet is not RTP version 2")
		return out
	}
	defer func() {
		// The decoders are fuzzed upstream, but a panic here would end the
		// server: treat one as a broken packet and reset the track.
		if r := recover(); r != nil {
			d.panics++
			d.drop(t, fmt.Sprintf("decoder panic: %v", r))
			nt, err := newDepackTrack(t.index, t.format)
			if err == nil {
				nt.clock = t.clock
				d.tracks[t.index] = nt
			}
			res = out
		}
	}()
	d.pkt = rtp.Packet{
		Header: rtp.Header{
			Version: 2, Marker: h.Marker, PayloadType: h.PayloadType,
			SequenceNumber: h.Seq, Timestamp: h.Timestamp, SSRC: h.SSRC,
		},
		Payload: h.Payload,
	}
	pkt := &d.pkt
	ticks := t.clock.unwrap(pkt)
	d.syncRef(t)

	switch t.kind {
	case kindH264, kindH265:
		var au [][]byte
		var err error
		if t.kind == kindH264 {
			au, err = t.h264.Decode(pkt)
		} else {
			au, err = t.h265.Decode(pkt)
		}
		if err != nil {
			if errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrMorePacketsNeeded) {
				if !t.pending {
					t.pending, t.pendingTS, t.pendingTicks = true, pkt.Timestamp, ticks
				}
				return out
			}
			t.pending = false
			if errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) {
				return out // joined mid-AU: normal at a reader's start
			}
			d.drop(t, err.Error())
			return out
		}
		auTicks := ticks
		if t.kind == kindH264 && t.pending && pkt.Timestamp != t.pendingTS {
			// Split on a timestamp change: au is the previous AU, and this
			// packet is buffered as the start of the next.
			auTicks = t.pendingTicks
			t.pendingTS, t.pendingTicks = pkt.Timestamp, ticks
		} else {
			t.pending = false
		}
		return d.videoAU(t, au, auTicks, f.Recv, out)

	case kindAV1:
		tu, err := t.av1.Decode(pkt)
		if err != nil {
			if !errors.Is(err, rtpav1.ErrMorePacketsNeeded) && !errors.Is(err, rtpav1.ErrNonStartingPacketAndNoPrevious) {
				d.drop(t, err.Error())
			}
			return out
		}
		return d.av1AU(t, tu, ticks, f.Recv, out)

	case kindAAC:
		aus, err := t.aac.Decode(pkt)
		if err != nil {
			if !errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded) {
				d.drop(t, err.Error())
			}
			return out
		}
		// RFC 3640 section 3.2.3.1: AUs of one packet follow each other
		// by one frame of 1024 samples.
		d.audioSample(t, ticks, len(aus), f.Recv)
		for i, au := range aus {
			out = d.audioAU(t, au, ticks+int64(i)*mpeg4audio.SamplesPerAccessUnit, f.Recv, out)
		}
		return out

	case kindLATM:
		buf, err := t.latm.Decode(pkt)
		if err != nil {
			if !errors.Is(err, rtpfragmented.ErrMorePacketsNeeded) {
				d.drop(t, err.Error())
			}
			return out
		}
		el := mpeg4audio.AudioMuxElement{MuxConfigPresent: t.latmFmt.CPresent, StreamMuxConfig: t.latmFmt.StreamMuxConfig}
		if err := el.Unmarshal(buf); err != nil {
			d.drop(t, "invalid LATM AudioMuxElement: "+err.Error())
			return out
		}
		d.audioSample(t, ticks, len(el.Payloads), f.Recv)
		for i, sub := range el.Payloads {
			if len(sub) > 0 && len(sub[0]) > 0 {
				out = d.audioAU(t, sub[0][0], ticks+int64(i)*mpeg4audio.SamplesPerAccessUnit, f.Recv, out)
			}
		}
		return out

	case kindOpus:
		fr, err := t.opus.Decode(pkt)
		if err != nil {
			d.drop(t, err.Error())
			return out
		}
		d.audioSample(t, ticks, 1, f.Recv)
		return d.audioAU(t, fr, ticks, f.Recv, out)

	case kindG711:
		fr, err := t.g711.Decode(pkt)
		if err != nil {
			d.drop(t, err.Error())
			return out
		}
		d.audioSample(t, ticks, 1, f.Recv)
		return d.audioAU(t, fr, ticks, f.Recv, out)
	}
	return out
}

// audioSample records the arrival of an audio packet of n AAC frames (or
// one frame of another codec) starting at raw ticks. Senders pack several
// AAC frames into one packet and send it when the next frame does not fit
// (ffmpeg's rtpenc_aac; a live encoder cannot send a frame before its last
// sample either), so an AAC packet arrives at the end of its last frame.
// Other codecs put one frame in a packet, sent at its start by a file
// pusher such as ffmpeg -re.
func (d *depacketizer) audioSample(t *depackTrack, raw int64, n int, recv time.Time) {
	if t.kind == kindAAC || t.kind == kindLATM {
		raw += int64(n) * mpeg4audio.SamplesPerAccessUnit
	}
	t.clock.sample(raw, d.tl.pos(recv))
}

// emit outputs an AU with raw timestamps, or holds it while the timeline
// settles (see timeline).
func (d *depacketizer) emit(t *depackTrack, f *hub.Frame, pts, dts int64, recv time.Time, out []*hub.Frame) []*hub.Frame {
	if d.settled {
		if !t.clock.settled {
			t.clock.settle()
			if t.clock.hasRef {
				d.adoptRefs()
			}
		}
		return append(out, d.finish(t, f, pts, dts))
	}
	if len(d.held) == 0 {
		d.holdStart = recv
	}
	d.held = append(d.held, heldAU{t: t, f: f, pts: pts, dts: dts})
	ready := recv.Sub(d.holdStart) >= 2*settleWindow || len(d.held) >= 4096
	if !ready {
		ready = true
		for _, t := range d.tracks {
			if t != nil && !t.clock.ready() {
				ready = false
			}
		}
	}
	if ready {
		out = d.flush(out)
	}
	return out
}

// flush settles every track and releases the held AUs in arrival order.
// The converter calls it at the end of the stream too.
func (d *depacketizer) flush(out []*hub.Frame) []*hub.Frame {
	d.settled = true
	for _, t := range d.tracks {
		if t != nil && len(t.clock.cands) > 0 {
			t.clock.settle()
		}
	}
	for _, h := range d.held {
		h.t.clock.settle()
	}
	d.adoptRefs()
	for _, h := range d.held {
		d.shift = max(d.shift, -hub.TicksToDuration(h.dts+h.t.clock.offset, h.t.clock.rate))
	}
	for i, h := range d.held {
		out = append(out, d.finish(h.t, h.f, h.pts, h.dts))
		d.held[i] = heldAU{}
	}
	d.held = d.held[:0]
	return out
}

// syncRef takes the publisher's latest sender report for t, if it sent a
// new one since the last packet.
func (d *depacketizer) syncRef(t *depackTrack) {
	ref, ok := d.stream.ClockRef(t.index)
	if !ok || !t.clock.started || int64(ref.ClockRate) != t.clock.rate ||
		(t.clock.hasRef && ref.RTPTime == t.clock.ref.RTPTime && ref.NTP.Equal(t.clock.ref.NTP)) {
		return
	}
	if !d.tl.anchored {
		d.tl.anchor, d.tl.anchored = ref.NTP, true
	}
	t.clock.applyRef(ref, d.tl.anchor)
	if d.settled && t.clock.settled {
		d.adoptRefs()
	}
}

// adoptRefs places every settled track that has a sender report on the
// sender's axis (see timeline). A track joins that axis where its arrival
// put it, unless it has sent nothing yet and the axis is already placed;
// the shift only grows, so tracks that already sent frames only move
// later and stay monotonic. Reports that come later update their track.
func (d *depacketizer) adoptRefs() {
	placed := d.tl.hasShift
	for _, t := range d.tracks {
		if t == nil || !t.clock.hasRef || !t.clock.settled || t.clock.onRef {
			continue
		}
		t.clock.onRef = true
		if placed && !t.emitted {
			continue
		}
		if c := t.clock.refShift(); !d.tl.hasShift || c > d.tl.ntpShift {
			d.tl.ntpShift, d.tl.hasShift = c, true
		}
	}
	for _, t := range d.tracks {
		if t != nil && t.clock.onRef {
			t.clock.offset = t.clock.refOffset(d.tl.ntpShift)
		}
	}
}

// finish places f on the stream's clock.
func (d *depacketizer) finish(t *depackTrack, f *hub.Frame, pts, dts int64) *hub.Frame {
	f.PTS, f.DTS = t.monotonic(d.shift+hub.TicksToDuration(pts+t.clock.offset, t.clock.rate), d.shift+hub.TicksToDuration(dts+t.clock.offset, t.clock.rate))
	return f
}

// videoAU completes an H.264/H.265 access unit: parameter sets, key flag,
// DTS, and monotonic timestamps.
func (d *depacketizer) videoAU(t *depackTrack, au [][]byte, ticks int64, recv time.Time, out []*hub.Frame) []*hub.Frame {
	au = dropEmpty(au)
	if len(au) == 0 {
		return out
	}
	var key bool
	if t.kind == kindH264 {
		au, key = t.withParams264(au)
	} else {
		au, key = t.withParams265(au)
	}
	if t.waitKey && !key {
		return out
	}
	var dtsTicks int64
	var err error
	if t.kind == kindH264 {
		dtsTicks, err = t.dts264.Extract(au, ticks)
	} else {
		dtsTicks, err = t.dts265.Extract(au, ticks)
	}
	if err != nil {
		// Start over at the next keyframe with a fresh extractor: its
		// state no longer matches the stream.
		t.dts264, t.dts265 = h264.DTSExtractor{}, h265.DTSExtractor{}
		t.dts264.Initialize()
		t.dts265.Initialize()
		if !t.waitKey {
			d.drop(t, "cannot compute the decoding time: "+err.Error()+"; waiting for the next keyframe")
		}
		t.waitKey = true
		return out
	}
	if t.waitKey {
		t.reorder, t.frameDur = t.reorderDelay(ticks, dtsTicks), t.frameDuration()
	}
	t.waitKey = false
	// Frames arrive at their decoding time: a keyframe's is one reorder
	// delay before its PTS, and the next ones follow it by a frame each
	// (the DTS extractor's own guesses lag behind at the start).
	if key {
		t.keyDec, t.sinceKey = ticks-t.reorder, 0
	} else {
		t.sinceKey++
	}
	if key || t.frameDur > 0 {
		t.clock.sample(t.keyDec+t.sinceKey*t.frameDur, d.tl.pos(recv))
	}
	return d.emit(t, &hub.Frame{Track: t.index, Key: key, AU: au, Recv: recv}, ticks, dtsTicks, recv, out)
}

func (d *depacketizer) audioAU(t *depackTrack, au []byte, ticks int64, recv time.Time, out []*hub.Frame) []*hub.Frame {
	if len(au) == 0 {
		return out
	}
	return d.emit(t, &hub.Frame{Track: t.index, AU: [][]byte{au}, Recv: recv}, ticks, ticks, recv, out)
}

// reorderDelay is how long after decoding the first keyframe is shown, in
// clock ticks. H.265's DTS extractor already starts that far before the
// PTS (from sps_max_num_reorder_pics); H.264's starts at the PTS, so the
// delay comes from the SPS: max_num_reorder_frames frames of the VUI frame
// rate. Without those fields it is 0, as for streams without B-frames.
func (t *depackTrack) reorderDelay(pts, dts int64) int64 {
	if t.kind == kindH265 {
		return max(pts-dts, 0)
	}
	var sps h264.SPS
	if len(t.params[0]) == 0 || sps.Unmarshal(t.params[0]) != nil || sps.VUI == nil ||
		sps.VUI.BitstreamRestriction == nil || sps.VUI.TimingInfo == nil || sps.VUI.TimingInfo.TimeScale == 0 {
		return 0
	}
	frames := int64(min(sps.VUI.BitstreamRestriction.MaxNumReorderFrames, 16))
	// A frame lasts two ticks of the VUI clock (H.264 E.2.1).
	return frames * t.clock.rate * 2 * int64(sps.VUI.TimingInfo.NumUnitsInTick) / int64(sps.VUI.TimingInfo.TimeScale)
}

// frameDuration is the video frame duration in ticks from the SPS's VUI
// timing, or 0 when the SPS does not say.
func (t *depackTrack) frameDuration() int64 {
	switch t.kind {
	case kindH264:
		var sps h264.SPS
		if len(t.params[0]) == 0 || sps.Unmarshal(t.params[0]) != nil || sps.VUI == nil ||
			sps.VUI.TimingInfo == nil || sps.VUI.TimingInfo.TimeScale == 0 {
			return 0
		}
		return t.sane(t.clock.rate * 2 * int64(sps.VUI.TimingInfo.NumUnitsInTick) / int64(sps.VUI.TimingInfo.TimeScale))
	case kindH265:
		var sps h265.SPS
		if len(t.params[1]) == 0 || sps.Unmarshal(t.params[1]) != nil || sps.VUI == nil ||
			sps.VUI.TimingInfo == nil || sps.VUI.TimingInfo.TimeScale == 0 {
			return 0
		}
		return t.sane(t.clock.rate * int64(sps.VUI.TimingInfo.NumUnitsInTick) / int64(sps.VUI.TimingInfo.TimeScale))
	}
	return 0
}

// sane keeps a frame duration between 1/240 s and 1 s; outside, the SPS
// is wrong and the duration unknown.
func (t *depackTrack) sane(d int64) int64 {
	if d < t.clock.rate/240 || d > t.clock.rate {
		return 0
	}
	return d
}

// monotonic keeps DTS from going backwards or below zero (a reordered or
// stray packet, a B-frame lead-in at the very start), and PTS >= DTS, which
// FLV's composition time needs.
func (t *depackTrack) monotonic(pts, dts time.Duration) (time.Duration, time.Duration) {
	dts = max(dts, 0)
	if t.emitted && dts < t.lastDTS {
		dts = t.lastDTS
	}
	t.emitted, t.lastDTS = true, dts
	return max(pts, dts), dts
}

// withParams264 records in-band SPS/PPS and makes every IDR AU carry them:
// hub.Track is immutable after publish, so a reader that starts at a
// keyframe (or a writer that must send a new sequence header) finds the
// current parameter sets in the keyframe itself.
func (t *depackTrack) withParams264(au [][]byte) ([][]byte, bool) {
	var hasSPS, hasPPS, key bool
	for _, n := range au {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			hasSPS, t.params[0] = true, n
		case h264.NALUTypePPS:
			hasPPS, t.params[1] = true, n
		case h264.NALUTypeIDR:
			key = true
		}
	}
	if !key || (hasSPS && hasPPS) {
		return au, key
	}
	out := make([][]byte, 0, len(au)+2)
	if !hasSPS && len(t.params[0]) > 0 {
		out = append(out, t.params[0])
	}
	if !hasPPS && len(t.params[1]) > 0 {
		out = append(out, t.params[1])
	}
	return append(out, au...), key
}

func (t *depackTrack) withParams265(au [][]byte) ([][]byte, bool) {
	var has [3]bool
	for _, n := range au {
		switch typ := h265.NALUType((n[0] >> 1) & 0x3f); typ {
		case h265.NALUType_VPS_NUT, h265.NALUType_SPS_NUT, h265.NALUType_PPS_NUT:
			i := int(typ - h265.NALUType_VPS_NUT)
			has[i], t.params[i] = true, n
		}
	}
	key := h265.IsRandomAccess(au)
	if !key || (has[0] && has[1] && has[2]) {
		return au, key
	}
	out := make([][]byte, 0, len(au)+3)
	for i, p := range t.params {
		if !has[i] && len(p) > 0 {
			out = append(out, p)
		}
	}
	return append(out, au...), key
}

// dropEmpty removes empty NAL units, which the bitstream code downstream
// indexes without checking. It copies only when there is one.
func dropEmpty(au [][]byte) [][]byte {
	for i, n := range au {
		if len(n) == 0 {
			out := append([][]byte(nil), au[:i]...)
			for _, n := range au[i+1:] {
				if len(n) > 0 {
					out = append(out, n)
				}
			}
			return out
		}
	}
	return au
}

// drop counts a dropped packet or AU and logs at most every 5 s per track.
func (d *depacketizer) drop(t *depackTrack, cause string) {
	t.drops++
	if now := time.Now(); now.Sub(t.lastWarn) >= 5*time.Second {
		t.lastWarn = now
		d.log.Warn("RTP to AU: dropped a broken packet or access unit; readers of this track may see a glitch until the next keyframe",
			"path", d.path, "track", t.index, "codec", t.kind.String(), "cause", cause, "drops_total", t.drops)
	}
}
