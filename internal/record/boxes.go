package record

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
)

// The few ISO BMFF (ISO/IEC 14496-12) box walks a recorder needs: the
// tracks' timescales of an init segment, moving a fragment's decode times
// (tfdt) so each file starts at 0, and finding where the last whole
// fragment of a file cut short ends. The bytes come from Berth's own muxer
// or from a file on disk that a crash cut anywhere, so every walk checks
// its bounds (FuzzCompleteLength, FuzzRebase).

// box is one box header found in a byte slice: its type and where its
// payload and the box end.
type box struct {
	typ        [4]byte
	start, pay int // box start, payload start
	end        int
}

func (b box) is(typ string) bool { return string(b.typ[:]) == typ }

// nextBox reads the box at pos of b[:end]; ok is false when none fits.
func nextBox(b []byte, pos, end int) (bx box, ok bool) {
	if pos < 0 || end > len(b) || pos+8 > end {
		return box{}, false
	}
	size := int(binary.BigEndian.Uint32(b[pos:]))
	pay := pos + 8
	switch size {
	case 0: // to the end (§4.2)
		size = end - pos
	case 1: // 64-bit largesize follows the type
		if pos+16 > end {
			return box{}, false
		}
		large := binary.BigEndian.Uint64(b[pos+8:])
		if large > uint64(end-pos) {
			return box{}, false
		}
		size, pay = int(large), pos+16
	}
	if size < pay-pos || size > end-pos {
		return box{}, false
	}
	bx = box{start: pos, pay: pay, end: pos + size}
	copy(bx.typ[:], b[pos+4:pos+8])
	return bx, true
}

// boxes lists the boxes of b, stopping at the first that does not fit.
func boxes(b []byte) []box {
	var out []box
	for pos := 0; ; {
		bx, ok := nextBox(b, pos, len(b))
		if !ok {
			return out
		}
		out = append(out, bx)
		pos = bx.end
	}
}

// child returns the first child box of parent of type typ.
func child(b []byte, parent box, typ string) (box, bool) {
	for pos := parent.pay; ; {
		c, ok := nextBox(b, pos, parent.end)
		if !ok {
			return box{}, false
		}
		if c.is(typ) {
			return c, true
		}
		pos = c.end
	}
}

func children(b []byte, parent box, typ string) []box {
	var out []box
	for pos := parent.pay; ; {
		c, ok := nextBox(b, pos, parent.end)
		if !ok {
			return out
		}
		if c.is(typ) {
			out = append(out, c)
		}
		pos = c.end
	}
}

// timescales returns the timescale of each track of an init segment by
// track ID (moov/trak/tkhd and moov/trak/mdia/mdhd, §8.3.2 and §8.4.2).
func timescales(init []byte) map[uint32]uint32 {
	out := map[uint32]uint32{}
	for _, top := range boxes(init) {
		if !top.is("moov") {
			continue
		}
		for _, trak := range children(init, top, "trak") {
			tkhd, ok1 := child(init, trak, "tkhd")
			mdia, ok2 := child(init, trak, "mdia")
			if !ok1 || !ok2 {
				continue
			}
			mdhd, ok := child(init, mdia, "mdhd")
			if !ok {
				continue
			}
			id, ok1 := fullBoxField(init, tkhd, 8, 16) // v0: 32-bit creation, modification; v1: 64-bit
			ts, ok2 := fullBoxField(init, mdhd, 8, 16)
			if ok1 && ok2 && ts > 0 {
				out[id] = ts
			}
		}
	}
	return out
}

// fullBoxField reads the 32-bit field after a full box's version and flags
// and the v0Skip (v1Skip for version 1) bytes of times before it.
func fullBoxField(b []byte, bx box, v0Skip, v1Skip int) (uint32, bool) {
	if bx.pay+4 > bx.end {
		return 0, false
	}
	skip := v0Skip
	if b[bx.pay] == 1 {
		skip = v1Skip
	}
	at := bx.pay + 4 + skip
	if at+4 > bx.end {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[at:]), true
}

// tfdt is where one track fragment's base media decode time sits in a
// fragment (moof/traf/tfdt, §8.8.12).
type tfdt struct {
	track uint32
	at    int  // offset of the time in the fragment
	wide  bool // version 1: 64 bits
}

// tfdts appends to dst where the tfdt of each traf of frag's moofs is.
func tfdts(dst []tfdt, frag []byte) []tfdt {
	for pos := 0; ; {
		top, ok := nextBox(frag, pos, len(frag))
		if !ok {
			return dst
		}
		pos = top.end
		if !top.is("moof") {
			continue
		}
		for tp := top.pay; ; {
			traf, ok := nextBox(frag, tp, top.end)
			if !ok {
				break
			}
			tp = traf.end
			if !traf.is("traf") {
				continue
			}
			hd, ok1 := child(frag, traf, "tfhd")
			dt, ok2 := child(frag, traf, "tfdt")
			if !ok1 || !ok2 || hd.pay+8 > hd.end || dt.pay+8 > dt.end {
				continue
			}
			t := tfdt{track: binary.BigEndian.Uint32(frag[hd.pay+4:]), at: dt.pay + 4, wide: frag[dt.pay] == 1}
			if t.wide && dt.pay+12 > dt.end {
				continue
			}
			dst = append(dst, t)
		}
	}
}

func (t tfdt) get(b []byte) uint64 {
	if t.wide {
		return binary.BigEndian.Uint64(b[t.at:])
	}
	return uint64(binary.BigEndian.Uint32(b[t.at:]))
}

func (t tfdt) set(b []byte, v uint64) {
	if t.wide {
		binary.BigEndian.PutUint64(b[t.at:], v)
		return
	}
	binary.BigEndian.PutUint32(b[t.at:], uint32(min(v, math.MaxUint32)))
}

// fileOffsets are the times subtracted from a file's fragments so that it
// starts at 0: the earliest track's first decode time, in each track's
// timescale, so the tracks keep their distance (A/V sync).
func fileOffsets(first []byte, scales map[uint32]uint32) map[uint32]uint64 {
	earliest := math.Inf(1)
	for _, t := range tfdts(nil, first) {
		if ts := scales[t.track]; ts > 0 {
			earliest = min(earliest, float64(t.get(first))/float64(ts))
		}
	}
	out := map[uint32]uint64{}
	if math.IsInf(earliest, 1) {
		return out
	}
	for id, ts := range scales {
		out[id] = uint64(math.Round(earliest * float64(ts)))
	}
	return out
}

// rebase appends frag to dst with each track's decode time moved back by
// its offset (never below 0), and returns it; scratch is reused for the
// tfdt positions (a recording calls it for every fragment).
func rebase(dst, frag []byte, offsets map[uint32]uint64, scratch *[]tfdt) []byte {
	start := len(dst)
	dst = append(dst, frag...)
	out := dst[start:]
	*scratch = tfdts((*scratch)[:0], out)
	for _, t := range *scratch {
		v := t.get(out)
		off := offsets[t.track]
		if v < off {
			v = off
		}
		t.set(out, v-off)
	}
	return dst
}

// errNotMP4 is returned for a file that does not begin with ftyp and moov.
var errNotMP4 = errors.New("no ftyp and moov at its start: not a recording")

// completeLength reads a fragmented MP4 that may have been cut anywhere (a
// crash, a full disk) and returns the length up to the end of its last whole
// moof+mdat pair (or of the moov when no fragment is whole), and how many
// whole fragments it has. Everything after that is the part-written last
// fragment, which no player could use.
func completeLength(r io.ReaderAt, size int64) (length int64, fragments int, err error) {
	var hdr [16]byte
	var pos int64
	sawFtyp, sawMoov, inMoof := false, false, false
	for pos+8 <= size {
		if _, err := r.ReadAt(hdr[:8], pos); err != nil {
			return 0, 0, err
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		head := int64(8)
		switch n {
		case 0:
			n = size - pos
		case 1:
			if pos+16 > size {
				return finish(length, fragments, sawMoov)
			}
			if _, err := r.ReadAt(hdr[8:16], pos+8); err != nil {
				return 0, 0, err
			}
			large := binary.BigEndian.Uint64(hdr[8:16])
			if large > uint64(math.MaxInt64) {
				return finish(length, fragments, sawMoov)
			}
			n, head = int64(large), 16
		}
		if n < head || n > size-pos {
			break // cut short here
		}
		switch {
		case !sawFtyp:
			if typ != "ftyp" {
				return 0, 0, errNotMP4
			}
			sawFtyp = true
		case !sawMoov:
			if typ != "moov" {
				return 0, 0, errNotMP4
			}
			sawMoov = true
			length = pos + n
		case typ == "moof":
			inMoof = true
		case typ == "mdat" && inMoof:
			inMoof = false
			fragments++
			length = pos + n
		}
		pos += n
	}
	return finish(length, fragments, sawMoov)
}

func finish(length int64, fragments int, sawMoov bool) (int64, int, error) {
	if !sawMoov {
		return 0, 0, errNotMP4
	}
	return length, fragments, nil
}
