package proxy

import (
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/hub"
)

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
	// AVCDecoderConfigurationRecord (ISO 14496-15 5.2.4.1) in a sequence-header tag body.
	avcConfigTag = append(append(append([]byte{0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0, byte(len(testSPS))},
		testSPS...), 1, 0, byte(len(testPPS))), testPPS...)
	aacConfigTag = []byte{0xaf, 0, 0x12, 0x10} // AAC-LC 44.1 kHz stereo
	idrTag       = []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 4, 0x65, 0x88, 0x84, 0x00}
	pTag         = []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 3, 0x41, 0x9a, 0x02}
	aacTag       = []byte{0xaf, 1, 0x21, 0x10, 0x04}
)

func flvTestIn(t testing.TB) (*Proxy, *flvIn, *[]*hub.Track) {
	p := testProxy(t)
	var got []*hub.Track
	in := newFLVIn(p.out, func(tracks []*hub.Track) error {
		got = tracks
		_, err := p.out.begin(hub.KindAU, tracks, nil)
		return err
	})
	return p, in, &got
}

// TestFLVTagsBecomeTracksAndAccessUnits: without onMetaData, the stream
// starts once both sequence headers came; frames before that wait; every
// keyframe carries the parameter sets in band.
func TestFLVTagsBecomeTracksAndAccessUnits(t *testing.T) {
	p, in, tracks := flvTestIn(t)
	for _, tag := range []struct {
		typ  uint8
		ts   uint32
		body []byte
	}{
		{tagVideo, 0, avcConfigTag},
		{tagVideo, 0, idrTag},
		{tagAudio, 0, aacConfigTag},
		{tagAudio, 10, aacTag},
		{tagVideo, 40, pTag},
	} {
		if err := in.tag(tag.typ, tag.ts, tag.body); err != nil {
			t.Fatal(err)
		}
	}
	if len(*tracks) != 2 || (*tracks)[0].Format.Codec() != "H264" || (*tracks)[1].Format.Codec() != "MPEG-4 Audio" {
		t.Fatalf("tracks: %v", *tracks)
	}
	r, err := p.m.Hub.Get("pull/t").Subscribe(hub.KindAU, hub.Origin{Proto: "test"})
	if err != nil {
		t.Fatal(err)
	}
	frames := make([]*hub.Frame, 8)
	n, err := r.Read(frames)
	if err != nil || n != 3 {
		t.Fatalf("read %d frames, %v; want 3", n, err)
	}
	key := frames[0]
	if !key.Key || key.Track != 0 || len(key.AU) != 3 || key.AU[0][0] != 0x67 || key.AU[1][0] != 0x68 || key.AU[2][0] != 0x65 {
		t.Errorf("the keyframe: key %v track %d AU %x", key.Key, key.Track, key.AU)
	}
	if a := frames[1]; a.Track != 1 || a.DTS != 10*time.Millisecond {
		t.Errorf("the audio frame: track %d DTS %s", a.Track, a.DTS)
	}
}

// FuzzFLVIn: any tag bodies, of any type, never panic the assembler.
func FuzzFLVIn(f *testing.F) {
	for _, b := range [][]byte{avcConfigTag, aacConfigTag, idrTag, pTag, aacTag, {0x1c, 0, 0, 0, 0}, {0x9c}, {}} {
		f.Add(uint8(tagVideo), b)
		f.Add(uint8(tagAudio), b)
	}
	f.Add(uint8(tagScript), []byte{2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 3, 0, 0, 9})
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		_, in, _ := flvTestIn(t)
		in.tag(tagVideo, 0, avcConfigTag)
		in.tag(typ, 0, body)
		in.tag(tagAudio, 0, aacConfigTag)
		in.tag(typ, 40, body)
		in.tag(tagVideo, 80, idrTag)
	})
}
