// Package tsdemux turns an MPEG-TS byte stream that carries its PAT/PMT (as
// SRT publishers and SRT sources send it) into hub tracks and access units.
// It knows no protocol and no hub stream: the caller gets the tracks once
// (Begin) and then every frame (Write), and publishes them as it needs to.
// internal/srt's publisher and internal/proxy's srt:// source both use it.
//
// The tracks come from the PMT, so only the video's parameter sets are
// waited for: the tracks begin at the first keyframe that carries them,
// video first, and frames before it are dropped (players start there).
// A stream without video begins at its first audio frame.
package tsdemux

import (
	"errors"
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

// ErrNoProgram is a stream without a PAT/PMT within what mediacommon
// buffers (1 MB): not MPEG-TS, or a TS that never repeats its tables.
var ErrNoProgram = errors.New("no MPEG-TS program table (PAT/PMT) in what the peer sent; send MPEG-TS (ffmpeg -f mpegts)")

// ErrNoTracks is a TS whose PMT lists nothing Berth can carry.
var ErrNoTracks = errors.New("the MPEG-TS carries no track Berth can use (H.264, H.265, AAC, Opus)")

// PublishWait is how long video may go without a keyframe with its
// parameter sets before the tracks that are ready begin and the others are
// left out, with a log line.
const PublishWait = 5 * time.Second

// Demuxer reads one TS. Set the fields, then call Run once.
type Demuxer struct {
	// Log gets the lines about left-out tracks; the caller adds its context.
	Log *slog.Logger
	// Begin is called once with the tracks (video first) and their codec
	// names, before the first frame. An error ends Run with that error.
	Begin func(tracks []*hub.Track, names []string) error
	// Write takes each frame, its Track an index into Begin's tracks, its
	// times from 0 at the first keyframe. An error ends Run with it.
	Write func(f *hub.Frame) error

	tracks  []*track
	clock   mpegts.TimeDecoder // one for every track: they share the TS's program clock
	started time.Time
	begun   bool
	base    int64 // decoded 90 kHz time that becomes 0; -1: the next frame's
	video   bool  // a begun video track exists: only its keyframes are Key
	err     error // why Begin or Write refused; ends Run
}

// track is one elementary stream of the TS.
type track struct {
	pid   uint16
	name  string // H264, H265, AAC, Opus
	video bool

	vps, sps, pps []byte
	aac           *mpeg4audio.AudioSpecificConfig
	channels      int

	index int // in the begun tracks; -1 = left out
}

func (t *track) ready() bool {
	switch t.name {
	case "H264":
		return t.sps != nil && t.pps != nil
	case "H265":
		return t.vps != nil && t.sps != nil && t.pps != nil
	}
	return true // audio: the PMT and its descriptors had all
}

// Run demuxes r until it fails, ends (io.EOF and the like) or Begin/Write
// refuse. A panic in the demuxer on malformed input is returned as an
// error: it ends this stream only.
func (d *Demuxer) Run(r io.Reader) (err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("MPEG-TS demuxer failed on malformed input: %v", x)
		}
	}()
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	d.started = time.Now()
	dem := &mpegts.Reader{R: r}
	if err := dem.Initialize(); err != nil {
		return fmt.Errorf("%w: %w", ErrNoProgram, err)
	}
	dem.OnDecodeError(func(error) {}) // lost packets show as decode errors; the transport's loss counters say more
	for _, tr := range dem.Tracks() {
		d.addTrack(dem, tr)
	}
	if len(d.tracks) == 0 {
		return ErrNoTracks
	}
	for {
		if err := dem.Read(); err != nil {
			return err
		}
		if d.err != nil {
			return d.err
		}
	}
}

func (d *Demuxer) addTrack(dem *mpegts.Reader, tr *mpegts.Track) {
	t := &track{pid: tr.PID, index: -1}
	switch c := tr.Codec.(type) {
	case *mtscodecs.H264:
		t.name, t.video = "H264", true
		dem.OnDataH264(tr, func(pts, dts int64, au [][]byte) error { d.videoAU(t, pts, dts, au); return nil })
	case *mtscodecs.H265:
		t.name, t.video = "H265", true
		dem.OnDataH265(tr, func(pts, dts int64, au [][]byte) error { d.videoAU(t, pts, dts, au); return nil })
	case *mtscodecs.MPEG4Audio:
		t.name = "AAC"
		conf := c.Config
		t.aac = &conf
		rate := int64(conf.SampleRate)
		if rate <= 0 {
			rate = 48000
		}
		dem.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) error {
			for i, au := range aus { // ADTS frames of one PES: 1024 samples each (ISO 14496-3)
				d.audio(t, pts+int64(i)*1024*90000/rate, au)
			}
			return nil
		})
	case *mtscodecs.Opus:
		t.name = "Opus"
		t.channels = max(c.ChannelCount, 1)
		dem.OnDataOpus(tr, func(pts int64, pkts [][]byte) error {
			for _, pk := range pkts {
				d.audio(t, pts, pk)
				pts += opus.PacketDuration2(pk) * 90000 / 48000
			}
			return nil
		})
	default:
		d.Log.Warn("the MPEG-TS carries a codec Berth cannot use; that track is ignored",
			"pid", tr.PID, "codec", fmt.Sprintf("%T", c))
		return
	}
	d.tracks = append(d.tracks, t)
}

// videoAU takes one access unit of NAL units (without start codes).
func (d *Demuxer) videoAU(t *track, pts, dts int64, au [][]byte) {
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
	at := d.clock.Decode(dts)
	// PTS - DTS on the 33-bit circle: a B-frame's PTS may have wrapped apart from its DTS.
	off := (pts - dts) & 0x1FFFFFFFF
	if off > 0x1FFFFFFFF/2 {
		off -= 0x200000000
	}
	if !d.begun {
		// Begin on the first keyframe with its parameter sets: players
		// start there, and everything before it is undecodable anyway.
		if !key || !d.allVideoReady() {
			d.maybeBeginLate()
			return
		}
		d.begin(at)
	}
	d.write(t, key, au, at+off, at)
}

func (d *Demuxer) audio(t *track, pts int64, frame []byte) {
	at := d.clock.Decode(pts)
	if !d.begun {
		if d.hasVideo() {
			d.maybeBeginLate()
			return // audio before the first keyframe is dropped: players start on the keyframe
		}
		d.begin(at)
	}
	d.write(t, !d.video, [][]byte{frame}, at, at)
}

func (d *Demuxer) hasVideo() bool {
	for _, t := range d.tracks {
		if t.video {
			return true
		}
	}
	return false
}

func (d *Demuxer) allVideoReady() bool {
	for _, t := range d.tracks {
		if t.video && !t.ready() {
			return false
		}
	}
	return true
}

// maybeBeginLate begins the ready tracks once PublishWait has passed
// without a usable keyframe, so an audio track is not held hostage by a
// video track that never shows its parameter sets.
func (d *Demuxer) maybeBeginLate() {
	if d.begun || d.err != nil || time.Since(d.started) < PublishWait {
		return
	}
	for _, t := range d.tracks {
		if t.video && !t.ready() {
			d.Log.Warn("a video track never showed its parameter sets (SPS/PPS) with a keyframe; it is left out",
				"codec", t.name, "pid", t.pid, "fix", "make the encoder repeat them at keyframes (x264: repeat-headers; ffmpeg -bsf:v dump_extra)")
			t.name = "" // never begun
		}
	}
	keep := d.tracks[:0]
	for _, t := range d.tracks {
		if t.name != "" {
			keep = append(keep, t)
		}
	}
	d.tracks = keep
	if !d.hasVideo() && len(d.tracks) > 0 {
		d.begin(-1) // base set by the first audio frame
	}
}

func (d *Demuxer) begin(base int64) {
	if d.err != nil {
		return
	}
	ready := make([]*track, 0, len(d.tracks))
	for _, t := range d.tracks {
		if t.ready() {
			ready = append(ready, t)
		}
	}
	// Video first: players take the first track as the main one.
	sort.SliceStable(ready, func(i, j int) bool { return ready[i].video && !ready[j].video })
	tracks := make([]*hub.Track, 0, len(ready))
	names := make([]string, 0, len(ready))
	for i, t := range ready {
		t.index = i
		d.video = d.video || t.video
		names = append(names, t.name)
		tracks = append(tracks, buildTrack(t))
	}
	d.begun, d.base = true, base
	if err := d.Begin(tracks, names); err != nil {
		d.err = err
	}
}

func (d *Demuxer) write(t *track, key bool, au [][]byte, pts, dts int64) {
	if d.err != nil || t.index < 0 {
		return
	}
	if d.base < 0 {
		d.base = dts
	}
	if dts < d.base {
		return // audio stamped before the keyframe the stream starts on
	}
	f := &hub.Frame{Track: t.index, Key: key, AU: au, PTS: ticks(pts - d.base), DTS: ticks(dts - d.base), Recv: time.Now()}
	if err := d.Write(f); err != nil {
		d.err = err
	}
}

// ticks converts 90 kHz ticks to a duration (negative: 0).
func ticks(t int64) time.Duration {
	if t < 0 {
		return 0
	}
	return time.Duration(t) * time.Second / 90000
}

func buildTrack(t *track) *hub.Track {
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
