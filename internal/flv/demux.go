package flv

import (
	"encoding/binary"
	"fmt"
)

// PacketType says what a parsed audio/video tag body carries.
type PacketType uint8

// Packet types.
const (
	PacketFrame    PacketType = iota // coded media
	PacketConfig                     // sequence header: decoder configuration
	PacketEndOfSeq                   // end of sequence; nothing to forward
	PacketIgnored                    // metadata or a packet type Berth does not use
)

// VideoPacket is a parsed video tag body. Data slices into the input.
type VideoPacket struct {
	Codec VideoCodec
	Type  PacketType
	Key   bool
	CTS   int32 // composition time offset, ms
	Data  []byte
}

// ParseVideo reads a video tag body, legacy (AVC, codec id 12 HEVC) or
// enhanced RTMP (FourCC avc1/hvc1/av01).
func ParseVideo(b []byte) (VideoPacket, error) {
	var p VideoPacket
	if len(b) < 1 {
		return p, ErrShort
	}
	frameType := (b[0] >> 4) & 7
	p.Key = frameType == 1
	if b[0]&0x80 != 0 { // enhanced RTMP: IsExHeader
		if len(b) < 5 {
			return p, ErrShort
		}
		var cc [4]byte
		copy(cc[:], b[1:5])
		switch cc {
		case fourccHEVC:
			p.Codec = VideoH265
		case fourccAVC:
			p.Codec = VideoH264
		case fourccAV1:
			return parseAV1Video(b, p)
		default:
			return p, fmt.Errorf("%w: video FourCC %q", ErrUnsupported, cc[:])
		}
		if frameType == 5 { // command frame
			p.Type = PacketIgnored
			return p, nil
		}
		switch b[0] & 0x0f {
		case 0: // SequenceStart
			p.Type, p.Data = PacketConfig, b[5:]
		case 1: // CodedFrames: SI24 composition time follows
			if len(b) < 8 {
				return p, ErrShort
			}
			p.Type, p.CTS, p.Data = PacketFrame, si24(b[5:8]), b[8:]
		case 2: // SequenceEnd
			p.Type = PacketEndOfSeq
		case 3: // CodedFramesX: composition time 0
			p.Type, p.Data = PacketFrame, b[5:]
		default:
			p.Type = PacketIgnored
		}
		return p, nil
	}
	switch b[0] & 0x0f {
	case videoCodecAVC:
		p.Codec = VideoH264
	case videoCodecHEVCLegacy:
		p.Codec = VideoH265
	default:
		return p, fmt.Errorf("%w: FLV video codec id %d (Berth takes H.264, H.265 as id 12 or enhanced RTMP, and AV1 as enhanced RTMP)", ErrUnsupported, b[0]&0x0f)
	}
	if frameType == 5 {
		p.Type = PacketIgnored
		return p, nil
	}
	if len(b) < 5 {
		return p, ErrShort
	}
	switch b[1] {
	case 0:
		p.Type, p.Data = PacketConfig, b[5:]
	case 1:
		p.Type, p.CTS, p.Data = PacketFrame, si24(b[2:5]), b[5:]
	case 2:
		p.Type = PacketEndOfSeq
	default:
		p.Type = PacketIgnored
	}
	return p, nil
}

func si24(b []byte) int32 {
	v := int32(b[0])<<16 | int32(b[1])<<8 | int32(b[2])
	return v << 8 >> 8
}

// AudioPacket is a parsed audio tag body. Data slices into the input.
type AudioPacket struct {
	Codec    AudioCodec
	Type     PacketType
	Data     []byte
	Channels int // from the legacy header; 0 when unknown
}

// ParseAudio reads an audio tag body: AAC, G.711, or enhanced Opus.
func ParseAudio(b []byte) (AudioPacket, error) {
	var p AudioPacket
	if len(b) < 1 {
		return p, ErrShort
	}
	p.Channels = int(b[0]&1) + 1
	switch b[0] >> 4 {
	case audioFormatAAC:
		if len(b) < 2 {
			return p, ErrShort
		}
		p.Codec = AudioAAC
		if b[1] == 0 {
			p.Type, p.Data = PacketConfig, b[2:]
		} else {
			p.Type, p.Data = PacketFrame, b[2:]
		}
		return p, nil
	case audioFormatPCMA, audioFormatPCMU:
		p.Codec = AudioPCMA
		if b[0]>>4 == audioFormatPCMU {
			p.Codec = AudioPCMU
		}
		p.Type, p.Data = PacketFrame, b[1:]
		return p, nil
	case audioFormatExHeader:
		if len(b) < 5 {
			return p, ErrShort
		}
		if [4]byte(b[1:5]) != fourccOpus {
			return p, fmt.Errorf("%w: audio FourCC %q", ErrUnsupported, b[1:5])
		}
		p.Codec, p.Channels = AudioOpus, 0
		switch b[0] & 0x0f {
		case 0:
			p.Type, p.Data = PacketConfig, b[5:]
			if len(p.Data) >= 10 && string(p.Data[:8]) == "OpusHead" {
				p.Channels = int(p.Data[9])
			}
		case 1:
			p.Type, p.Data = PacketFrame, b[5:]
		default:
			p.Type = PacketIgnored
		}
		return p, nil
	}
	return p, fmt.Errorf("%w: FLV sound format %d (Berth takes AAC, G.711 and enhanced Opus)", ErrUnsupported, b[0]>>4)
}

// SplitNALUs splits length-prefixed NAL units (AVCC/HVCC) into dst, slicing
// into b.
func SplitNALUs(b []byte, lengthSize int, dst [][]byte) ([][]byte, error) {
	for len(b) > 0 {
		if len(b) < lengthSize {
			return dst, fmt.Errorf("NALU length: %w", ErrShort)
		}
		var l uint32
		switch lengthSize {
		case 1:
			l = uint32(b[0])
		case 2:
			l = uint32(binary.BigEndian.Uint16(b))
		case 3:
			l = uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
		default:
			l = binary.BigEndian.Uint32(b)
		}
		b = b[lengthSize:]
		if uint64(l) > uint64(len(b)) {
			return dst, fmt.Errorf("NALU of %d bytes in %d: %w", l, len(b), ErrShort)
		}
		if l > 0 {
			dst = append(dst, b[:l:l])
		}
		b = b[l:]
	}
	return dst, nil
}
