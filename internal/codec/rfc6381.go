package codec

import (
	"fmt"
	"strings"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// RFC 6381 codecs parameters, what a browser's MediaSource and an HLS
// playlist's CODECS attribute name a track by. The fMP4 and MPEG-TS muxers
// both say them.

// RFC6381H264 is the codecs parameter of an H.264 track from its SPS:
// avc1.PPCCLL, the SPS's profile_idc, constraint flags and level_idc
// (ISO 14496-15 annex E). Without an SPS it names Baseline 3.0.
func RFC6381H264(sps []byte) string {
	if len(sps) >= 4 {
		return fmt.Sprintf("avc1.%02x%02x%02x", sps[1], sps[2], sps[3])
	}
	return "avc1.42e01e"
}

// RFC6381H265 is the codecs parameter of an H.265 track from its SPS. It
// follows ISO 14496-15 annex E.3: hvc1.[space]profile.
// compatibility flags (bit-reversed, hex).tier level.constraint bytes
// (trailing zero bytes left out), from the SPS's profile_tier_level.
func RFC6381H265(sps []byte) string {
	b := h264.EmulationPreventionRemove(sps)
	// NAL header (2), VPS id/max sub-layers/nesting (1), then
	// profile_tier_level: space(2) tier(1) idc(5), 32 compatibility flags,
	// 48 bits of constraint flags, level_idc.
	if len(b) < 15 {
		return "hvc1.1.6.L93.B0"
	}
	ptl := b[3:]
	space := ptl[0] >> 6
	tier := (ptl[0] >> 5) & 1
	idc := ptl[0] & 0x1f
	compat := uint32(ptl[1])<<24 | uint32(ptl[2])<<16 | uint32(ptl[3])<<8 | uint32(ptl[4])
	var rev uint32
	for i := 0; i < 32; i++ {
		rev = rev<<1 | (compat>>i)&1
	}
	var s strings.Builder
	s.WriteString("hvc1.")
	if space > 0 {
		s.WriteByte("ABC"[space-1])
	}
	fmt.Fprintf(&s, "%d.%x.%c%d", idc, rev, "LH"[tier], ptl[11])
	cons := ptl[5:11]
	last := -1
	for i, c := range cons {
		if c != 0 {
			last = i
		}
	}
	for _, c := range cons[:last+1] {
		fmt.Fprintf(&s, ".%X", c)
	}
	return s.String()
}
