package mpegts

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	mcts "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/substructs"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// ErrNoTracks means a stream has no track MPEG-TS carries here.
var ErrNoTracks = errors.New("the stream has no track MPEG-TS can carry (H.264, H.265, AAC, Opus, MPEG-1 audio)")

// codecKind is a codec the muxer writes.
type codecKind uint8

const (
	codecH264 codecKind = iota + 1
	codecH265
	codecAAC
	codecOpus
	codecMPEG1Audio
)

func (c codecKind) video() bool { return c <= codecH265 }

func (c codecKind) String() string {
	return [...]string{"", "H.264", "H.265", "AAC", "Opus", "MPEG-1 audio"}[c]
}

// track is one hub track the muxer carries.
type track struct {
	hubIndex int
	kind     codecKind
	fmt      format.Format
	ts       *mcts.Track
	ps       codec.ParamSets // H.264/H.265: from the description, then in band

	// Timestamps, in 90 kHz ticks: the TS time of a frame is its hub time
	// plus offset, which changes only at a discontinuity so that the TS
	// times go on from where they were (see clock).
	offset int64
	last   int64 // TS DTS of the track's last frame
	step   int64 // the last forward step between two of its frames
	taken  bool

	queue  []queued // frames waiting for the other tracks' (interleave.go)
	active bool     // other tracks wait for this one's frames
}

// skipped is a track the muxer leaves out, for the one log line per stream.
type skipped struct {
	index int
	why   string
}

// pickTracks takes the first video and the first audio track TS carries
// here; the others are returned for the log line, each saying which
// protocols do carry it.
func pickTracks(s *hub.Stream) (picked []*track, left []skipped) {
	var haveVideo, haveAudio bool
	for i, t := range s.Tracks {
		if t == nil || t.Format == nil {
			continue
		}
		k, why := kindOf(t.Format, s.Native)
		switch {
		case k == 0:
			left = append(left, skipped{i, why})
			continue
		case k.video() && haveVideo:
			left = append(left, skipped{i, t.Format.Codec() + " (a second video track: RTSP carries every track)"})
			continue
		case !k.video() && haveAudio:
			left = append(left, skipped{i, t.Format.Codec() + " (a second audio track: RTSP carries every track)"})
			continue
		}
		tr := &track{hubIndex: i, kind: k, fmt: t.Format, ts: &mcts.Track{Codec: tsCodec(k, t.Format)}}
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

// kindOf maps a hub format to the codec written, or says why it is not
// and where it plays instead.
func kindOf(f format.Format, native hub.Kind) (codecKind, string) {
	switch f := f.(type) {
	case *format.H264:
		return codecH264, ""
	case *format.H265:
		return codecH265, ""
	case *format.MPEG4Audio, *format.MPEG4AudioLATM:
		if codec.AACConfig(f) != nil {
			return codecAAC, ""
		}
		return 0, f.Codec() + " without its AudioSpecificConfig (plays over RTSP)"
	case *format.Opus:
		return codecOpus, ""
	case *format.MPEG1Audio:
		// The hub has access units of it only from an access-unit
		// publisher: RTP of it is not depacketized.
		if native == hub.KindAU {
			return codecMPEG1Audio, ""
		}
		return 0, "MPEG-1 audio over RTP (plays over RTSP)"
	case *format.G711:
		return 0, "G.711 (plays over RTSP, RTMP and HTTP-FLV)"
	case *format.AV1:
		return 0, "AV1 (plays over RTSP, RTMP, HTTP-FLV and HTTP-fMP4)"
	}
	return 0, f.Codec() + " (plays over RTSP)"
}

// tsCodec is the track's elementary stream in the PMT.
func tsCodec(k codecKind, f format.Format) codecs.Codec {
	switch k {
	case codecH264:
		return &codecs.H264{}
	case codecH265:
		return &codecs.H265{}
	case codecAAC:
		return &codecs.MPEG4Audio{Config: *codec.AACConfig(f)}
	case codecOpus:
		ch := 2
		if o, ok := f.(*format.Opus); ok && o.ChannelCount > 0 && o.ChannelCount <= 8 {
			ch = o.ChannelCount
		}
		// Channel configuration codes 1-8 are that many channels in
		// Vorbis order (ETSI TS Opus 0.1.3-draft, table 4-3).
		return &codecs.Opus{Desc: &substructs.OpusAudioDescriptor{ChannelConfigCode: uint8(ch)}}
	case codecMPEG1Audio:
		return &codecs.MPEG1Audio{}
	}
	return nil
}

// haveParams reports whether a decoder can start at the track's keyframes.
func (t *track) haveParams() bool {
	switch t.kind {
	case codecH264:
		return t.ps.Complete(false)
	case codecH265:
		return t.ps.Complete(true)
	}
	return true
}

// withParams returns a keyframe's access unit with the parameter sets it
// lacks put in front of its first slice (after an access unit delimiter),
// so a reader or an HLS segment starting there decodes. It records the
// ones it carries, for the next keyframes.
func (t *track) withParams(au [][]byte) [][]byte {
	hevc := t.kind == codecH265
	var have codec.ParamSets
	have.Take(au, hevc)
	t.ps.Take(au, hevc)
	var missing [][]byte
	if hevc && have.VPS == nil {
		missing = append(missing, t.ps.VPS)
	}
	if have.SPS == nil {
		missing = append(missing, t.ps.SPS)
	}
	if have.PPS == nil {
		missing = append(missing, t.ps.PPS)
	}
	if len(missing) == 0 {
		return au
	}
	at := 0
	if len(au) > 0 && isAUD(au[0], hevc) {
		at = 1
	}
	out := make([][]byte, 0, len(au)+len(missing))
	out = append(out, au[:at]...)
	out = append(out, missing...)
	return append(out, au[at:]...)
}

func isAUD(nal []byte, hevc bool) bool {
	if hevc {
		return len(nal) >= 2 && h265.NALUType((nal[0]>>1)&0x3f) == h265.NALUType_AUD_NUT
	}
	return len(nal) >= 1 && h264.NALUType(nal[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter
}

// randomAccess is the writer's own test of a keyframe: where it holds, it
// writes PAT and PMT in front of the frame by itself.
func (t *track) randomAccess(au [][]byte) bool {
	if t.kind == codecH265 {
		return h265.IsRandomAccess(au)
	}
	return h264.IsRandomAccess(au)
}

// codecString is the track's RFC 6381 codecs parameter (an HLS-TS
// playlist's CODECS).
func (t *track) codecString() string {
	switch t.kind {
	case codecH264:
		return codec.RFC6381H264(t.ps.SPS)
	case codecH265:
		return codec.RFC6381H265(t.ps.SPS)
	case codecAAC:
		return fmt.Sprintf("mp4a.40.%d", int(codec.AACConfig(t.fmt).Type))
	case codecOpus:
		return "opus"
	case codecMPEG1Audio:
		return "mp4a.40.34" // what HLS calls MPEG-1 audio (layer 3)
	}
	return ""
}

// ticks converts a hub time to 90 kHz, rounded to the nearest tick.
func ticks(d time.Duration) int64 { return hub.DurationToTicks(d, clockRate) }

const clockRate = 90000 // MPEG-TS PTS/DTS (ISO 13818-1 2.4.3.7)
