package codec

import (
	"errors"
	"fmt"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/hub"
)

// Dynamic payload types (RFC 3551 section 3) given to tracks built here.
// Every track is its own SDP media section, so video and audio may share a
// number; they get distinct ones anyway so that a capture is easier to read.
const (
	VideoPayloadType = 96
	AudioPayloadType = 97
)

// H264Track describes an H.264 track published as access units (RTMP,
// MPEG-TS). sps and pps go into the SDP's sprop-parameter-sets, so an RTSP
// reader can decode from the first keyframe; they may be nil when unknown,
// in which case the parameter sets must travel in-band in keyframe AUs.
func H264Track(sps, pps []byte) *hub.Track {
	return videoTrack(&format.H264{PayloadTyp: VideoPayloadType, SPS: sps, PPS: pps, PacketizationMode: 1})
}

// H265Track describes an H.265 track published as access units.
func H265Track(vps, sps, pps []byte) *hub.Track {
	return videoTrack(&format.H265{PayloadTyp: VideoPayloadType, VPS: vps, SPS: sps, PPS: pps})
}

// AACTrack describes an AAC track from its raw AudioSpecificConfig (the
// payload of an FLV AAC sequence header, or an MP4 esds), ISO 14496-3 1.6.2.1.
func AACTrack(asc []byte) (*hub.Track, error) {
	var conf mpeg4audio.AudioSpecificConfig
	if err := conf.Unmarshal(asc); err != nil {
		return nil, fmt.Errorf("AAC AudioSpecificConfig %x is invalid (%w): the publisher must send a valid AAC sequence header", asc, err)
	}
	return AACTrackConfig(&conf), nil
}

// AACTrackConfig describes an AAC track from a parsed AudioSpecificConfig
// (for example from an ADTS header). The track is RFC 3640 AAC-hbr.
func AACTrackConfig(conf *mpeg4audio.AudioSpecificConfig) *hub.Track {
	return audioTrack(&format.MPEG4Audio{
		PayloadTyp:       AudioPayloadType,
		Config:           conf,
		SizeLength:       13,
		IndexLength:      3,
		IndexDeltaLength: 3,
	})
}

// OpusTrack describes an Opus track (48 kHz clock, RFC 7587).
func OpusTrack(channels int) *hub.Track {
	if channels < 1 {
		channels = 2
	}
	return audioTrack(&format.Opus{PayloadTyp: AudioPayloadType, ChannelCount: channels})
}

// G711Track describes a G.711 track: A-law (PCMA) when alaw, else mu-law
// (PCMU). 8 kHz mono uses the static payload types 8 and 0 (RFC 3551
// section 6); other rates and channel counts get a dynamic one.
func G711Track(alaw bool, rate, channels int) *hub.Track {
	if rate <= 0 {
		rate = 8000
	}
	if channels < 1 {
		channels = 1
	}
	pt := uint8(AudioPayloadType)
	if rate == 8000 && channels == 1 {
		pt = 0
		if alaw {
			pt = 8
		}
	}
	return audioTrack(&format.G711{PayloadTyp: pt, MULaw: !alaw, SampleRate: rate, ChannelCount: channels})
}

func videoTrack(f format.Format) *hub.Track {
	return &hub.Track{Format: f, Video: true, Media: &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f}}}
}

func audioTrack(f format.Format) *hub.Track {
	return &hub.Track{Format: f, Media: &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{f}}}
}

// ErrNoTracks is returned by SDP for a stream without tracks.
var ErrNoTracks = errors.New("stream has no tracks")

// SDP describes tracks as an SDP session (RFC 8866) for RTSP DESCRIBE. Media
// i gets the control attribute "trackID=i", the URL suffix a client sends
// back in SETUP. The tracks themselves are not changed (they are shared).
func SDP(tracks []*hub.Track) ([]byte, error) {
	if len(tracks) == 0 {
		return nil, ErrNoTracks
	}
	sess := description.Session{Title: "Berth", Medias: make([]*description.Media, len(tracks))}
	for i, t := range tracks {
		var m description.Media
		if t.Media != nil {
			m = *t.Media
		} else {
			m.Type = description.MediaTypeAudio
			if t.Video {
				m.Type = description.MediaTypeVideo
			}
			m.Formats = []format.Format{t.Format}
		}
		m.Control = fmt.Sprintf("trackID=%d", i)
		sess.Medias[i] = &m
	}
	b, err := sess.Marshal()
	if err != nil {
		return nil, fmt.Errorf("building the SDP of %d tracks: %w", len(tracks), err)
	}
	return b, nil
}

// AACConfig returns the AudioSpecificConfig of an AAC track, whether it
// arrived as RFC 3640 (MPEG4-GENERIC) or RFC 6416 (MP4A-LATM), or nil for
// other formats. RTMP and FLV writers put it in the AAC sequence header.
func AACConfig(f format.Format) *mpeg4audio.AudioSpecificConfig {
	switch f := f.(type) {
	case *format.MPEG4Audio:
		return f.Config
	case *format.MPEG4AudioLATM:
		if c := f.StreamMuxConfig; c != nil && len(c.Programs) > 0 && len(c.Programs[0].Layers) > 0 {
			return c.Programs[0].Layers[0].AudioSpecificConfig
		}
	}
	return nil
}

// ParamSets are a video track's parameter sets, as its description gave
// them and as they last came in band (a source whose SDP had no
// sprop-parameter-sets sends them before its keyframes).
type ParamSets struct{ VPS, SPS, PPS []byte }

// Take records the parameter sets an H.264 (hevc false) or H.265 access
// unit carries; it keeps the NAL units, it does not copy them.
func (p *ParamSets) Take(au [][]byte, hevc bool) {
	for _, nal := range au {
		if !hevc {
			if len(nal) == 0 {
				continue
			}
			switch h264.NALUType(nal[0] & 0x1f) {
			case h264.NALUTypeSPS:
				p.SPS = nal
			case h264.NALUTypePPS:
				p.PPS = nal
			}
			continue
		}
		if len(nal) < 2 {
			continue
		}
		switch h265.NALUType((nal[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT:
			p.VPS = nal
		case h265.NALUType_SPS_NUT:
			p.SPS = nal
		case h265.NALUType_PPS_NUT:
			p.PPS = nal
		}
	}
}

// Complete reports whether every parameter set of the codec is known.
func (p *ParamSets) Complete(hevc bool) bool {
	return p.SPS != nil && p.PPS != nil && (!hevc || p.VPS != nil)
}
