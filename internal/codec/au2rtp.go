package codec

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
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

// PayloadMaxSize bounds an RTP payload made from access units: 1500 (an
// Ethernet MTU) - 20 (IPv4) - 8 (UDP) - 12 (RTP) - 10 (room for SRTP).
const PayloadMaxSize = 1450

// maxOpusPacket is the most an Opus packet can hold (RFC 6716 section
// 3.2.5: at most 48 frames of at most 1275 bytes). RFC 7587 puts one Opus
// packet in one RTP packet, unsplit, so a large one goes over PayloadMaxSize
// (fine over TCP; UDP leaves it to IP fragmentation); one over this bound is
// no Opus packet, and would overflow RTSP's 16-bit interleaved length.
const maxOpusPacket = 48 * 1275

// packetizer turns a stream's access units into RTP packets: the AU to RTP
// conversion. One runs per converter goroutine; it is not shared.
type packetizer struct {
	log    *slog.Logger
	path   string
	tracks []*packTrack
	buf    []byte // marshal scratch; NewRTPFrame copies out of it
	panics int    // recovered encoder panics; the fuzz target wants none
}

// packTrack is one track's encoder state. Each encoder draws a random SSRC
// and initial sequence number and numbers its packets without gaps.
type packTrack struct {
	index int
	kind  codecKind
	rate  int64

	h264 *rtph264.Encoder
	h265 *rtph265.Encoder
	av1  *av1Packer
	aac  *rtpmpeg4audio.Encoder
	latm *rtpfragmented.Encoder
	opus *rtpsimpleaudio.Encoder
	g711 *rtplpcm.Encoder

	params  [3][]byte // parameter sets from the track's format
	latmFmt *format.MPEG4AudioLATM

	drops    uint64
	lastWarn time.Time
}

func newPacketizer(s *hub.Stream, log *slog.Logger) *packetizer {
	p := &packetizer{log: log, path: s.Path, tracks: make([]*packTrack, len(s.Tracks)), buf: make([]byte, 0, 1500)}
	for i, t := range s.Tracks {
		pt, err := newPackTrack(i, t.Format)
		if err != nil {
			log.Warn("AU to RTP: track not converted; RTSP readers will not get it",
				"path", s.Path, "track", i, "codec", formatName(t.Format), "cause", err)
			continue
		}
		p.tracks[i] = pt
	}
	return p
}

func newPackTrack(i int, f format.Format) (*packTrack, error) {
	if f == nil {
		return nil, errUnsupported
	}
	t := &packTrack{index: i, kind: kindOf(f), rate: int64(f.ClockRate())}
	if t.rate <= 0 {
		return nil, fmt.Errorf("clock rate %d is invalid", t.rate)
	}
	var err error
	switch f := f.(type) {
	case *format.H264:
		t.params[0], t.params[1] = f.SPS, f.PPS
		t.h264 = &rtph264.Encoder{PayloadType: f.PayloadTyp, PacketizationMode: 1, PayloadMaxSize: PayloadMaxSize}
		err = t.h264.Init()
	case *format.H265:
		t.params[0], t.params[1], t.params[2] = f.VPS, f.SPS, f.PPS
		t.h265 = &rtph265.Encoder{PayloadType: f.PayloadTyp, MaxDONDiff: f.MaxDONDiff, PayloadMaxSize: PayloadMaxSize}
		err = t.h265.Init()
	case *format.AV1:
		t.av1, err = newAV1Packer(f.PayloadTyp)
	case *format.MPEG4Audio:
		if t.kind == kindNone {
			return nil, errors.New("AAC track has no AudioSpecificConfig")
		}
		t.aac = &rtpmpeg4audio.Encoder{
			PayloadType: f.PayloadTyp, SizeLength: f.SizeLength, IndexLength: f.IndexLength,
			IndexDeltaLength: f.IndexDeltaLength, PayloadMaxSize: PayloadMaxSize,
		}
		err = t.aac.Init()
	case *format.MPEG4AudioLATM:
		// AU frames carry raw AAC; each is wrapped in its own
		// AudioMuxElement, which needs one program, one layer, one subframe.
		c := f.StreamMuxConfig
		if t.kind == kindNone || c.NumSubFrames != 0 || len(c.Programs) != 1 || len(c.Programs[0].Layers) != 1 {
			return nil, errors.New("AAC-LATM track needs a StreamMuxConfig with one program, one layer and one subframe")
		}
		t.latmFmt = f
		t.latm = &rtpfragmented.Encoder{PayloadType: f.PayloadTyp, PayloadMaxSize: PayloadMaxSize}
		err = t.latm.Init()
	case *format.Opus:
		t.opus = &rtpsimpleaudio.Encoder{PayloadType: f.PayloadTyp, PayloadMaxSize: PayloadMaxSize}
		err = t.opus.Init()
	case *format.G711:
		t.g711 = &rtplpcm.Encoder{PayloadType: f.PayloadTyp, BitDepth: 8, ChannelCount: max(f.ChannelCount, 1), PayloadMaxSize: PayloadMaxSize}
		err = t.g711.Init()
	default:
		return nil, errUnsupported
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// push packetizes one AU frame and appends its RTP frames to out. The
// first packet of a keyframe AU is marked Key, where an RTSP reader may
// start. It never panics on any input.
func (p *packetizer) push(f *hub.Frame, out []*hub.Frame) (res []*hub.Frame) {
	if f.Track < 0 || f.Track >= len(p.tracks) || p.tracks[f.Track] == nil || len(f.AU) == 0 {
		return out
	}
	t := p.tracks[f.Track]
	defer func() {
		if r := recover(); r != nil {
			p.panics++
			p.drop(t, fmt.Sprintf("encoder panic: %v", r))
			res = out
		}
	}()
	var pkts []*rtp.Packet
	var err error
	switch t.kind {
	case kindH264, kindH265:
		au := dropEmpty(f.AU)
		if len(au) == 0 {
			return out
		}
		if t.kind == kindH264 {
			pkts, err = t.h264.Encode(t.withParams264(au))
		} else {
			pkts, err = t.h265.Encode(t.withParams265(au))
		}
	case kindAV1:
		tu := av1Elements(f.AU)
		if len(tu) == 0 {
			return out
		}
		pkts, err = t.av1.encode(tu)
	case kindAAC:
		if len(f.AU[0]) == 0 {
			return out
		}
		pkts, err = t.aac.Encode(f.AU[:1])
	case kindLATM:
		if len(f.AU[0]) == 0 {
			return out
		}
		var el []byte
		el, err = mpeg4audio.AudioMuxElement{
			MuxConfigPresent: t.latmFmt.CPresent,
			StreamMuxConfig:  t.latmFmt.StreamMuxConfig,
			Payloads:         [][][][]byte{{{f.AU[0]}}},
		}.Marshal()
		if err == nil {
			pkts, err = t.latm.Encode(el)
		}
	case kindOpus:
		if len(f.AU[0]) == 0 {
			return out
		}
		if len(f.AU[0]) > maxOpusPacket {
			p.drop(t, fmt.Sprintf("an Opus packet of %d bytes, over the %d one can hold (RFC 6716)", len(f.AU[0]), maxOpusPacket))
			return out
		}
		var pkt *rtp.Packet
		pkt, err = t.opus.Encode(f.AU[0])
		pkts = []*rtp.Packet{pkt}
	case kindG711:
		if len(f.AU[0]) == 0 {
			return out
		}
		pkts, err = t.g711.Encode(f.AU[0])
	}
	if err != nil {
		p.drop(t, err.Error())
		return out
	}
	// RTP timestamps count the track's clock from the stream's start; audio
	// encoders return offsets from the frame's first sample.
	ts := uint32(hub.DurationToTicks(f.PTS, t.rate))
	for i, pkt := range pkts {
		pkt.Timestamp += ts
		n := pkt.MarshalSize()
		if cap(p.buf) < n {
			p.buf = make([]byte, 0, n)
		}
		b := p.buf[:n]
		if _, err := pkt.MarshalTo(b); err != nil {
			p.drop(t, err.Error())
			return out
		}
		out = append(out, hub.NewRTPFrame(t.index, b, f.Key && i == 0, f.Recv))
	}
	return out
}

// withParams264 makes an IDR AU carry SPS and PPS from the track's format
// when the publisher sent them only out of band (an RTMP sequence header):
// RTSP clients that ignore sprop-parameter-sets, or join after a change,
// still decode from the keyframe.
func (t *packTrack) withParams264(au [][]byte) [][]byte {
	var hasSPS, hasPPS, key bool
	for _, n := range au {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			hasSPS = true
		case h264.NALUTypePPS:
			hasPPS = true
		case h264.NALUTypeIDR:
			key = true
		}
	}
	if !key || (hasSPS && hasPPS) || len(t.params[0]) == 0 || len(t.params[1]) == 0 {
		return au
	}
	out := make([][]byte, 0, len(au)+2)
	if !hasSPS {
		out = append(out, t.params[0])
	}
	if !hasPPS {
		out = append(out, t.params[1])
	}
	return append(out, au...)
}

func (t *packTrack) withParams265(au [][]byte) [][]byte {
	var has [3]bool
	for _, n := range au {
		switch typ := h265.NALUType((n[0] >> 1) & 0x3f); typ {
		case h265.NALUType_VPS_NUT, h265.NALUType_SPS_NUT, h265.NALUType_PPS_NUT:
			has[typ-h265.NALUType_VPS_NUT] = true
		}
	}
	if (has[0] && has[1] && has[2]) || !h265.IsRandomAccess(au) ||
		len(t.params[0]) == 0 || len(t.params[1]) == 0 || len(t.params[2]) == 0 {
		return au
	}
	out := make([][]byte, 0, len(au)+3)
	for i, p := range t.params {
		if !has[i] {
			out = append(out, p)
		}
	}
	return append(out, au...)
}

func (p *packetizer) drop(t *packTrack, cause string) {
	t.drops++
	if now := time.Now(); now.Sub(t.lastWarn) >= 5*time.Second {
		t.lastWarn = now
		p.log.Warn("AU to RTP: dropped an access unit that could not be packetized",
			"path", p.path, "track", t.index, "codec", t.kind.String(), "cause", cause, "drops_total", t.drops)
	}
}
