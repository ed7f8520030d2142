package rtpproxy

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/hub"
)

var pesCases = []struct {
	name     string
	in       []byte
	ok       bool
	off      int
	pts, dts int64
	hasPTS   bool
}{
	{"MPEG-2 PTS", appendPES(nil, 0xE0, 900000, []byte{9, 9}), true, 14, 900000, 900000, true},
	{"MPEG-2 PTS+DTS", append(append(append([]byte{0, 0, 1, 0xE0, 0, 15, 0x80, 0xC0, 10},
		clockBytes(0x30, 90001)...), clockBytes(0x10, 82800)...), 7, 7), true, 19, 90001, 82800, true},
	{"MPEG-2 PTS near the wrap", append(append([]byte{0, 0, 1, 0xE0, 0, 9, 0x80, 0x80, 5},
		clockBytes(0x20, clock33-1)...), 7), true, 14, clock33 - 1, clock33 - 1, true},
	{"MPEG-2 no PTS", []byte{0, 0, 1, 0xC0, 0, 4, 0x80, 0, 0, 1}, true, 9, 0, 0, false},
	{"MPEG-2 header longer than packet", []byte{0, 0, 1, 0xE0, 0, 3, 0x80, 0x80, 200}, false, 0, 0, 0, false},
	{"MPEG-2 PTS flag but short header", []byte{0, 0, 1, 0xE0, 0, 5, 0x80, 0x80, 2, 0x21, 1}, false, 0, 0, 0, false},
	{"MPEG-1 stuffing, STD, PTS", []byte{0, 0, 1, 0xE0, 0, 11, 0xFF, 0xFF, 0x40, 0x20, 0x21, 0, 0x05, 0xBF, 0x21, 1}, true, 15, 90000, 90000, true},
	{"MPEG-1 no timestamp", []byte{0, 0, 1, 0xE0, 0, 2, 0x0F, 1}, true, 7, 0, 0, false},
	{"MPEG-1 garbage", []byte{0, 0, 1, 0xE0, 0, 2, 0x55, 1}, false, 0, 0, 0, false},
	{"too short", []byte{0, 0, 1, 0xE0}, false, 0, 0, 0, false},
}

// clockBytes writes a 33-bit PTS/DTS with its 4-bit prefix and marker bits.
func clockBytes(prefix byte, v int64) []byte {
	return []byte{prefix | byte(v>>29&0x0E) | 1, byte(v >> 22), byte(v>>14) | 1, byte(v >> 7), byte(v<<1) | 1}
}

func TestParsePESHeader(t *testing.T) {
	for _, c := range pesCases {
		t.Run(c.name, func(t *testing.T) {
			off, pts, dts, has, ok := parsePESHeader(c.in)
			if ok != c.ok {
				t.Fatalf("ok %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			if off != c.off || pts != c.pts || dts != c.dts || has != c.hasPTS {
				t.Fatalf("off %d pts %d dts %d has %v, want %d %d %d %v", off, pts, dts, has, c.off, c.pts, c.dts, c.hasPTS)
			}
		})
	}
}

func FuzzParsePESHeader(f *testing.F) {
	for _, c := range pesCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		off, _, _, _, ok := parsePESHeader(b)
		if ok && (off < 6 || off > len(b)) {
			t.Fatalf("payload offset %d outside a %d-byte packet", off, len(b))
		}
	})
}

// testBuilder returns a builder on a fresh hub and a pointer to the frames it writes.
func testBuilder() (*builder, *[]*hub.Frame) {
	var frames []*hub.Frame
	b := newBuilder(hub.New(hub.Options{}), slog.New(slog.DiscardHandler), "rtp/test", hub.Origin{Proto: "rtp"})
	b.tap = func(f *hub.Frame) { frames = append(frames, f) }
	return b, &frames
}

// synthPS makes a small PS of n H.264 frames with a PSM (H.264 + G.711A), no ffmpeg needed.
func synthPS(n int) []byte {
	sps := []byte{0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0xa8}
	pps := []byte{0x68, 0xce, 0x0f, 0xc8}
	var out []byte
	for i := range n {
		pts := int64(90000 + i*3600)
		key := i%25 == 0
		var au []byte
		au = append(au, 0, 0, 0, 1, 9, 0xF0)
		if key {
			au = append(append(au, 0, 0, 0, 1), sps...)
			au = append(append(au, 0, 0, 0, 1), pps...)
			au = append(au, 0, 0, 0, 1, 0x65, 0x88)
		} else {
			au = append(au, 0, 0, 0, 1, 0x41, 0x9a)
		}
		au = append(au, bytes.Repeat([]byte{byte(i) | 1}, 300+i%7)...)
		out = appendPackHeader(out, pts)
		if key {
			out = appendSystemHeader(out)
			out = appendPSM(out, stH264, stG711A)
		}
		out = appendPES(out, 0xE0, pts, au)
		out = appendPES(out, 0xC0, pts, bytes.Repeat([]byte{0xD5}, 320))
	}
	return out
}

func TestPSDemuxerGivesTheSameFramesWhateverTheChunking(t *testing.T) {
	ps := synthPS(60)
	whole, wf := testBuilder()
	newPSDemuxer(whole).feed(ps)
	if len(*wf) != 59+60 {
		t.Fatalf("%d frames from the whole stream, want 119 (59 video, 60 audio)", len(*wf))
	}
	for _, size := range []int{1, 2, 3, 7, 188, 1400} {
		b, frames := testBuilder()
		d := newPSDemuxer(b)
		for p := 0; p < len(ps); p += size {
			d.feed(ps[p:min(p+size, len(ps))])
		}
		if len(*frames) != len(*wf) {
			t.Fatalf("chunks of %d: %d frames, want %d", size, len(*frames), len(*wf))
		}
		for i, f := range *frames {
			g := (*wf)[i]
			if f.Track != g.Track || f.Key != g.Key || f.PTS != g.PTS || len(f.AU) != len(g.AU) {
				t.Fatalf("chunks of %d: frame %d differs", size, i)
			}
			for j := range f.AU {
				if !bytes.Equal(f.AU[j], g.AU[j]) {
					t.Fatalf("chunks of %d: frame %d NAL %d differs", size, i, j)
				}
			}
		}
		if d.garbage != 0 {
			t.Fatalf("chunks of %d: %d garbage bytes in a clean stream", size, d.garbage)
		}
	}
}

var psGarbageCases = []struct {
	name string
	in   []byte
}{
	{"empty", nil},
	{"random", bytes.Repeat([]byte{0x12, 0x00, 0x00, 0x01, 0x47}, 100)},
	{"truncated pack header", []byte{0, 0, 1, 0xBA, 0x44, 0}},
	{"bad pack marker", []byte{0, 0, 1, 0xBA, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
	{"PES longer than the data", []byte{0, 0, 1, 0xE0, 0xFF, 0xFF, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1}},
	{"PSM with lengths past its end", []byte{0, 0, 1, 0xBC, 0, 8, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1b, 0xE0}},
	{"PSM entries past its end", []byte{0, 0, 1, 0xBC, 0, 10, 0xE0, 0xFF, 0, 0, 0, 8, 0x1b, 0xE0, 0xFF, 0xFF}},
	{"unbounded video PES", append([]byte{0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1, 0, 0, 0, 1, 0x67}, make([]byte, 64)...)},
	{"ES start codes outside a PES", []byte{0, 0, 1, 0x09, 0, 0, 1, 0x67, 0, 0, 1, 0x00}},
	{"PES with a header length past it", []byte{0, 0, 1, 0xC0, 0, 3, 0x80, 0x80, 0xFF}},
	{"clean stream then junk", append(synthPS(3), bytes.Repeat([]byte{0, 0, 1}, 50)...)},
	{"ADTS garbage", append([]byte{0, 0, 1, 0xC0, 0, 20, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1}, 0xFF, 0xF1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0)},
}

func TestPSDemuxerSurvivesMalformedInput(t *testing.T) {
	for _, c := range psGarbageCases {
		t.Run(c.name, func(t *testing.T) {
			b, _ := testBuilder()
			d := newPSDemuxer(b)
			d.feed(c.in)
			d.reset()
			d.feed(c.in)
			d.feed(synthPS(150)) // and it still demuxes a clean stream after (past a lying 64 KB PES length)
			if len(b.streams) == 0 || b.pub == nil {
				t.Fatal("a clean stream after garbage was not published")
			}
		})
	}
}

func FuzzPSDemuxer(f *testing.F) {
	for _, c := range psGarbageCases {
		f.Add(c.in, uint8(7))
	}
	f.Add(synthPS(3), uint8(0))
	f.Add(synthPS(3), uint8(100))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		b, _ := testBuilder()
		d := newPSDemuxer(b)
		size := int(chunk) + 1
		for p := 0; p < len(data); p += size {
			d.feed(data[p:min(p+size, len(data))])
			if chunk%5 == 0 {
				d.reset()
			}
		}
		if len(d.buf) > psMaxBuffered {
			t.Fatalf("buffer grew to %d", len(d.buf))
		}
		b.close()
	})
}

func TestGuessCodecAndClassifyNALU(t *testing.T) {
	for _, c := range []struct {
		id   uint8
		p    []byte
		want esCodec
	}{
		{0xE0, []byte{0, 0, 0, 1, 0x67, 0x42}, esH264},
		{0xE0, []byte{0, 0, 1, 0x09, 0xF0}, esH264},
		{0xE2, []byte{0, 0, 0, 1, 0x40, 0x01, 0x0c}, esH265},
		{0xE0, []byte{0, 0, 0, 1, 0x80, 0x01}, esUnknown},
		{0xE0, []byte{1, 2, 3}, esUnknown},
		{0xC0, []byte{0xFF, 0xF1, 0x50}, esAAC},
		{0xC0, []byte{0xFF, 0xFB, 0x90}, esUnknown}, // MPEG-1 layer 3
		{0xBD, []byte{0xFF, 0xF1}, esUnknown},
	} {
		if got := guessCodec(c.id, c.p); got != c.want {
			t.Errorf("guessCodec(%x, % x) = %v, want %v", c.id, c.p, got, c.want)
		}
	}
	for _, c := range []struct {
		codec                         esCodec
		n                             []byte
		vcl, first, boundary, dropped bool
	}{
		{esH264, []byte{0x65, 0x88}, true, true, false, false},
		{esH264, []byte{0x41, 0x40}, true, false, false, false}, // first_mb_in_slice != 0
		{esH264, []byte{0x67, 0x42}, false, false, true, false},
		{esH264, []byte{0x09, 0xF0}, false, false, true, true},
		{esH265, []byte{0x26, 0x01, 0xAF}, true, true, false, false},
		{esH265, []byte{0x02, 0x01, 0x40}, true, false, false, false},
		{esH265, []byte{0x40, 0x01, 0x0c}, false, false, true, false},
		{esH265, []byte{0x46, 0x01, 0x50}, false, false, true, true},
	} {
		vcl, first, boundary, dropped := classifyNALU(c.codec, c.n)
		if vcl != c.vcl || first != c.first || boundary != c.boundary || dropped != c.dropped {
			t.Errorf("classifyNALU(%v, % x) = %v %v %v %v", c.codec, c.n, vcl, first, boundary, dropped)
		}
	}
}

func TestUnwrapFollowsThe33BitClockAcrossItsWrap(t *testing.T) {
	var u unwrap
	in := []int64{clock33 - 3600, clock33 - 1, 0, 3599, 3600 * 3, 3600 * 2}
	want := []int64{clock33 - 3600, clock33 - 1, clock33, clock33 + 3599, clock33 + 3600*3, clock33 + 3600*2}
	for i, v := range in {
		if got := u.do(v); got != want[i] {
			t.Fatalf("step %d: %d, want %d", i, got, want[i])
		}
	}
}

type delivered struct {
	seqs []uint16
	lost []bool
}

func TestReorderer(t *testing.T) {
	t0 := time.Unix(0, 0)
	for _, c := range []struct {
		name     string
		in       []uint16
		at       []time.Duration // arrival offsets; nil = all at t0
		want     []uint16
		wantLost uint64
		wantLate uint64
	}{
		{"in order", []uint16{1, 2, 3, 4}, nil, []uint16{1, 2, 3, 4}, 0, 0},
		{"swap", []uint16{1, 3, 2, 4}, nil, []uint16{1, 2, 3, 4}, 0, 0},
		{"wrap", []uint16{65534, 0, 65535, 1}, nil, []uint16{65534, 65535, 0, 1}, 0, 0},
		{"duplicate", []uint16{1, 2, 2, 3}, nil, []uint16{1, 2, 3}, 0, 1},
		{"late after its gap was given up", append(append([]uint16{1}, seqRange(3, 40)...), 2), nil,
			append([]uint16{1}, seqRange(3, 40)...), 1, 1},
		{"gap given up after the delay", []uint16{1, 3, 4, 5}, []time.Duration{0, 0, 50 * time.Millisecond, 150 * time.Millisecond},
			[]uint16{1, 3, 4, 5}, 1, 0},
		{"sender restart", []uint16{100, 101, 40000, 40001}, nil, []uint16{100, 101, 40000, 40001}, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r reorderer
			var got delivered
			for i, s := range c.in {
				now := t0
				if c.at != nil {
					now = t0.Add(c.at[i])
				}
				r.push(s, []byte{byte(s)}, 0, false, now, func(p []byte, _ uint32, _, lost bool) {
					got.lost = append(got.lost, lost)
					got.seqs = append(got.seqs, uint16(len(got.seqs)))
					_ = p
				})
				_ = i
			}
			r.flushAll(func(p []byte, _ uint32, _, lost bool) { got.seqs = append(got.seqs, uint16(len(got.seqs))) })
			if len(got.seqs) != len(c.want) {
				t.Fatalf("delivered %d packets, want %d", len(got.seqs), len(c.want))
			}
			if r.lost != c.wantLost || r.late != c.wantLate {
				t.Fatalf("lost %d late %d, want %d %d", r.lost, r.late, c.wantLost, c.wantLate)
			}
		})
	}
}

// The payload order matters, not just the count.
func TestReordererDeliversInSequenceOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var in []uint16
	for i := range 2000 {
		in = append(in, uint16(60000+i))
	}
	for i := 0; i+8 < len(in); i += 8 { // shuffle within blocks of 8, after the first
		if i == 0 {
			continue
		}
		rng.Shuffle(8, func(a, b int) { in[i+a], in[i+b] = in[i+b], in[i+a] })
	}
	var r reorderer
	var out []uint16
	for _, s := range in {
		r.push(s, []byte{byte(s >> 8), byte(s)}, 0, false, time.Unix(0, 0), func(p []byte, _ uint32, _, _ bool) {
			out = append(out, uint16(p[0])<<8|uint16(p[1]))
		})
	}
	r.flushAll(func(p []byte, _ uint32, _, _ bool) { out = append(out, uint16(p[0])<<8|uint16(p[1])) })
	if len(out) != len(in) || r.lost != 0 {
		t.Fatalf("%d out of %d, lost %d", len(out), len(in), r.lost)
	}
	for i := range out {
		if out[i] != uint16(60000+i) {
			t.Fatalf("position %d: seq %d", i, out[i])
		}
	}
}

func seqRange(a, b uint16) []uint16 {
	var s []uint16
	for i := a; i <= b; i++ {
		s = append(s, i)
	}
	return s
}

func BenchmarkPSDemuxer(b *testing.B) {
	ps := synthPS(250)
	b.ReportAllocs()
	b.SetBytes(int64(len(ps)))
	for b.Loop() {
		bl, _ := testBuilder()
		bl.tap = nil
		d := newPSDemuxer(bl)
		for p := 0; p < len(ps); p += 1400 {
			d.feed(ps[p:min(p+1400, len(ps))])
		}
		bl.close()
	}
}

func BenchmarkReordererInOrder(b *testing.B) {
	var r reorderer
	p := make([]byte, 1400)
	now := time.Now()
	deliver := func([]byte, uint32, bool, bool) {}
	b.ReportAllocs()
	seq := uint16(0)
	for b.Loop() {
		r.push(seq, p, 0, false, now, deliver)
		seq++
	}
}

// BenchmarkServerPacketPS is the per-packet cost of the whole path for PS:
// RTP parse, routing by SSRC, reordering, PS demux, publish to the hub.
func BenchmarkServerPacketPS(b *testing.B) {
	ps := synthPS(250)
	var units []psUnit
	for p := 0; p < len(ps); p += 1400 {
		units = append(units, psUnit{data: ps[p:min(p+1400, len(ps))]})
	}
	pkts := rtpPackets(units, 0xB0B, 96, 1400)
	h := hub.New(hub.Options{})
	s := &Server{Hub: h, Log: slog.New(slog.DiscardHandler), TimeoutSec: 60}
	s.init()
	b.ReportAllocs()
	b.SetBytes(1400)
	seq := uint16(0)
	i := 0
	for b.Loop() {
		p := pkts[i]
		p[2], p[3] = byte(seq>>8), byte(seq) // keep the sequence going across loops of the file
		s.packet(p, "127.0.0.1:1", "udp", 1, nil, nil)
		seq++
		if i++; i == len(pkts) {
			i = 0
		}
	}
	b.StopTimer()
	s.Shutdown(context.Background())
	h.Close()
}

// TestPSVideoFrameIsPublishedWhenTheNextBegins: without access unit
// delimiters, a frame is complete when the next frame's first slice (or a
// parameter set) begins; the splitter publishes it then, not when that next
// NAL unit ends (the start of the frame after it: 40 ms later at 25 fps).
func TestPSVideoFrameIsPublishedWhenTheNextBegins(t *testing.T) {
	sps := []byte{0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0xa8}
	pps := []byte{0x68, 0xce, 0x0f, 0xc8}
	frame := func(i int) []byte {
		var au []byte
		if i == 0 {
			au = append(append(au, 0, 0, 0, 1), sps...)
			au = append(append(au, 0, 0, 0, 1), pps...)
			au = append(au, 0, 0, 0, 1, 0x65, 0x88)
		} else {
			au = append(au, 0, 0, 0, 1, 0x41, 0x9a)
		}
		return append(au, bytes.Repeat([]byte{0x55}, 200)...)
	}
	b, frames := testBuilder()
	d := newPSDemuxer(b)
	var ps []byte
	ps = appendPackHeader(ps, 90000)
	ps = appendSystemHeader(ps)
	ps = appendPSM(ps, stH264, stG711A)
	ps = appendPES(ps, 0xE0, 90000, frame(0))
	d.feed(ps)
	if len(*frames) != 0 {
		t.Fatalf("%d frames before the second began; want 0 (the first may go on)", len(*frames))
	}
	for i := 1; i <= 3; i++ {
		d.feed(appendPES(appendPackHeader(nil, int64(90000+i*3600)), 0xE0, int64(90000+i*3600), frame(i)))
		if len(*frames) != i {
			t.Fatalf("%d frames published once frame %d began; want %d", len(*frames), i, i)
		}
	}
	if !(*frames)[0].Key || len((*frames)[0].AU) != 3 || (*frames)[1].Key {
		t.Fatalf("first frame key %v with %d NAL units, second key %v; want a keyframe of SPS, PPS, IDR, then not",
			(*frames)[0].Key, len((*frames)[0].AU), (*frames)[1].Key)
	}
}
