package rtmp

import (
	"testing"

	"github.com/berthmedia/berth/internal/flv/amf0"
)

// Tiny but valid parameter sets of a 320x240 H.264 stream (ffmpeg testsrc,
// libx264 baseline) and a 48 kHz stereo AAC-LC AudioSpecificConfig.
var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80}
	testPPS = []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
	testASC = []byte{0x11, 0x90}
)

func avcSeqHeader() []byte {
	b := []byte{0x17, 0, 0, 0, 0, 1, testSPS[1], testSPS[2], testSPS[3], 0xff, 0xe1, 0, byte(len(testSPS))}
	b = append(b, testSPS...)
	b = append(b, 1, 0, byte(len(testPPS)))
	return append(b, testPPS...)
}

// sendH264AAC sends metadata, sequence headers and one keyframe and one
// audio frame at ts, as a publisher would.
func sendH264AAC(t testing.TB, c *Client, ts uint32) {
	t.Helper()
	meta := amf0.Encode("@setDataFrame", "onMetaData", amf0.ECMAArray{{Key: "videocodecid", Value: 7.0}, {Key: "audiocodecid", Value: 10.0}})
	for _, m := range []struct {
		typ  uint8
		body []byte
	}{
		{msgDataAMF0, meta},
		{msgVideo, avcSeqHeader()},
		{msgAudio, append([]byte{0xaf, 0}, testASC...)},
		{msgVideo, []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 3, 0x65, 0x88, 0x84}},
		{msgAudio, []byte{0xaf, 1, 0x21, 0x10, 0x04}},
	} {
		if err := c.SendMedia(m.typ, ts, m.body); err != nil {
			t.Fatal(err)
		}
	}
}
