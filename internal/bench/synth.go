package bench

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/rtspclient"
)

// The synthetic stream: H.264 RTP (RFC 6184) at a chosen bit rate, 25 fps,
// a keyframe (SPS, PPS, IDR) every second, slices in FU-A fragments of at
// most 1400 bytes. The slices are filler, not a picture: servers forward
// them untouched, and each fragment carries a magic and the time it was
// sent, so a reader can measure the delay the server adds.

// The parameter sets are built here rather than copied from an encoder:
// Baseline profile, 320x240, and pic_order_cnt_type 2 (picture order
// follows decoding order), so a server that derives DTS from the bitstream
// (for RTMP/FLV readers) gets DTS = PTS without parsing the filler slices.
var (
	synthSPS = buildSPS()
	synthPPS = buildPPS()
	// synthSDP is the synthetic stream's description.
	synthSDP = "v=0\r\n" +
		"o=- 0 0 IN IP4 127.0.0.1\r\n" +
		"s=berth bench\r\n" +
		"c=IN IP4 0.0.0.0\r\n" +
		"t=0 0\r\n" +
		"m=video 0 RTP/AVP 96\r\n" +
		"a=rtpmap:96 H264/90000\r\n" +
		"a=fmtp:96 packetization-mode=1; sprop-parameter-sets=" +
		base64.StdEncoding.EncodeToString(synthSPS) + "," + base64.StdEncoding.EncodeToString(synthPPS) +
		"; profile-level-id=" + fmt.Sprintf("%02X%02X%02X", synthSPS[1], synthSPS[2], synthSPS[3]) + "\r\n" +
		"a=control:trackID=0\r\n"
)

// bitWriter writes H.264 RBSP fields (ITU-T H.264 section 7.2).
type bitWriter struct {
	b []byte
	n int // bits used in the last byte
}

func (w *bitWriter) bit(v uint) {
	if w.n == 0 {
		w.b = append(w.b, 0)
	}
	if v != 0 {
		w.b[len(w.b)-1] |= 0x80 >> w.n
	}
	w.n = (w.n + 1) % 8
}

func (w *bitWriter) bits(v uint, n int) {
	for i := n - 1; i >= 0; i-- {
		w.bit(v >> i & 1)
	}
}

// ue writes an Exp-Golomb code (section 9.1).
func (w *bitWriter) ue(v uint) {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	w.bits(0, n)
	w.bits(v, n+1)
}

// trailing writes rbsp_trailing_bits.
func (w *bitWriter) trailing() []byte {
	w.bit(1)
	for w.n != 0 {
		w.bit(0)
	}
	return w.b
}

func buildSPS() []byte {
	w := &bitWriter{b: []byte{0x67, 66, 0xc0, 30}} // NAL type 7; Baseline, constraint sets 0+1, level 3.0
	w.ue(0)                                        // seq_parameter_set_id
	w.ue(0)                                        // log2_max_frame_num_minus4
	w.ue(2)                                        // pic_order_cnt_type
	w.ue(1)                                        // max_num_ref_frames
	w.bit(0)                                       // gaps_in_frame_num_value_allowed_flag
	w.ue(320/16 - 1)                               // pic_width_in_mbs_minus1
	w.ue(240/16 - 1)                               // pic_height_in_map_units_minus1
	w.bit(1)                                       // frame_mbs_only_flag
	w.bit(1)                                       // direct_8x8_inference_flag
	w.bit(0)                                       // frame_cropping_flag
	w.bit(0)                                       // vui_parameters_present_flag
	return w.trailing()
}

func buildPPS() []byte {
	w := &bitWriter{b: []byte{0x68}}
	w.ue(0)      // pic_parameter_set_id
	w.ue(0)      // seq_parameter_set_id
	w.bit(0)     // entropy_coding_mode_flag
	w.bit(0)     // bottom_field_pic_order_in_frame_present_flag
	w.ue(0)      // num_slice_groups_minus1
	w.ue(0)      // num_ref_idx_l0_default_active_minus1
	w.ue(0)      // num_ref_idx_l1_default_active_minus1
	w.bit(0)     // weighted_pred_flag
	w.bits(0, 2) // weighted_bipred_idc
	w.ue(0)      // pic_init_qp_minus26 (se(0) codes as ue(0))
	w.ue(0)      // pic_init_qs_minus26
	w.ue(0)      // chroma_qp_index_offset
	w.bit(1)     // deblocking_filter_control_present_flag
	w.bit(0)     // constrained_intra_pred_flag
	w.bit(0)     // redundant_pic_cnt_present_flag
	return w.trailing()
}

// stampMagic marks a fragment that carries a send time: bytes 2-5 of the
// FU-A payload, followed by stampTimeLen bytes of nanoseconds since
// stampEpoch, 7 bits to a byte with the top bit set. No byte of a stamp is
// 0: plain big-endian nanoseconds hold 00 00 00 01 from 4.3 s to 8.6 s
// into the process, an Annex-B start code inside the slice, and a server
// that splits NAL units on start codes (gortsplib's FU-A decoder does, for
// cameras that pack several) then reads the next byte as a NAL header: a
// bogus SPS or IDR that breaks its RTP to access unit conversion. Real
// encoders cannot emit that pattern (emulation prevention, H.264 7.4.1).
var stampMagic = [4]byte{'B', 'R', 'T', 'H'}

// stampTimeLen is the encoded send time's size: 9 x 7 bits hold 63 bits.
const stampTimeLen = 9

// stampLen is the magic and the send time.
const stampLen = len(stampMagic) + stampTimeLen

// stampEpoch is this process's clock origin; publisher and reader run in
// one process, so monotonic time since it is comparable.
var stampEpoch = time.Now()

const (
	synthFPS     = 25
	synthGOP     = 25
	synthMaxFrag = 1400
	rtpHeaderLen = 12
	stampOffset  = rtpHeaderLen + 2 // FU indicator and FU header come first
)

// synth generates the synthetic stream.
type synth struct {
	bytesPerFrame int
	seq           uint16
	ts            uint32
	frame         int
	ssrc          uint32
	buf           []byte
}

func newSynth(bitsPerSec float64, ssrc uint32) *synth {
	return &synth{bytesPerFrame: max(int(bitsPerSec/8/synthFPS), 64), ssrc: ssrc, buf: make([]byte, rtpHeaderLen+synthMaxFrag+2)}
}

// nextFrame emits every packet of the next frame. A keyframe is four
// average frames; the others share the rest, so the average rate holds.
// pkt is reused: emit must not keep it.
func (s *synth) nextFrame(emit func(pkt []byte) error) error {
	key := s.frame%synthGOP == 0
	size := s.bytesPerFrame * (synthGOP - 4) / (synthGOP - 1)
	nalType := byte(1) // non-IDR slice
	if key {
		size, nalType = 4*s.bytesPerFrame, 5 // IDR slice
		for _, ps := range [][]byte{synthSPS, synthPPS} {
			n := copy(s.buf[rtpHeaderLen:], ps)
			if err := emit(s.packet(n, false)); err != nil {
				return err
			}
		}
	}
	for off := 0; off < size; off += synthMaxFrag {
		n := min(synthMaxFrag, size-off)
		last := off+n >= size
		fu := s.buf[rtpHeaderLen:]
		fu[0] = 0x60 | 28 // NRI 3, FU-A
		fu[1] = nalType
		if off == 0 {
			fu[1] |= 0x80 // start
		}
		if last {
			fu[1] |= 0x40 // end
		}
		p := fu[2 : 2+n]
		for i := range p {
			p[i] = 0xab // never 00 00 0x, which would read as a start code
		}
		if n >= stampLen {
			copy(p, stampMagic[:])
		}
		if err := emit(s.packet(2+n, last)); err != nil {
			return err
		}
	}
	s.frame++
	s.ts += 90000 / synthFPS
	return nil
}

// senderReport is the RTCP sender report of the frame about to go out,
// captured now.
func (s *synth) senderReport(now time.Time, st *pubStats) ([]byte, error) {
	return rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: s.ssrc, NTPTime: codec.NTPTime(now), RTPTime: s.ts,
		PacketCount: uint32(st.packets.Load()), OctetCount: uint32(st.bytes.Load())}})
}

// packet writes the RTP header in front of the n payload bytes in s.buf.
func (s *synth) packet(n int, marker bool) []byte {
	b := s.buf
	b[0] = 0x80
	b[1] = 96
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], s.seq)
	binary.BigEndian.PutUint32(b[4:], s.ts)
	binary.BigEndian.PutUint32(b[8:], s.ssrc)
	s.seq++
	return b[:rtpHeaderLen+n]
}

// stamp writes the send time into a packet that carries the magic.
func stamp(pkt []byte) {
	if len(pkt) >= stampOffset+stampLen && [4]byte(pkt[stampOffset:]) == stampMagic {
		putStampTime(pkt[stampOffset+len(stampMagic):], time.Since(stampEpoch))
	}
}

// putStampTime writes d into b[:stampTimeLen], most significant 7 bits
// first, each byte with its top bit set so that none is 0.
func putStampTime(b []byte, d time.Duration) {
	v := uint64(d)
	for i := stampTimeLen - 1; i >= 0; i-- {
		b[i] = 0x80 | byte(v&0x7f)
		v >>= 7
	}
}

// stampDelay reads a send time back; ok is false when data has none.
func stampDelay(data []byte, now time.Duration) (time.Duration, bool) {
	if len(data) < stampLen || [4]byte(data) != stampMagic {
		return 0, false
	}
	var v uint64
	for _, b := range data[len(stampMagic):stampLen] {
		if b&0x80 == 0 {
			return 0, false
		}
		v = v<<7 | uint64(b&0x7f)
	}
	return now - time.Duration(v), true
}

// pubStats counts what a publisher sent.
type pubStats struct {
	bytes   atomic.Uint64
	packets atomic.Uint64
}

// publishSynth publishes the synthetic stream to an RTSP URL at real-time
// speed until ctx ends. ready is called once RECORD succeeded.
func publishSynth(ctx context.Context, url string, bitsPerSec float64, tr rtspclient.Transport, st *pubStats, ready func()) error {
	c, err := rtspclient.Dial(ctx, url, rtspclient.Options{Transport: tr})
	if err != nil {
		return err
	}
	defer c.Close()
	desc, err := c.Announce([]byte(synthSDP))
	if err != nil {
		return err
	}
	if err := c.SetupAll(desc); err != nil {
		return err
	}
	if err := c.Record(); err != nil {
		return err
	}
	if ready != nil {
		ready()
	}
	s := newSynth(bitsPerSec, uint32(time.Now().UnixNano()))
	emit := func(pkt []byte) error {
		stamp(pkt)
		if err := c.WritePacket(0, pkt); err != nil {
			return err
		}
		st.bytes.Add(uint64(len(pkt)))
		st.packets.Add(1)
		return nil
	}
	// Frame k goes out at start + k/fps: a late frame is sent at once and
	// the schedule holds, so the average rate stays real-time.
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastSR time.Time
	for k := 0; ; k++ {
		// A sender report with the first frame and every 5 s, as ffmpeg
		// sends them: it ties the RTP clock to the wall clock, so that a
		// converter starting on the stream places it at once (without
		// one, RTP to AU watches 500 ms of arrivals first).
		if now := time.Now(); now.Sub(lastSR) >= 5*time.Second {
			lastSR = now
			if sr, err := s.senderReport(now, st); err == nil {
				c.WriteRTCP(0, sr) // a lost report costs nothing; the next comes in 5 s
			}
		}
		if err := s.nextFrame(emit); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("publishing to %s: %w", url, err)
		}
		timer.Reset(time.Until(start.Add(time.Duration(k+1) * time.Second / synthFPS)))
		select {
		case <-ctx.Done():
			return nil
		case <-c.Done():
			return fmt.Errorf("publishing to %s: %w", url, c.Err())
		case <-timer.C:
		}
	}
}
