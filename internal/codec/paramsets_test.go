package codec

import "testing"

func TestParamSetsTakeInBandSets(t *testing.T) {
	for _, c := range []struct {
		name     string
		hevc     bool
		au       [][]byte
		complete bool
		sps      byte // first byte of the SPS kept, 0 = none
	}{
		{"h264 SPS and PPS before an IDR", false, [][]byte{{0x67, 1}, {0x68, 2}, {0x65, 3}}, true, 0x67},
		{"h264 IDR alone", false, [][]byte{{0x65, 3}}, false, 0},
		{"h264 empty NAL units skipped", false, [][]byte{{}, {0x67, 1}}, false, 0x67},
		{"h265 VPS, SPS, PPS before an IDR", true, [][]byte{{0x40, 1}, {0x42, 1}, {0x44, 1}, {0x26, 1}}, true, 0x42},
		{"h265 without VPS", true, [][]byte{{0x42, 1}, {0x44, 1}}, false, 0x42},
		{"h265 one-byte NAL unit skipped", true, [][]byte{{0x42}}, false, 0},
	} {
		var p ParamSets
		p.Take(c.au, c.hevc)
		var first byte
		if len(p.SPS) > 0 {
			first = p.SPS[0]
		}
		if p.Complete(c.hevc) != c.complete || first != c.sps {
			t.Errorf("%s: complete %v, SPS starts %#x; want %v, %#x", c.name, p.Complete(c.hevc), first, c.complete, c.sps)
		}
	}
}
