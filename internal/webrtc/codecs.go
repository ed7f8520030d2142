package webrtc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtplpcm"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpsimpleaudio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// payloadMaxSize keeps RTP packets under a 1200-byte SRTP datagram, the
// size WebRTC stacks assume for any path (RFC 8831 section 6.6 uses the
// same floor for data channels).
const payloadMaxSize = 1100

// maxPacket is the largest RTP packet sent (SRTP adds its tag after it).
const maxPacket = 1200

var videoFeedback = []pion.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}

// mediaEngine offers only the codecs the hub carries (no VP8/VP9: a WHIP
// publisher must not pick a codec no other protocol can read). H.264 comes
// first so a browser that publishes picks it.
func mediaEngine() (*pion.MediaEngine, error) {
	m := &pion.MediaEngine{}
	video := []pion.RTPCodecParameters{
		{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: videoFeedback}, PayloadType: 106},
		{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: videoFeedback}, PayloadType: 102},
		{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f", RTCPFeedback: videoFeedback}, PayloadType: 127},
		{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f", RTCPFeedback: videoFeedback}, PayloadType: 112},
		{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeH265, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 116},
		{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeAV1, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 45},
	}
	audio := []pion.RTPCodecParameters{
		{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
	}
	for _, c := range video {
		if err := m.RegisterCodec(c, pion.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	for _, c := range audio {
		if err := m.RegisterCodec(c, pion.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// errNoWebRTCCodec is a hub track no WebRTC peer can take as is.
var errNoWebRTCCodec = errors.New("no WebRTC codec for it (Berth does not transcode)")

// outTrack packetizes one hub track's access units for a WebRTC player.
type outTrack struct {
	index int
	mime  string
	rate  int64
	h264  *rtph264.Encoder
	h265  *rtph265.Encoder
	av1   *codec.AV1Packetizer
	opus  *rtpsimpleaudio.Encoder
	g711  *rtplpcm.Encoder
	// ps are the newest parameter sets (H.264, H.265): browsers decode an
	// IDR only after them, and an RTMP or RTSP publisher may have sent them
	// only out of band.
	ps codec.ParamSets
	// av1Seq is the newest AV1 sequence header OBU.
	av1Seq []byte
}

// newOutTrack returns the packetizer of hub track f, or errNoWebRTCCodec.
func newOutTrack(i int, f format.Format) (*outTrack, error) {
	t := &outTrack{index: i}
	var err error
	switch f := f.(type) {
	case *format.H264:
		t.mime, t.ps.SPS, t.ps.PPS = pion.MimeTypeH264, f.SPS, f.PPS
		t.h264 = &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: payloadMaxSize}
		err = t.h264.Init()
	case *format.H265:
		t.mime, t.ps = pion.MimeTypeH265, codec.ParamSets{VPS: f.VPS, SPS: f.SPS, PPS: f.PPS}
		t.h265 = &rtph265.Encoder{PayloadType: 96, PayloadMaxSize: payloadMaxSize}
		err = t.h265.Init()
	case *format.AV1:
		t.mime = pion.MimeTypeAV1
		t.av1, err = codec.NewAV1Packetizer(96, payloadMaxSize)
	case *format.Opus:
		t.mime = pion.MimeTypeOpus
		t.opus = &rtpsimpleaudio.Encoder{PayloadType: 111, PayloadMaxSize: payloadMaxSize}
		err = t.opus.Init()
	case *format.G711:
		if f.SampleRate != 8000 || f.ChannelCount > 1 {
			return nil, fmt.Errorf("G.711 at %d Hz, %d channels: WebRTC takes 8000 Hz mono", f.SampleRate, f.ChannelCount)
		}
		t.mime = pion.MimeTypePCMA
		if f.MULaw {
			t.mime = pion.MimeTypePCMU
		}
		t.g711 = &rtplpcm.Encoder{PayloadType: 8, BitDepth: 8, ChannelCount: 1, PayloadMaxSize: payloadMaxSize}
		err = t.g711.Init()
	default:
		return nil, errNoWebRTCCodec
	}
	if err != nil {
		return nil, err
	}
	t.rate = int64(f.ClockRate()) // only now: some formats panic on it with missing parameters
	return t, nil
}

// capability is what the player's local track announces. H.264 names
// Chrome's constrained-baseline line: every browser offers it and decodes
// any profile the SPS then names.
func (t *outTrack) capability() pion.RTPCodecCapability {
	switch t.mime {
	case pion.MimeTypeH264:
		return pion.RTPCodecCapability{MimeType: t.mime, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	case pion.MimeTypeOpus:
		return pion.RTPCodecCapability{MimeType: t.mime, ClockRate: 48000, Channels: 2}
	case pion.MimeTypeH265, pion.MimeTypeAV1:
		return pion.RTPCodecCapability{MimeType: t.mime, ClockRate: 90000}
	}
	return pion.RTPCodecCapability{MimeType: t.mime, ClockRate: 8000}
}

func (t *outTrack) video() bool { return t.h264 != nil || t.h265 != nil || t.av1 != nil }

// packets packetizes one access-unit frame; timestamps count the track's
// clock from the stream's start (pion's track rewrites SSRC and payload
// type to what was negotiated).
func (t *outTrack) packets(f *hub.Frame) (pkts []*rtp.Packet, err error) {
	defer func() {
		if r := recover(); r != nil {
			pkts, err = nil, fmt.Errorf("encoder panic: %v", r)
		}
	}()
	if len(f.AU) == 0 || len(f.AU[0]) == 0 {
		return nil, nil
	}
	switch {
	case t.h264 != nil:
		pkts, err = t.h264.Encode(t.withParams(f, false))
	case t.h265 != nil:
		pkts, err = t.h265.Encode(t.withParams(f, true))
	case t.av1 != nil:
		pkts, err = t.av1.Encode(t.withSequenceHeader(f))
	case t.opus != nil:
		var p *rtp.Packet
		p, err = t.opus.Encode(f.AU[0])
		pkts = []*rtp.Packet{p}
	case t.g711 != nil:
		pkts, err = t.g711.Encode(f.AU[0])
	}
	if err != nil {
		return nil, err
	}
	ts := uint32(hub.DurationToTicks(f.PTS, t.rate))
	for _, p := range pkts {
		if n := p.MarshalSize(); n > maxPacket {
			// An audio frame is sent whole (RFC 7587 section 4.2 has no
			// fragmentation); one this big is broken or not for WebRTC.
			return nil, fmt.Errorf("a %s frame of %d bytes does not fit one %d-byte RTP packet", t.mime, n, maxPacket)
		}
		p.Timestamp += ts
	}
	return pkts, nil
}

// withParams remembers the parameter sets an access unit carries and puts
// the newest ones in front of an IDR (a random-access picture) that lacks
// them.
func (t *outTrack) withParams(f *hub.Frame, hevc bool) [][]byte {
	t.ps.Take(f.AU, hevc)
	if hevc && !h265.IsRandomAccess(f.AU) || !hevc && !h264.IsRandomAccess(f.AU) {
		return f.AU
	}
	return t.ps.WithParams(f.AU, hevc)
}

// withSequenceHeader puts the newest AV1 sequence header OBU in front of
// a keyframe temporal unit that lacks it (a decoder starts only at one,
// AV1 spec section 7.5), and remembers the one a unit carries.
func (t *outTrack) withSequenceHeader(f *hub.Frame) [][]byte {
	if seq := codec.AV1SequenceHeader(f.AU); seq != nil {
		t.av1Seq = seq
		return f.AU
	}
	if !f.Key || t.av1Seq == nil {
		return f.AU
	}
	return append([][]byte{t.av1Seq}, f.AU...)
}

// codecName is a format's name for log lines.
func codecName(f format.Format) string {
	if f == nil {
		return "unknown"
	}
	return f.Codec()
}

// offered reports whether an SDP offer lists mime (an rtpmap's encoding
// name, case-insensitive), so a player gets no track its browser cannot
// decode.
func offered(offer, mime string) bool {
	name := mime[strings.IndexByte(mime, '/')+1:]
	for _, line := range strings.Split(offer, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "a=rtpmap:") {
			continue
		}
		_, enc, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		enc, _, _ = strings.Cut(enc, "/")
		if strings.EqualFold(enc, name) {
			return true
		}
	}
	return false
}
