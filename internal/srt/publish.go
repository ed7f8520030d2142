package srt

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	mtscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// The TS-to-hub code here is the SRT publisher's own, smaller than the RTP
// proxy's builder (internal/rtpproxy/builder.go): SRT carries a whole TS
// with its PMT, so the tracks are known before the first frame and only
// the video parameter sets are waited for. Both could move to one shared
// package when a third TS source (an HTTP-TS or SRT pull) comes.

// tsTrack is one elementary stream of the TS being published.
type tsTrack struct {
	pid   uint16
	name  string // H264, H265, AAC, Opus
	video bool

	vps, sps, pps []byte
	aac           *mpeg4audio.AudioSpecificConfig
	channels      int

	index int // in the published tracks; -1 = left out
}

func (t *tsTrack) ready() bool {
	switch t.name {
	case "H264":
		return t.sps != nil && t.pps != nil
	case "H265":
		return t.vps != nil && t.sps != nil && t.pps != nil
	}
	return true // audio: the PMT and its descriptors had all
}

// publishWait is how long a publisher's video may go without a keyframe
// with its parameter sets before Berth publishes the tracks that are ready
// and leaves the others out, with a log line.
const publishWait = 5 * time.Second

// tsPublisher turns MPEG-TS read from an SRT connection into a hub stream.
// One goroutine runs it.
type tsPublisher struct {
	hub    *hub.Hub
	log    *slog.Logger
	path   string
	origin hub.Origin

	tracks  []*tsTrack
	clock   mpegts.TimeDecoder // one for every track: they share the TS's program clock
	started time.Time

	pub   *hub.Publisher
	base  int64 // decoded 90 kHz time that becomes PTS 0
	video bool  // a published video track exists: only its keyframes are Key
	ended bool
	err   error // why the hub refused the publish

	onPublished func(*hub.Publisher) // the server watches the stream's end
}

// errEnded stops the demux loop when the hub ended the stream (takeover,
// shutdown).
var errEnded = fmt.Errorf("the stream was ended by the server")

// run demuxes r until it fails or ends, then unpublishes. A panic in the
// demuxer on malformed input ends this publisher only.
func (p *tsPublisher) run(r io.Reader) (err error) {
	defer p.close()
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("MPEG-TS demuxer failed on malformed input: %v", x)
		}
	}()
	p.started = time.Now()
	dem := &mpegts.Reader{R: r}
	if err := dem.Initialize(); err != nil {
		return fmt.Errorf("no MPEG-TS program table (PAT/PMT) in what the publisher sent; send MPEG-TS (ffmpeg -f mpegts): %w", err)
	}
	dem.OnDecodeError(func(error) {}) // lost packets show as decode errors; SRT's own loss counters say more
	for _, tr := range dem.Tracks() {
		p.addTrack(dem, tr)
	}
	if len(p.tracks) == 0 {
		return fmt.Errorf("the MPEG-TS carries no track Berth can use (H.264, H.265, AAC, Opus)")
	}
	for {
		if err := dem.Read(); err != nil {
			return err
		}
		if p.ended {
			if p.err != nil {
				return p.err
			}
			return errEnded
		}
	}
}

func (p *tsPublisher) addTrack(dem *mpegts.Reader, tr *mpegts.Track) {
	t := &tsTrack{pid: tr.PID, index: -1}
	switch c := tr.Codec.(type) {
	case *mtscodecs.H264:
		t.name, t.video = "H264", true
		dem.OnDataH264(tr, func(pts, dts int64, au [][]byte) error { p.videoAU(t, pts, dts, au); return nil })
	case *mtscodecs.H265:
		t.name, t.video = "H265", true
		dem.OnDataH265(tr, func(pts, dts int64, au [][]byte) error { p.videoAU(t, pts, dts, au); return nil })
	case *mtscodecs.MPEG4Audio:
		t.name = "AAC"
		conf := c.Config
		t.aac = &conf
		rate := int64(conf.SampleRate)
		if rate <= 0 {
			rate = 48000
		}
		dem.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) error {
			for i, au := range aus { // ADTS frames of one PES: 1024 samples each
				p.audio(t, pts+int64(i)*1024*90000/rate, au)
			}
			return nil
		})
	case *mtscodecs.Opus:
		t.name = "Opus"
		t.channels = max(c.ChannelCount, 1)
		dem.OnDataOpus(tr, func(pts int64, pkts [][]byte) error {
			for _, pk := range pkts {
				p.audio(t, pts, pk)
				pts += opus.PacketDuration2(pk) * 90000 / 48000
			}
			return nil
		})
	default:
		p.log.Warn("SRT publisher sends a codec Berth cannot use; that track is ignored",
			"path", p.path, "pid", tr.PID, "codec", fmt.Sprintf("%T", c))
		return
	}
	p.tracks = append(p.tracks, t)
}

// videoAU takes one access unit of NAL units (without start codes).
func (p *tsPublisher) videoAU(t *tsTrack, pts, dts int64, au [][]byte) {
	key := false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if t.name == "H264" {
			switch n[0] & 0x1f {
			case 5:
				key = true
			case 7:
				t.sps = n
			case 8:
				t.pps = n
			}
			continue
		}
		if len(n) < 2 {
			continue
		}
		switch typ := (n[0] >> 1) & 0x3f; {
		case typ >= 16 && typ <= 21:
			key = true
		case typ == 32:
			t.vps = n
		case typ == 33:
			t.sps = n
		case typ == 34:
			t.pps = n
		}
	}
	d := p.clock.Decode(dts)
	// PTS - DTS on the 33-bit circle: a B-frame's PTS may have wrapped apart from its DTS.
	off := (pts - dts) & 0x1FFFFFFFF
	if off > 0x1FFFFFFFF/2 {
		off -= 0x200000000
	}
	if p.pub == nil {
		// Publish on the first keyframe with its parameter sets: players
		// start there, and everything before it is undecodable anyway.
		if !key || !p.allVideoReady() {
			p.maybePublishLate()
			return
		}
		p.publish(d)
	}
	p.write(t, key, au, d+off, d)
}

func (p *tsPublisher) audio(t *tsTrack, pts int64, frame []byte) {
	d := p.clock.Decode(pts)
	if p.pub == nil {
		if p.hasVideo() {
			p.maybePublishLate()
			return // audio before the first keyframe is dropped: players start on the keyframe
		}
		p.publish(d)
	}
	p.write(t, !p.video, [][]byte{frame}, d, d)
}

func (p *tsPublisher) hasVideo() bool {
	for _, t := range p.tracks {
		if t.video {
			return true
		}
	}
	return false
}

func (p *tsPublisher) allVideoReady() bool {
	for _, t := range p.tracks {
		if t.video && !t.ready() {
			return false
		}
	}
	return true
}

// maybePublishLate publishes the ready tracks once publishWait has passed
// without a usable keyframe, so an audio track is not held hostage by a
// video track that never shows its parameter sets.
func (p *tsPublisher) maybePublishLate() {
	if p.pub != nil || p.ended || time.Since(p.started) < publishWait {
		return
	}
	for _, t := range p.tracks {
		if t.video && !t.ready() {
			p.log.Warn("SRT publisher: a video track never showed its parameter sets (SPS/PPS) with a keyframe; it is left out",
				"path", p.path, "codec", t.name, "pid", t.pid, "fix", "make the encoder repeat them at keyframes (x264: repeat-headers; ffmpeg -bsf:v dump_extra)")
			t.name = "" // never published
		}
	}
	keep := p.tracks[:0]
	for _, t := range p.tracks {
		if t.name != "" {
			keep = append(keep, t)
		}
	}
	p.tracks = keep
	if !p.hasVideo() && len(p.tracks) > 0 {
		p.publish(0) // base set by the first audio frame below
		p.base = -1
	}
}

func (p *tsPublisher) publish(base int64) {
	if p.ended {
		return
	}
	ready := make([]*tsTrack, 0, len(p.tracks))
	for _, t := range p.tracks {
		if t.ready() {
			ready = append(ready, t)
		}
	}
	// Video first: players take the first track as the main one.
	sort.SliceStable(ready, func(i, j int) bool { return ready[i].video && !ready[j].video })
	tracks := make([]*hub.Track, 0, len(ready))
	var names []string
	for i, t := range ready {
		t.index = i
		p.video = p.video || t.video
		names = append(names, t.name)
		tracks = append(tracks, buildTrack(t))
	}
	pub, err := p.hub.Publish(p.path, p.origin, hub.KindAU, tracks, nil)
	if err != nil {
		p.ended, p.err = true, err
		p.log.Warn("SRT publish refused by the hub", "path", p.path, "err", err)
		return
	}
	p.pub, p.base = pub, base
	if p.onPublished != nil {
		p.onPublished(pub)
	}
	p.log.Info("srt publish started", "path", p.path, "tracks", names)
}

func (p *tsPublisher) write(t *tsTrack, key bool, au [][]byte, pts, dts int64) {
	if p.pub == nil || t.index < 0 {
		return
	}
	select {
	case <-p.pub.Done():
		p.ended = true
		return
	default:
	}
	if p.base < 0 {
		p.base = dts
	}
	if dts < p.base {
		return // audio stamped before the keyframe the stream starts on
	}
	p.pub.Write(&hub.Frame{Track: t.index, Key: key, AU: au,
		PTS: ticks(pts - p.base), DTS: ticks(dts - p.base), Recv: time.Now()})
}

func (p *tsPublisher) close() {
	if p.pub != nil {
		p.pub.Close()
		p.pub = nil
	}
	p.ended = true
}

// ticks converts 90 kHz ticks to a duration (negative: 0).
func ticks(t int64) time.Duration {
	if t < 0 {
		return 0
	}
	return time.Duration(t) * time.Second / 90000
}

func buildTrack(t *tsTrack) *hub.Track {
	switch t.name {
	case "H264":
		return codec.H264Track(t.sps, t.pps)
	case "H265":
		return codec.H265Track(t.vps, t.sps, t.pps)
	case "AAC":
		return codec.AACTrackConfig(t.aac)
	case "Opus":
		return codec.OpusTrack(t.channels)
	}
	return nil
}
