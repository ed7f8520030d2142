package codec

import (
	"bytes"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// FixHvcC corrects the general_constraint_indicator_flags of every hvcC box
// in an MP4 init segment, in place, and reports how many it changed.
//
// mediacommon v2.9.3 fills those six bytes from the raw SPS at the wrong
// offset and with its emulation-prevention bytes (00 00 03) left in, so the
// hvcC of a typical x265 stream says "03 00 90 00 00 03" where the SPS says
// "90 00 00 00 00 00". Players that check the record against the codecs
// string (or a strict demuxer) can refuse it. The right bytes are in the
// SPS the record itself carries (ISO/IEC 14496-15 8.3.3.1; H.265 7.3.3:
// profile_tier_level starts after the 2-byte NAL header and one byte, and
// the flags follow the profile byte and 4 compatibility bytes).
func FixHvcC(init []byte) int {
	fixed := 0
	for off := 0; ; {
		i := bytes.Index(init[off:], []byte("hvcC"))
		if i < 0 {
			return fixed
		}
		at := off + i
		off = at + 4
		if at < 4 {
			continue
		}
		size := int(init[at-4])<<24 | int(init[at-3])<<16 | int(init[at-2])<<8 | int(init[at-1])
		if size < 8+23 || at-4+size > len(init) {
			continue
		}
		rec := init[at+4 : at-4+size]
		sps := hvcCNAL(rec, 33)
		if sps == nil {
			continue
		}
		rbsp := h264.EmulationPreventionRemove(sps) // H.265 7.4.2 escapes as H.264 does
		if len(rbsp) < 14 {
			continue
		}
		if !bytes.Equal(rec[6:12], rbsp[8:14]) {
			copy(rec[6:12], rbsp[8:14])
			fixed++
		}
	}
}

// hvcCNAL is the first NAL unit of type typ in an HEVCDecoderConfigurationRecord.
func hvcCNAL(rec []byte, typ byte) []byte {
	n := int(rec[22])
	p := 23
	for a := 0; a < n; a++ {
		if p+3 > len(rec) {
			return nil
		}
		t := rec[p] & 0x3f
		count := int(rec[p+1])<<8 | int(rec[p+2])
		p += 3
		for k := 0; k < count; k++ {
			if p+2 > len(rec) {
				return nil
			}
			l := int(rec[p])<<8 | int(rec[p+1])
			p += 2
			if p+l > len(rec) {
				return nil
			}
			if t == typ {
				return rec[p : p+l]
			}
			p += l
		}
	}
	return nil
}
