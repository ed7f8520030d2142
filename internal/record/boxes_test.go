package record

import (
	"bytes"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	mp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80}
	testPPS = []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
)

// testInit is an init segment with H.264 (track 1, 90 kHz) and AAC (track
// 2, 48 kHz), as Berth's muxer writes it.
func testInit(t testing.TB) []byte {
	in := mp4.Init{Tracks: []*mp4.InitTrack{
		{ID: 1, TimeScale: 90000, Codec: &codecs.H264{SPS: testSPS, PPS: testPPS}},
		{ID: 2, TimeScale: 48000, Codec: &codecs.MPEG4Audio{Config: *mpeg4AudioConfig()}},
	}}
	var b seekablebuffer.Buffer
	if err := in.Marshal(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// testFragment is one moof+mdat with a video sample at video ticks and an
// audio one at audio ticks.
func testFragment(t testing.TB, seq uint32, video, audio uint64) []byte {
	p := mp4.Part{SequenceNumber: seq, Tracks: []*mp4.PartTrack{
		{ID: 1, BaseTime: video, Samples: []*mp4.Sample{{Duration: 3600, Payload: []byte{0, 0, 0, 2, 0x65, 0x88}}}},
		{ID: 2, BaseTime: audio, Samples: []*mp4.Sample{{Duration: 1024, Payload: []byte{1, 2, 3}}}},
	}}
	var b seekablebuffer.Buffer
	if err := p.Marshal(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestTimescalesOfTheInitSegment(t *testing.T) {
	got := timescales(testInit(t))
	if got[1] != 90000 || got[2] != 48000 || len(got) != 2 {
		t.Errorf("timescales: %v, want 1:90000 2:48000", got)
	}
}

// TestRebaseStartsAFileAtZero: the earliest track of a file's first
// fragment starts at 0 and the other keeps its distance from it, in its
// own timescale.
func TestRebaseStartsAFileAtZero(t *testing.T) {
	init := testInit(t)
	scales := timescales(init)
	tests := []struct {
		name                 string
		video, audio         uint64 // first fragment's tfdt
		wantVideo, wantAudio uint64
	}{
		{"video first", 90000 * 10, 48000*10 + 480, 0, 480},
		{"audio first", 90000*10 + 900, 48000 * 10, 900, 0},
		{"at zero", 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := testFragment(t, 1, tc.video, tc.audio)
			offs := fileOffsets(first, scales)
			out := rebase(nil, first, offs, new([]tfdt))
			if len(out) != len(first) {
				t.Fatalf("rebase changed the length: %d -> %d", len(first), len(out))
			}
			got := map[uint32]uint64{}
			for _, d := range tfdts(nil, out) {
				got[d.track] = d.get(out)
			}
			if got[1] != tc.wantVideo || got[2] != tc.wantAudio {
				t.Errorf("tfdt after rebase: video %d audio %d, want %d %d", got[1], got[2], tc.wantVideo, tc.wantAudio)
			}
			if !bytes.Equal(out[len(out)-3:], first[len(first)-3:]) {
				t.Error("rebase changed the samples")
			}
		})
	}
}

// TestCompleteLengthCutsAfterTheLastWholeFragment: a file cut at any byte
// keeps exactly the fragments that are whole.
func TestCompleteLengthCutsAfterTheLastWholeFragment(t *testing.T) {
	init := testInit(t)
	file := append([]byte{}, init...)
	ends := []int{len(init)}
	for i := 0; i < 3; i++ {
		file = append(file, testFragment(t, uint32(i+1), uint64(i*3600), uint64(i*1024))...)
		ends = append(ends, len(file))
	}
	for cut := len(init); cut <= len(file); cut++ {
		length, frags, err := completeLength(bytes.NewReader(file[:cut]), int64(cut))
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		want := 0
		for i, e := range ends {
			if e <= cut {
				want = i
			}
		}
		if frags != want || length != int64(ends[want]) {
			t.Fatalf("cut at %d: %d bytes, %d fragments; want %d, %d", cut, length, frags, ends[want], want)
		}
	}
	if _, _, err := completeLength(bytes.NewReader(init[:20]), 20); err == nil {
		t.Error("a file without a whole moov was taken for a recording")
	}
}

func FuzzCompleteLength(f *testing.F) {
	init := testInit(f)
	f.Add(append(init, testFragment(f, 1, 0, 0)...))
	f.Add(init[:30])
	f.Add([]byte{0, 0, 0, 1, 'f', 't', 'y', 'p', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		length, frags, err := completeLength(bytes.NewReader(b), int64(len(b)))
		if err == nil && (length > int64(len(b)) || length < 0 || frags < 0) {
			t.Fatalf("length %d, %d fragments of %d bytes", length, frags, len(b))
		}
	})
}

func FuzzRebase(f *testing.F) {
	init := testInit(f)
	f.Add(testFragment(f, 1, 90000, 48000), init)
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'f'}, init[:40])
	f.Fuzz(func(t *testing.T, frag, init []byte) {
		scales := timescales(init)
		out := rebase(nil, frag, fileOffsets(frag, scales), new([]tfdt))
		if len(out) != len(frag) {
			t.Fatalf("rebase changed the length: %d -> %d", len(frag), len(out))
		}
	})
}

func mpeg4AudioConfig() *mpeg4audio.AudioSpecificConfig {
	return &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2}
}
