package rtpsend

import (
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

// BenchmarkPackFrame is a sender's work per video frame: the PS pack of a
// 20 KB access unit (a 4 Mb/s stream at 25 fps) cut into RTP packets.
func BenchmarkPackFrame(b *testing.B) {
	for _, framed := range []bool{false, true} {
		name := "udp"
		if framed {
			name = "tcp"
		}
		b.Run(name, func(b *testing.B) {
			tracks := []*hub.Track{codec.H264Track([]byte{0x67, 1, 2}, []byte{0x68, 3})}
			p, _, err := newPSPacker(tracks, false)
			if err != nil {
				b.Fatal(err)
			}
			w := rtpWriter{ssrc: 1, pt: 96, framed: framed}
			f := &hub.Frame{Track: 0, Key: true, AU: [][]byte{{0x65}, make([]byte, 20000)}}
			var pack []byte
			b.ReportAllocs()
			b.SetBytes(20000)
			for i := range b.N {
				f.DTS = time.Duration(i) * 40 * time.Millisecond
				f.PTS = f.DTS
				var ts uint32
				pack, ts, _ = p.pack(pack[:0], f)
				w.packets(pack, ts)
			}
		})
	}
}
