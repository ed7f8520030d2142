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

func TestWithParams(t *testing.T) {
	sps, pps, idr := []byte{0x67, 1}, []byte{0x68, 2}, []byte{0x65, 3}
	p := ParamSets{SPS: sps, PPS: pps}
	for _, c := range []struct {
		name string
		au   [][]byte
		want int
	}{
		{"keyframe alone gets both", [][]byte{idr}, 3},
		{"keyframe with both is kept", [][]byte{sps, pps, idr}, 3},
		{"keyframe with the SPS gets the PPS", [][]byte{sps, idr}, 3},
	} {
		got := p.WithParams(c.au, false)
		if len(got) != c.want || got[len(got)-1][0] != 0x65 {
			t.Errorf("%s: %d NAL units %x, want %d ending with the IDR", c.name, len(got), got, c.want)
		}
	}
	if got := (&ParamSets{}).WithParams([][]byte{idr}, false); len(got) != 1 {
		t.Errorf("without known parameter sets: %x", got)
	}
}
