package fmp4

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	mp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testutil"
)

var (
	// 320x240 Constrained Baseline level 1.3, as x264 writes it.
	sps320 = []byte{0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0xa8}
	pps    = []byte{0x68, 0xce, 0x3c, 0x80}
	// libx265 320x240 Main: its SPS, with emulation prevention bytes.
	hevcSPS = []byte{0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f,
		0x16, 0x59, 0x59, 0x52, 0x93, 0x0b, 0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10}
	// libaom's sequence header OBU of a 4:4:4 (High profile) clip.
	av1Seq = []byte{0x0a, 0x0d, 0x20, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0xda, 0xf9, 0x20, 0x21, 0xa0, 0x04}
)

const (
	frameDur = 40 * time.Millisecond      // 25 fps
	aacDur   = 1024 * time.Second / 48000 // one AAC frame at 48 kHz
)

func aacTrack() *hub.Track {
	return codec.AACTrackConfig(&mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2})
}

// testStream publishes H.264 + AAC as access units.
func testStream(t *testing.T) (*hub.Hub, *hub.Publisher) {
	t.Helper()
	h := hub.New(hub.Options{})
	pub, err := h.Publish("live/t", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.H264Track(sps320, pps), aacTrack()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, pub
}

func videoAU(i int) [][]byte {
	if i%10 == 0 {
		return [][]byte{{0x65, 0x88, byte(i)}, {0x65, 0x99, byte(i)}}
	}
	return [][]byte{{0x41, 0x9a, byte(i)}}
}

// writeGOPs writes n video frames (a keyframe every 10) starting at frame
// from, with the AAC frames of the same span interleaved in time order.
func writeGOPs(pub *hub.Publisher, from, n int) {
	now := time.Now()
	for i := from; i < from+n; i++ {
		v := time.Duration(i) * frameDur
		pub.Write(&hub.Frame{Track: 0, Key: i%10 == 0, AU: videoAU(i), PTS: v, DTS: v, Recv: now})
		for a := int(v / aacDur); time.Duration(a)*aacDur < v+frameDur; a++ {
			if time.Duration(a)*aacDur < v {
				continue
			}
			at := time.Duration(a) * aacDur
			pub.Write(&hub.Frame{Track: 1, AU: [][]byte{{0x21, byte(a)}}, PTS: at, DTS: at, Recv: now})
		}
	}
}

// readAll reads a cursor until its muxer stops.
func readAll(t *testing.T, c *Cursor) ([]*Fragment, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var all []*Fragment
	for {
		got, err := c.Next(ctx, make([]*Fragment, 0, 16))
		all = append(all, got...)
		if err != nil {
			return all, err
		}
	}
}

// TestMuxerRoundTrip: frames muxed by Berth and demuxed by mediacommon come
// back with their bytes, durations and decode times; one fragment per video
// frame, those that begin a GOP marked Key.
func TestMuxerRoundTrip(t *testing.T) {
	_, pub := testStream(t)
	ms := &Muxers{}
	c, err := ms.Open(pub.Stream())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeGOPs(pub, 0, 30)
	pub.Close()
	frags, err := readAll(t, c)
	if !errors.Is(err, hub.ErrEnded) {
		t.Fatalf("after the stream ended: %v, want hub.ErrEnded", err)
	}
	init, codecs := c.Ring().Header()
	if codecs != "avc1.42c00d,mp4a.40.2" {
		t.Errorf("codecs %q, want avc1.42c00d,mp4a.40.2", codecs)
	}
	var in mp4.Init
	if err := in.Unmarshal(bytes.NewReader(init)); err != nil {
		t.Fatal(err)
	}
	if len(in.Tracks) != 2 || in.Tracks[0].TimeScale != 90000 || in.Tracks[1].TimeScale != 48000 {
		t.Fatalf("init tracks: %+v", in.Tracks)
	}
	if v, ok := in.Tracks[0].Codec.(*mp4.CodecH264); !ok || !bytes.Equal(v.SPS, sps320) || !bytes.Equal(v.PPS, pps) {
		t.Errorf("video codec: %#v", in.Tracks[0].Codec)
	}
	if len(frags) != 30 {
		t.Fatalf("%d fragments, want 30 (one per video frame)", len(frags))
	}
	audio := 0
	var nextAudio uint64
	for i, f := range frags {
		if f.Seq != uint64(i) || f.Key != (i%10 == 0) {
			t.Errorf("fragment %d: seq %d key %v", i, f.Seq, f.Key)
		}
		var parts mp4.Parts
		if err := parts.Unmarshal(f.Data); err != nil || len(parts) != 1 {
			t.Fatalf("fragment %d: %v (%d parts)", i, err, len(parts))
		}
		p := parts[0]
		if p.SequenceNumber != uint32(i+1) {
			t.Errorf("fragment %d: mfhd sequence %d", i, p.SequenceNumber)
		}
		for _, pt := range p.Tracks {
			switch pt.ID {
			case 1:
				want, _ := h264.AVCC(videoAU(i)).Marshal()
				if len(pt.Samples) != 1 || !bytes.Equal(pt.Samples[0].Payload, want) || pt.Samples[0].Duration != 3600 ||
					pt.BaseTime != uint64(i)*3600 || pt.Samples[0].IsNonSyncSample == (i%10 == 0) {
					t.Errorf("fragment %d video: base %d samples %+v", i, pt.BaseTime, pt.Samples)
				}
			case 2:
				if pt.BaseTime != nextAudio {
					t.Errorf("fragment %d audio: base %d, want %d (continuing the last)", i, pt.BaseTime, nextAudio)
				}
				for _, s := range pt.Samples {
					if s.Duration != 1024 || len(s.Payload) != 2 || s.Payload[1] != byte(audio) {
						t.Errorf("fragment %d audio sample %d: %+v", i, audio, s)
					}
					audio++
					nextAudio += uint64(s.Duration)
				}
			default:
				t.Errorf("fragment %d: track %d", i, pt.ID)
			}
		}
	}
	if want := int(30 * frameDur / aacDur); audio < want-1 || audio > want+1 {
		t.Errorf("%d audio samples, want about %d", audio, want)
	}
	if ms.Started() != 1 {
		t.Errorf("%d muxers started, want 1", ms.Started())
	}
}

// TestTwoReadersShareOneMuxer: two cursors of one stream read the same
// fragment bytes (not copies) from one muxer, and the muxer's hub reader
// is not counted as a player.
func TestTwoReadersShareOneMuxer(t *testing.T) {
	_, pub := testStream(t)
	ms := &Muxers{}
	a, err := ms.Open(pub.Stream())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ms.Open(pub.Stream())
	if err != nil {
		t.Fatal(err)
	}
	if n := pub.Stream().Readers(); n != 0 {
		t.Errorf("hub counts %d readers, want 0: the muxer is not a player", n)
	}
	writeGOPs(pub, 0, 20)
	pub.Close()
	fa, _ := readAll(t, a)
	fb, _ := readAll(t, b)
	if len(fa) != 20 || len(fb) != 20 {
		t.Fatalf("fragments %d and %d, want 20 each", len(fa), len(fb))
	}
	for i := range fa {
		if fa[i] != fb[i] || &fa[i].Data[0] != &fb[i].Data[0] {
			t.Fatalf("fragment %d differs between the readers", i)
		}
	}
	if ms.Started() != 1 {
		t.Errorf("%d muxers started for one stream, want 1", ms.Started())
	}
	a.Close()
	b.Close()
}

// TestNewReaderStartsAtTheLatestKeyframe: a reader that comes mid-GOP gets
// the init segment and the fragments from the GOP's keyframe on.
func TestNewReaderStartsAtTheLatestKeyframe(t *testing.T) {
	_, pub := testStream(t)
	ms := &Muxers{}
	first, err := ms.Open(pub.Stream())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	writeGOPs(pub, 0, 25)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seen := 0
	for seen < 24 { // fragment 24 waits for frame 25
		got, err := first.Next(ctx, make([]*Fragment, 0, 64))
		if err != nil {
			t.Fatal(err)
		}
		seen += len(got)
	}
	late, err := ms.Open(pub.Stream())
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	got, err := late.Next(ctx, make([]*Fragment, 0, 64))
	if err != nil || len(got) == 0 {
		t.Fatalf("late reader: %v", err)
	}
	if !got[0].Key || got[0].Seq != 20 {
		t.Errorf("late reader starts at fragment %d (key %v), want 20, the latest keyframe", got[0].Seq, got[0].Key)
	}
}

// TestMuxerStopsAfterItsLastReader: with a stop delay the muxer outlives its
// last reader and a new reader reuses it; without one it stops, releasing
// its hub reader, and the next reader starts a new muxer.
func TestMuxerStopsAfterItsLastReader(t *testing.T) {
	_, pub := testStream(t)
	ms := &Muxers{StopDelay: time.Hour}
	c, err := ms.Open(pub.Stream())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close() // twice is once
	if ms.Running() != 1 {
		t.Fatalf("muxer stopped within its stop delay")
	}
	c, err = ms.Open(pub.Stream())
	if err != nil {
		t.Fatal(err)
	}
	if ms.Started() != 1 {
		t.Errorf("a reader within the stop delay started muxer #%d, want the running one", ms.Started())
	}
	ms.StopDelay = 0
	c.Close()
	testutil.WaitFor(t, 5*time.Second, "the muxer to stop", func() bool { return ms.Running() == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Next(ctx, make([]*Fragment, 0, 1)); !errors.Is(err, ErrStopped) {
		t.Errorf("cursor of a stopped muxer: %v, want ErrStopped", err)
	}
	c, err = ms.Open(pub.Stream())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ms.Started() != 2 {
		t.Errorf("started %d muxers, want 2", ms.Started())
	}
}

// TestSlowReaderIsDropped: a cursor that falls a ring behind gets
// ErrSlowReader; the muxer and the other cursor go on.
func TestSlowReaderIsDropped(t *testing.T) {
	_, pub := testStream(t)
	ms := &Muxers{RingFragments: 16}
	fast, _ := ms.Open(pub.Stream())
	slow, _ := ms.Open(pub.Stream())
	defer fast.Close()
	defer slow.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	next := uint64(0) // the fragment the fast reader waits for
	for frame := 0; frame < 40; frame += 5 {
		writeGOPs(pub, frame, 5)
		for next < uint64(frame+4) { // fragment k is made when frame k+1 comes
			got, err := fast.Next(ctx, make([]*Fragment, 0, 64))
			if err != nil {
				t.Fatalf("fast reader: %v", err)
			}
			for _, f := range got {
				if f.Seq != next {
					t.Fatalf("fast reader got fragment %d, want %d", f.Seq, next)
				}
				next++
			}
		}
		if frame == 0 {
			if _, err := slow.Next(ctx, make([]*Fragment, 0, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := slow.Next(ctx, make([]*Fragment, 0, 1)); !errors.Is(err, ErrSlowReader) {
		t.Errorf("slow reader: %v, want ErrSlowReader", err)
	}
}

// TestG711IsLeftOut: a G.711 track is left out with one log line; the
// video plays alone.
func TestG711IsLeftOut(t *testing.T) {
	tracks, left := pickTracks([]*hub.Track{codec.H264Track(sps320, pps), codec.G711Track(true, 8000, 1)})
	if len(tracks) != 1 || tracks[0].kind != codecH264 || len(left) != 1 {
		t.Errorf("tracks %v, left out %v", tracks, left)
	}
	if _, left := pickTracks([]*hub.Track{codec.G711Track(true, 8000, 1)}); len(left) != 1 {
		t.Errorf("left out %v", left)
	}
	h := hub.New(hub.Options{})
	defer h.Close()
	pub, _ := h.Publish("live/g", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.G711Track(true, 8000, 1)}, nil)
	if _, err := (&Muxers{}).Open(pub.Stream()); !errors.Is(err, ErrNoTracks) {
		t.Errorf("G.711-only stream: %v, want ErrNoTracks", err)
	}
}

func TestCodecStrings(t *testing.T) {
	cases := []struct {
		name string
		t    *track
		want string
	}{
		{"h264 baseline", &track{kind: codecH264, ps: codec.ParamSets{SPS: sps320}}, "avc1.42c00d"},
		{"h264 high 3.1", &track{kind: codecH264, ps: codec.ParamSets{SPS: []byte{0x67, 0x64, 0x00, 0x1f}}}, "avc1.64001f"},
		{"h265 main", &track{kind: codecH265, ps: codec.ParamSets{SPS: hevcSPS}}, "hvc1.1.6.L60.90"},
		{"av1 high", &track{kind: codecAV1, av1Seq: av1Seq}, "av01.1.00M.08"},
		{"aac lc", &track{kind: codecAAC, fmt: aacTrack().Format}, "mp4a.40.2"},
		{"opus", &track{kind: codecOpus}, "opus"},
	}
	for _, c := range cases {
		if got := c.t.codecString(); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestStreamPath(t *testing.T) {
	cases := map[string]string{
		"/live/s.live.mp4": "live/s", "/a/b/c.live.mp4": "a/b/c",
		"/live/s.mp4": "", "/live/s.live.flv": "", "/.live.mp4": "", "/../x.live.mp4": "",
	}
	for in, want := range cases {
		got, ok := StreamPath(in)
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", in, got, ok, want)
		}
	}
}

// FuzzCodecStrings: parameter sets come from publishers; the codecs
// strings built from them never panic.
func FuzzCodecStrings(f *testing.F) {
	f.Add(hevcSPS)
	f.Add(av1Seq)
	f.Add(sps320)
	f.Fuzz(func(t *testing.T, b []byte) {
		codec.RFC6381H265(b)
		av1CodecString(b)
		(&track{kind: codecH264, ps: codec.ParamSets{SPS: b}}).codecString()
		StreamPath(string(b))
	})
}

// TestAudioOnlyStream: an AAC-only stream gets fragments that are all Key
// (a reader may start at any), one per audio frame by default.
func TestAudioOnlyStream(t *testing.T) {
	h := hub.New(hub.Options{})
	defer h.Close()
	pub, _ := h.Publish("live/a", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{aacTrack()}, nil)
	ms := &Muxers{}
	c, err := ms.Open(pub.Stream())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 20; i++ {
		at := time.Duration(i) * aacDur
		pub.Write(&hub.Frame{Track: 0, AU: [][]byte{{0x21, byte(i)}}, PTS: at, DTS: at})
	}
	pub.Close()
	frags, err := readAll(t, c)
	if !errors.Is(err, hub.ErrEnded) || len(frags) != 20 {
		t.Fatalf("%d fragments, %v; want 20 then ErrEnded", len(frags), err)
	}
	for _, f := range frags {
		if !f.Key {
			t.Errorf("fragment %d of an audio-only stream is not Key", f.Seq)
		}
	}
	if _, codecs := c.Ring().Header(); codecs != "mp4a.40.2" {
		t.Errorf("codecs %q", codecs)
	}
}

// TestAV1TakesItsSequenceHeaderInBand: AV1's sequence header comes in the
// first keyframe; samples carry OBUs with sizes and without temporal
// delimiters.
func TestAV1TakesItsSequenceHeaderInBand(t *testing.T) {
	h := hub.New(hub.Options{})
	defer h.Close()
	pub, _ := h.Publish("live/av1", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.AV1Track(nil)}, nil)
	ms := &Muxers{}
	c, err := ms.Open(pub.Stream())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seq := append([]byte{0x08}, av1Seq[2:]...) // as the hub carries it: no obu_size
	td := []byte{0x10}
	frame := []byte{0x30, 0xaa, 0xbb}
	pub.Write(&hub.Frame{Track: 0, Key: false, AU: [][]byte{td, frame}, PTS: 0, DTS: 0})
	for i := 1; i <= 3; i++ {
		at := time.Duration(i) * frameDur
		au := [][]byte{td, frame}
		if i == 1 {
			au = [][]byte{td, seq, frame}
		}
		pub.Write(&hub.Frame{Track: 0, Key: i == 1, AU: au, PTS: at, DTS: at})
	}
	pub.Close()
	frags, _ := readAll(t, c)
	init, codecs := c.Ring().Header()
	if codecs != "av01.1.00M.08" {
		t.Errorf("codecs %q, want av01.1.00M.08", codecs)
	}
	var in mp4.Init
	if err := in.Unmarshal(bytes.NewReader(init)); err != nil {
		t.Fatal(err)
	}
	if _, ok := in.Tracks[0].Codec.(*mp4.CodecAV1); !ok {
		t.Fatalf("init codec %#v", in.Tracks[0].Codec)
	}
	if len(frags) != 3 || !frags[0].Key {
		t.Fatalf("%d fragments, want 3 from the keyframe on", len(frags))
	}
	var parts mp4.Parts
	if err := parts.Unmarshal(frags[1].Data); err != nil {
		t.Fatal(err)
	}
	if got := parts[0].Tracks[0].Samples[0].Payload; !bytes.Equal(got, []byte{0x32, 0x02, 0xaa, 0xbb}) {
		t.Errorf("AV1 sample % x, want the frame OBU with its size and no temporal delimiter", got)
	}
}

// TestCodecsFromTracks: the codecs string from a stream's tracks, without
// a muxer, matches the init segment's where the parameters are out of band.
func TestCodecsFromTracks(t *testing.T) {
	if got := Codecs([]*hub.Track{codec.H264Track(sps320, pps), aacTrack(), codec.G711Track(true, 8000, 1)}); got != "avc1.42c00d,mp4a.40.2" {
		t.Errorf("H.264+AAC+G.711: %q", got)
	}
	if got := Codecs([]*hub.Track{codec.G711Track(true, 8000, 1)}); got != "" {
		t.Errorf("G.711 alone: %q, want none", got)
	}
	seq := append([]byte{0x08}, av1Seq[2:]...)
	if got := Codecs([]*hub.Track{codec.AV1Track(seq)}); got != "av01.1.00M.08" {
		t.Errorf("AV1 with its sequence header in the SDP: %q", got)
	}
}

// TestForwardJumpMarksDiscontinuity: when a track's time jumps forward by
// more than maxGap, the fragment of the first sample after the jump is
// marked Discontinuity, and only that one.
func TestForwardJumpMarksDiscontinuity(t *testing.T) {
	_, pub := testStream(t)
	ms := &Muxers{}
	c, err := ms.Open(pub.Stream())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 30; i++ {
		at := time.Duration(i) * frameDur
		if i >= 15 {
			at += 30 * time.Second
		}
		pub.Write(&hub.Frame{Track: 0, Key: i%10 == 0, AU: videoAU(i), PTS: at, DTS: at})
	}
	pub.Close()
	frags, _ := readAll(t, c)
	if len(frags) != 30 {
		t.Fatalf("%d fragments, want 30", len(frags))
	}
	for i, f := range frags {
		if f.Discontinuity != (i == 15) {
			t.Errorf("fragment %d: discontinuity %v", i, f.Discontinuity)
		}
	}
}
