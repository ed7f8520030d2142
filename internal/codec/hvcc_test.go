package codec

import (
	"bytes"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// libx265 320x240 Main: its SPS, with emulation-prevention bytes inside
// the profile_tier_level (00 00 03 00 90 00 00 03 00 00 03 00).
var x265SPS = []byte{0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f,
	0x16, 0x59, 0x59, 0x52, 0x93, 0x0b, 0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10}

func hevcInit(t testing.TB, sps []byte) []byte {
	in := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 90000, Codec: &codecs.H265{
		VPS: []byte{0x40, 0x01, 0x0c, 0x01}, SPS: sps, PPS: []byte{0x44, 0x01, 0xc1, 0x72}}}}}
	var buf seekablebuffer.Buffer
	if err := in.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFixHvcC(t *testing.T) {
	init := hevcInit(t, x265SPS)
	i := bytes.Index(init, []byte("hvcC"))
	if i < 0 {
		t.Fatal("no hvcC in the init segment")
	}
	flags := init[i+4+6 : i+4+12]
	if n := FixHvcC(init); n != 1 {
		t.Errorf("FixHvcC changed %d records, want 1 (mediacommon wrote % x)", n, flags)
	}
	if want := []byte{0x90, 0, 0, 0, 0, 0}; !bytes.Equal(flags, want) {
		t.Errorf("constraint flags % x, want % x (progressive_source, frame_only)", flags, want)
	}
	if n := FixHvcC(init); n != 0 {
		t.Errorf("a second FixHvcC changed %d records, want 0", n)
	}
	if n := FixHvcC([]byte("no box here, hvcC at the start")); n != 0 {
		t.Errorf("changed %d records of a text", n)
	}
}

func FuzzFixHvcC(f *testing.F) {
	f.Add(hevcInit(f, x265SPS))
	f.Add([]byte{0, 0, 0, 9, 'h', 'v', 'c', 'C', 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		FixHvcC(b) // never panics, never writes outside a box
	})
}
