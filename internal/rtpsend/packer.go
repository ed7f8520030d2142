package rtpsend

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/ps"
)

// ErrNoTracks means the stream has no track the sender can carry.
var ErrNoTracks = errors.New("the stream has no track RTP sending carries here (PS: H.264, H.265, AAC, G.711 at 8 kHz; raw ES: any track RTSP plays)")

const (
	clockRate = 90000 // PS timestamps and the RTP clock of PS (GB/T 28181 annex C)
	// maxPayload is the RTP payload size: 1400 bytes keep a packet with
	// its IP, UDP and RTP headers under a 1500-byte MTU with room for a
	// tunnel, as ZLMediaKit's rtp_max_size default does.
	maxPayload = 1400
	rtpHeader  = 12
)

// psTrack is one hub track the PS carries.
type psTrack struct {
	hubIndex int
	stream   int // index in the muxer's Streams
	video    bool
	hevc     bool
	params   codec.ParamSets
	aac      *mpeg4audio.AudioSpecificConfig
}

// psPacker turns access units into PS packs (one per access unit).
type psPacker struct {
	mux    ps.Muxer
	byHub  []*psTrack
	video  *psTrack
	es     []byte // the frame's elementary-stream payload, reused
	lastPS int64  // 90 kHz time of the last system header + PSM, audio-only streams
	sent   bool   // the first pack went out (it always has the headers)
}

// newPSPacker picks the first video (unless onlyAudio) and the first audio
// track PS carries; left names the tracks left out, for one log line.
func newPSPacker(tracks []*hub.Track, onlyAudio bool) (p *psPacker, left []string, err error) {
	p = &psPacker{byHub: make([]*psTrack, len(tracks))}
	var haveVideo, haveAudio bool
	for i, t := range tracks {
		if t == nil || t.Format == nil {
			continue
		}
		tr := &psTrack{hubIndex: i}
		typ := uint8(0)
		why := ""
		switch f := t.Format.(type) {
		case *format.H264:
			typ, tr.video = ps.TypeH264, true
			tr.params.SPS, tr.params.PPS = f.SafeParams()
		case *format.H265:
			typ, tr.video, tr.hevc = ps.TypeH265, true, true
			tr.params.VPS, tr.params.SPS, tr.params.PPS = f.SafeParams()
		case *format.MPEG4Audio, *format.MPEG4AudioLATM:
			if tr.aac = codec.AACConfig(f); tr.aac == nil || tr.aac.Type < 1 || tr.aac.Type > 4 {
				why = "AAC without an AudioSpecificConfig ADTS can carry"
				break
			}
			typ = ps.TypeAAC
		case *format.G711:
			if f.SampleRate != 0 && f.SampleRate != 8000 || f.ChannelCount > 1 {
				why = fmt.Sprintf("G.711 at %d Hz, %d channels (PS receivers assume 8 kHz mono)", f.SampleRate, f.ChannelCount)
				break
			}
			typ = ps.TypeG711U
			if !f.MULaw {
				typ = ps.TypeG711A
			}
		default:
			why = t.Format.Codec()
		}
		switch {
		case typ == 0:
		case tr.video && (onlyAudio || haveVideo):
			if onlyAudio {
				continue
			}
			why = t.Format.Codec() + " (a second video track)"
		case !tr.video && haveAudio:
			why = t.Format.Codec() + " (a second audio track)"
		}
		if why != "" {
			left = append(left, fmt.Sprintf("#%d %s", i, why))
			continue
		}
		id := uint8(ps.AudioID)
		if tr.video {
			id, haveVideo, p.video = ps.VideoID, true, tr
		} else {
			haveAudio = true
		}
		tr.stream = len(p.mux.Streams)
		p.mux.Streams = append(p.mux.Streams, ps.Stream{ID: id, Type: typ})
		p.byHub[i] = tr
	}
	if len(p.mux.Streams) == 0 {
		return nil, left, ErrNoTracks
	}
	return p, left, nil
}

// pack appends the PS pack of f to dst; ok is false for a frame of a
// track left out (or one that cannot start the stream yet).
func (p *psPacker) pack(dst []byte, f *hub.Frame) (out []byte, ts uint32, ok bool) {
	if f.Track < 0 || f.Track >= len(p.byHub) || p.byHub[f.Track] == nil {
		return dst, 0, false
	}
	t := p.byHub[f.Track]
	pts := hub.DurationToTicks(f.PTS, clockRate)
	dts := hub.DurationToTicks(f.DTS, clockRate)
	key := t.video && f.Key
	p.es = p.es[:0]
	switch {
	case t.video:
		au := f.AU
		if key {
			// A receiver joining at this keyframe decodes only with the
			// parameter sets in band (RTMP sends them once, out of band).
			p.params(t, au)
			au = t.params.WithParams(au, t.hevc)
		}
		for _, nal := range au {
			if len(nal) > 0 {
				p.es = append(p.es, 0, 0, 0, 1)
				p.es = append(p.es, nal...)
			}
		}
	case t.aac != nil:
		for _, a := range f.AU {
			p.es = appendADTS(p.es, t.aac, a)
		}
	default:
		for _, a := range f.AU {
			p.es = append(p.es, a...)
		}
	}
	if len(p.es) == 0 {
		return dst, 0, false
	}
	if !p.sent && p.video != nil && !key {
		return dst, 0, false // a receiver starts at a keyframe
	}
	// The system header and the PSM go before every keyframe; an
	// audio-only stream repeats them every second so a receiver can join.
	headers := key || !p.sent || (p.video == nil && dts-p.lastPS >= clockRate)
	if headers {
		p.lastPS = dts
	}
	p.sent = true
	return p.mux.AppendFrame(dst, t.stream, pts, dts, headers, p.es), uint32(dts), true
}

// params records the parameter sets a keyframe carries, for the next ones.
func (p *psPacker) params(t *psTrack, au [][]byte) {
	var have codec.ParamSets
	have.Take(au, t.hevc)
	if have.SPS != nil {
		t.params.SPS = have.SPS
	}
	if have.PPS != nil {
		t.params.PPS = have.PPS
	}
	if have.VPS != nil {
		t.params.VPS = have.VPS
	}
}

// adtsRates are the sampling frequency indexes of ISO/IEC 14496-3 table 1.18.
var adtsRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// appendADTS appends au with its 7-byte ADTS header (ISO/IEC 13818-7
// 6.2.1, no CRC), which is how a PS carries AAC.
func appendADTS(dst []byte, c *mpeg4audio.AudioSpecificConfig, au []byte) []byte {
	idx := 4 // 44.1 kHz when the rate has no index (explicit rates cannot be said in ADTS)
	for i, r := range adtsRates {
		if r == c.SampleRate {
			idx = i
		}
	}
	ch := int(c.ChannelConfig)
	if ch == 0 {
		ch = c.ChannelCount //nolint:staticcheck // older configs fill only the count
		if ch == 8 {
			ch = 7
		}
	}
	n := 7 + len(au)
	return append(append(dst,
		0xFF, 0xF1, // syncword, MPEG-4, layer 0, no CRC
		byte(int(c.Type)-1)<<6|byte(idx)<<2|byte(ch>>2)&1,
		byte(ch&3)<<6|byte(n>>11)&3,
		byte(n>>3),
		byte(n<<5)|0x1F,
		0xFC), au...) // buffer fullness 0x7FF (VBR), one raw data block
}

// esTrack picks the track raw ES sending carries: the first video track,
// or the first audio one when onlyAudio or there is no video.
func esTrack(tracks []*hub.Track, onlyAudio bool) (int, error) {
	audio := -1
	for i, t := range tracks {
		if t == nil || t.Format == nil {
			continue
		}
		if t.Video && !onlyAudio {
			return i, nil
		}
		if !t.Video && audio < 0 {
			audio = i
		}
	}
	if audio < 0 {
		return 0, ErrNoTracks
	}
	return audio, nil
}

// trackNames lists a stream's codecs for messages.
func trackNames(tracks []*hub.Track) string {
	var names []string
	for _, t := range tracks {
		if t != nil && t.Format != nil {
			names = append(names, t.Format.Codec())
		}
	}
	return strings.Join(names, ", ")
}
