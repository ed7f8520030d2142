// Package flv muxes hub access units into FLV tags and parses FLV tag bodies.
// The same tag bodies are RTMP audio/video messages, so the RTMP server uses
// this package for both directions; HTTP-FLV and WebSocket-FLV readers are
// served by Handler. Tags are built once per frame and cached on the frame
// (hub.Frame.Encoded), so every FLV and RTMP reader shares the same bytes.
package flv

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/berthmedia/berth/internal/codec"
)

// Tag types (FLV spec E.4.1).
const (
	TagAudio  = 8
	TagVideo  = 9
	TagScript = 18
)

// Legacy codec ids (FLV spec E.4.2, E.4.3) and enhanced-RTMP FourCCs
// (veovera enhanced-rtmp v2).
const (
	videoCodecAVC        = 7
	videoCodecHEVCLegacy = 12 // the Chinese CDN extension ZLMediaKit and SRS accept
	audioFormatPCMA      = 7
	audioFormatPCMU      = 8
	audioFormatAAC       = 10
	audioFormatExHeader  = 9 // enhanced audio: a FourCC follows
)

var (
	fourccHEVC = [4]byte{'h', 'v', 'c', '1'}
	fourccAV1  = [4]byte{'a', 'v', '0', '1'}
	fourccAVC  = [4]byte{'a', 'v', 'c', '1'}
	fourccOpus = [4]byte{'O', 'p', 'u', 's'}
)

// VideoCodec is a video codec FLV can carry.
type VideoCodec uint8

// Video codecs.
const (
	VideoNone VideoCodec = iota
	VideoH264
	VideoH265
	VideoAV1
)

func (c VideoCodec) String() string {
	switch c {
	case VideoH264:
		return "H264"
	case VideoH265:
		return "H265"
	case VideoAV1:
		return "AV1"
	}
	return "none"
}

// AudioCodec is an audio codec FLV can carry.
type AudioCodec uint8

// Audio codecs.
const (
	AudioNone AudioCodec = iota
	AudioAAC
	AudioOpus
	AudioPCMA
	AudioPCMU
)

func (c AudioCodec) String() string {
	switch c {
	case AudioAAC:
		return "AAC"
	case AudioOpus:
		return "Opus"
	case AudioPCMA:
		return "PCMA"
	case AudioPCMU:
		return "PCMU"
	}
	return "none"
}

// Errors of the parsers.
var (
	ErrShort       = errors.New("flv: tag body truncated")
	ErrUnsupported = errors.New("flv: unsupported codec")
)

// videoCodecOf maps a track's format to a video codec FLV can carry.
func videoCodecOf(f format.Format) VideoCodec {
	switch f.(type) {
	case *format.H264:
		return VideoH264
	case *format.H265:
		return VideoH265
	case *format.AV1:
		return VideoAV1
	}
	return VideoNone
}

func audioCodecOf(f format.Format) AudioCodec {
	switch f := f.(type) {
	case *format.MPEG4Audio, *format.MPEG4AudioLATM:
		if codec.AACConfig(f) != nil {
			return AudioAAC
		}
	case *format.Opus:
		return AudioOpus
	case *format.G711:
		if f.SampleRate == 8000 && f.ChannelCount <= 1 {
			if f.MULaw {
				return AudioPCMU
			}
			return AudioPCMA
		}
	}
	return AudioNone
}

// avcConfig builds an AVCDecoderConfigurationRecord (ISO 14496-15 5.3.3.1)
// with 4-byte NALU lengths.
func avcConfig(sps, pps []byte) []byte {
	if len(sps) < 4 {
		return nil
	}
	b := make([]byte, 0, 11+len(sps)+len(pps))
	b = append(b, 1, sps[1], sps[2], sps[3], 0xff, 0xe1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	return append(b, pps...)
}

// ParseAVCConfig reads SPS, PPS and the NALU length size from an
// AVCDecoderConfigurationRecord.
func ParseAVCConfig(b []byte) (sps, pps []byte, lengthSize int, err error) {
	if len(b) < 7 {
		return nil, nil, 0, fmt.Errorf("AVC decoder configuration: %w", ErrShort)
	}
	lengthSize = int(b[4]&3) + 1
	n := int(b[5] & 0x1f)
	pos := 6
	for i := 0; i < n; i++ {
		nal, next, err := readLen16(b, pos)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("AVC decoder configuration SPS: %w", err)
		}
		if sps == nil {
			sps = nal
		}
		pos = next
	}
	if pos >= len(b) {
		return nil, nil, 0, fmt.Errorf("AVC decoder configuration PPS count: %w", ErrShort)
	}
	n = int(b[pos])
	pos++
	for i := 0; i < n; i++ {
		nal, next, err := readLen16(b, pos)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("AVC decoder configuration PPS: %w", err)
		}
		if pps == nil {
			pps = nal
		}
		pos = next
	}
	if sps == nil || pps == nil {
		return nil, nil, 0, errors.New("AVC decoder configuration holds no SPS or no PPS")
	}
	return sps, pps, lengthSize, nil
}

func readLen16(b []byte, pos int) ([]byte, int, error) {
	if len(b)-pos < 2 {
		return nil, 0, ErrShort
	}
	l := int(binary.BigEndian.Uint16(b[pos:]))
	pos += 2
	if len(b)-pos < l {
		return nil, 0, ErrShort
	}
	return b[pos : pos+l : pos+l], pos + l, nil
}

// hevcConfig builds an HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1).
// The profile/tier/level bytes are copied from the SPS, which carries them in
// the same layout right after its first byte.
func hevcConfig(vps, sps, pps []byte) []byte {
	rbsp := unescape(sps)
	if len(rbsp) < 15 {
		return nil
	}
	var s h265.SPS
	chroma, depthL, depthC := uint32(1), uint32(0), uint32(0)
	if s.Unmarshal(sps) == nil {
		chroma, depthL, depthC = s.ChromaFormatIdc, s.BitDepthLumaMinus8, s.BitDepthChromaMinus8
	}
	b := make([]byte, 0, 23+3*5+len(vps)+len(sps)+len(pps))
	b = append(b, 1)
	b = append(b, rbsp[3:15]...) // general_profile_space .. general_level_idc
	b = append(b, 0xf0, 0x00, 0xfc, 0xfc|byte(chroma&3), 0xf8|byte(depthL&7), 0xf8|byte(depthC&7), 0, 0)
	subLayers := (rbsp[2] >> 1) & 7
	nested := rbsp[2] & 1
	b = append(b, (subLayers+1)<<3|nested<<2|3)
	b = append(b, 3)
	for _, p := range []struct {
		typ byte
		nal []byte
	}{{32, vps}, {33, sps}, {34, pps}} {
		b = append(b, 0x80|p.typ, 0, 1)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.nal)))
		b = append(b, p.nal...)
	}
	return b
}

// ParseHEVCConfig reads VPS, SPS, PPS and the NALU length size from an
// HEVCDecoderConfigurationRecord.
func ParseHEVCConfig(b []byte) (vps, sps, pps []byte, lengthSize int, err error) {
	if len(b) < 23 {
		return nil, nil, nil, 0, fmt.Errorf("HEVC decoder configuration: %w", ErrShort)
	}
	lengthSize = int(b[21]&3) + 1
	arrays := int(b[22])
	pos := 23
	for i := 0; i < arrays; i++ {
		if len(b)-pos < 3 {
			return nil, nil, nil, 0, fmt.Errorf("HEVC decoder configuration array: %w", ErrShort)
		}
		typ := b[pos] & 0x3f
		n := int(binary.BigEndian.Uint16(b[pos+1:]))
		pos += 3
		for j := 0; j < n; j++ {
			nal, next, err := readLen16(b, pos)
			if err != nil {
				return nil, nil, nil, 0, fmt.Errorf("HEVC decoder configuration NALU: %w", err)
			}
			pos = next
			switch {
			case typ == 32 && vps == nil:
				vps = nal
			case typ == 33 && sps == nil:
				sps = nal
			case typ == 34 && pps == nil:
				pps = nal
			}
		}
	}
	if vps == nil || sps == nil || pps == nil {
		return nil, nil, nil, 0, errors.New("HEVC decoder configuration lacks a VPS, SPS or PPS")
	}
	return vps, sps, pps, lengthSize, nil
}

// unescape removes emulation-prevention bytes (00 00 03) from a NAL unit.
func unescape(nal []byte) []byte {
	out := make([]byte, 0, len(nal))
	zeros := 0
	for _, c := range nal {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// opusHead builds the OpusHead identification header (RFC 7845 5.1).
func opusHead(channels int) []byte {
	if channels <= 0 {
		channels = 2
	}
	b := []byte("OpusHead")
	b = append(b, 1, byte(channels))
	b = binary.LittleEndian.AppendUint16(b, 3840)
	b = binary.LittleEndian.AppendUint32(b, 48000)
	return append(b, 0, 0, 0)
}
