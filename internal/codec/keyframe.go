// Package codec holds what protocols share about codecs: where a keyframe
// starts in RTP, and the conversions between RTP packets and access units.
// It leans on gortsplib's formats and mediacommon's bitstream code.
package codec

import "encoding/binary"

// RTPHeader is the part of an RTP header Berth needs on the hot path,
// read without allocating (RFC 3550 section 5.1).
type RTPHeader struct {
	Marker      bool
	PayloadType uint8
	Seq         uint16
	Timestamp   uint32
	SSRC        uint32
	Payload     []byte // slices into the packet
}

// ParseRTP reads pkt's header. ok is false for anything that is not RTP
// version 2 with a consistent length.
func ParseRTP(pkt []byte) (h RTPHeader, ok bool) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return h, false
	}
	off := 12 + 4*int(pkt[0]&0x0f)
	if len(pkt) < off {
		return h, false
	}
	if pkt[0]&0x10 != 0 { // header extension
		if len(pkt) < off+4 {
			return h, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:]))
		if len(pkt) < off {
			return h, false
		}
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 { // padding
		pad := int(pkt[end-1])
		if pad == 0 || end-pad < off {
			return h, false
		}
		end -= pad
	}
	h.Marker = pkt[1]&0x80 != 0
	h.PayloadType = pkt[1] & 0x7f
	h.Seq = binary.BigEndian.Uint16(pkt[2:])
	h.Timestamp = binary.BigEndian.Uint32(pkt[4:])
	h.SSRC = binary.BigEndian.Uint32(pkt[8:])
	h.Payload = pkt[off:end]
	return h, true
}

// Codec families the keyframe detector knows; others have no keyframes.
const (
	H264 = "H264"
	H265 = "H265"
	AV1  = "AV1" // what format.AV1 names itself, so RTSP publishers get it as is
)

// KeyDetector marks the RTP packet where a new reader may start: the first
// packet of an access unit that holds an IDR picture or parameter sets.
// Parameter sets usually precede the IDR slice in the same access unit, so
// only the first qualifying packet of an access unit is marked.
type KeyDetector struct {
	Codec   string // H264, H265 or AV1; anything else never reports a key
	inKey   bool
	keyTime uint32
}

// Key reports whether the packet starts a keyframe.
func (d *KeyDetector) Key(h RTPHeader) bool {
	var key bool
	switch d.Codec {
	case H264:
		key = h264Key(h.Payload)
	case H265:
		key = h265Key(h.Payload)
	case AV1:
		key = av1Key(h.Payload)
	default:
		return false
	}
	if !key {
		return false
	}
	if d.inKey && h.Timestamp == d.keyTime {
		return false // same access unit as the packet already marked
	}
	d.inKey, d.keyTime = true, h.Timestamp
	return true
}

// H.264 NAL types that make a keyframe start: IDR slice (5), SPS (7). RFC 6184.
func h264KeyType(t byte) bool { return t == 5 || t == 7 }

func h264Key(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case 24: // STAP-A: 16-bit sizes, then NAL units
		for p = p[1:]; len(p) > 2; {
			n := int(binary.BigEndian.Uint16(p))
			p = p[2:]
			if n == 0 || n > len(p) {
				return false
			}
			if h264KeyType(p[0] & 0x1f) {
				return true
			}
			p = p[n:]
		}
		return false
	case 28: // FU-A: start bit and the original type in the FU header
		return len(p) > 1 && p[1]&0x80 != 0 && h264KeyType(p[1]&0x1f)
	default:
		return h264KeyType(t)
	}
}

// H.265 NAL types that make a keyframe start: IRAP pictures (16-21), VPS
// (32), SPS (33). RFC 7798.
func h265KeyType(t byte) bool { return (t >= 16 && t <= 21) || t == 32 || t == 33 }

func h265Key(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch t := (p[0] >> 1) & 0x3f; t {
	case 48: // aggregation packet
		for p = p[2:]; len(p) > 2; {
			n := int(binary.BigEndian.Uint16(p))
			p = p[2:]
			if n < 1 || n > len(p) {
				return false
			}
			if h265KeyType((p[0] >> 1) & 0x3f) {
				return true
			}
			p = p[n:]
		}
		return false
	case 49: // fragmentation unit
		return len(p) > 2 && p[2]&0x80 != 0 && h265KeyType(p[2]&0x3f)
	default:
		return h265KeyType(t)
	}
}
