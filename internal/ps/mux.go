// Package ps writes an MPEG-2 program stream (ISO/IEC 13818-1 2.5) in the
// form GB/T 28181 platforms expect: one pack per access unit, a system
// header and a program stream map (PSM) in front of every keyframe, then
// the PES packets of the frame. Berth's RTP sender (internal/rtpsend) puts
// it in RTP; Berth's PS demuxer (internal/rtpproxy) reads it back.
package ps

import "encoding/binary"

// Start codes (ISO/IEC 13818-1 table 2-18 and 2.5.3).
const (
	StartPack   = 0xBA
	StartSystem = 0xBB
	StartMap    = 0xBC // program stream map
	StartEnd    = 0xB9

	VideoID = 0xE0 // stream_id of the first video stream
	AudioID = 0xC0 // stream_id of the first audio stream
)

// Stream types a PSM names (ISO/IEC 13818-1 table 2-34; G.711 from GB/T
// 28181-2016 annex C, which is how every GB28181 device labels it).
const (
	TypeH264  = 0x1b
	TypeH265  = 0x24
	TypeAAC   = 0x0f // ADTS in the PES (ISO/IEC 13818-7)
	TypeG711A = 0x90
	TypeG711U = 0x91
)

// Stream is one elementary stream of the program.
type Stream struct {
	ID   uint8 // stream_id: 0xE0-0xEF video, 0xC0-0xDF audio
	Type uint8 // stream_type in the PSM
}

// Video reports whether the stream is video (by its stream_id).
func (s Stream) Video() bool { return s.ID >= 0xE0 && s.ID <= 0xEF }

const (
	// MaxPESPayload is what one PES packet carries at most: its length
	// field is 16 bits and counts the 3-byte header extension and the 10
	// bytes of PTS and DTS. A bigger frame goes on in PES packets without
	// timestamps, which demuxers append to the same access unit.
	MaxPESPayload = 0xFFFF - 3 - 10

	packHeaderLen = 14
	// muxRate is program_mux_rate in units of 50 bytes/s: 10 MB/s, which
	// no stream sent here exceeds (receivers do not pace by it).
	muxRate = 200000
)

// rate is muxRate typed, for the byte conversions of its bits.
var rate uint32 = muxRate

// Muxer builds the packs of one program. The zero value with Streams set
// works; Streams must not change after the first frame.
type Muxer struct {
	Streams []Stream
	version uint8 // program_stream_map_version, changed when Streams would be
}

// AppendFrame appends the pack of one access unit of Streams[i] to dst and
// returns it: the pack header (SCR = dts), the system header and the PSM
// when headers is true (a keyframe, or what a receiver joining here needs),
// then PES packets of payload with pts and dts (90 kHz) on the first.
// Video payload is Annex B (start codes), AAC is ADTS, G.711 raw samples.
func (m *Muxer) AppendFrame(dst []byte, i int, pts, dts int64, headers bool, payload []byte) []byte {
	dst = appendPackHeader(dst, dts)
	if headers {
		dst = m.appendSystemHeader(dst)
		dst = m.appendMap(dst)
	}
	s := m.Streams[i]
	first := true
	for first || len(payload) > 0 {
		max := MaxPESPayload
		if !first {
			max += 10
		}
		n := min(len(payload), max)
		dst = appendPES(dst, s, pts, dts, first, payload[:n])
		payload = payload[n:]
		first = false
	}
	return dst
}

// FrameSize is an upper bound of what AppendFrame appends for a payload of
// n bytes, to size buffers.
func (m *Muxer) FrameSize(n int) int {
	return packHeaderLen + 18 + 3*len(m.Streams) + 16 + 4*len(m.Streams) + (n/(MaxPESPayload)+1)*19 + n
}

// appendPackHeader writes an MPEG-2 pack header (2.5.3.3) with SCR base
// scr (90 kHz; the 27 MHz extension 0) and no stuffing.
func appendPackHeader(dst []byte, scr int64) []byte {
	scr &= 1<<33 - 1
	return append(dst, 0, 0, 1, StartPack,
		0x44|byte(scr>>27)&0x38|byte(scr>>28)&0x03,
		byte(scr>>20),
		0x04|byte(scr>>12)&0xf8|byte(scr>>13)&0x03,
		byte(scr>>5),
		0x04|byte(scr<<3)&0xf8, // SCR[4..0], marker, extension[8..7] = 0
		0x01,                   // extension[6..0] = 0, marker
		byte(rate>>14), byte(rate>>6), byte(rate<<2)|0x03,
		0xF8) // reserved, pack_stuffing_length 0
}

// appendSystemHeader writes the system header (2.5.3.5): bounds and one
// P-STD buffer entry per stream.
func (m *Muxer) appendSystemHeader(dst []byte) []byte {
	audio, video := 0, 0
	for _, s := range m.Streams {
		if s.Video() {
			video++
		} else {
			audio++
		}
	}
	n := 6 + 3*len(m.Streams)
	dst = append(dst, 0, 0, 1, StartSystem, byte(n>>8), byte(n),
		0x80|byte(rate>>15), byte(rate>>7), byte(rate<<1)|0x01, // marker, rate_bound, marker
		byte(audio<<2),   // audio_bound, fixed_flag 0, CSPS_flag 0
		0xE0|byte(video), // audio and video lock, marker, video_bound
		0x7F)             // packet_rate_restriction_flag 0, reserved
	for _, s := range m.Streams {
		if s.Video() {
			// P-STD_buffer_bound_scale 1: units of 1024 bytes; 400 KB.
			dst = append(dst, s.ID, 0xE0|400>>8, 400&0xff)
		} else {
			// Scale 0: units of 128 bytes; 4 KB.
			dst = append(dst, s.ID, 0xC0, 32)
		}
	}
	return dst
}

// appendMap writes the program stream map (2.5.4) naming each stream's type.
func (m *Muxer) appendMap(dst []byte) []byte {
	start := len(dst)
	n := 10 + 4*len(m.Streams) // from after the length field to the end of the CRC
	es := 4 * len(m.Streams)
	dst = append(dst, 0, 0, 1, StartMap, byte(n>>8), byte(n),
		0x80|0x60|m.version&0x1f, // current_next_indicator, reserved, version
		0xFF,                     // reserved, marker
		0, 0,                     // program_stream_info_length
		byte(es>>8), byte(es))
	for _, s := range m.Streams {
		dst = append(dst, s.Type, s.ID, 0, 0)
	}
	return binary.BigEndian.AppendUint32(dst, crc32MPEG(dst[start:]))
}

// appendPES writes one PES packet (2.4.3.6): with PTS, and DTS where it
// differs, when timed; a continuation of the same frame has neither.
func appendPES(dst []byte, s Stream, pts, dts int64, timed bool, payload []byte) []byte {
	hdr := 0
	flags := byte(0)
	if timed {
		hdr, flags = 5, 0x80
		if dts != pts {
			hdr, flags = 10, 0xC0
		}
	}
	n := 3 + hdr + len(payload)
	align := byte(0)
	if timed {
		align = 0x04 // data_alignment_indicator: the payload begins with an access unit
	}
	dst = append(dst, 0, 0, 1, s.ID, byte(n>>8), byte(n), 0x80|align, flags, byte(hdr))
	switch hdr {
	case 5:
		dst = appendClock(dst, 0x2, pts)
	case 10:
		dst = appendClock(dst, 0x3, pts)
		dst = appendClock(dst, 0x1, dts)
	}
	return append(dst, payload...)
}

// appendClock writes a 33-bit PTS or DTS with its 4-bit prefix and markers.
func appendClock(dst []byte, prefix byte, t int64) []byte {
	t &= 1<<33 - 1
	return append(dst,
		prefix<<4|byte(t>>29)&0x0e|1,
		byte(t>>22),
		byte(t>>14)|1,
		byte(t>>7),
		byte(t<<1)|1)
}

// crc32MPEG is the CRC of MPEG-2 sections (ISO/IEC 13818-1 annex A:
// polynomial 0x04C11DB7, initial value all ones, no reflection, no final
// XOR); hash/crc32 only has the reflected form.
func crc32MPEG(b []byte) uint32 {
	crc := uint32(0xFFFFFFFF)
	for _, v := range b {
		crc = crc<<8 ^ crcTable[byte(crc>>24)^v]
	}
	return crc
}

var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()
