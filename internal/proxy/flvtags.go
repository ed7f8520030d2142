package proxy

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/flv/amf0"
	"github.com/berthmedia/berth/internal/hub"
)

// FLV tag types (FLV spec 10.1, E.4.1), the same numbers as RTMP's message types.
const (
	tagAudio  = 8
	tagVideo  = 9
	tagScript = 18
)

// flvIn turns the tags of an RTMP play or an HTTP-FLV response into tracks
// and access units. Tracks are known only from the sequence headers, so
// frames wait until each track that onMetaData announced has one (or a
// number of frames went by), as the RTMP server does for its publishers.
type flvIn struct {
	out   *outlet
	begin func(tracks []*hub.Track) error // publishes (or resumes) with the tracks

	metaVideo, metaAudio int8 // from onMetaData: -1 unknown, 0 absent, 1 present

	vcodec        flv.VideoCodec
	vps, sps, pps []byte
	lengthSize    int
	acodec        flv.AudioCodec
	aac           *mpeg4audio.AudioSpecificConfig
	channels      int

	started    bool
	videoTrack int
	audioTrack int
	pending    []flvPending

	lastTS uint32
	epoch  int64
}

type flvPending struct {
	video bool
	f     *hub.Frame
}

// Frames held before the tracks are known: with onMetaData, and without.
const (
	flvMaxPending  = 300
	flvNoMetaAfter = 50
)

func newFLVIn(out *outlet, begin func([]*hub.Track) error) *flvIn {
	return &flvIn{out: out, begin: begin, metaVideo: -1, metaAudio: -1, videoTrack: -1, audioTrack: -1}
}

// errFLVUnsupported ends a session whose source sends only what Berth
// cannot carry.
var errFLVUnsupported = errors.New("the source's codecs are not ones Berth carries from FLV (H.264, H.265, AAC, G.711, Opus)")

// tag takes one tag; body is owned by the caller's message and may be kept.
func (s *flvIn) tag(typ uint8, ts uint32, body []byte) error {
	switch typ {
	case tagScript:
		s.onScript(body)
	case tagVideo:
		return s.onVideo(ts, body)
	case tagAudio:
		return s.onAudio(ts, body)
	}
	return nil
}

// timestamp extends the 32-bit millisecond clock, which wraps after 49.7 days.
func (s *flvIn) timestamp(ts uint32) time.Duration {
	if ts < s.lastTS && s.lastTS-ts > 1<<31 {
		s.epoch += 1 << 32
	}
	s.lastTS = ts
	return time.Duration(s.epoch+int64(ts)) * time.Millisecond
}

func (s *flvIn) onScript(body []byte) {
	vals, _ := amf0.Decode(body)
	if len(vals) > 0 && vals[0] == "@setDataFrame" {
		vals = vals[1:]
	}
	if s.started || len(vals) < 2 || vals[0] != "onMetaData" {
		return
	}
	var get func(string) any
	switch o := vals[1].(type) {
	case amf0.Object:
		get = o.Get
	case amf0.ECMAArray:
		get = amf0.Object(o).Get
	default:
		return
	}
	s.metaVideo, s.metaAudio = 0, 0
	if get("videocodecid") != nil {
		s.metaVideo = 1
	}
	if get("audiocodecid") != nil {
		s.metaAudio = 1
	}
	if s.metaVideo == 0 && s.metaAudio == 0 {
		s.metaVideo, s.metaAudio = -1, -1
	}
}

func (s *flvIn) onVideo(ts uint32, body []byte) error {
	pkt, err := flv.ParseVideo(body)
	if err != nil {
		return nil // unsupported or malformed video: dropped, audio may still play
	}
	switch pkt.Type {
	case flv.PacketConfig:
		if pkt.Codec == flv.VideoAV1 {
			return nil
		}
		var vps, sps, pps []byte
		var ls int
		if pkt.Codec == flv.VideoH265 {
			vps, sps, pps, ls, err = flv.ParseHEVCConfig(pkt.Data)
		} else {
			sps, pps, ls, err = flv.ParseAVCConfig(pkt.Data)
		}
		if err != nil {
			return nil
		}
		if s.started && pkt.Codec != s.vcodec {
			return nil
		}
		s.vcodec, s.vps, s.sps, s.pps, s.lengthSize = pkt.Codec, clone(vps), clone(sps), clone(pps), ls
		return s.maybeBegin()
	case flv.PacketFrame:
	default:
		return nil
	}
	if s.lengthSize == 0 || pkt.Codec != s.vcodec {
		return nil
	}
	au, err := flv.SplitNALUs(pkt.Data, s.lengthSize, make([][]byte, 0, 4))
	if err != nil || len(au) == 0 {
		return nil
	}
	if pkt.Key {
		// Parameter sets in band at every keyframe: a session after a
		// reconnect may bring new ones, and readers that joined on the
		// old stream need them where they are used.
		params := [][]byte{s.sps, s.pps}
		if s.vcodec == flv.VideoH265 {
			params = [][]byte{s.vps, s.sps, s.pps}
		}
		au = append(params, au...)
	}
	dts := s.timestamp(ts)
	f := &hub.Frame{Key: pkt.Key, AU: au, DTS: dts, PTS: dts + time.Duration(pkt.CTS)*time.Millisecond}
	return s.write(true, f)
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func (s *flvIn) onAudio(ts uint32, body []byte) error {
	pkt, err := flv.ParseAudio(body)
	if err != nil {
		return nil
	}
	if pkt.Type == flv.PacketConfig {
		if s.started {
			return nil
		}
		s.acodec, s.channels = pkt.Codec, pkt.Channels
		if pkt.Codec == flv.AudioAAC {
			var conf mpeg4audio.AudioSpecificConfig
			if err := conf.Unmarshal(pkt.Data); err != nil {
				s.acodec = flv.AudioNone
				return nil
			}
			s.aac = &conf
		}
		return s.maybeBegin()
	}
	if pkt.Type != flv.PacketFrame || len(pkt.Data) == 0 {
		return nil
	}
	if !s.started && s.acodec == flv.AudioNone && pkt.Codec != flv.AudioAAC {
		s.acodec, s.channels = pkt.Codec, pkt.Channels // G.711 and Opus may come without a header
	}
	if pkt.Codec != s.acodec || (s.acodec == flv.AudioAAC && s.aac == nil) {
		return nil
	}
	t := s.timestamp(ts)
	return s.write(false, &hub.Frame{AU: [][]byte{pkt.Data}, DTS: t, PTS: t})
}

func (s *flvIn) write(video bool, f *hub.Frame) error {
	if !s.started {
		s.pending = append(s.pending, flvPending{video, f})
		return s.maybeBegin()
	}
	track := s.audioTrack
	if video {
		track = s.videoTrack
	}
	if track >= 0 {
		s.out.writeAU(track, f, time.Now())
	}
	return nil
}

func (s *flvIn) videoReady() bool { return s.lengthSize > 0 }
func (s *flvIn) audioReady() bool {
	return s.acodec != flv.AudioNone && (s.acodec != flv.AudioAAC || s.aac != nil)
}

func (s *flvIn) maybeBegin() error {
	if s.started {
		return nil
	}
	var ready bool
	switch {
	case len(s.pending) >= flvMaxPending:
		ready = s.videoReady() || s.audioReady()
		if !ready {
			return fmt.Errorf("%w: %d frames and no sequence header Berth can read", errFLVUnsupported, len(s.pending))
		}
	case s.metaVideo >= 0 || s.metaAudio >= 0:
		ready = (s.metaVideo != 1 || s.videoReady()) && (s.metaAudio != 1 || s.audioReady())
	default:
		ready = (s.videoReady() && s.audioReady()) ||
			(len(s.pending) >= flvNoMetaAfter && (s.videoReady() || s.audioReady()))
	}
	if !ready {
		return nil
	}
	var tracks []*hub.Track
	if s.videoReady() {
		s.videoTrack = len(tracks)
		if s.vcodec == flv.VideoH265 {
			tracks = append(tracks, codec.H265Track(s.vps, s.sps, s.pps))
		} else {
			tracks = append(tracks, codec.H264Track(s.sps, s.pps))
		}
	}
	if s.audioReady() {
		s.audioTrack = len(tracks)
		switch s.acodec {
		case flv.AudioAAC:
			tracks = append(tracks, codec.AACTrackConfig(s.aac))
		case flv.AudioOpus:
			tracks = append(tracks, codec.OpusTrack(s.channels))
		case flv.AudioPCMA, flv.AudioPCMU:
			tracks = append(tracks, codec.G711Track(s.acodec != flv.AudioPCMU, 8000, 1))
		}
	}
	if err := s.begin(tracks); err != nil {
		return err
	}
	s.started = true
	pending := s.pending
	s.pending = nil
	for _, pf := range pending {
		s.write(pf.video, pf.f)
	}
	return nil
}
