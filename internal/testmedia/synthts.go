package testmedia

import (
	"bytes"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	mtscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

// Parameter sets of a 320x240 libx264 stream.
var (
	SynthSPS = []byte{0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfa, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60}
	SynthPPS = []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}
)

// SynthTS is an MPEG-TS as an encoder joined mid-stream sends it: video
// (25 fps, a keyframe with SPS/PPS every gop frames, starting leadP
// P-frames before the first) and AAC (48 kHz), or audio only.
func SynthTS(t testing.TB, video bool, frames, gop, leadP int) []byte {
	t.Helper()
	var buf bytes.Buffer
	vt := &mpegts.Track{Codec: &mtscodecs.H264{}}
	at := &mpegts.Track{Codec: &mtscodecs.MPEG4Audio{Config: mpeg4audio.Config{Type: 2, SampleRate: 48000, ChannelCount: 2}}}
	tracks := []*mpegts.Track{at}
	if video {
		tracks = []*mpegts.Track{vt, at}
	}
	w := &mpegts.Writer{W: &buf, Tracks: tracks}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	const base = 900000 // an encoder's clock never starts at 0
	payload := bytes.Repeat([]byte{0xaa}, 2000)
	for i := 0; i < frames; i++ {
		pts := int64(base + i*3600)
		if video {
			au := [][]byte{append([]byte{0x41}, payload...)}
			if i >= leadP && (i-leadP)%gop == 0 {
				au = [][]byte{SynthSPS, SynthPPS, append([]byte{0x65}, payload...)}
			}
			if err := w.WriteH264(vt, pts, pts, au); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WriteMPEG4Audio(at, pts, [][]byte{payload[:200]}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}
