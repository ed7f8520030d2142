package tsdemux

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testmedia"
)

// The synthetic MPEG-TS of testmedia.SynthTS, which tsdemux and srt both test with.
var testSPS, testPPS = testmedia.SynthSPS, testmedia.SynthPPS

func tsFile(t testing.TB, video bool, frames, gop, leadP int) []byte {
	return testmedia.SynthTS(t, video, frames, gop, leadP)
}

// collect runs a Demuxer over ts and returns what it began and wrote.
func collect(ts []byte, stopAfter int) (names []string, frames []*hub.Frame, err error) {
	d := &Demuxer{
		Begin: func(_ []*hub.Track, n []string) error { names = n; return nil },
		Write: func(f *hub.Frame) error {
			frames = append(frames, f)
			if stopAfter > 0 && len(frames) == stopAfter {
				return errStop
			}
			return nil
		},
	}
	return names, frames, d.Run(bytes.NewReader(ts))
}

var errStop = errors.New("the consumer stopped")

func TestDemuxerBeginsAtTheKeyframe(t *testing.T) {
	cases := []struct {
		name      string
		ts        []byte
		stopAfter int
		tracks    string // names Begin got
		minFrames int
		err       error
		errText   string
	}{
		{name: "video joins at the keyframe, audio before it dropped", ts: tsFile(t, true, 60, 25, 7),
			tracks: "H264,AAC", minFrames: 2 * 50, err: io.EOF},
		{name: "audio only begins at once", ts: tsFile(t, false, 30, 25, 0), tracks: "AAC", minFrames: 30, err: io.EOF},
		{name: "a Write error ends Run with it", ts: tsFile(t, true, 60, 25, 0), stopAfter: 3, tracks: "H264,AAC",
			minFrames: 3, err: errStop},
		{name: "not a TS", ts: bytes.Repeat([]byte("not mpeg-ts "), 1000), err: ErrNoProgram},
		// mediacommon keeps what it reads until the PMT (to rewind), up to 1 MB.
		{name: "TS without a PMT is cut off", ts: bytes.Repeat(append([]byte{0x47, 0x1f, 0xff, 0x10}, make([]byte, 184)...), 6<<20/188),
			err: ErrNoProgram},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			names, frames, err := collect(c.ts, c.stopAfter)
			if !errors.Is(err, c.err) {
				t.Fatalf("Run: %v, want %v", err, c.err)
			}
			if got := strings.Join(names, ","); got != c.tracks {
				t.Fatalf("began %q, want %q", got, c.tracks)
			}
			if len(frames) < c.minFrames {
				t.Fatalf("%d frames, want at least %d", len(frames), c.minFrames)
			}
			if c.minFrames == 0 {
				return
			}
			if f := frames[0]; !f.Key || f.Track != 0 || f.DTS != 0 {
				t.Errorf("first frame track %d key %v DTS %v, want a keyframe of track 0 at DTS 0", f.Track, f.Key, f.DTS)
			}
			if c.stopAfter > 0 && len(frames) != c.stopAfter {
				t.Errorf("%d frames written after Write refused at %d", len(frames), c.stopAfter)
			}
		})
	}
}

// A Begin that refuses (the hub's path is taken) ends Run with its error
// and nothing is written.
func TestDemuxerBeginRefused(t *testing.T) {
	refused := errors.New("path taken")
	wrote := 0
	d := &Demuxer{Begin: func([]*hub.Track, []string) error { return refused },
		Write: func(*hub.Frame) error { wrote++; return nil }}
	if err := d.Run(bytes.NewReader(tsFile(t, true, 30, 25, 0))); !errors.Is(err, refused) {
		t.Fatalf("Run: %v, want the refusal", err)
	}
	if wrote != 0 {
		t.Fatalf("%d frames written after Begin refused", wrote)
	}
}

// BenchmarkDemux: TS bytes in, frames out, per second of 25 fps video with AAC.
func BenchmarkDemux(b *testing.B) {
	ts := tsFile(b, true, 250, 25, 0)
	b.SetBytes(int64(len(ts)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d := &Demuxer{Begin: func([]*hub.Track, []string) error { return nil }, Write: func(*hub.Frame) error { return nil }}
		d.Run(bytes.NewReader(ts))
	}
}

// FuzzDemuxer: whatever bytes a peer sends, Run returns an error at the
// input's end (a panic in mediacommon is recovered into one), and every
// frame names a track Begin announced.
func FuzzDemuxer(f *testing.F) {
	f.Add(tsFile(f, true, 8, 4, 1))
	f.Add(tsFile(f, false, 4, 4, 0))
	f.Add([]byte{0x47, 0x40, 0x00, 0x10, 0x00})
	f.Fuzz(func(t *testing.T, ts []byte) {
		n := -1
		d := &Demuxer{
			Begin: func(tr []*hub.Track, _ []string) error { n = len(tr); return nil },
			Write: func(fr *hub.Frame) error {
				if fr.Track < 0 || fr.Track >= n || fr.DTS < 0 {
					t.Fatalf("frame of track %d at %v with %d tracks begun", fr.Track, fr.DTS, n)
				}
				return nil
			},
		}
		if err := d.Run(bytes.NewReader(ts)); err == nil {
			t.Fatal("Run returned nil at the input's end")
		}
	})
}
