package rtmp

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/flv/amf0"
	"github.com/berthmedia/berth/internal/hub"
)

// A publisher's tracks are known only once its sequence headers arrive, but
// the hub fixes tracks at publish. So frames wait in pending until every
// track announced by onMetaData has its configuration (or enough frames
// went by), then the stream is published and pending is flushed.
const (
	maxPending        = 300 // frames held before publishing with the tracks known so far
	noMetadataPending = 50  // without onMetaData, frames to wait for the other media type
)

type pendingFrame struct {
	video bool
	f     *hub.Frame
}

type publishSession struct {
	c     *conn
	path  string
	msid  uint32
	start time.Time

	pub   *hub.Publisher
	ended bool

	metaVideo, metaAudio int8 // from onMetaData: -1 unknown, 0 absent, 1 present

	vcodec      flv.VideoCodec
	vps         []byte
	sps, pps    []byte
	lengthSize  int
	videoSeen   bool
	paramsDirty bool   // parameter sets changed after publish: send them in-band
	av1Seq      []byte // AV1: the latest sequence header OBU (see av1.go)
	videoTrack  int

	acodec     flv.AudioCodec
	aacConf    *mpeg4audio.AudioSpecificConfig
	channels   int
	audioSeen  bool
	audioTrack int

	pending []pendingFrame

	lastTS uint32
	epoch  int64

	frames uint64
	warned map[string]bool
}

func newPublishSession(c *conn, path string, msid uint32) *publishSession {
	return &publishSession{c: c, path: path, msid: msid, start: time.Now(), metaVideo: -1, metaAudio: -1,
		videoTrack: -1, audioTrack: -1, warned: map[string]bool{}}
}

// warnOnce logs a problem with the publisher's media once per kind.
func (p *publishSession) warnOnce(key, msg string, args ...any) {
	if p.warned[key] {
		return
	}
	p.warned[key] = true
	p.c.log.Warn(msg, append([]any{"path", p.path}, args...)...)
}

// timestamp extends RTMP's 32-bit millisecond clock, which wraps after 49.7 days.
func (p *publishSession) timestamp(ts uint32) time.Duration {
	if ts < p.lastTS && p.lastTS-ts > 1<<31 {
		p.epoch += 1 << 32
	}
	p.lastTS = ts
	return time.Duration(p.epoch+int64(ts)) * time.Millisecond
}

func (p *publishSession) onData(body []byte) error {
	vals, err := amf0.Decode(body)
	if err != nil && len(vals) == 0 {
		p.warnOnce("meta", "rtmp publisher sent unreadable metadata; ignored", "err", err)
		return nil
	}
	if len(vals) > 0 && vals[0] == "@setDataFrame" {
		vals = vals[1:]
	}
	if len(vals) < 2 || vals[0] != "onMetaData" {
		return nil
	}
	obj, ok := vals[1].(amf0.Object)
	if !ok {
		return nil
	}
	if p.pub != nil {
		return nil
	}
	p.metaVideo, p.metaAudio = 0, 0
	if v := obj.Get("videocodecid"); v != nil {
		p.metaVideo = 1
	}
	if v := obj.Get("audiocodecid"); v != nil {
		p.metaAudio = 1
	}
	if p.metaVideo == 0 && p.metaAudio == 0 { // metadata that says nothing about codecs
		p.metaVideo, p.metaAudio = -1, -1
	}
	return nil
}

func (p *publishSession) onVideo(m *Message) error {
	if p.ended {
		return nil
	}
	pkt, err := flv.ParseVideo(m.Body)
	if err != nil {
		if errors.Is(err, flv.ErrUnsupported) {
			p.warnOnce("vcodec", "rtmp publisher's video is dropped: "+err.Error())
			return nil
		}
		p.warnOnce("vbad", "rtmp publisher sent a malformed video message; dropped", "err", err)
		return nil
	}
	switch pkt.Type {
	case flv.PacketConfig:
		return p.onVideoConfig(pkt)
	case flv.PacketFrame:
	default:
		return nil
	}
	if pkt.Codec == flv.VideoAV1 {
		return p.onAV1Frame(m, pkt)
	}
	if p.lengthSize == 0 || pkt.Codec != p.vcodec {
		p.warnOnce("vnoconf", "rtmp publisher sent video frames before the sequence header; dropped until it comes")
		return nil
	}
	au, err := flv.SplitNALUs(pkt.Data, p.lengthSize, make([][]byte, 0, 4))
	if err != nil || len(au) == 0 {
		if err != nil {
			p.warnOnce("vnalu", "rtmp publisher sent a video frame with bad NALU lengths; dropped", "err", err)
		}
		return nil
	}
	if pkt.Key && p.paramsDirty {
		params := [][]byte{p.sps, p.pps}
		if p.vcodec == flv.VideoH265 {
			params = [][]byte{p.vps, p.sps, p.pps}
		}
		au = append(params, au...)
	}
	dts := p.timestamp(m.Timestamp)
	f := &hub.Frame{Key: pkt.Key, AU: au, DTS: dts, PTS: dts + time.Duration(pkt.CTS)*time.Millisecond, Recv: time.Now()}
	p.videoSeen = true
	return p.write(true, f)
}

func (p *publishSession) onVideoConfig(pkt flv.VideoPacket) error {
	if pkt.Codec == flv.VideoAV1 {
		return p.onAV1Config(pkt)
	}
	var vps, sps, pps []byte
	var ls int
	var err error
	if pkt.Codec == flv.VideoH265 {
		vps, sps, pps, ls, err = flv.ParseHEVCConfig(pkt.Data)
	} else {
		sps, pps, ls, err = flv.ParseAVCConfig(pkt.Data)
	}
	if err != nil {
		p.warnOnce("vconf", "rtmp publisher sent a bad video sequence header; video dropped", "err", err)
		return nil
	}
	if p.pub != nil {
		if p.videoTrack < 0 || pkt.Codec != p.vcodec {
			p.warnOnce("vlate", "rtmp publisher changed or added video after the stream started; ignored")
			return nil
		}
		if !bytes.Equal(sps, p.sps) || !bytes.Equal(pps, p.pps) || !bytes.Equal(vps, p.vps) {
			p.paramsDirty = true
		}
	}
	p.vcodec, p.vps, p.sps, p.pps, p.lengthSize = pkt.Codec, clone(vps), clone(sps), clone(pps), ls
	return p.maybePublish()
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func (p *publishSession) onAudio(m *Message) error {
	if p.ended {
		return nil
	}
	pkt, err := flv.ParseAudio(m.Body)
	if err != nil {
		p.warnOnce("acodec", "rtmp publisher's audio is dropped: "+err.Error())
		return nil
	}
	if pkt.Type == flv.PacketConfig {
		if p.pub != nil {
			return nil
		}
		p.acodec, p.channels = pkt.Codec, pkt.Channels
		if pkt.Codec == flv.AudioAAC {
			var conf mpeg4audio.AudioSpecificConfig
			if err := conf.Unmarshal(pkt.Data); err != nil {
				p.warnOnce("aconf", "rtmp publisher sent a bad AAC AudioSpecificConfig; audio dropped", "err", err)
				p.acodec = flv.AudioNone
				return nil
			}
			p.aacConf = &conf
		}
		return p.maybePublish()
	}
	if pkt.Type != flv.PacketFrame || len(pkt.Data) == 0 {
		return nil
	}
	if p.pub == nil && p.acodec == flv.AudioNone && pkt.Codec != flv.AudioAAC {
		// G.711 and Opus may come without a sequence header.
		p.acodec, p.channels = pkt.Codec, pkt.Channels
	}
	if pkt.Codec != p.acodec || (p.acodec == flv.AudioAAC && p.aacConf == nil) {
		p.warnOnce("anoconf", "rtmp publisher sent audio frames before the sequence header; dropped until it comes")
		return nil
	}
	ts := p.timestamp(m.Timestamp)
	f := &hub.Frame{AU: [][]byte{pkt.Data}, DTS: ts, PTS: ts, Recv: time.Now()}
	p.audioSeen = true
	return p.write(false, f)
}

func (p *publishSession) write(video bool, f *hub.Frame) error {
	if p.pub != nil {
		f.Track = p.videoTrack
		if !video {
			f.Track = p.audioTrack
		}
		if f.Track < 0 {
			return nil
		}
		p.frames++
		p.pub.Write(f)
		return nil
	}
	p.pending = append(p.pending, pendingFrame{video, f})
	return p.maybePublish()
}

func (p *publishSession) videoReady() bool {
	if p.vcodec == flv.VideoAV1 {
		return p.av1Seq != nil
	}
	return p.lengthSize > 0
}

func (p *publishSession) audioReady() bool {
	return p.acodec != flv.AudioNone && (p.acodec != flv.AudioAAC || p.aacConf != nil)
}

func (p *publishSession) maybePublish() error {
	if p.pub != nil || p.ended {
		return nil
	}
	var ready bool
	switch {
	case len(p.pending) >= maxPending:
		ready = p.videoReady() || p.audioReady()
	case p.metaVideo >= 0 || p.metaAudio >= 0:
		ready = (p.metaVideo != 1 || p.videoReady()) && (p.metaAudio != 1 || p.audioReady())
	default: // no metadata: wait for both kinds, or a while for the other one
		ready = (p.videoReady() && p.audioReady()) ||
			(len(p.pending) >= noMetadataPending && (p.videoReady() || p.audioReady()))
	}
	if !ready {
		return nil
	}
	var tracks []*hub.Track
	if p.videoReady() {
		p.videoTrack = len(tracks)
		switch p.vcodec {
		case flv.VideoH265:
			tracks = append(tracks, codec.H265Track(p.vps, p.sps, p.pps))
		case flv.VideoAV1:
			tracks = append(tracks, codec.AV1Track(p.av1Seq))
		default:
			tracks = append(tracks, codec.H264Track(p.sps, p.pps))
		}
	}
	if p.audioReady() {
		p.audioTrack = len(tracks)
		switch p.acodec {
		case flv.AudioAAC:
			tracks = append(tracks, codec.AACTrackConfig(p.aacConf))
		case flv.AudioOpus:
			tracks = append(tracks, codec.OpusTrack(p.channels))
		case flv.AudioPCMA, flv.AudioPCMU:
			tracks = append(tracks, codec.G711Track(p.acodec != flv.AudioPCMU, 8000, 1))
		}
	}
	pub, err := p.c.s.Hub.Publish(p.path, p.c.origin(), hub.KindAU, tracks, nil)
	if err != nil {
		p.ended = true
		var busy *hub.BusyError
		if errors.As(err, &busy) {
			p.c.log.Warn("rtmp publish refused: "+busy.Error(), "path", p.path,
				"fix", "stop the other publisher or publish to another stream name")
			p.c.onStatus(p.msid, "error", "NetStream.Publish.BadName", busy.Error())
		} else {
			p.c.onStatus(p.msid, "error", "NetStream.Publish.Failed", err.Error())
		}
		return fmt.Errorf("publish %s refused: %w", p.path, err)
	}
	p.pub = pub
	desc := ""
	for _, t := range tracks {
		desc += t.Format.Codec() + " "
	}
	p.c.log.Info("rtmp stream live", "path", p.path, "tracks", desc)
	go func() {
		// A takeover or server shutdown ends the stream: drop the publisher.
		<-pub.Done()
		p.c.close()
	}()
	pending := p.pending
	p.pending = nil
	for _, pf := range pending {
		p.write(pf.video, pf.f)
	}
	return nil
}

// end unpublishes; the path is free again and readers drain and stop.
func (p *publishSession) end() {
	if p.ended && p.pub == nil {
		return
	}
	p.ended = true
	if p.pub == nil {
		p.c.log.Info("rtmp publish ended before any media", "path", p.path)
		p.ended = true
		return
	}
	pub := p.pub
	p.pub = nil
	pub.Close()
	st := pub.Stream()
	p.c.log.Info("rtmp publish ended", "path", p.path, "duration", time.Since(p.start).Round(time.Millisecond),
		"frames", p.frames, "bytes_in", st.BytesIn.Load())
}
