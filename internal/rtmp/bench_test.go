package rtmp

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/hub"
)

func benchFrame(i int) *hub.Frame {
	nal := make([]byte, 6000) // a 1.2 Mb/s 25 fps stream's average frame
	nal[0] = 0x41
	return &hub.Frame{Track: 0, Key: i%25 == 0, AU: [][]byte{nal}, DTS: time.Duration(i) * 40 * time.Millisecond,
		PTS: time.Duration(i) * 40 * time.Millisecond}
}

// BenchmarkEncodeFrame compares building a frame's RTMP chunks once and
// sharing them (what readers do) with each reader building its own, for
// 100 readers; ns/op and allocs/op are per frame for all readers.
func BenchmarkEncodeFrame(b *testing.B) {
	const readers = 100
	build := chunkBuilders[flv.TagAVC]
	b.Run("shared", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f := benchFrame(i)
			for r := 0; r < readers; r++ {
				f.Encoded(flv.EncTag, flv.TagBuilders[flv.TagAVC])
				f.Encoded(encRTMP, build)
			}
		}
	})
	b.Run("per-reader", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f := benchFrame(i)
			for r := 0; r < readers; r++ {
				chunksOfTag(flv.TagBuilders[flv.TagAVC](f))
			}
		}
	})
}

// BenchmarkReaderPath runs the RTMP play loop of R readers over a real hub,
// writing to a socket pair whose far end discards; allocs/op is per frame
// for all readers together.
func BenchmarkReaderPath(b *testing.B) {
	for _, readers := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("readers=%d", readers), func(b *testing.B) {
			h := hub.New(hub.Options{RingSize: 1 << 14})
			pub, err := h.Publish("b/s", hub.Origin{Proto: "bench"}, hub.KindAU,
				[]*hub.Track{codec.H264Track(testSPS, testPPS)}, nil)
			if err != nil {
				b.Fatal(err)
			}
			pub.Write(benchFrame(0))
			s := &Server{Hub: h}
			var sessions []*playSession
			for r := 0; r < readers; r++ {
				a, z := net.Pipe()
				go io.Copy(io.Discard, z)
				c := newConn(s, a)
				p, err := startPlay(c, "b/s", streamID)
				if err != nil {
					b.Fatal(err)
				}
				sessions = append(sessions, p)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 1; i <= b.N; i++ {
				pub.Write(benchFrame(i))
			}
			// Wait until every reader has written the last frame.
			for _, p := range sessions {
				for p.sentFrames() < uint64(b.N) {
					time.Sleep(time.Millisecond)
				}
			}
			b.StopTimer()
			pub.Close()
			for _, p := range sessions {
				p.c.close()
				<-p.done
			}
		})
	}
}
