package rtpproxy

import (
	"bytes"

	"github.com/bluenviron/mediacommon/v2/pkg/bits"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// esSplitter cuts one elementary stream of a PS into access units. In a PS
// a PES packet needs not hold exactly one access unit: ffmpeg fills 2 KB
// packs, so one PES holds the tail of a frame and the head of the next, and
// cameras split big frames over several PES. So the payloads are treated as
// a byte stream: H.264/H.265 is cut at NAL units that start a new access
// unit, AAC at ADTS headers, and each unit takes the timestamp of the PES in
// which it starts (ISO/IEC 13818-1 2.4.3.7, PTS semantics).
type esSplitter struct {
	b *builder
	e *elemStream

	buf   []byte
	marks []tsMark // PES timestamps by offset in buf
	cur   tsMark   // timestamp in effect at the parse position
	curOK bool

	// video: the NAL unit being read starts at start (-1: not synchronised)
	start     int
	startCode int // where the start code of the NAL unit at start begins
	scanFrom  int
	au        [][]byte
	auTS      tsMark
	auHasVCL  bool
	auOK      bool
	auOwn     bool // auTS came from a PES of its own, not from frameTime's guess

	// audio: next timestamp when a frame has no PES timestamp of its own
	next    int64
	nextOK  bool
	markNew bool // cur has not been used by a frame yet

	// video: frames that start in a PES after the one its PTS belongs to
	// (ffmpeg packs several small frames in one PES) are timed from the
	// previous frame plus the frame interval measured between PTS-carrying frames.
	lastTS     tsMark
	lastOK     bool
	lastMarked tsMark // the last frame that had its own PTS
	sinceMark  int    // frames since lastMarked
	frameDur   int64  // 90 kHz ticks per frame; 0 = not measured yet
	poc        pocClock
}

type tsMark struct {
	off      int
	pts, dts int64
}

const maxESBuffered = 8 << 20

func newESSplitter(b *builder, e *elemStream) *esSplitter {
	return &esSplitter{b: b, e: e, start: -1}
}

func (s *esSplitter) reset() {
	s.buf = s.buf[:0]
	s.marks = s.marks[:0]
	s.start, s.scanFrom = -1, 0
	s.au, s.auHasVCL, s.auOK = nil, false, false
	s.nextOK = false
	s.poc.anchorOK = false // the IDR that began the POC period may be among the lost
}

func (s *esSplitter) push(p []byte, pts, dts int64, hasPTS bool) {
	switch s.e.codec {
	case esG711A, esG711U:
		// No framing: each PES payload is one frame of 8 kHz samples.
		if hasPTS {
			s.next, s.nextOK = pts, true
		}
		if !s.nextOK {
			return
		}
		s.b.audio(s.e, s.next, clone(p))
		s.next += int64(len(p)) * clockHz / 8000
		return
	}
	if hasPTS {
		s.marks = append(s.marks, tsMark{off: len(s.buf), pts: pts, dts: dts})
	}
	s.buf = append(s.buf, p...)
	switch s.e.codec {
	case esH264, esH265:
		s.splitNALUs()
	case esAAC:
		s.splitADTS()
	}
	if len(s.buf) > maxESBuffered {
		s.reset()
	}
}

// advance makes the timestamp of the last mark at or before off current.
func (s *esSplitter) advance(off int) {
	i := 0
	for i < len(s.marks) && s.marks[i].off <= off {
		s.cur, s.curOK, s.markNew = s.marks[i], true, true
		i++
	}
	if i > 0 {
		s.marks = s.marks[:copy(s.marks, s.marks[i:])]
	}
}

// consume drops buf[:n] and shifts the offsets that point into buf.
func (s *esSplitter) consume(n int) {
	if n <= 0 {
		return
	}
	s.buf = s.buf[:copy(s.buf, s.buf[n:])]
	for i := range s.marks {
		s.marks[i].off -= n
	}
	if s.start >= 0 {
		s.start -= n
		s.startCode -= n
	}
	s.scanFrom = max(s.scanFrom-n, 0)
}

func (s *esSplitter) splitNALUs() {
	s.flushEarly() // the NAL unit in progress may have its first bytes now
	for {
		i := bytes.Index(s.buf[s.scanFrom:], []byte{0, 0, 1})
		if i < 0 {
			s.scanFrom = max(len(s.buf)-2, 0)
			break
		}
		i += s.scanFrom
		// The start code begins at its leading zeros (a 4-byte start code,
		// or trailing_zero_8bits): that is the first byte of the NAL unit
		// for PTS purposes, and what ffmpeg's muxer counts.
		sc := i
		for sc > max(s.start, 0) && s.buf[sc-1] == 0 {
			sc--
		}
		if s.start >= 0 {
			s.nalu(s.buf[s.start:sc], s.startCode)
		}
		s.start, s.startCode = i+3, sc
		s.scanFrom = i + 3
		s.flushEarly()
	}
	// Drop what is parsed; the NAL unit in progress stays.
	if s.start > 0 {
		s.consume(s.start)
	} else if s.start < 0 {
		s.consume(s.scanFrom)
	}
}

// flushEarly publishes the access unit being built as soon as the NAL unit
// in progress is known to start the next one: its first bytes say so (an
// AUD, a parameter set, SEI, or a slice that begins a picture). Waiting for
// that NAL unit's end, as nalu does, held every frame of a stream with one
// slice per frame until the start of the frame after the next: 40 ms more
// at 25 fps.
func (s *esSplitter) flushEarly() {
	if !s.auHasVCL || s.start < 0 {
		return
	}
	need := 2 // H.264: the NAL header and the first bit of the slice header
	if s.e.codec == esH265 {
		need = 3
	}
	if len(s.buf)-s.start < need {
		return
	}
	if vcl, first, boundary, _ := classifyNALU(s.e.codec, s.buf[s.start:s.start+need]); boundary || (vcl && first) {
		s.flushAU()
	}
}

func (s *esSplitter) nalu(n []byte, off int) {
	s.advance(off)
	if len(n) == 0 {
		return
	}
	vcl, first, boundary, drop := classifyNALU(s.e.codec, n)
	if s.auHasVCL && (boundary || (vcl && first)) {
		s.flushAU()
	}
	if drop {
		return
	}
	if len(s.au) == 0 {
		s.auOwn = s.curOK && s.markNew
		s.auTS, s.auOK = s.frameTime()
	}
	s.au = append(s.au, clone(n))
	if vcl {
		s.auHasVCL = true
	}
}

// frameTime is the timestamp of a video frame that starts now.
func (s *esSplitter) frameTime() (tsMark, bool) {
	if !s.curOK {
		return tsMark{}, false
	}
	if s.markNew {
		s.markNew = false
		if s.lastOK && s.sinceMark > 0 {
			if d := diff33(s.lastMarked.dts, s.cur.dts) / int64(s.sinceMark); d > 0 && d < clockHz {
				s.frameDur = d
			}
		}
		s.lastMarked, s.sinceMark = s.cur, 1
		s.lastTS, s.lastOK = s.cur, true
		return s.cur, true
	}
	// No PTS of its own: the previous frame's time plus one frame.
	d := s.frameDur
	if d == 0 {
		d = clockHz / 25
	}
	ts := tsMark{pts: (s.lastTS.pts + d) & maxClock, dts: (s.lastTS.dts + d) & maxClock}
	s.lastTS = ts
	s.sinceMark++
	return ts, true
}

func (s *esSplitter) flushAU() {
	au, ts, ok := s.au, s.auTS, s.auOK
	s.au, s.auHasVCL, s.auOK = nil, false, false
	if ok && len(au) > 0 {
		if s.e.codec == esH264 {
			d := s.frameDur
			if d == 0 {
				d = clockHz / 25
			}
			ts = s.poc.time(au, ts, s.auOwn, d)
		}
		s.b.video(s.e, ts.pts, ts.dts, au)
	}
}

// pocClock times the H.264 frames that have no PTS of their own when the
// stream reorders frames (B-frames). frameTime's guess, the previous frame
// plus one, is right for the decoding time but not for the presentation
// time then: ffmpeg's PS muxer packs several frames in one PES and only the
// first carries a PTS, so with B-frames the others came out with presentation
// times out of order and repeated (every player then stutters, and ffmpeg
// reading it over RTSP says "non monotonically increasing dts"). The picture
// order count (H.264 8.2.1) gives the display order: PTS = the PTS of the last
// frame that had one + the POC distance times the ticks per POC step.
type pocClock struct {
	spsRaw []byte
	sps    *h264.SPS // nil: unknown or unparsable; frames keep frameTime's time

	anchorOK  bool // a timed frame in the current POC period (since the last IDR)
	anchorOwn bool // and its PTS was its own, not derived
	anchorPOC uint32
	anchorPTS int64
	step      int64 // 90 kHz ticks per POC unit, measured; 0 = half a frame (POC counts 2 per frame)
	idrDelay  int64 // PTS - DTS of the last IDR that had its own PTS
}

// time returns the timestamp of the access unit au: ts when it had its own
// PTS (which becomes the anchor) or the stream's POC says nothing (POC type 1
// and 2: type 2 is output in decoding order, where ts is right).
func (p *pocClock) time(au [][]byte, ts tsMark, own bool, frameDur int64) tsMark {
	var slice []byte
	for _, n := range au {
		switch n[0] & 0x1f {
		case 7:
			if !eq(n, p.spsRaw) {
				p.spsRaw, p.sps = clone(n), nil
				var sps h264.SPS
				if sps.Unmarshal(n) == nil {
					p.sps = &sps
				}
			}
		case 1, 5:
			if slice == nil {
				slice = n
			}
		}
	}
	if p.sps == nil || p.sps.PicOrderCntType != 0 || slice == nil {
		return ts
	}
	idr := slice[0]&0x1f == 5
	poc, ok := picOrderCntLsb(slice, p.sps, idr)
	if !ok {
		return ts
	}
	if idr {
		p.anchorOK = false // the POC starts again
	}
	if own {
		if p.anchorOK && p.anchorOwn {
			if dp := pocDiff(poc, p.anchorPOC, p.sps); dp != 0 {
				if st := diff33(p.anchorPTS, ts.pts) / int64(dp); st > 0 && st < clockHz {
					p.step = st
				}
			}
		}
		if idr {
			p.idrDelay = diff33(ts.dts, ts.pts)
		}
		p.anchorOK, p.anchorOwn, p.anchorPOC, p.anchorPTS = true, true, poc, ts.pts
		return ts
	}
	if !p.anchorOK {
		if !idr {
			return ts
		}
		// An IDR without a PTS starts a period with no anchor: it is shown
		// as late after its decoding as the last IDR was.
		ts.pts = (ts.dts + p.idrDelay) & maxClock
		p.anchorOK, p.anchorOwn, p.anchorPOC, p.anchorPTS = true, false, poc, ts.pts
		return ts
	}
	step := p.step
	if step == 0 {
		step = frameDur / 2
	}
	ts.pts = (p.anchorPTS + int64(pocDiff(poc, p.anchorPOC, p.sps))*step) & maxClock
	if diff33(ts.dts, ts.pts) < 0 {
		ts.pts = ts.dts // a frame is never shown before it is decoded
	}
	return ts
}

// picOrderCntLsb reads pic_order_cnt_lsb from the slice header of the
// slice NAL unit n (H.264 7.3.3), for POC type 0.
func picOrderCntLsb(n []byte, sps *h264.SPS, idr bool) (uint32, bool) {
	// The fields before it take at most 3 ue(v) of 32 bits, 2 + 16 + 2 bits and a ue(v): 24 bytes.
	b := h264.EmulationPreventionRemove(n[1:min(len(n), 1+24)])
	pos := 0
	for range 3 { // first_mb_in_slice, slice_type, pic_parameter_set_id
		if _, err := bits.ReadGolombUnsigned(b, &pos); err != nil {
			return 0, false
		}
	}
	skip := int(sps.Log2MaxFrameNumMinus4) + 4 // frame_num
	if sps.SeparateColourPlaneFlag {
		skip += 2 // colour_plane_id
	}
	if _, err := bits.ReadBits(b, &pos, skip); err != nil {
		return 0, false
	}
	if !sps.FrameMbsOnlyFlag {
		field, err := bits.ReadFlag(b, &pos) // field_pic_flag
		if err != nil {
			return 0, false
		}
		if field {
			if _, err := bits.ReadFlag(b, &pos); err != nil { // bottom_field_flag
				return 0, false
			}
		}
	}
	if idr {
		if _, err := bits.ReadGolombUnsigned(b, &pos); err != nil { // idr_pic_id
			return 0, false
		}
	}
	v, err := bits.ReadBits(b, &pos, int(sps.Log2MaxPicOrderCntLsbMinus4)+4)
	if err != nil {
		return 0, false
	}
	return uint32(v), true
}

// pocDiff is a-b on the circle of pic_order_cnt_lsb values.
func pocDiff(a, b uint32, sps *h264.SPS) int32 {
	m := uint32(1) << (sps.Log2MaxPicOrderCntLsbMinus4 + 4)
	d := (a - b) & (m - 1)
	if d > m/2 {
		return int32(d) - int32(m)
	}
	return int32(d)
}

// classifyNALU says whether a NAL unit is a picture slice, whether it is the
// first slice of a picture, whether it can only start an access unit
// (parameter sets, SEI, delimiters: H.264 7.4.1.2.3, H.265 7.4.2.4.4), and
// whether it is dropped (access unit delimiters: the hub's AUs have none).
func classifyNALU(c esCodec, n []byte) (vcl, first, boundary, drop bool) {
	if c == esH265 {
		if len(n) < 3 {
			return false, false, false, true
		}
		t := (n[0] >> 1) & 0x3f
		switch {
		case t <= 31:
			return true, n[2]&0x80 != 0, false, false
		case t == 35:
			return false, false, true, true
		case t >= 32 && t <= 34, t == 39, t >= 41 && t <= 44, t >= 48 && t <= 55:
			return false, false, true, false
		}
		return false, false, false, false
	}
	if len(n) < 2 {
		return false, false, false, len(n) == 0
	}
	switch t := n[0] & 0x1f; {
	case t >= 1 && t <= 5:
		// first_mb_in_slice is the first ue(v) of the slice header: 0 is the single bit 1.
		return true, n[1]&0x80 != 0, false, false
	case t == 9:
		return false, false, true, true
	case t == 6 || t == 7 || t == 8 || (t >= 14 && t <= 18):
		return false, false, true, false
	}
	return false, false, false, false
}

// ADTS sampling frequencies (ISO/IEC 14496-3 table 1.18).
var adtsRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

func (s *esSplitter) splitADTS() {
	p := 0
	for {
		b := s.buf[p:]
		if len(b) < 7 {
			break
		}
		if b[0] != 0xFF || b[1]&0xF6 != 0xF0 {
			p++
			continue
		}
		flen := int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5])>>5
		hlen := 7
		if b[1]&1 == 0 {
			hlen = 9 // CRC follows the header
		}
		sri := int(b[2]>>2) & 0x0f
		if flen <= hlen || sri >= len(adtsRates) {
			p++
			continue
		}
		if len(b) < flen {
			break
		}
		s.advance(p)
		rate := adtsRates[sri]
		if s.e.aac == nil {
			ch := uint8((b[2]&1)<<2 | b[3]>>6)
			s.e.aac = &mpeg4audio.AudioSpecificConfig{
				Type: mpeg4audio.ObjectType(b[2]>>6 + 1), SampleRate: rate, ChannelConfig: ch, ChannelCount: int(ch),
			}
		}
		if s.curOK && s.markNew {
			s.next, s.nextOK, s.markNew = s.cur.pts, true, false
		}
		if s.nextOK {
			s.b.audio(s.e, s.next, clone(b[hlen:flen]))
			s.next += 1024 * clockHz / int64(rate)
		}
		p += flen
	}
	s.advance(p)
	s.consume(p)
}
