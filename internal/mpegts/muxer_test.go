package mpegts

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	mcts "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/muxring"
)

var (
	// 320x240 Constrained Baseline level 1.3, as x264 writes it.
	sps320 = []byte{0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0xa8}
	pps    = []byte{0x68, 0xce, 0x3c, 0x80}
	// libx265 320x240 Main.
	hevcVPS = []byte{0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x94, 0x09}
	hevcSPS = []byte{0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f,
		0x16, 0x59, 0x59, 0x52, 0x93, 0x0b, 0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10}
	hevcPPS = []byte{0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40}
)

const (
	frameDur = 40 * time.Millisecond      // 25 fps
	aacDur   = 1024 * time.Second / 48000 // one AAC frame at 48 kHz
	pmtPID   = 0x1000                     // astits's
)

func aacTrack() *hub.Track {
	return codec.AACTrackConfig(&mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2})
}

// frameAt is the video access unit of frame i: an IDR every 10 frames.
func frameAt(hevc bool, i int) [][]byte {
	switch {
	case hevc && i%10 == 0:
		return [][]byte{{0x26, 0x01, 0xaf, byte(i)}} // IDR_W_RADL
	case hevc:
		return [][]byte{{0x02, 0x01, 0xd0, byte(i)}} // TRAIL_R
	case i%10 == 0:
		return [][]byte{{0x65, 0x88, byte(i)}}
	}
	return [][]byte{{0x41, 0x9a, byte(i)}}
}

// writeAV writes n video frames from frame `from` (times shifted by at),
// with the audio frames of the same span interleaved in time order.
func writeAV(pub *hub.Publisher, hevc, audio bool, from, n int, at time.Duration) {
	for i := from; i < from+n; i++ {
		v := time.Duration(i) * frameDur
		pub.Write(&hub.Frame{Track: 0, Key: i%10 == 0, AU: frameAt(hevc, i), PTS: v + at, DTS: v + at})
		for a := int((v + aacDur - 1) / aacDur); audio && time.Duration(a)*aacDur < v+frameDur; a++ {
			ta := time.Duration(a)*aacDur + at
			pub.Write(&hub.Frame{Track: 1, AU: [][]byte{{0x21, 0x10, byte(a)}}, PTS: ta, DTS: ta})
		}
	}
}

func publish(t *testing.T, tracks ...*hub.Track) *hub.Publisher {
	t.Helper()
	h := hub.New(hub.Options{})
	t.Cleanup(h.Close)
	pub, err := h.Publish("live/ts", hub.Origin{Proto: "test"}, hub.KindAU, tracks, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// readAll reads a cursor until its muxer stops.
func readAll(t *testing.T, c *muxring.Cursor) []*muxring.Chunk {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var all []*muxring.Chunk
	for {
		got, err := c.Next(ctx, make([]*muxring.Chunk, 0, 64))
		all = append(all, got...)
		if err != nil {
			if !errors.Is(err, hub.ErrEnded) {
				t.Fatalf("after %d chunks: %v, want hub.ErrEnded", len(all), err)
			}
			return all
		}
	}
}

// unit is an access unit read back from TS.
type unit struct {
	pts, dts int64
	au       [][]byte
}

// demux parses TS with mediacommon's reader, which fails on what a player
// would not read, and returns its tracks' codecs and units.
func demux(t *testing.T, b []byte) ([]codecs.Codec, [][]unit) {
	t.Helper()
	r := &mcts.Reader{R: bytes.NewReader(b)}
	if err := r.Initialize(); err != nil {
		t.Fatalf("TS reader: %v", err)
	}
	r.OnDecodeError(func(err error) { t.Errorf("TS decode error: %v", err) })
	var kinds []codecs.Codec
	units := make([][]unit, len(r.Tracks()))
	for i, tr := range r.Tracks() {
		kinds = append(kinds, tr.Codec)
		add := func(pts, dts int64, au [][]byte) error {
			units[i] = append(units[i], unit{pts, dts, au})
			return nil
		}
		switch tr.Codec.(type) {
		case *codecs.H264:
			r.OnDataH264(tr, add)
		case *codecs.H265:
			r.OnDataH265(tr, add)
		case *codecs.MPEG4Audio:
			r.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) error { return add(pts, pts, aus) })
		case *codecs.Opus:
			r.OnDataOpus(tr, func(pts int64, p [][]byte) error { return add(pts, pts, p) })
		}
	}
	for {
		if err := r.Read(); err != nil {
			if !errors.Is(err, io.EOF) && err.Error() != "EOF" {
				t.Logf("TS reader stopped: %v", err)
			}
			break
		}
	}
	return kinds, units
}

// pids lists the PIDs of the first n packets of a chunk.
func pids(t *testing.T, b []byte, n int) []uint16 {
	t.Helper()
	if len(b)%188 != 0 {
		t.Fatalf("chunk of %d bytes: not whole TS packets", len(b))
	}
	var out []uint16
	for i := 0; i < len(b) && len(out) < n; i += 188 {
		if b[i] != 0x47 {
			t.Fatalf("packet at %d: sync byte %#x", i, b[i])
		}
		out = append(out, uint16(b[i+1]&0x1f)<<8|uint16(b[i+2]))
	}
	return out
}

func TestMuxerWritesEveryTrack(t *testing.T) {
	for _, c := range []struct {
		name     string
		tracks   []*hub.Track
		hevc     bool
		audio    bool
		want     []string // codec types in the PMT
		codecs   string
		nalFirst []byte // the NAL types a keyframe must carry, in order
	}{
		{"H.264 and AAC", []*hub.Track{codec.H264Track(sps320, pps), aacTrack()}, false, true,
			[]string{"*codecs.H264", "*codecs.MPEG4Audio"}, "avc1.42c00d,mp4a.40.2", []byte{7, 8, 5}},
		{"H.265 and Opus", []*hub.Track{codec.H265Track(hevcVPS, hevcSPS, hevcPPS), codec.OpusTrack(2)}, true, true,
			[]string{"*codecs.H265", "*codecs.Opus"}, "hvc1.1.6.L60.90,opus", []byte{32, 33, 34, 19}},
		{"H.264 and G.711, which is left out", []*hub.Track{codec.H264Track(sps320, pps), codec.G711Track(true, 8000, 1)}, false, false,
			[]string{"*codecs.H264"}, "avc1.42c00d", []byte{7, 8, 5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pub := publish(t, c.tracks...)
			ms := &Muxers{}
			cur, err := ms.Open(pub.Stream())
			if err != nil {
				t.Fatal(err)
			}
			defer cur.Close()
			writeAV(pub, c.hevc, c.audio, 0, 30, 0)
			pub.Close()
			chunks := readAll(t, cur)
			header, codecsGot := cur.Ring().Header()
			if header == nil || len(header) != 0 || codecsGot != c.codecs {
				t.Errorf("header %v codecs %q, want empty and %q", header, codecsGot, c.codecs)
			}
			var all []byte
			keys := 0
			for i, ch := range chunks {
				all = append(all, ch.Data...)
				p := pids(t, ch.Data, 2)
				if ch.Seq != uint64(i) {
					t.Errorf("chunk %d has Seq %d", i, ch.Seq)
				}
				if ch.Key {
					if p[0] != 0 || p[1] != pmtPID {
						t.Errorf("Key chunk %d starts with PIDs %v, want PAT (0) then PMT (%#x)", i, p, pmtPID)
					}
					if ch.DTS%(10*frameDur) != 0 {
						t.Errorf("Key chunk %d at %v: not a keyframe's", i, ch.DTS)
					}
					keys++
				}
			}
			if keys != 3 || !chunks[0].Key {
				t.Errorf("%d Key chunks (first Key: %v), want 3 starting with the first", keys, chunks[0].Key)
			}
			kinds, units := demux(t, all)
			if len(kinds) != len(c.want) {
				t.Fatalf("PMT has %d tracks, want %v", len(kinds), c.want)
			}
			for i, k := range kinds {
				if got := typeName(k); got != c.want[i] {
					t.Errorf("track %d is %s, want %s", i, got, c.want[i])
				}
			}
			video := units[0]
			if len(video) < 29 {
				t.Fatalf("%d video units read back, want 30", len(video))
			}
			for i, u := range video {
				if want := int64(startTicks + i*3600); u.dts != want || u.pts != want {
					t.Errorf("video unit %d: pts %d dts %d, want %d", i, u.pts, u.dts, want)
				}
				if i%10 == 0 {
					var types []byte
					for _, nal := range u.au {
						if c.hevc {
							types = append(types, (nal[0]>>1)&0x3f)
						} else {
							types = append(types, nal[0]&0x1f)
						}
					}
					if !bytes.Equal(types, c.nalFirst) {
						t.Errorf("keyframe %d: NAL types %v, want %v (parameter sets in front)", i, types, c.nalFirst)
					}
				}
			}
			if c.audio {
				audio := units[1]
				if want := int(30 * frameDur / aacDur); len(audio) < want-1 {
					t.Errorf("%d audio units, want about %d", len(audio), want)
				}
				for i, u := range audio {
					if want := startTicks + ticks(time.Duration(i)*aacDur); u.pts != want {
						t.Errorf("audio unit %d: pts %d, want %d (in step with the video)", i, u.pts, want)
						break
					}
				}
			}
		})
	}
}

func typeName(c codecs.Codec) string {
	switch c.(type) {
	case *codecs.H264:
		return "*codecs.H264"
	case *codecs.H265:
		return "*codecs.H265"
	case *codecs.MPEG4Audio:
		return "*codecs.MPEG4Audio"
	case *codecs.Opus:
		return "*codecs.Opus"
	}
	return "other"
}

// TestAudioOnlyEveryChunkIsKey: an AAC-only stream's chunks each begin
// with PAT and PMT, so a reader may start at any.
func TestAudioOnlyEveryChunkIsKey(t *testing.T) {
	pub := publish(t, aacTrack())
	ms := &Muxers{}
	cur, _ := ms.Open(pub.Stream())
	defer cur.Close()
	for i := 0; i < 20; i++ {
		at := time.Duration(i) * aacDur
		pub.Write(&hub.Frame{Track: 0, AU: [][]byte{{0x21, 0x10, byte(i)}}, PTS: at, DTS: at})
	}
	pub.Close()
	chunks := readAll(t, cur)
	if len(chunks) != 20 {
		t.Fatalf("%d chunks, want 20", len(chunks))
	}
	for _, ch := range chunks {
		if p := pids(t, ch.Data, 2); !ch.Key || p[0] != 0 || p[1] != pmtPID {
			t.Errorf("chunk %d: key %v, PIDs %v", ch.Seq, ch.Key, p)
		}
	}
}

// TestParametersInBandOnly: a publisher whose description had no SPS/PPS
// starts the muxer at its first keyframe that carries them, and later
// keyframes without them get them.
func TestParametersInBandOnly(t *testing.T) {
	pub := publish(t, codec.H264Track(nil, nil))
	ms := &Muxers{}
	cur, _ := ms.Open(pub.Stream())
	defer cur.Close()
	for i := 0; i < 30; i++ {
		au := frameAt(false, i)
		if i == 10 {
			au = append([][]byte{{0x09, 0xf0}, sps320, pps}, au...) // with an AUD in front
		}
		at := time.Duration(i) * frameDur
		pub.Write(&hub.Frame{Track: 0, Key: i%10 == 0, AU: au, PTS: at, DTS: at})
	}
	pub.Close()
	chunks := readAll(t, cur)
	if len(chunks) != 20 || chunks[0].DTS != 10*frameDur {
		t.Fatalf("%d chunks from %v, want 20 from the keyframe with parameter sets (400ms)", len(chunks), chunks[0].DTS)
	}
	var all []byte
	for _, ch := range chunks {
		all = append(all, ch.Data...)
	}
	_, units := demux(t, all)
	for _, i := range []int{0, 10} {
		u := units[0][i]
		if len(u.au) != 3 || !bytes.Equal(u.au[0], sps320) || !bytes.Equal(u.au[1], pps) {
			t.Errorf("keyframe %d: %d NAL units % x, want SPS, PPS, IDR", i, len(u.au), u.au)
		}
	}
}

// TestTimeJumps: a track whose time goes back by more than a frame, or
// forward by more than 10 s, marks its chunk Discontinuity; its TS times go
// on one frame after the last, and so do the audio's after its own jump.
func TestTimeJumps(t *testing.T) {
	for _, c := range []struct {
		name  string
		shift time.Duration // added to the times of frames 15 and on
	}{
		{"clock restarts", -15 * frameDur},
		{"clock skips 30 s ahead", 30 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			pub := publish(t, codec.H264Track(sps320, pps), aacTrack())
			ms := &Muxers{}
			cur, _ := ms.Open(pub.Stream())
			defer cur.Close()
			writeAV(pub, false, true, 0, 15, 0)
			writeAV(pub, false, true, 15, 15, c.shift)
			pub.Close()
			chunks := readAll(t, cur)
			var all []byte
			discs := 0
			for _, ch := range chunks {
				all = append(all, ch.Data...)
				if ch.Discontinuity {
					discs++
				}
			}
			if discs != 2 {
				t.Errorf("%d chunks marked Discontinuity, want 2 (video and audio after the jump)", discs)
			}
			_, units := demux(t, all)
			for i, u := range units[0] {
				if want := int64(startTicks + i*3600); u.dts != want {
					t.Errorf("video unit %d: dts %d, want %d (going on)", i, u.dts, want)
				}
			}
			audio := units[1]
			for i := 1; i < len(audio); i++ {
				if d := audio[i].pts - audio[i-1].pts; d <= 0 || d > 2000 {
					t.Errorf("audio unit %d: pts step %d, want one frame (1920)", i, d)
				}
			}
			if v, a := units[0][len(units[0])-1].dts, audio[len(audio)-1].pts; a-v > 3600 || v-a > 3600 {
				t.Errorf("after the jump video ends at %d, audio at %d: more than a frame apart", v, a)
			}
		})
	}
}

// TestJitterIsNoDiscontinuity: a frame a little before the last of its
// track (less than a frame) is raised to just after it, not a jump.
func TestJitterIsNoDiscontinuity(t *testing.T) {
	pub := publish(t, codec.H264Track(sps320, pps))
	ms := &Muxers{}
	cur, _ := ms.Open(pub.Stream())
	defer cur.Close()
	for i, at := range []time.Duration{0, 40, 80, 75, 120} {
		pub.Write(&hub.Frame{Track: 0, Key: i == 0, AU: frameAt(false, i+1), PTS: at * time.Millisecond, DTS: at * time.Millisecond})
	}
	pub.Close()
	var all []byte
	for _, ch := range readAll(t, cur) {
		if ch.Discontinuity {
			t.Errorf("chunk %d marked Discontinuity", ch.Seq)
		}
		all = append(all, ch.Data...)
	}
	_, units := demux(t, all)
	want := []int64{0, 3600, 7200, 7201, 10800}
	for i, u := range units[0] {
		if u.dts != startTicks+want[i] {
			t.Errorf("unit %d: dts %d, want %d", i, u.dts-startTicks, want[i])
		}
	}
}

// TestTracksLeftOut: what TS cannot carry here is named with where it
// plays, and a stream of nothing else is refused.
func TestTracksLeftOut(t *testing.T) {
	h := hub.New(hub.Options{})
	defer h.Close()
	for _, c := range []struct {
		name   string
		tracks []*hub.Track
		picked int
		left   string
	}{
		{"G.711", []*hub.Track{codec.H264Track(sps320, pps), codec.G711Track(true, 8000, 1)}, 1, "G.711 (plays over RTSP, RTMP and HTTP-FLV)"},
		{"AV1", []*hub.Track{codec.AV1Track(nil), aacTrack()}, 1, "AV1 (plays over RTSP, RTMP, HTTP-FLV and HTTP-fMP4)"},
		{"second audio", []*hub.Track{aacTrack(), codec.OpusTrack(2)}, 1, "Opus (a second audio track: RTSP carries every track)"},
		{"G.711 alone", []*hub.Track{codec.G711Track(false, 8000, 1)}, 0, "G.711 (plays over RTSP, RTMP and HTTP-FLV)"},
	} {
		pub, err := h.Publish("live/"+c.name, hub.Origin{Proto: "test"}, hub.KindAU, c.tracks, nil)
		if err != nil {
			t.Fatal(err)
		}
		picked, left := pickTracks(pub.Stream())
		if len(picked) != c.picked || len(left) != 1 || left[0].why != c.left {
			t.Errorf("%s: %d picked, left out %v; want %d and %q", c.name, len(picked), left, c.picked, c.left)
		}
		if c.picked == 0 {
			if _, err := (&Muxers{}).Open(pub.Stream()); !errors.Is(err, ErrNoTracks) {
				t.Errorf("%s: Open %v, want ErrNoTracks", c.name, err)
			}
		}
		pub.Close()
	}
}

// FuzzMuxerTakesAnyAccessUnit: access units come from publishers; whatever
// their bytes, the muxer drops or muxes them and never panics.
func FuzzMuxerTakesAnyAccessUnit(f *testing.F) {
	f.Add([]byte{0x65, 0x88, 0xff, 0xff, 0x09})
	f.Add(append(append([]byte{}, sps320...), 0xff, 0xff, 0x65))
	f.Add([]byte{0x26, 0x01, 0xff, 0xff})
	h := hub.New(hub.Options{})
	defer h.Close()
	tracks := []*hub.Track{codec.H264Track(sps320, pps), codec.H265Track(nil, nil, nil)}
	f.Fuzz(func(t *testing.T, b []byte) {
		au := bytes.Split(b, []byte{0xff, 0xff})
		for _, tr := range tracks {
			pub, err := h.Publish("fuzz", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{tr, aacTrack(), codec.OpusTrack(2)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := newMuxer(pub.Stream(), nil, muxring.NewRing(8), logging.Discard(), false)
			if err != nil {
				t.Fatal(err)
			}
			for n := 0; n < 3; n++ {
				at := time.Duration(n) * frameDur
				m.take(&hub.Frame{Track: 0, Key: n != 1, AU: au, PTS: at, DTS: at})
				m.take(&hub.Frame{Track: 1, AU: au, PTS: at, DTS: at})
				m.take(&hub.Frame{Track: 2, AU: au, PTS: at, DTS: at})
			}
			pub.Close()
		}
	})
}

// TestFramesGoOutInTimeOrder: audio that arrives in batches after the
// video of its time (ffmpeg's RTSP puts five AAC frames in a packet) is
// muxed in decode-time order, so a reader that starts at a keyframe gets
// no audio from before it.
func TestFramesGoOutInTimeOrder(t *testing.T) {
	pub := publish(t, codec.H264Track(sps320, pps), aacTrack())
	ms := &Muxers{}
	cur, _ := ms.Open(pub.Stream())
	defer cur.Close()
	var batch []*hub.Frame
	next := 0 // the next audio frame
	for i := 0; i < 30; i++ {
		v := time.Duration(i) * frameDur
		pub.Write(&hub.Frame{Track: 0, Key: i%10 == 0, AU: frameAt(false, i), PTS: v, DTS: v})
		for ; time.Duration(next)*aacDur < v+frameDur; next++ {
			at := time.Duration(next) * aacDur
			batch = append(batch, &hub.Frame{Track: 1, AU: [][]byte{{0x21, 0x10, byte(next)}}, PTS: at, DTS: at})
			if len(batch) == 5 {
				for _, f := range batch {
					pub.Write(f)
				}
				batch = batch[:0]
			}
		}
	}
	pub.Close()
	chunks := readAll(t, cur)
	if len(chunks) < 30+int(30*frameDur/aacDur)-5 {
		t.Fatalf("%d chunks, want every video and audio frame", len(chunks))
	}
	for i := 1; i < len(chunks); i++ {
		if ticks(chunks[i].DTS) < ticks(chunks[i-1].DTS) { // in ticks: hub times are truncated nanoseconds
			t.Errorf("chunk %d at %v after one at %v: not in time order", i, chunks[i].DTS, chunks[i-1].DTS)
		}
	}
}

// TestQuietTrackIsNotWaitedFor: a stream whose audio track never sends is
// held back maxHold once, then its video goes out as it comes.
func TestQuietTrackIsNotWaitedFor(t *testing.T) {
	pub := publish(t, codec.H264Track(sps320, pps), aacTrack())
	ms := &Muxers{}
	cur, _ := ms.Open(pub.Stream())
	defer cur.Close()
	writeAV(pub, false, false, 0, 31, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := 0
	for got < 31 {
		chunks, err := cur.Next(ctx, make([]*muxring.Chunk, 0, 64))
		if err != nil {
			t.Fatalf("%d of 31 video chunks out while the stream lives: %v", got, err)
		}
		got += len(chunks)
	}
}
