package bench

import (
	"errors"
	"fmt"
)

// MPEG-TS (ISO/IEC 13818-1 §2.4.3): 188-byte packets, each starting with
// the sync byte 0x47; a 4-byte header (payload_unit_start_indicator,
// 13-bit PID, adaptation_field_control), an optional adaptation field
// (whose flags byte holds random_access_indicator, §2.4.3.5) and the
// payload. A PES packet (§2.4.3.6) starts where payload_unit_start is set,
// with 00 00 01 and its stream_id; video streams are 0xE0-0xEF.

const (
	tsPacketSize = 188
	tsSyncByte   = 0x47
)

// errTSSync reports a byte stream that is not (or no longer) TS.
var errTSSync = errors.New("lost MPEG-TS sync")

// mediaCounts is what a scanner found in one piece of a byte stream.
type mediaCounts struct {
	packets  int  // TS packets, or fMP4 fragments (moof boxes)
	frames   int  // video frames started (PES starts on a video stream; video samples)
	keys     int  // of those, keyframes
	firstKey bool // the first video frame of this piece is a keyframe
}

func (c *mediaCounts) video(key bool) {
	if c.frames == 0 {
		c.firstKey = key
	}
	c.frames++
	if key {
		c.keys++
	}
}

// videoN counts n video frames alike.
func (c *mediaCounts) videoN(key bool, n int64) {
	if n <= 0 {
		return
	}
	if c.frames == 0 {
		c.firstKey = key
	}
	c.frames += int(n)
	if key {
		c.keys += int(n)
	}
}

// report adds c to a reader's counters and first-frame times.
func (c mediaCounts) report(st *readerStats, ff *firstFrames) {
	if c.packets > 0 {
		st.packets.Add(uint64(c.packets))
		ff.packet()
	}
	if c.frames > 0 {
		st.frames.Add(uint64(c.frames))
		if !ff.gotKey {
			ff.video(c.firstKey)
			if c.keys > 0 {
				ff.video(true)
			}
		}
	}
}

// tsScanner counts TS packets, video frames and keyframes in a byte
// stream cut anywhere, without allocating: a packet split across reads
// waits in carry.
type tsScanner struct {
	carry [tsPacketSize]byte
	n     int // bytes in carry
}

// scan reads b; an error means the stream lost sync, which a TS reader
// cannot recover from without searching (a server never sends that).
func (s *tsScanner) scan(b []byte) (mediaCounts, error) {
	var c mediaCounts
	if s.n > 0 {
		k := copy(s.carry[s.n:], b)
		s.n += k
		b = b[k:]
		if s.n < tsPacketSize {
			return c, nil
		}
		s.n = 0
		if err := tsPacket(s.carry[:], &c); err != nil {
			return c, err
		}
	}
	for len(b) >= tsPacketSize {
		if err := tsPacket(b[:tsPacketSize], &c); err != nil {
			return c, err
		}
		b = b[tsPacketSize:]
	}
	s.n = copy(s.carry[:], b)
	return c, nil
}

// partial reports whether a packet is cut off at the end of what was read.
func (s *tsScanner) partial() bool { return s.n > 0 }

// tsPacket classifies one 188-byte packet into c.
func tsPacket(p []byte, c *mediaCounts) error {
	if p[0] != tsSyncByte {
		return fmt.Errorf("%w: byte 0x%02x where a packet's 0x47 sync byte belongs (the body is not 188-byte TS packets)", errTSSync, p[0])
	}
	c.packets++
	if p[1]&0x40 == 0 { // not the start of a PES or section
		return nil
	}
	afc := p[3] >> 4 & 3
	off, rai := 4, false
	if afc&2 != 0 { // adaptation field
		l := int(p[4])
		if l > 0 {
			rai = p[5]&0x40 != 0
		}
		off += 1 + l
	}
	if afc&1 == 0 || off+4 > len(p) { // no payload
		return nil
	}
	pl := p[off:]
	if pl[0] == 0 && pl[1] == 0 && pl[2] == 1 && pl[3]&0xf0 == 0xe0 {
		c.video(rai)
	}
	return nil
}
