package fmp4

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	mp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// ErrNoTracks means a stream has no track fMP4 carries here.
var ErrNoTracks = errors.New("the stream has no track HTTP-fMP4 can carry (H.264, H.265, AV1, AAC, Opus)")

// codecKind is a codec the muxer writes.
type codecKind uint8

const (
	codecH264 codecKind = iota + 1
	codecH265
	codecAV1
	codecAAC
	codecOpus
)

func (c codecKind) video() bool { return c <= codecAV1 }

func (c codecKind) String() string {
	return [...]string{"", "H.264", "H.265", "AV1", "AAC", "Opus"}[c]
}

// track is one hub track the muxer carries, with the sample it holds back
// until the next one of the same track tells its duration.
type track struct {
	hubIndex  int
	id        int // mp4 track ID, from 1
	kind      codecKind
	timescale uint32
	fmt       format.Format

	// Video parameters, from the publisher's format or in-band.
	ps     codec.ParamSets // H.264/H.265: from the description, then in band
	av1Seq []byte

	pending     *hub.Frame
	pendingDTS  int64 // pending's DTS in ticks from the muxer's start
	pendingJump bool  // pending follows a jump forward of more than maxGap
	samples     []*mp4.Sample
	base        uint64 // DTS in ticks of samples[0]
	lastDTS     int64  // DTS in ticks of the last frame taken, for the jump check
	taken       bool
}

// skipped is a track the muxer leaves out, for the one log line per stream.
type skipped struct {
	index int
	codec string
}

// pickTracks takes the first video and the first audio track fMP4 carries
// here; the others are returned for the log line.
func pickTracks(tracks []*hub.Track) (picked []*track, left []skipped) {
	var haveVideo, haveAudio bool
	for i, t := range tracks {
		if t == nil || t.Format == nil {
			continue
		}
		k, ts := kindOf(t.Format)
		switch {
		case k == 0:
			left = append(left, skipped{i, t.Format.Codec()})
			continue
		case k.video() && haveVideo, !k.video() && haveAudio:
			left = append(left, skipped{i, t.Format.Codec() + " (a second " + map[bool]string{true: "video", false: "audio"}[k.video()] + " track)"})
			continue
		}
		tr := &track{hubIndex: i, id: len(picked) + 1, kind: k, timescale: ts, fmt: t.Format}
		switch f := t.Format.(type) {
		case *format.H264:
			tr.ps.SPS, tr.ps.PPS = f.SafeParams()
		case *format.H265:
			tr.ps.VPS, tr.ps.SPS, tr.ps.PPS = f.SafeParams()
		}
		if k.video() {
			haveVideo = true
		} else {
			haveAudio = true
		}
		picked = append(picked, tr)
	}
	return picked, left
}

// kindOf maps a hub format to the codec written and its mp4 timescale.
func kindOf(f format.Format) (codecKind, uint32) {
	switch f := f.(type) {
	case *format.H264:
		return codecH264, 90000
	case *format.H265:
		return codecH265, 90000
	case *format.AV1:
		return codecAV1, 90000
	case *format.MPEG4Audio, *format.MPEG4AudioLATM:
		if c := codec.AACConfig(f); c != nil && c.SampleRate > 0 {
			return codecAAC, uint32(c.SampleRate)
		}
	case *format.Opus:
		return codecOpus, 48000
	}
	return 0, 0
}

// haveParams reports whether the init segment can describe the track.
func (t *track) haveParams() bool {
	switch t.kind {
	case codecH264:
		return t.ps.Complete(false)
	case codecH265:
		return t.ps.Complete(true)
	case codecAV1:
		return t.av1Seq != nil
	}
	return true
}

// paramsFromAU takes parameter sets sent in-band, for a source whose
// description had none (an RTSP SDP without sprop-parameter-sets, AV1).
func (t *track) paramsFromAU(au [][]byte) {
	switch t.kind {
	case codecAV1:
		if seq := codec.AV1SequenceHeader(au); seq != nil {
			var h av1.SequenceHeader
			if h.Unmarshal(seq) == nil {
				t.av1Seq = seq
			}
		}
	case codecH264, codecH265:
		t.ps.Take(au, t.kind == codecH265)
	}
}

// mp4Codec is the track's sample description for the init segment.
func (t *track) mp4Codec() mp4.Codec {
	switch t.kind {
	case codecH264:
		return &mp4.CodecH264{SPS: t.ps.SPS, PPS: t.ps.PPS}
	case codecH265:
		return &mp4.CodecH265{VPS: t.ps.VPS, SPS: t.ps.SPS, PPS: t.ps.PPS}
	case codecAV1:
		return &mp4.CodecAV1{SequenceHeader: t.av1Seq}
	case codecAAC:
		return &mp4.CodecMPEG4Audio{Config: *codec.AACConfig(t.fmt)}
	case codecOpus:
		ch := 2
		if f, ok := t.fmt.(*format.Opus); ok && f.ChannelCount > 0 {
			ch = f.ChannelCount
		}
		return &mp4.CodecOpus{ChannelCount: ch}
	}
	return nil
}

// ticks converts a hub time to the track's timescale, rounded to the
// nearest tick (hub times come from ticks, truncated to nanoseconds: 1024
// samples at 48 kHz are 21333333 ns, which truncating would make 1023),
// without overflowing for streams that run for days.
func (t *track) ticks(d time.Duration) int64 {
	ts := int64(t.timescale)
	sec, rem := int64(d/time.Second), int64(d%time.Second)
	if rem < 0 {
		sec, rem = sec-1, rem+int64(time.Second)
	}
	return sec*ts + (rem*ts+int64(time.Second)/2)/int64(time.Second)
}

// payload is f's sample data: length-prefixed NAL units (ISO 14496-15) for
// H.264/H.265, OBUs with sizes and without temporal delimiters for AV1
// (AV1-ISOBMFF 2.4), the frame itself for audio.
func (t *track) payload(f *hub.Frame) ([]byte, error) {
	switch t.kind {
	case codecH264, codecH265:
		return h264.AVCC(f.AU).Marshal()
	case codecAV1:
		tu := make(av1.Bitstream, 0, len(f.AU))
		for _, obu := range f.AU {
			if len(obu) > 0 && (obu[0]>>3)&0xf != byte(av1.OBUTypeTemporalDelimiter) {
				tu = append(tu, obu)
			}
		}
		return tu.Marshal()
	}
	if len(f.AU) == 1 {
		return f.AU[0], nil
	}
	n := 0
	for _, p := range f.AU {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range f.AU {
		b = append(b, p...)
	}
	return b, nil
}

// codecString is the track's RFC 6381 codecs parameter, as a browser's
// MediaSource.isTypeSupported and addSourceBuffer want it.
func (t *track) codecString() string {
	switch t.kind {
	case codecH264:
		return codec.RFC6381H264(t.ps.SPS)
	case codecH265:
		return codec.RFC6381H265(t.ps.SPS)
	case codecAV1:
		return av1CodecString(t.av1Seq)
	case codecAAC:
		return fmt.Sprintf("mp4a.40.%d", int(codec.AACConfig(t.fmt).Type))
	case codecOpus:
		return "opus"
	}
	return ""
}

// av1CodecString follows AV1-ISOBMFF's codecs parameter: av01.profile.
// levelTier.bitDepth.
func av1CodecString(seq []byte) string {
	var h av1.SequenceHeader
	if h.Unmarshal(seq) != nil || len(h.SeqLevelIdx) == 0 {
		return "av01.0.08M.08"
	}
	tier := byte('M')
	if len(h.SeqTier) > 0 && h.SeqTier[0] {
		tier = 'H'
	}
	depth := h.ColorConfig.BitDepth
	if depth == 0 {
		depth = 8
	}
	return fmt.Sprintf("av01.%d.%02d%c.%02d", h.SeqProfile, h.SeqLevelIdx[0], tier, depth)
}

// Codecs is the RFC 6381 codecs string an init segment of these tracks
// carries ("avc1.64001f,mp4a.40.2"), from their out-of-band parameters,
// without starting a muxer (a status page's JSON). Parameters that only
// come in-band (AV1's sequence header, an SDP without sprop-parameter-sets)
// give a generic string for the codec; the X-Codecs header and
// Muxer.Init, made from the stream's first keyframe, are exact. "" when no
// track is carried.
func Codecs(tracks []*hub.Track) string {
	picked, _ := pickTracks(tracks)
	var out []string
	for _, t := range picked {
		if t.kind == codecAV1 {
			if f, ok := t.fmt.(*format.AV1); ok && f.LevelIdx != nil && f.Profile != nil {
				tier := 'M'
				if f.Tier != nil && *f.Tier == 1 {
					tier = 'H'
				}
				out = append(out, fmt.Sprintf("av01.%d.%02d%c.08", *f.Profile, *f.LevelIdx, tier))
				continue
			}
		}
		out = append(out, t.codecString())
	}
	return strings.Join(out, ",")
}
