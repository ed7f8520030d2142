package rtpproxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// MPEG program stream start codes and stream ids (ISO/IEC 13818-1 2.5.3, table 2-18).
const (
	psEnd           = 0xB9
	psPack          = 0xBA
	psSystem        = 0xBB
	psMap           = 0xBC // program stream map (PSM)
	psPrivate1      = 0xBD
	psPadding       = 0xBE
	psPrivate2      = 0xBF
	psMaxBuffered   = 4 << 20 // bytes held while waiting for the rest of a unit
	psMaxStreamsPSM = 32
)

// Stream types a PSM names (ISO/IEC 13818-1 table 2-34, GB/T 28181 annex C).
const (
	stH264  = 0x1b
	stH265  = 0x24
	stAAC   = 0x0f
	stG711A = 0x90
	stG711U = 0x91
)

func codecOfStreamType(t uint8) esCodec {
	switch t {
	case stH264:
		return esH264
	case stH265:
		return esH265
	case stAAC:
		return esAAC
	case stG711A:
		return esG711A
	case stG711U:
		return esG711U
	}
	return esUnknown
}

// psDemuxer parses an MPEG program stream pushed in arbitrary chunks (the
// payloads of consecutive RTP packets) and hands elementary-stream access
// units to a builder. Any byte sequence is accepted: what does not parse is
// skipped up to the next start code and counted, never trusted for a length
// beyond the buffer (a malformed PS crashed ZLMediaKit, issue #1956).
type psDemuxer struct {
	b     *builder
	buf   []byte
	types map[uint8]uint8 // stream_id -> stream_type from the PSM
	es    map[uint8]*esSplitter

	garbage uint64 // bytes skipped while resynchronising
	pes     uint64 // PES packets parsed
	// video PES packets whose length ran past the next pack (cut there)
	badLength uint64
}

func newPSDemuxer(b *builder) *psDemuxer {
	return &psDemuxer{b: b, types: map[uint8]uint8{}, es: map[uint8]*esSplitter{}}
}

// reset drops partial data after packet loss: the next unit starts at the
// next start code, and partial access units are discarded.
func (d *psDemuxer) reset() {
	d.buf = d.buf[:0]
	for _, s := range d.es {
		s.reset()
	}
}

// feed appends p and parses every complete unit.
func (d *psDemuxer) feed(p []byte) {
	d.buf = append(d.buf, p...)
	off := 0
	for {
		n, ok := d.unit(d.buf[off:])
		if !ok {
			break
		}
		off += n
	}
	if off > 0 {
		d.buf = d.buf[:copy(d.buf, d.buf[off:])]
	}
	if len(d.buf) > psMaxBuffered {
		d.garbage += uint64(len(d.buf))
		d.buf = d.buf[:0]
	}
}

// unit parses one unit at the start of b and returns its length; ok is
// false when b holds no complete unit yet.
func (d *psDemuxer) unit(b []byte) (int, bool) {
	if len(b) < 4 {
		return 0, false
	}
	if b[0] != 0 || b[1] != 0 || b[2] != 1 {
		return d.skip(b, 0), len(b) > 3
	}
	id := b[3]
	switch {
	case id == psPack:
		if len(b) < 5 {
			return 0, false
		}
		switch {
		case b[4]&0xC0 == 0x40: // MPEG-2: 14 bytes + stuffing
			if len(b) < 14 {
				return 0, false
			}
			return 14 + int(b[13]&7), len(b) >= 14+int(b[13]&7)
		case b[4]&0xF0 == 0x20: // MPEG-1: 12 bytes
			return 12, len(b) >= 12
		}
		return d.skip(b, 3), true
	case id == psEnd:
		return 4, true
	case id < psEnd:
		// An elementary-stream start code outside a PES: misaligned data.
		return d.skip(b, 3), true
	}
	if len(b) < 6 {
		return 0, false
	}
	n := 6 + int(binary.BigEndian.Uint16(b[4:]))
	if n == 6 && id >= 0xE0 && id <= 0xEF {
		// A video PES of unbounded length (allowed in TS, sent by some
		// cameras in PS): it runs to the next pack or PES start code.
		end := nextSystemStartCode(b, 6)
		if end < 0 {
			if len(b) < psMaxBuffered/2 {
				return 0, false
			}
			end = len(b)
		}
		n = end
	}
	if len(b) < n {
		return 0, false
	}
	if id >= 0xE0 && id <= 0xEF {
		// A pack start code cannot occur inside H.264/H.265 data (emulation
		// prevention), so one there means the PES length lied: cut the PES
		// short and parse on from the pack, instead of losing what follows.
		if i := bytes.Index(b[6:n], []byte{0, 0, 1, psPack}); i >= 0 {
			d.badLength++
			n = 6 + i
		}
	}
	switch id {
	case psSystem, psPadding, psPrivate2:
	case psMap:
		d.psm(b[:n])
	default:
		d.pesPacket(id, b[:n])
	}
	return n, true
}

// skip drops bytes up to the next 00 00 01 after from, counting them.
func (d *psDemuxer) skip(b []byte, from int) int {
	i := bytes.Index(b[from:], []byte{0, 0, 1})
	if i < 0 {
		// Keep the last two bytes: they may begin a start code.
		n := max(len(b)-2, 1)
		d.garbage += uint64(n)
		return n
	}
	n := from + i
	if n == 0 {
		n = 1
	}
	d.garbage += uint64(n)
	return n
}

// nextSystemStartCode finds the next pack, system, PSM or PES start code at or after from.
func nextSystemStartCode(b []byte, from int) int {
	for from < len(b) {
		i := bytes.Index(b[from:], []byte{0, 0, 1})
		if i < 0 || from+i+3 >= len(b) {
			return -1
		}
		if b[from+i+3] >= psPack {
			return from + i
		}
		from += i + 3
	}
	return -1
}

// psm parses a program stream map (ISO/IEC 13818-1 2.5.4).
func (d *psDemuxer) psm(b []byte) {
	if len(b) < 12 {
		return
	}
	infoLen := int(binary.BigEndian.Uint16(b[8:]))
	p := 10 + infoLen
	if p+2 > len(b) {
		return
	}
	mapLen := int(binary.BigEndian.Uint16(b[p:]))
	p += 2
	end := min(p+mapLen, len(b))
	known := false
	for i := 0; p+4 <= end && i < psMaxStreamsPSM; i++ {
		st, id := b[p], b[p+1]
		p += 4 + int(binary.BigEndian.Uint16(b[p+2:]))
		d.types[id] = st
		if c := codecOfStreamType(st); c != esUnknown {
			d.b.stream(int(id), c)
			known = true
		} else {
			d.b.logUnsupported(int(id), fmt.Sprintf("PS stream_type 0x%02x", st))
		}
	}
	if known {
		d.b.declared = true
	}
}

func (d *psDemuxer) pesPacket(id uint8, b []byte) {
	off, pts, dts, hasPTS, ok := parsePESHeader(b)
	if !ok {
		d.garbage += uint64(len(b))
		return
	}
	d.pes++
	payload := b[off:]
	if len(payload) == 0 {
		return
	}
	c := esUnknown
	if st, ok := d.types[id]; ok {
		c = codecOfStreamType(st)
	} else if s := d.es[id]; s != nil {
		c = s.e.codec // guessed from the stream's first payload; later ones start anywhere
	} else {
		c = guessCodec(id, payload)
	}
	if c == esUnknown {
		if id != psPrivate1 && (id < 0xC0 || id > 0xEF) {
			return
		}
		if _, declared := d.types[id]; declared || (id >= 0xC0 && id <= 0xDF) {
			d.b.logUnsupported(int(id), "PS stream without a known codec")
		}
		return
	}
	s := d.es[id]
	if s == nil || s.e.codec != c {
		e := d.b.stream(int(id), c)
		if e == nil {
			return
		}
		s = newESSplitter(d.b, e)
		d.es[id] = s
	}
	s.push(payload, pts, dts, hasPTS)
}

// guessCodec names the codec of a stream a PSM did not declare (ffmpeg's
// PS muxer writes none) from its first payload.
func guessCodec(id uint8, p []byte) esCodec {
	switch {
	case id >= 0xE0 && id <= 0xEF:
		i := bytes.Index(p, []byte{0, 0, 1})
		if i < 0 || i+5 > len(p) {
			return esUnknown
		}
		h0, h1 := p[i+3], p[i+4]
		if h0&0x80 != 0 {
			return esUnknown
		}
		if t := (h0 >> 1) & 0x3f; t >= 32 && t <= 35 && h1 == 1 {
			return esH265
		}
		if t := h0 & 0x1f; t >= 1 && t <= 23 {
			return esH264
		}
	case id >= 0xC0 && id <= 0xDF:
		if len(p) >= 2 && p[0] == 0xFF && p[1]&0xF6 == 0xF0 {
			return esAAC
		}
	}
	return esUnknown
}

// parsePESHeader reads the header of the PES packet b (start code, stream
// id and length included), MPEG-2 (ISO/IEC 13818-1 2.4.3.7) or MPEG-1
// (ISO/IEC 11172-1 2.4.3.3) form. off is where the payload starts.
func parsePESHeader(b []byte) (off int, pts, dts int64, hasPTS, ok bool) {
	if len(b) < 6 {
		return 0, 0, 0, false, false
	}
	p := 6
	if len(b) > p && b[p]&0xC0 == 0x80 { // MPEG-2
		if len(b) < 9 {
			return 0, 0, 0, false, false
		}
		flags := b[7] >> 6
		off = 9 + int(b[8])
		if off > len(b) {
			return 0, 0, 0, false, false
		}
		if flags&2 != 0 {
			if off < 14 {
				return 0, 0, 0, false, false
			}
			pts = readClock(b[9:])
			dts, hasPTS = pts, true
			if flags == 3 {
				if off < 19 {
					return 0, 0, 0, false, false
				}
				dts = readClock(b[14:])
			}
		}
		return off, pts, dts, hasPTS, true
	}
	// MPEG-1: stuffing, optional STD buffer size, then PTS/DTS.
	for i := 0; p < len(b) && b[p] == 0xFF && i < 16; i++ {
		p++
	}
	if p < len(b) && b[p]&0xC0 == 0x40 {
		p += 2
	}
	if p >= len(b) {
		return 0, 0, 0, false, false
	}
	switch b[p] >> 4 {
	case 2:
		if p+5 > len(b) {
			return 0, 0, 0, false, false
		}
		pts = readClock(b[p:])
		return p + 5, pts, pts, true, true
	case 3:
		if p+10 > len(b) {
			return 0, 0, 0, false, false
		}
		return p + 10, readClock(b[p:]), readClock(b[p+5:]), true, true
	}
	if b[p] == 0x0F {
		return p + 1, 0, 0, false, true
	}
	return 0, 0, 0, false, false
}

// readClock reads a 33-bit PTS/DTS spread over 5 bytes with marker bits.
func readClock(b []byte) int64 {
	return int64(b[0]>>1&0x07)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}
