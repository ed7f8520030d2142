package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Fragmented MP4 (ISO/IEC 14496-12): a stream of boxes, each a 32-bit
// size (1: a 64-bit size follows the type) and a four-character type. An
// init segment (ftyp, moov) says which track is video (§8.4.3 hdlr
// 'vide', §8.3.2 tkhd track_ID) and its default sample flags (§8.8.3
// trex); then each fragment is a moof (§8.8.4) and its mdat. A moof's
// traf has a tfhd (§8.8.7: track, default flags) and truns (§8.8.8:
// sample count, optional first-sample flags and per-sample flags). A
// sample is a keyframe when its sample_is_non_sync_sample bit (§8.8.3.1,
// 0x10000 of the flags) is clear.

const (
	boxMoov = 'm'<<24 | 'o'<<16 | 'o'<<8 | 'v'
	boxMoof = 'm'<<24 | 'o'<<16 | 'o'<<8 | 'f'
	boxTrak = 't'<<24 | 'r'<<16 | 'a'<<8 | 'k'
	boxTkhd = 't'<<24 | 'k'<<16 | 'h'<<8 | 'd'
	boxMdia = 'm'<<24 | 'd'<<16 | 'i'<<8 | 'a'
	boxHdlr = 'h'<<24 | 'd'<<16 | 'l'<<8 | 'r'
	boxMvex = 'm'<<24 | 'v'<<16 | 'e'<<8 | 'x'
	boxTrex = 't'<<24 | 'r'<<16 | 'e'<<8 | 'x'
	boxTraf = 't'<<24 | 'r'<<16 | 'a'<<8 | 'f'
	boxTfhd = 't'<<24 | 'f'<<16 | 'h'<<8 | 'd'
	boxTrun = 't'<<24 | 'r'<<16 | 'u'<<8 | 'n'

	handlerVide = 'v'<<24 | 'i'<<16 | 'd'<<8 | 'e'

	sampleNonSync = 0x10000

	// fmp4BoxLimit bounds a moov or moof held to be read (others are
	// skipped, whatever their size): a live fragment is a few KB.
	fmp4BoxLimit = 4 << 20
)

// errNotFMP4 reports a body that is not a stream of MP4 boxes.
var errNotFMP4 = errors.New("the body is not fragmented MP4")

// fmp4Scanner counts fragments, video samples and keyframes in a byte
// stream cut anywhere. moov and moof boxes are gathered in buf (reused);
// mdat and every other box are skipped as they pass.
type fmp4Scanner struct {
	hdr    [16]byte
	hn     int   // header bytes gathered; 0 between boxes
	left   int64 // body bytes of the current box still to come
	inBody bool
	keep   bool // gather the body in buf
	typ    uint32
	buf    []byte

	sawInit  bool
	videoID  uint32 // 0: no video track (or no init segment yet)
	videoDef uint32 // trex default_sample_flags of the video track
}

// scan reads b.
func (s *fmp4Scanner) scan(b []byte) (mediaCounts, error) {
	var c mediaCounts
	for len(b) > 0 {
		if !s.inBody {
			need := 8
			if s.hn >= 8 && binary.BigEndian.Uint32(s.hdr[:4]) == 1 {
				need = 16
			}
			k := copy(s.hdr[s.hn:need], b)
			s.hn += k
			b = b[k:]
			if s.hn < need {
				continue
			}
			if need == 8 && binary.BigEndian.Uint32(s.hdr[:4]) == 1 {
				continue // the 64-bit size comes next
			}
			if err := s.startBox(need); err != nil {
				return c, err
			}
		}
		k := int(min(int64(len(b)), s.left))
		if s.keep {
			s.buf = append(s.buf, b[:k]...)
		}
		s.left -= int64(k)
		b = b[k:]
		if s.left == 0 {
			if err := s.endBox(&c); err != nil {
				return c, err
			}
		}
	}
	return c, nil
}

// partial reports whether a box is cut off at the end of what was read.
func (s *fmp4Scanner) partial() bool { return s.hn > 0 || s.inBody }

func (s *fmp4Scanner) startBox(hlen int) error {
	size := int64(binary.BigEndian.Uint32(s.hdr[:4]))
	s.typ = binary.BigEndian.Uint32(s.hdr[4:8])
	if hlen == 16 {
		size = int64(binary.BigEndian.Uint64(s.hdr[8:16]))
	}
	switch {
	case size == 0:
		return fmt.Errorf("%w: a box %q runs to the end of the stream, which a live stream has not", errNotFMP4, fourCC(s.typ))
	case size < int64(hlen):
		return fmt.Errorf("%w: a box %q of %d bytes, less than its header", errNotFMP4, fourCC(s.typ), size)
	}
	s.left = size - int64(hlen)
	s.keep = s.typ == boxMoov || s.typ == boxMoof
	if s.keep && s.left > fmp4BoxLimit {
		return fmt.Errorf("%w: a %q of %d bytes, over the %d this reader holds", errNotFMP4, fourCC(s.typ), size, fmp4BoxLimit)
	}
	s.buf = s.buf[:0]
	s.inBody = true
	return nil
}

func (s *fmp4Scanner) endBox(c *mediaCounts) error {
	s.inBody, s.hn = false, 0
	switch s.typ {
	case boxMoov:
		s.parseMoov(s.buf)
	case boxMoof:
		c.packets++
		s.parseMoof(s.buf, c)
	}
	return nil
}

// fourCC is a box type for an error message.
func fourCC(t uint32) string {
	b := []byte{byte(t >> 24), byte(t >> 16), byte(t >> 8), byte(t)}
	for i, x := range b {
		if x < 0x20 || x > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// nextBox splits the first box off b: its type, body and the rest. A box
// that does not fit ends the walk (ok false).
func nextBox(b []byte) (typ uint32, body, rest []byte, ok bool) {
	if len(b) < 8 {
		return 0, nil, nil, false
	}
	size := uint64(binary.BigEndian.Uint32(b))
	typ = binary.BigEndian.Uint32(b[4:])
	h := uint64(8)
	if size == 1 {
		if len(b) < 16 {
			return 0, nil, nil, false
		}
		size, h = binary.BigEndian.Uint64(b[8:]), 16
	}
	if size < h || size > uint64(len(b)) {
		return 0, nil, nil, false
	}
	return typ, b[h:size], b[size:], true
}

// parseMoov finds the video track and its default sample flags.
func (s *fmp4Scanner) parseMoov(b []byte) {
	s.sawInit, s.videoID, s.videoDef = true, 0, 0
	var defs [8]struct{ id, flags uint32 }
	nd := 0
	for typ, body, rest, ok := nextBox(b); ok; typ, body, rest, ok = nextBox(rest) {
		switch typ {
		case boxTrak:
			if id, video := parseTrak(body); video && s.videoID == 0 {
				s.videoID = id
			}
		case boxMvex:
			for t, tb, r, ok := nextBox(body); ok; t, tb, r, ok = nextBox(r) {
				if t == boxTrex && len(tb) >= 24 && nd < len(defs) {
					defs[nd].id, defs[nd].flags = binary.BigEndian.Uint32(tb[4:]), binary.BigEndian.Uint32(tb[20:])
					nd++
				}
			}
		}
	}
	for _, d := range defs[:nd] {
		if d.id == s.videoID {
			s.videoDef = d.flags
		}
	}
}

// parseTrak returns a trak's track_ID and whether its handler is video.
func parseTrak(b []byte) (id uint32, video bool) {
	for typ, body, rest, ok := nextBox(b); ok; typ, body, rest, ok = nextBox(rest) {
		switch typ {
		case boxTkhd:
			off := 12 // version 0: flags, creation and modification times
			if len(body) > 0 && body[0] == 1 {
				off = 20
			}
			if len(body) >= off+4 {
				id = binary.BigEndian.Uint32(body[off:])
			}
		case boxMdia:
			for t, mb, r, ok := nextBox(body); ok; t, mb, r, ok = nextBox(r) {
				if t == boxHdlr && len(mb) >= 12 && binary.BigEndian.Uint32(mb[8:]) == handlerVide {
					video = true
				}
			}
		}
	}
	return id, video
}

// parseMoof counts the video track's samples and keyframes.
func (s *fmp4Scanner) parseMoof(b []byte, c *mediaCounts) {
	if s.videoID == 0 {
		return
	}
	for typ, traf, rest, ok := nextBox(b); ok; typ, traf, rest, ok = nextBox(rest) {
		if typ != boxTraf {
			continue
		}
		def, isVideo := s.videoDef, false
		for t, body, r, ok := nextBox(traf); ok; t, body, r, ok = nextBox(r) {
			switch t {
			case boxTfhd:
				if len(body) < 8 {
					break
				}
				isVideo = binary.BigEndian.Uint32(body[4:]) == s.videoID
				flags := uint32(body[1])<<16 | uint32(body[2])<<8 | uint32(body[3])
				off := 8
				for _, f := range []struct {
					bit  uint32
					size int
				}{{0x01, 8}, {0x02, 4}, {0x08, 4}, {0x10, 4}} {
					if flags&f.bit != 0 {
						off += f.size
					}
				}
				if flags&0x20 != 0 && len(body) >= off+4 {
					def = binary.BigEndian.Uint32(body[off:])
				}
			case boxTrun:
				if isVideo {
					trunSamples(body, def, c)
				}
			}
		}
	}
}

// trunSamples counts a trun's samples as video frames, each a keyframe
// or not by its flags.
func trunSamples(b []byte, def uint32, c *mediaCounts) {
	if len(b) < 8 {
		return
	}
	flags := uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := int64(binary.BigEndian.Uint32(b[4:]))
	off := 8
	if flags&0x01 != 0 { // data_offset
		off += 4
	}
	first, hasFirst := uint32(0), flags&0x04 != 0
	if hasFirst {
		if len(b) < off+4 {
			return
		}
		first = binary.BigEndian.Uint32(b[off:])
		off += 4
	}
	stride, flagsAt := 0, -1
	for _, f := range []uint32{0x100, 0x200, 0x400, 0x800} { // duration, size, flags, composition offset
		if f == 0x400 && flags&f != 0 {
			flagsAt = stride
		}
		if flags&f != 0 {
			stride += 4
		}
	}
	if flagsAt < 0 { // no per-sample flags: the first sample's, then the default
		if n == 0 {
			return
		}
		if !hasFirst {
			first = def
		}
		c.video(first&sampleNonSync == 0)
		c.videoN(def&sampleNonSync == 0, n-1)
		return
	}
	n = min(n, int64((len(b)-off)/stride)) // a sample count beyond the box is not believed
	for i := range int(n) {
		f := binary.BigEndian.Uint32(b[off+i*stride+flagsAt:])
		if i == 0 && hasFirst {
			f = first
		}
		c.video(f&sampleNonSync == 0)
	}
}
