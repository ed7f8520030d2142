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
