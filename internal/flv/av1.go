package flv

// AV1 over enhanced RTMP (veovera enhanced-rtmp v1, FourCC av01). The
// sequence start carries an AV1CodecConfigurationRecord (AV1 ISOBMFF
// binding, section 2.3.3) whose configOBUs hold the sequence header OBU;
// coded frames carry one temporal unit as OBUs in the low-overhead
// bitstream format (AV1 spec section 5.2, every OBU with obu_size) and,
// unlike avc1/hvc1, no composition time: AV1 presents in decoding order.
//
// In the hub an AV1 access unit is one temporal unit as a list of OBUs,
// the way the RTP payload format carries them: no temporal delimiters, and
// obu_size fields optional (RTMP publishers' OBUs lose theirs in
// SplitOBUs; writers add them where the format needs them).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/flv/amf0"
	"github.com/berthmedia/berth/internal/hub"
)

// OBU header bits and types (AV1 spec sections 5.3.2 and 6.2.2).
const (
	obuForbiddenBit      = 0x80
	obuExtensionFlag     = 0x04
	obuHasSizeField      = 0x02
	obuTemporalDelimiter = 2
	obuPadding           = 15
)

// av1ConfigMarkerVersion is the first byte of an AV1CodecConfigurationRecord:
// marker 1, version 1.
const av1ConfigMarkerVersion = 0x81

// ErrBadOBU is returned for an OBU that breaks the AV1 bitstream syntax.
var ErrBadOBU = errors.New("flv: malformed AV1 OBU")

// parseAV1Video reads the rest of an enhanced video tag body of FourCC av01.
func parseAV1Video(b []byte, p VideoPacket) (VideoPacket, error) {
	p.Codec = VideoAV1
	if (b[0]>>4)&7 == 5 { // command frame
		p.Type = PacketIgnored
		return p, nil
	}
	switch b[0] & 0x0f {
	case 0: // SequenceStart
		p.Type, p.Data = PacketConfig, b[5:]
	case 1, 3: // CodedFrames, CodedFramesX: no composition time for AV1
		p.Type, p.Data = PacketFrame, b[5:]
	case 2: // SequenceEnd
		p.Type = PacketEndOfSeq
	default: // metadata, MPEG2TSSequenceStart, multitrack
		p.Type = PacketIgnored
	}
	return p, nil
}

// SplitOBUs splits a temporal unit in the low-overhead bitstream format
// (AV1 spec section 5.2) into dst. The OBUs slice into b, which is
// rewritten in place: each OBU's header moves up over its obu_size field,
// so the OBUs are as the RTP payload format carries them (obu_has_size_field
// 0, RTP AV1 section 4.4) and b must not be used as a bitstream afterwards.
// The last OBU may lack obu_size and then runs to the end of b. Temporal
// delimiters and padding OBUs are left out (AV1 ISOBMFF section 2.4).
func SplitOBUs(b []byte, dst [][]byte) ([][]byte, error) {
	for len(b) > 0 {
		h := b[0]
		if h&obuForbiddenBit != 0 {
			return dst, fmt.Errorf("%w: forbidden bit set", ErrBadOBU)
		}
		hl := 1
		if h&obuExtensionFlag != 0 {
			hl = 2
		}
		if len(b) < hl {
			return dst, fmt.Errorf("OBU extension header: %w", ErrShort)
		}
		var obu []byte
		if h&obuHasSizeField == 0 {
			obu, b = b, nil
		} else {
			var size av1.LEB128
			n, err := size.Unmarshal(b[hl:])
			if err != nil {
				return dst, fmt.Errorf("OBU size: %w", ErrShort)
			}
			if uint64(size) > uint64(len(b)-hl-n) {
				return dst, fmt.Errorf("OBU of %d bytes in %d: %w", size, len(b)-hl-n, ErrShort)
			}
			end := hl + n + int(size)
			copy(b[n:n+hl], b[:hl]) // overlapping: copy moves like memmove
			b[n] &^= obuHasSizeField
			obu, b = b[n:end:end], b[end:]
		}
		switch (obu[0] >> 3) & 0x0f {
		case obuTemporalDelimiter, obuPadding:
			continue
		}
		dst = append(dst, obu)
	}
	return dst, nil
}

// obuHeaderLen is 1, or 2 with the extension header; 0 for an empty OBU.
func obuHeaderLen(obu []byte) int {
	switch {
	case len(obu) == 0:
		return 0
	case obu[0]&obuExtensionFlag != 0 && len(obu) >= 2:
		return 2
	}
	return 1
}

// obuWireSize is the size of obu in the low-overhead format, with obu_size.
func obuWireSize(obu []byte) int {
	if len(obu) == 0 || obu[0]&obuHasSizeField != 0 {
		return len(obu)
	}
	return len(obu) + av1.LEB128(len(obu)-obuHeaderLen(obu)).MarshalSize()
}

// putOBU writes obu into dst with an obu_size field and returns the bytes
// written; dst has room for obuWireSize(obu).
func putOBU(dst, obu []byte) int {
	if len(obu) == 0 || obu[0]&obuHasSizeField != 0 {
		return copy(dst, obu)
	}
	hl := obuHeaderLen(obu)
	copy(dst, obu[:hl])
	dst[0] |= obuHasSizeField
	n := hl + av1.LEB128(len(obu)-hl).MarshalTo(dst[hl:])
	return n + copy(dst[n:], obu[hl:])
}

// av1Config builds an AV1CodecConfigurationRecord (AV1 ISOBMFF section
// 2.3.3) from a sequence header OBU, which becomes its only config OBU.
// It returns nil when seq is not a valid sequence header.
func av1Config(seq []byte) []byte {
	var h av1.SequenceHeader
	if len(seq) == 0 || h.Unmarshal(seq) != nil || len(h.SeqLevelIdx) == 0 || len(h.SeqTier) == 0 {
		return nil
	}
	bit := func(v bool, shift uint) byte {
		if v {
			return 1 << shift
		}
		return 0
	}
	cc := h.ColorConfig
	b := make([]byte, 4+obuWireSize(seq))
	b[0] = av1ConfigMarkerVersion
	b[1] = (h.SeqProfile&7)<<5 | h.SeqLevelIdx[0]&0x1f
	b[2] = bit(h.SeqTier[0], 7) | bit(cc.HighBitDepth, 6) | bit(cc.TwelveBit, 5) | bit(cc.MonoChrome, 4) |
		bit(cc.SubsamplingX, 3) | bit(cc.SubsamplingY, 2) | byte(cc.ChromaSamplePosition)&3
	b[3] = 0 // no initial_presentation_delay
	putOBU(b[4:], seq)
	return b
}

// ParseAV1Config returns the sequence header OBU of an
// AV1CodecConfigurationRecord (without obu_size, in a copy of b), or nil
// when its configOBUs hold none: the sequence header then comes in-band.
func ParseAV1Config(b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("AV1 codec configuration: %w", ErrShort)
	}
	if b[0] != av1ConfigMarkerVersion {
		return nil, fmt.Errorf("AV1 codec configuration starts with %#x, want marker and version 1 (%#x)", b[0], av1ConfigMarkerVersion)
	}
	obus, err := SplitOBUs(bytes.Clone(b[4:]), nil)
	if err != nil {
		return nil, fmt.Errorf("AV1 codec configuration OBUs: %w", err)
	}
	seq := codec.AV1SequenceHeader(obus)
	if seq == nil {
		return nil, nil
	}
	var h av1.SequenceHeader
	if err := h.Unmarshal(seq); err != nil {
		return nil, fmt.Errorf("AV1 codec configuration: sequence header: %w", err)
	}
	return seq, nil
}

// validAV1SequenceHeader returns the sequence header OBU of a temporal
// unit when it parses, else nil.
func validAV1SequenceHeader(tu [][]byte) []byte {
	seq := codec.AV1SequenceHeader(tu)
	var h av1.SequenceHeader
	if seq == nil || h.Unmarshal(seq) != nil {
		return nil
	}
	return seq
}

// av1Metadata is what onMetaData says about an AV1 track.
func av1Metadata(seq []byte) amf0.ECMAArray {
	var props amf0.ECMAArray
	var h av1.SequenceHeader
	if h.Unmarshal(seq) == nil {
		props = append(props, amf0.Property{Key: "width", Value: float64(h.Width())}, amf0.Property{Key: "height", Value: float64(h.Height())})
	}
	return append(props, amf0.Property{Key: "videocodecid", Value: float64(binary.BigEndian.Uint32(fourccAV1[:]))})
}

// av1SequenceStart is the video tag body of an enhanced-RTMP AV1 sequence start.
func av1SequenceStart(seq []byte) []byte {
	b := append([]byte{0x80 | 1<<4 | 0}, fourccAV1[:]...)
	return append(b, av1Config(seq)...)
}

// buildAV1Tag writes enhanced RTMP (FourCC av01, packet type CodedFrames):
// the temporal unit's OBUs, each with obu_size.
func buildAV1Tag(f *hub.Frame) []byte {
	n := 5
	for _, obu := range f.AU {
		n += obuWireSize(obu)
	}
	tag := newTag(TagVideo, Timestamp(f.DTS), n)
	b := tag[TagHeaderSize : TagHeaderSize+n]
	b[0] = 0x80 | 2<<4 | 1
	if f.Key {
		b[0] = 0x80 | 1<<4 | 1
	}
	copy(b[1:5], fourccAV1[:])
	p := b[5:]
	for _, obu := range f.AU {
		p = p[putOBU(p, obu):]
	}
	return tag
}
