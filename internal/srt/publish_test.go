package srt

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/testmedia"
)

// The synthetic MPEG-TS of testmedia.SynthTS, which tsdemux and srt both test with.
var testSPS, testPPS = testmedia.SynthSPS, testmedia.SynthPPS

func tsFile(t testing.TB, video bool, frames, gop, leadP int) []byte {
	return testmedia.SynthTS(t, video, frames, gop, leadP)
}
func TestPublisherTurnsTSIntoHubFrames(t *testing.T) {
	cases := []struct {
		name      string
		ts        []byte
		tracks    []string // track formats, in order
		firstKey  bool     // the first frame is a keyframe of track 0 at DTS 0
		wantFrame int      // frames written, at least
		err       string   // what run returns
	}{
		{name: "video joins at the keyframe, audio before it dropped", ts: tsFile(t, true, 60, 25, 7),
			tracks: []string{"H264", "MPEG-4 Audio"}, firstKey: true, wantFrame: 2 * 50, err: "EOF"},
		{name: "audio only starts at once", ts: tsFile(t, false, 30, 25, 0),
			tracks: []string{"MPEG-4 Audio"}, firstKey: true, wantFrame: 30, err: "EOF"},
		{name: "not a TS", ts: bytes.Repeat([]byte("not mpeg-ts "), 1000), err: "no MPEG-TS program table"},
		// mediacommon keeps what it reads until the PMT (to rewind), up to 1 MB.
		{name: "TS without a PMT is cut off", ts: bytes.Repeat(append([]byte{0x47, 0x1f, 0xff, 0x10}, make([]byte, 184)...), 6<<20/188),
			err: "no MPEG-TS program table"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := hub.New(hub.Options{Log: logging.Discard()})
			defer h.Close()
			p := &tsPublisher{hub: h, log: logging.Discard(), path: "live/s", origin: hub.Origin{Proto: "srt"}}
			var rd *hub.Reader
			var st *hub.Stream
			p.onPublished = func(pub *hub.Publisher) {
				st = pub.Stream()
				var err error
				if rd, err = h.Subscribe("live/s", hub.KindAU, hub.Origin{Proto: "test"}); err != nil {
					t.Fatal(err)
				}
			}
			err := p.run(bytes.NewReader(c.ts))
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("run: %v, want an error containing %q", err, c.err)
			}
			if c.tracks == nil {
				if st != nil {
					t.Fatal("published from input that is not TS")
				}
				return
			}
			if st == nil {
				t.Fatal("never published")
			}
			var got []string
			for _, tr := range st.Tracks {
				got = append(got, tr.Format.Codec())
			}
			if strings.Join(got, ",") != strings.Join(c.tracks, ",") {
				t.Errorf("tracks %v, want %v", got, c.tracks)
			}
			frames := make([]*hub.Frame, 512)
			n, _ := rd.Read(frames)
			if n < c.wantFrame {
				t.Errorf("%d frames, want at least %d", n, c.wantFrame)
			}
			if f := frames[0]; c.firstKey && (f == nil || !f.Key || f.Track != 0 || f.DTS != 0) {
				t.Errorf("first frame %+v, want a keyframe of track 0 at DTS 0", f)
			}
			for _, f := range frames[:n] {
				if f.DTS < 0 || f.DTS > 3*time.Second {
					t.Errorf("frame DTS %v out of the stream's span", f.DTS)
				}
			}
			if _, err := rd.Read(frames); !errors.Is(err, hub.ErrEnded) {
				t.Errorf("after the input ended: %v, want hub.ErrEnded", err)
			}
		})
	}
}

// BenchmarkPublisherDemux: TS bytes in, hub frames out (mediacommon's
// demuxer and the publisher), per second of 25 fps video with AAC.
func BenchmarkPublisherDemux(b *testing.B) {
	ts := tsFile(b, true, 250, 25, 0)
	b.SetBytes(int64(len(ts)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h := hub.New(hub.Options{Log: logging.Discard()})
		p := &tsPublisher{hub: h, log: logging.Discard(), path: "live/s", origin: hub.Origin{Proto: "srt"}}
		p.run(bytes.NewReader(ts))
		h.Close()
	}
}

// FuzzPublisher: whatever bytes a publisher sends, the demuxer and the
// publisher return (a panic in mediacommon is recovered into an error and
// would still end only this stream) and leave the path free.
func FuzzPublisher(f *testing.F) {
	f.Add(tsFile(f, true, 8, 4, 1))
	f.Add(tsFile(f, false, 4, 4, 0))
	f.Add([]byte{0x47, 0x40, 0x00, 0x10, 0x00})
	f.Fuzz(func(t *testing.T, ts []byte) {
		h := hub.New(hub.Options{Log: logging.Discard()})
		defer h.Close()
		p := &tsPublisher{hub: h, log: logging.Discard(), path: "live/s", origin: hub.Origin{Proto: "srt"}}
		if err := p.run(bytes.NewReader(ts)); err == nil {
			t.Fatal("run returned nil at the input's end")
		}
		if h.Get("live/s") != nil {
			t.Fatal("the path is still published after the publisher ended")
		}
	})
}
