package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	mp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	mcts "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

var (
	testAAC = mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2}
	idrAU   = [][]byte{synthSPS, synthPPS, append([]byte{0x65, 0x88, 0x84}, make([]byte, 400)...)}
	interAU = [][]byte{append([]byte{0x41, 0x9a, 0x02}, make([]byte, 300)...)}
)

// tsStream is what mediacommon's TS writer (the one Berth's muxer uses)
// makes of video frames (true: a keyframe), each followed by an AAC frame.
func tsStream(t testing.TB, keys ...bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	video := &mcts.Track{Codec: &mcts.CodecH264{}}
	audio := &mcts.Track{Codec: &mcts.CodecMPEG4Audio{Config: testAAC}}
	w := &mcts.Writer{W: &buf, Tracks: []*mcts.Track{video, audio}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		au := interAU
		if k {
			au = idrAU
		}
		ts := int64(i) * 3600
		if err := w.WriteH264(video, ts, ts, au); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMPEG4Audio(audio, ts, [][]byte{make([]byte, 200)}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// scanAll feeds b to sc in pieces of step bytes and sums the counts.
func scanAll(sc scanner, b []byte, step int) (mediaCounts, error) {
	var sum mediaCounts
	for len(b) > 0 {
		n := min(step, len(b))
		c, err := sc.scan(b[:n])
		if c.frames > 0 && sum.frames == 0 {
			sum.firstKey = c.firstKey
		}
		sum.packets += c.packets
		sum.frames += c.frames
		sum.keys += c.keys
		if err != nil {
			return sum, err
		}
		b = b[n:]
	}
	return sum, nil
}

func TestTSScannerCountsPacketsFramesAndKeyframes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		keys       []bool
		frames     int
		keyframes  int
		firstIsKey bool
	}{
		{"a GOP and a keyframe", []bool{true, false, false, false, true}, 5, 2, true},
		{"joined mid-GOP", []bool{false, false, true}, 3, 1, false},
		{"keyframes only", []bool{true, true}, 2, 2, true},
	} {
		b := tsStream(t, tc.keys...)
		for _, step := range []int{1, 7, 188, 1000, len(b)} {
			c, err := scanAll(&tsScanner{}, b, step)
			if err != nil {
				t.Fatalf("%s, pieces of %d: %v", tc.name, step, err)
			}
			if c.packets != len(b)/tsPacketSize || c.frames != tc.frames || c.keys != tc.keyframes || c.firstKey != tc.firstIsKey {
				t.Fatalf("%s, pieces of %d: %+v; want %d packets, %d frames, %d keyframes, first a keyframe %v",
					tc.name, step, c, len(b)/tsPacketSize, tc.frames, tc.keyframes, tc.firstIsKey)
			}
		}
	}
}

func TestTSScannerLosesSync(t *testing.T) {
	b := tsStream(t, true)
	var s tsScanner
	if _, err := s.scan(b[:100]); err != nil || !s.partial() {
		t.Fatalf("half a packet: err %v, partial %v; want nil, true", err, s.partial())
	}
	if _, err := s.scan(append(b[100:188], "<html>"+strings.Repeat(" ", 182)...)); !errors.Is(err, errTSSync) {
		t.Fatalf("an HTML body after a packet: %v; want errTSSync", err)
	}
}

func FuzzTSScanner(f *testing.F) {
	f.Add(tsStream(f, true, false), 7)
	f.Add(tsStream(f, false, true), 188)
	f.Add([]byte{0x47, 0x40, 0x00, 0x30, 0xb7}, 1)
	f.Fuzz(func(t *testing.T, b []byte, step int) {
		step = max(1, step%512)
		c, err := scanAll(&tsScanner{}, b, step)
		if err == nil && c.packets != len(b)/tsPacketSize {
			t.Fatalf("%d packets in %d bytes without an error", c.packets, len(b))
		}
		if c.keys > c.frames || c.frames > c.packets {
			t.Fatalf("counts %+v", c)
		}
	})
}

// fmp4Stream is mediacommon's init segment (video track 1, audio 2) and a
// fragment per video frame (true: a keyframe) with an audio sample.
func fmp4Stream(t testing.TB, keys ...bool) []byte {
	t.Helper()
	var out []byte
	var buf seekablebuffer.Buffer
	in := mp4.Init{Tracks: []*mp4.InitTrack{
		{ID: 1, TimeScale: 90000, Codec: &mp4.CodecH264{SPS: synthSPS, PPS: synthPPS}},
		{ID: 2, TimeScale: 48000, Codec: &mp4.CodecMPEG4Audio{Config: testAAC}},
	}}
	if err := in.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	out = append(out, buf.Bytes()...)
	for i, k := range keys {
		buf = seekablebuffer.Buffer{}
		p := mp4.Part{SequenceNumber: uint32(i + 1), Tracks: []*mp4.PartTrack{
			{ID: 1, BaseTime: uint64(i) * 3600, Samples: []*mp4.Sample{{Duration: 3600, IsNonSyncSample: !k, Payload: make([]byte, 500)}}},
			{ID: 2, BaseTime: uint64(i) * 1920, Samples: []*mp4.Sample{{Duration: 1920, Payload: make([]byte, 100)}}},
		}}
		if err := p.Marshal(&buf); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf.Bytes()...)
	}
	return out
}

func TestFMP4ScannerCountsFragmentsFramesAndKeyframes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		keys       []bool
		frames     int
		keyframes  int
		firstIsKey bool
	}{
		{"a GOP and a keyframe", []bool{true, false, false, true}, 4, 2, true},
		{"joined mid-GOP", []bool{false, true}, 2, 1, false},
		{"keyframes only (no sample flags in the trun)", []bool{true, true, true}, 3, 3, true},
	} {
		b := fmp4Stream(t, tc.keys...)
		for _, step := range []int{1, 5, 64, 1000, len(b)} {
			c, err := scanAll(&fmp4Scanner{}, b, step)
			if err != nil {
				t.Fatalf("%s, pieces of %d: %v", tc.name, step, err)
			}
			if c.packets != len(tc.keys) || c.frames != tc.frames || c.keys != tc.keyframes || c.firstKey != tc.firstIsKey {
				t.Fatalf("%s, pieces of %d: %+v; want %d fragments, %d frames, %d keyframes, first a keyframe %v",
					tc.name, step, c, len(tc.keys), tc.frames, tc.keyframes, tc.firstIsKey)
			}
		}
	}
}

// TestTrunSampleFlags: a trun's first-sample flags, per-sample flags, the
// tfhd default and several samples per trun (an LL-HLS part) are read.
func TestTrunSampleFlags(t *testing.T) {
	u32 := func(v ...uint32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.BigEndian.AppendUint32(b, x)
		}
		return b
	}
	for _, tc := range []struct {
		name          string
		trun          []byte
		def           uint32
		frames, keys  int
		firstIsKey    bool
		beyondTheData bool
	}{
		{"first-sample flags, then the default", u32(0x000005, 3, 0, 0), sampleNonSync, 3, 1, true, false},
		{"per-sample flags with durations", u32(0x000500, 2, 40, sampleNonSync, 40, 0), 0, 2, 1, false, false},
		{"first-sample flags override the first entry", u32(0x000404, 2, 0, sampleNonSync, 0), sampleNonSync, 2, 2, true, false},
		{"no flags: the default (sync)", u32(0x000100, 2, 40, 40), 0, 2, 2, true, false},
		{"a count beyond the box", u32(0x000400, 1000, 0, 0), 0, 2, 2, true, true},
		{"empty", u32(0, 0), 0, 0, 0, false, false},
		{"truncated", []byte{0, 0, 4}, 0, 0, 0, false, false},
	} {
		var c mediaCounts
		trunSamples(tc.trun, tc.def, &c)
		if c.frames != tc.frames || c.keys != tc.keys || c.frames > 0 && c.firstKey != tc.firstIsKey {
			t.Errorf("%s: %+v; want %d frames, %d keyframes, first a keyframe %v", tc.name, c, tc.frames, tc.keys, tc.firstIsKey)
		}
	}
}

func TestFMP4ScannerRefusesWhatIsNotMP4(t *testing.T) {
	for _, b := range [][]byte{
		[]byte("\x00\x00\x00\x04moov"),                                 // smaller than its header
		[]byte("\x00\x00\x00\x00mdat"),                                 // to the end of the stream
		[]byte("\x7f\x00\x00\x00moof"),                                 // a moof too big to hold
		[]byte("\x00\x00\x00\x01mdat\x00\x00\x00\x00\x00\x00\x00\x08"), // a 64-bit size under its 16-byte header
	} {
		if _, err := (&fmp4Scanner{}).scan(b); !errors.Is(err, errNotFMP4) {
			t.Errorf("%q: %v; want errNotFMP4", b, err)
		}
	}
}

func FuzzFMP4Scanner(f *testing.F) {
	f.Add(fmp4Stream(f, true, false), 5)
	f.Add(fmp4Stream(f, false, true, true), 64)
	f.Add([]byte("\x00\x00\x00\x01moof\x00\x00\x00\x00\x00\x00\x00\x10"), 3)
	f.Fuzz(func(t *testing.T, b []byte, step int) {
		step = max(1, step%512)
		c, _ := scanAll(&fmp4Scanner{}, b, step)
		if c.keys > c.frames {
			t.Fatalf("counts %+v", c)
		}
	})
}

func TestProtoOf(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"rtsp://h/live/s", "rtsp"},
		{"rtmp://h/live/s", "rtmp"},
		{"http://h/live/s.live.flv", "http-flv"},
		{"https://h/live/s.flv?token=1", "http-flv"},
		{"ws://h/live/s.live.flv", "ws-flv"},
		{"http://h/live/s.live.mp4", "http-fmp4"},
		{"wss://h/live/s.live.mp4?x=.ts", "ws-fmp4"},
		{"http://h/live/s.live.ts", "http-ts"},
		{"ws://h/live/s.live.ts", "ws-ts"},
		{"http://h/live/s/hls.m3u8", "hls"},
		{"http://h/live/s/hls.m3u8?berth_session=x", "hls"},
		{"https://h/live/s/hls.fmp4.m3u8", "ll-hls"},
		{"http://h/live/s", ""},
		{"ws://h/live/s/hls.m3u8", ""},
		{"srt://h:9000?streamid=x", ""},
	} {
		if got := protoOf(tc.url); got != tc.want {
			t.Errorf("protoOf(%q) = %q; want %q", tc.url, got, tc.want)
		}
	}
}

// The playlists a viewer's position logic is tested on: LL-HLS with two
// complete segments (parts listed for the newer) and two parts of the
// segment in progress; and plain HLS with four segments.
const (
	llPlaylist = `#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.6
#EXT-X-PART-INF:PART-TARGET=0.2
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-MAP:URI="init.mp4"
#EXTINF:1.0,
seg10.mp4
#EXT-X-PART:DURATION=0.2,URI="p11_0.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.2,URI="p11_1.mp4"
#EXTINF:0.4,
seg11.mp4
#EXT-X-PART:DURATION=0.2,URI="p12_0.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.2,URI="p12_1.mp4"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p12_2.mp4"
`
	tsPlaylist = `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:5
#EXTINF:2.0,
s5.ts
#EXTINF:2.0,
s6.ts
#EXTINF:2.0,
s7.ts
#EXTINF:2.0,
s8.ts
`
)

func mustMedia(t *testing.T, s string) *playlist.Media {
	t.Helper()
	var m playlist.Media
	if err := m.Unmarshal([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return &m
}

// TestHLSPositions: where a viewer starts, and which files it fetches
// from a playlist given where it is.
func TestHLSPositions(t *testing.T) {
	ll, ts := mustMedia(t, llPlaylist), mustMedia(t, tsPlaylist)
	if got := hlsStart(ll, true); got != (hlsPos{12, 0}) {
		t.Errorf("LL-HLS start %+v; want the newest independent part, 12/0", got)
	}
	if got := hlsStart(ts, false); got != (hlsPos{6, 0}) {
		t.Errorf("HLS start %+v; want three segments from the end, 6", got)
	}
	for _, tc := range []struct {
		name string
		m    *playlist.Media
		ll   bool
		from hlsPos
		want []string
		next hlsPos
	}{
		{"LL-HLS from the start", ll, true, hlsPos{12, 0}, []string{"p12_0.mp4", "p12_1.mp4"}, hlsPos{12, 2}},
		{"LL-HLS nothing new", ll, true, hlsPos{12, 2}, nil, hlsPos{12, 2}},
		{"LL-HLS the rest of a completed segment", ll, true, hlsPos{11, 1}, []string{"p11_1.mp4", "p12_0.mp4", "p12_1.mp4"}, hlsPos{12, 2}},
		{"LL-HLS behind the listed parts: the whole segment", ll, true, hlsPos{10, 0}, []string{"seg10.mp4", "p11_0.mp4", "p11_1.mp4", "p12_0.mp4", "p12_1.mp4"}, hlsPos{12, 2}},
		{"LL-HLS partly read, parts gone: skipped", ll, true, hlsPos{10, 3}, []string{"p11_0.mp4", "p11_1.mp4", "p12_0.mp4", "p12_1.mp4"}, hlsPos{12, 2}},
		{"HLS from the start", ts, false, hlsPos{6, 0}, []string{"s6.ts", "s7.ts", "s8.ts"}, hlsPos{9, 0}},
		{"HLS nothing new", ts, false, hlsPos{9, 0}, nil, hlsPos{9, 0}},
	} {
		var got []string
		next := tc.from
		fetchPlan(tc.m, &next, tc.ll, func(ref string) error { got = append(got, ref); return nil })
		if strings.Join(got, " ") != strings.Join(tc.want, " ") || next != tc.next {
			t.Errorf("%s: fetched %v, next %+v; want %v, %+v", tc.name, got, next, tc.want, tc.next)
		}
	}
}

func TestWithBlockingReload(t *testing.T) {
	got := withBlockingReload("http://h/live/s/hls.fmp4.m3u8_v.m3u8?berth_session=abc", hlsPos{12, 3})
	if got != "http://h/live/s/hls.fmp4.m3u8_v.m3u8?_HLS_msn=12&_HLS_part=3&berth_session=abc" {
		t.Fatal(got)
	}
}

func TestMediaPlaylistsFollowsTheVariantAndItsAudio(t *testing.T) {
	var mv playlist.Multivariant
	err := mv.Unmarshal([]byte(`#EXTM3U
#EXT-X-VERSION:9
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="a1",AUTOSELECT=YES,URI="a1.m3u8?s=1"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="a2",AUTOSELECT=YES,DEFAULT=YES,URI="a2.m3u8?s=1"
#EXT-X-STREAM-INF:BANDWIDTH=1000,CODECS="avc1.42c00d,mp4a.40.2",AUDIO="audio"
v.m3u8?s=1
`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := mediaPlaylists("http://h/live/s/hls.fmp4.m3u8", &mv)
	if err != nil || strings.Join(got, " ") != "http://h/live/s/v.m3u8?s=1 http://h/live/s/a2.m3u8?s=1" {
		t.Fatalf("%v, %v", got, err)
	}
	if _, err := mediaPlaylists("http://h/x.m3u8", &playlist.Multivariant{}); err == nil {
		t.Fatal("no variant: no error")
	}
}

// FuzzHLSPositions: whatever a server's playlist says, the viewer's start
// and fetch plan neither panic nor move backwards.
func FuzzHLSPositions(f *testing.F) {
	f.Add([]byte(llPlaylist), 12, 0)
	f.Add([]byte(tsPlaylist), 6, 0)
	f.Fuzz(func(t *testing.T, b []byte, msn, part int) {
		var m playlist.Media
		if m.Unmarshal(b) != nil {
			return
		}
		for _, ll := range []bool{false, true} {
			hlsStart(&m, ll)
			from := hlsPos{msn, max(part, 0)}
			next := from
			fetchPlan(&m, &next, ll, func(string) error { return nil })
			if next.before(from) {
				t.Fatalf("next %+v before %+v", next, from)
			}
		}
	})
}

// BenchmarkTSScanner and BenchmarkFMP4Scanner: what a bench reader spends
// per byte it counts, in 32 KB reads as play does; 0 allocations.
func BenchmarkTSScanner(b *testing.B) {
	keys := make([]bool, 100)
	keys[0], keys[50] = true, true
	body := tsStream(b, keys...)
	benchScan(b, body, func() scanner { return &tsScanner{} })
}

func BenchmarkFMP4Scanner(b *testing.B) {
	keys := make([]bool, 100)
	keys[0], keys[50] = true, true
	body := fmp4Stream(b, keys...)
	benchScan(b, body, func() scanner { return &fmp4Scanner{} })
}

func benchScan(b *testing.B, body []byte, mk func() scanner) {
	sc := mk()
	scanAll(sc, body, 32<<10) // the init segment and buffers, once
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := scanAll(sc, body, 32<<10); err != nil {
			b.Fatal(err)
		}
	}
}
