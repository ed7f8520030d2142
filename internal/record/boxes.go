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
	typ        string
	start, pay int // box start, payload start
	end        int
}

// boxes lists the boxes of b, stopping at the first that does not fit.
func boxes(b []byte) []box {
	var out []box
	for pos := 0; pos+8 <= len(b); {
		size := int(binary.BigEndian.Uint32(b[pos:]))
		typ := string(b[pos+4 : pos+8])
		pay := pos + 8
		switch size {
		case 0: // to the end (§4.2)
			size = len(b) - pos
		case 1: // 64-bit largesize follows the type
			if pos+16 > len(b) {
				return out
			}
			large := binary.BigEndian.Uint64(b[pos+8:])
			if large > uint64(len(b)-pos) {
				return out
			}
			size, pay = int(large), pos+16
		}
		if size < pay-pos || size > len(b)-pos {
			return out
		}
		out = append(out, box{typ: typ, start: pos, pay: pay, end: pos + size})
		pos += size
	}
	return out
}

func child(b []byte, parent box, typ string) (box, bool) {
	for _, c := range boxes(b[parent.pay:parent.end]) {
		if c.typ == typ {
			c.start += parent.pay
			c.pay += parent.pay
			c.end += parent.pay
			return c, true
		}
	}
	return box{}, false
}

func children(b []byte, parent box, typ string) []box {
	var out []box
	for _, c := range boxes(b[parent.pay:parent.end]) {
		if c.typ == typ {
			c.start += parent.pay
			c.pay += parent.pay
			c.end += parent.pay
			out = append(out, c)
		}
	}
	return out
}

// timescales returns the timescale of each track of an init segment by
// track ID (moov/trak/tkhd and moov/trak/mdia/mdhd, §8.3.2 and §8.4.2).
func timescales(init []byte) map[uint32]uint32 {
	out := map[uint32]uint32{}
	for _, top := range boxes(init) {
		if top.typ != "moov" {
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

func tfdts(frag []byte) []tfdt {
	var out []tfdt
	for _, top := range boxes(frag) {
		if top.typ != "moof" {
			continue
		}
		for _, traf := range children(frag, top, "traf") {
			hd, ok1 := child(frag, traf, "tfhd")
			dt, ok2 := child(frag, traf, "tfdt")
			if !ok1 || !ok2 || hd.pay+8 > hd.end || dt.pay+8 > dt.end {
				continue
			}
			t := tfdt{track: binary.BigEndian.Uint32(frag[hd.pay+4:]), at: dt.pay + 4, wide: frag[dt.pay] == 1}
			if t.wide && dt.pay+12 > dt.end {
				continue
			}
			out = append(out, t)
		}
	}
	return out
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
	for _, t := range tfdts(first) {
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
// its offset (never below 0), and returns it.
func rebase(dst, frag []byte, offsets map[uint32]uint64) []byte {
	start := len(dst)
	dst = append(dst, frag...)
	out := dst[start:]
	for _, t := range tfdts(out) {
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
