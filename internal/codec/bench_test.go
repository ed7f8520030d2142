package codec

import (
	"log/slog"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/hub"
)

// BenchmarkAUToRTP measures packetizing one access unit (the cost an RTMP
// publisher read over RTSP pays once per frame, whatever the reader count).
func BenchmarkAUToRTP(b *testing.B) {
	for _, codec := range []string{"h264", "aac"} {
		b.Run(codec, func(b *testing.B) {
			m := testMedia(b, codec)
			s := &hub.Stream{Path: "bench", Tracks: []*hub.Track{trackFor(codec, m)}}
			p := newPacketizer(s, slog.New(slog.DiscardHandler))
			frames := make([]*hub.Frame, len(m.aus))
			var bytes int
			for i, au := range m.aus {
				frames[i] = &hub.Frame{Key: au.key, AU: au.au, PTS: au.pts, DTS: au.dts}
				for _, n := range au.au {
					bytes += len(n)
				}
			}
			b.SetBytes(int64(bytes / len(m.aus)))
			b.ReportAllocs()
			b.ResetTimer()
			var out []*hub.Frame
			pkts := 0
			for i := 0; b.Loop(); i++ {
				f := frames[i%len(frames)]
				f.PTS += time.Millisecond // keep timestamps moving
				out = p.push(f, out[:0])
				pkts += len(out)
			}
			b.ReportMetric(float64(pkts)/float64(b.N), "pkts/frame")
		})
	}
}

// BenchmarkAUToRTPLargeKeyframe packetizes a 50 KB keyframe (a 720p IDR
// is about that size): FU-A fragmentation into 35 packets.
func BenchmarkAUToRTPLargeKeyframe(b *testing.B) {
	s := &hub.Stream{Path: "bench", Tracks: []*hub.Track{H264Track(testSPS, testPPS)}}
	p := newPacketizer(s, slog.New(slog.DiscardHandler))
	idr := make([]byte, 50_000)
	idr[0] = 0x65
	f := &hub.Frame{Key: true, AU: [][]byte{testSPS, testPPS, idr}}
	b.SetBytes(int64(len(idr)))
	b.ReportAllocs()
	var out []*hub.Frame
	pkts := 0
	for b.Loop() {
		f.PTS += 40 * time.Millisecond
		out = p.push(f, out[:0])
		pkts += len(out)
	}
	b.ReportMetric(float64(pkts)/float64(b.N), "pkts/frame")
}

// BenchmarkRTPToAU measures depacketizing one access unit's packets.
func BenchmarkRTPToAU(b *testing.B) {
	for _, codec := range []string{"h264", "aac"} {
		b.Run(codec, func(b *testing.B) {
			m := testMedia(b, codec)
			s := &hub.Stream{Path: "bench", Tracks: []*hub.Track{trackFor(codec, m)}, Since: time.Now()}
			p := newPacketizer(s, slog.New(slog.DiscardHandler))
			// Two passes of the stream, so the loop replays a continuous one.
			var pkts []*hub.Frame
			var dur time.Duration
			for pass := range 2 {
				for _, au := range m.aus {
					pkts = p.push(&hub.Frame{Key: au.key, AU: au.au, PTS: time.Duration(pass)*2*time.Second + au.pts}, pkts)
				}
				dur += 2 * time.Second
			}
			recv := time.Now()
			for _, f := range pkts {
				f.Recv = recv
			}
			d := newDepacketizer(s, slog.New(slog.DiscardHandler))
			b.ReportAllocs()
			b.ResetTimer()
			var out []*hub.Frame
			aus := 0
			for i := 0; b.Loop(); i++ {
				out = d.push(pkts[i%len(pkts)], out[:0])
				aus += len(out)
			}
			if aus > 0 {
				b.ReportMetric(float64(b.N)/float64(aus), "pkts/AU")
			}
		})
	}
}
