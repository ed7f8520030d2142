package flv

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/flv/amf0"
	"github.com/berthmedia/berth/internal/hub"
)

// EncTag caches a frame's complete FLV tag (11-byte header, body, 4-byte
// previous-tag size). The RTMP server derives its chunks from the same tag.
var EncTag = hub.RegisterEncoding()

// TagHeaderSize and TagTrailerSize frame a tag body inside a cached tag.
const (
	TagHeaderSize  = 11
	TagTrailerSize = 4
)

// Header is the 9-byte FLV file header plus PreviousTagSize0 (FLV spec E.2).
func Header(video, audio bool) []byte {
	flags := byte(0)
	if audio {
		flags |= 4
	}
	if video {
		flags |= 1
	}
	return []byte{'F', 'L', 'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0}
}

// Timestamp converts a hub time to FLV/RTMP milliseconds. Tags carry the
// stream's absolute time so that one cached tag serves every reader; a
// negative time (B-frame DTS before the first PTS) is clamped to 0.
func Timestamp(d time.Duration) uint32 {
	if d < 0 {
		return 0
	}
	return uint32(d / time.Millisecond)
}

// AppendTag appends a complete tag with body to dst.
func AppendTag(dst []byte, typ byte, ts uint32, body []byte) []byte {
	dst = appendTagHeader(dst, typ, ts, len(body))
	dst = append(dst, body...)
	return binary.BigEndian.AppendUint32(dst, uint32(TagHeaderSize+len(body)))
}

func appendTagHeader(dst []byte, typ byte, ts uint32, size int) []byte {
	return append(dst, typ, byte(size>>16), byte(size>>8), byte(size),
		byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
}

// newTag allocates a tag of body size n with its header and trailer written;
// the caller fills tag[TagHeaderSize:TagHeaderSize+n].
func newTag(typ byte, ts uint32, n int) []byte {
	tag := make([]byte, 0, TagHeaderSize+n+TagTrailerSize)
	tag = appendTagHeader(tag, typ, ts, n)
	tag = tag[:TagHeaderSize+n]
	return binary.BigEndian.AppendUint32(tag, uint32(TagHeaderSize+n))
}

// TagBody returns the body inside a complete tag.
func TagBody(tag []byte) []byte { return tag[TagHeaderSize : len(tag)-TagTrailerSize] }

// TagTimestamp returns a complete tag's timestamp.
func TagTimestamp(tag []byte) uint32 {
	return uint32(tag[4])<<16 | uint32(tag[5])<<8 | uint32(tag[6]) | uint32(tag[7])<<24
}

func auSize(au [][]byte) int {
	n := 0
	for _, nal := range au {
		n += 4 + len(nal)
	}
	return n
}

func putAVCC(dst []byte, au [][]byte) {
	for _, nal := range au {
		binary.BigEndian.PutUint32(dst, uint32(len(nal)))
		copy(dst[4:], nal)
		dst = dst[4+len(nal):]
	}
}

func cts(f *hub.Frame) int32 {
	return int32((f.PTS - f.DTS) / time.Millisecond)
}

// The tag builders are plain functions, one per codec, so hub.Frame.Encoded
// is called without a closure per frame.

func buildAVCTag(f *hub.Frame) []byte {
	n := 5 + auSize(f.AU)
	tag := newTag(TagVideo, Timestamp(f.DTS), n)
	b := tag[TagHeaderSize:]
	b[0] = 2<<4 | videoCodecAVC
	if f.Key {
		b[0] = 1<<4 | videoCodecAVC
	}
	b[1] = 1
	c := cts(f)
	b[2], b[3], b[4] = byte(c>>16), byte(c>>8), byte(c)
	putAVCC(b[5:], f.AU)
	return tag
}

// buildHEVCTag writes enhanced RTMP (FourCC hvc1, packet type CodedFrames).
func buildHEVCTag(f *hub.Frame) []byte {
	n := 8 + auSize(f.AU)
	tag := newTag(TagVideo, Timestamp(f.DTS), n)
	b := tag[TagHeaderSize:]
	b[0] = 0x80 | 2<<4 | 1
	if f.Key {
		b[0] = 0x80 | 1<<4 | 1
	}
	copy(b[1:5], fourccHEVC[:])
	c := cts(f)
	b[5], b[6], b[7] = byte(c>>16), byte(c>>8), byte(c)
	putAVCC(b[8:], f.AU)
	return tag
}

func buildAudioTag(f *hub.Frame, head []byte) []byte {
	n := len(head)
	for _, p := range f.AU {
		n += len(p)
	}
	tag := newTag(TagAudio, Timestamp(f.DTS), n)
	b := tag[TagHeaderSize:]
	b = b[copy(b, head):]
	for _, p := range f.AU {
		b = b[copy(b, p):]
	}
	return tag
}

var (
	headAAC  = []byte{audioFormatAAC<<4 | 0x0f, 1}
	headPCMA = []byte{audioFormatPCMA<<4 | 0x02}
	headPCMU = []byte{audioFormatPCMU<<4 | 0x02}
	headOpus = []byte{audioFormatExHeader<<4 | 1, 'O', 'p', 'u', 's'}
)

// TagCodec indexes TagBuilders: one tag builder per codec FLV carries.
type TagCodec uint8

// Tag codecs.
const (
	TagNone TagCodec = iota
	TagAVC
	TagHEVC
	TagAAC
	TagOpus
	TagPCMA
	TagPCMU
	TagAV1
	NumTagCodecs
)

// TagBuilders are the shared tag builders, plain functions for
// hub.Frame.Encoded. Other encodings derived from the tag (RTMP chunks)
// call f.Encoded(EncTag, TagBuilders[c]) from their own builder.
var TagBuilders = [NumTagCodecs]func(*hub.Frame) []byte{
	TagAVC: buildAVCTag, TagHEVC: buildHEVCTag, TagAAC: buildAACTag,
	TagOpus: buildOpusTag, TagPCMA: buildPCMATag, TagPCMU: buildPCMUTag,
	TagAV1: buildAV1Tag,
}

func buildAACTag(f *hub.Frame) []byte  { return buildAudioTag(f, headAAC) }
func buildPCMATag(f *hub.Frame) []byte { return buildAudioTag(f, headPCMA) }
func buildPCMUTag(f *hub.Frame) []byte { return buildAudioTag(f, headPCMU) }
func buildOpusTag(f *hub.Frame) []byte { return buildAudioTag(f, headOpus) }

// ErrNoTracks means a stream has no track FLV can carry.
var ErrNoTracks = errors.New("the stream has no track FLV/RTMP can carry (H.264, H.265, AV1, AAC, Opus, G.711)")

// Tag is one tag to send, with its body apart so RTMP can send it as a message.
type Tag struct {
	Type byte
	TS   uint32
	Body []byte
}

// Muxer is one reader's view of a stream as FLV: which tracks it carries,
// and the headers (metadata, sequence headers) sent once at the start.
// Frame tags come from the shared cache.
type Muxer struct {
	VideoTrack, AudioTrack int // indexes into the stream's tracks; -1 for none
	Video                  VideoCodec
	Audio                  AudioCodec

	vfmt, afmt format.Format
	ps         codec.ParamSets // H.264/H.265: from the tracks, then in band
	av1Seq     []byte          // AV1 sequence header OBU, from a keyframe
	started    bool
	codec      []TagCodec // per track index; TagNone = not carried

	// The reader's start (earlyAudio): the first video frame's DTS, and
	// whether video and audio have begun.
	videoDTS               time.Duration
	videoGoing, audioGoing bool
}

// startSkew is how far before the first video frame a reader gets its
// first audio frame may begin, as for RTSP players (internal/rtsp).
const startSkew = 50 * time.Millisecond

// earlyAudio reports an audio frame, before the reader's first audio,
// that begins more than startSkew before the reader's first video frame.
// A reader starts at a keyframe, and the audio that reaches the hub after
// it may begin well before it (ffmpeg packs ~100 ms of AAC into one RTP
// packet, and sends it after its last frame): sent, it starts the player's
// audio that much before its video. Only the start is checked, so a
// publisher's clock that later steps back never silences the audio.
func (m *Muxer) earlyAudio(f *hub.Frame) bool {
	if m.audioGoing {
		return false
	}
	switch f.Track {
	case m.VideoTrack:
		if !m.videoGoing {
			m.videoGoing, m.videoDTS = true, f.DTS
		}
	case m.AudioTrack:
		if m.videoGoing && f.DTS < m.videoDTS-startSkew {
			return true
		}
		m.audioGoing = true
	}
	return false
}

// NewMuxer picks the first video and the first audio track FLV can carry.
func NewMuxer(tracks []*hub.Track) (*Muxer, error) {
	m := &Muxer{VideoTrack: -1, AudioTrack: -1, codec: make([]TagCodec, len(tracks))}
	for i, t := range tracks {
		if m.VideoTrack < 0 {
			if c := videoCodecOf(t.Format); c != VideoNone {
				m.VideoTrack, m.Video, m.vfmt = i, c, t.Format
				switch f := t.Format.(type) {
				case *format.H264:
					m.ps.SPS, m.ps.PPS = f.SafeParams()
					m.codec[i] = TagAVC
				case *format.H265:
					m.ps.VPS, m.ps.SPS, m.ps.PPS = f.SafeParams()
					m.codec[i] = TagHEVC
				case *format.AV1:
					m.codec[i] = TagAV1
				}
				continue
			}
		}
		if m.AudioTrack < 0 {
			if c := audioCodecOf(t.Format); c != AudioNone {
				m.AudioTrack, m.Audio, m.afmt = i, c, t.Format
				m.codec[i] = [...]TagCodec{AudioAAC: TagAAC, AudioOpus: TagOpus, AudioPCMA: TagPCMA, AudioPCMU: TagPCMU}[c]
			}
		}
	}
	if m.VideoTrack < 0 && m.AudioTrack < 0 {
		return nil, ErrNoTracks
	}
	return m, nil
}

// Carries reports whether f belongs to a track the muxer sends.
func (m *Muxer) Carries(f *hub.Frame) bool {
	return f.Track >= 0 && f.Track < len(m.codec) && m.codec[f.Track] != TagNone
}

// Codec returns the tag codec of f's track (TagNone if not carried).
func (m *Muxer) Codec(f *hub.Frame) TagCodec {
	if !m.Carries(f) {
		return TagNone
	}
	return m.codec[f.Track]
}

// FrameTag returns f's complete FLV tag, built once and shared by all readers.
func (m *Muxer) FrameTag(f *hub.Frame) []byte {
	return f.Encoded(EncTag, TagBuilders[m.codec[f.Track]])
}

// Start is called with each frame the reader would send: the first time it
// returns ok, it returns the tags that open the stream for this reader
// (onMetaData, sequence headers). It holds back (ok false) while the video
// parameter sets are still unknown and f carries none, so that a decoder
// never receives frames before its configuration, and after that the
// audio that begins well before the reader's first video (earlyAudio). The
// headers are stamped 0.
func (m *Muxer) Start(f *hub.Frame) (tags []Tag, ok bool) {
	if m.started {
		return nil, !m.earlyAudio(f)
	}
	if m.VideoTrack >= 0 && !m.haveVideoParams() {
		if f.Track != m.VideoTrack || !f.Key {
			return nil, false
		}
		m.paramsFromAU(f.AU)
		if !m.haveVideoParams() {
			return nil, false
		}
	}
	m.started = true
	m.earlyAudio(f) // the frame that starts the reader is sent; a video one sets the start
	// Headers at time 0: ffmpeg's FLV demuxer takes a script tag at any other
	// time for a subtitle stream, and audio that arrived just after the video
	// keyframe may carry an earlier time than the keyframe; 0 never goes back.
	ts := uint32(0)
	tags = append(tags, Tag{TagScript, ts, m.Metadata()})
	if m.VideoTrack >= 0 {
		tags = append(tags, Tag{TagVideo, ts, m.videoSequenceHeader()})
	}
	if m.AudioTrack >= 0 {
		if b := m.audioSequenceHeader(); b != nil {
			tags = append(tags, Tag{TagAudio, ts, b})
		}
	}
	return tags, true
}

func (m *Muxer) haveVideoParams() bool {
	switch m.Video {
	case VideoAV1:
		return m.av1Seq != nil
	case VideoH265:
		return m.ps.Complete(true)
	}
	return m.ps.Complete(false)
}

// paramsFromAU takes parameter sets sent in-band (an RTSP source whose SDP
// had no sprop-parameter-sets).
func (m *Muxer) paramsFromAU(au [][]byte) {
	if m.Video == VideoAV1 { // its sequence header travels in-band only
		m.av1Seq = validAV1SequenceHeader(au)
		return
	}
	m.ps.Take(au, m.Video == VideoH265)
}

func (m *Muxer) videoSequenceHeader() []byte {
	switch m.Video {
	case VideoAV1:
		return av1SequenceStart(m.av1Seq)
	case VideoH265:
		conf := hevcConfig(m.ps.VPS, m.ps.SPS, m.ps.PPS)
		b := append([]byte{0x80 | 1<<4 | 0}, fourccHEVC[:]...)
		return append(b, conf...)
	}
	b := []byte{1<<4 | videoCodecAVC, 0, 0, 0, 0}
	return append(b, avcConfig(m.ps.SPS, m.ps.PPS)...)
}

func (m *Muxer) audioSequenceHeader() []byte {
	switch f := m.afmt.(type) {
	case *format.MPEG4Audio, *format.MPEG4AudioLATM:
		asc, err := codec.AACConfig(f).Marshal()
		if err != nil {
			return nil
		}
		return append([]byte{audioFormatAAC<<4 | 0x0f, 0}, asc...)
	case *format.Opus:
		b := []byte{audioFormatExHeader<<4 | 0, 'O', 'p', 'u', 's'}
		return append(b, opusHead(f.ChannelCount)...)
	}
	return nil // G.711 has no sequence header
}

// Metadata is the onMetaData script tag body.
func (m *Muxer) Metadata() []byte {
	props := amf0.ECMAArray{{Key: "duration", Value: 0.0}}
	switch m.Video {
	case VideoH264:
		var s h264.SPS
		if s.Unmarshal(m.ps.SPS) == nil {
			props = append(props, amf0.Property{Key: "width", Value: float64(s.Width())}, amf0.Property{Key: "height", Value: float64(s.Height())})
			if fps := s.FPS(); fps > 0 {
				props = append(props, amf0.Property{Key: "framerate", Value: fps})
			}
		}
		props = append(props, amf0.Property{Key: "videocodecid", Value: float64(videoCodecAVC)})
	case VideoH265:
		var s h265.SPS
		if s.Unmarshal(m.ps.SPS) == nil {
			props = append(props, amf0.Property{Key: "width", Value: float64(s.Width())}, amf0.Property{Key: "height", Value: float64(s.Height())})
		}
		props = append(props, amf0.Property{Key: "videocodecid", Value: float64(binary.BigEndian.Uint32(fourccHEVC[:]))})
	case VideoAV1:
		props = append(props, av1Metadata(m.av1Seq)...)
	}
	switch f := m.afmt.(type) {
	case *format.MPEG4Audio, *format.MPEG4AudioLATM:
		conf := codec.AACConfig(f)
		props = append(props, amf0.Property{Key: "audiocodecid", Value: float64(audioFormatAAC)},
			amf0.Property{Key: "audiosamplerate", Value: float64(conf.SampleRate)},
			amf0.Property{Key: "audiosamplesize", Value: 16.0},
			amf0.Property{Key: "stereo", Value: conf.ChannelCount >= 2})
	case *format.Opus:
		props = append(props, amf0.Property{Key: "audiocodecid", Value: float64(binary.BigEndian.Uint32(fourccOpus[:]))},
			amf0.Property{Key: "audiosamplerate", Value: 48000.0}, amf0.Property{Key: "stereo", Value: f.ChannelCount >= 2})
	case *format.G711:
		id := audioFormatPCMA
		if f.MULaw {
			id = audioFormatPCMU
		}
		props = append(props, amf0.Property{Key: "audiocodecid", Value: float64(id)},
			amf0.Property{Key: "audiosamplerate", Value: 8000.0}, amf0.Property{Key: "stereo", Value: false})
	}
	props = append(props, amf0.Property{Key: "encoder", Value: "Berth"})
	b := amf0.AppendString(nil, "onMetaData")
	return amf0.Append(b, props)
}
