package codec

// AV1 (RTP Payload Format for AV1, aomediacodec.github.io/av1-rtp-spec).
// An AV1 access unit in the hub is one temporal unit as its OBUs, as the
// RTP payload format carries them: no temporal delimiters (section 5),
// obu_size fields optional (section 4.4 says SHOULD be absent; writers that
// need them add them). AV1 has no separate decoding order at the temporal
// unit level, so PTS equals DTS. The sequence header has no place in the
// SDP: it travels in-band, in every keyframe temporal unit.

import (
	"bytes"
	"errors"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/pion/rtp"

	"github.com/berthmedia/berth/internal/hub"
)

// AV1Track describes an AV1 track published as access units. The SDP's
// profile, level-idx and tier come from the sequence header OBU seq when
// it parses; the sequence header itself travels in the keyframes.
func AV1Track(seq []byte) *hub.Track {
	f := &format.AV1{PayloadTyp: VideoPayloadType}
	var h av1.SequenceHeader
	if len(seq) > 0 && h.Unmarshal(seq) == nil && len(h.SeqLevelIdx) > 0 && len(h.SeqTier) > 0 {
		profile, level, tier := int(h.SeqProfile), int(h.SeqLevelIdx[0]), 0
		if h.SeqTier[0] {
			tier = 1
		}
		f.Profile, f.LevelIdx, f.Tier = &profile, &level, &tier
	}
	return videoTrack(f)
}

// obuType is an OBU's type (AV1 spec section 5.3.1); obu is not empty.
func obuType(obu []byte) av1.OBUType { return av1.OBUType((obu[0] >> 3) & 0x0f) }

// AV1SequenceHeader returns the first sequence header OBU of a temporal
// unit, or nil.
func AV1SequenceHeader(tu [][]byte) []byte {
	for _, obu := range tu {
		if len(obu) > 0 && obuType(obu) == av1.OBUTypeSequenceHeader {
			return obu
		}
	}
	return nil
}

// av1Elements drops empty OBUs, which rtpav1's encoder cannot take, and
// temporal delimiters, which RTP leaves out (section 5). It copies only
// when there is one to drop.
func av1Elements(tu [][]byte) [][]byte {
	keep := func(obu []byte) bool { return len(obu) > 0 && obuType(obu) != av1.OBUTypeTemporalDelimiter }
	for i, obu := range tu {
		if !keep(obu) {
			out := append([][]byte(nil), tu[:i]...)
			for _, obu := range tu[i+1:] {
				if keep(obu) {
					out = append(out, obu)
				}
			}
			return out
		}
	}
	return tu
}

// av1Key reports whether an AV1 RTP payload starts a keyframe: the
// aggregation header's N bit (first packet of a coded video sequence,
// section 4.4), or an OBU element that starts in this packet and is a
// sequence header, which senders that leave N unset still put first in a
// keyframe's temporal unit.
func av1Key(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	z, n, w := p[0]&0x80 != 0, p[0]&0x08 != 0, int(p[0]>>4)&3
	if n {
		return true
	}
	p = p[1:]
	for i := 0; len(p) > 0; i++ {
		elem := p
		if w == 0 || i < w-1 { // the element has its length (LEB128) in front
			var size av1.LEB128
			k, err := size.Unmarshal(p)
			if err != nil || uint64(size) > uint64(len(p)-k) {
				return false
			}
			elem, p = p[k:k+int(size)], p[k+int(size):]
		} else {
			p = nil
		}
		if (i > 0 || !z) && len(elem) > 0 && obuType(elem) == av1.OBUTypeSequenceHeader {
			return true
		}
	}
	return false
}

// av1AU completes an AV1 temporal unit from RTP: a keyframe is a temporal
// unit with a sequence header (nothing decodes before one), and its time
// is its PTS and DTS alike.
func (d *depacketizer) av1AU(t *depackTrack, tu [][]byte, ticks int64, recv time.Time, out []*hub.Frame) []*hub.Frame {
	tu = av1Elements(tu)
	if len(tu) == 0 {
		return out
	}
	key := av1.IsRandomAccess2(tu)
	if t.waitKey && !key {
		return out
	}
	t.waitKey = false
	t.clock.sample(ticks, d.tl.pos(recv))
	return d.emit(t, &hub.Frame{Track: t.index, Key: key, AU: tu, Recv: recv}, ticks, ticks, recv, out)
}

// av1Packer packetizes AV1 temporal units with rtpav1's encoder, checking
// each result with rtpav1's decoder. gortsplib v5.6.4's encoder loses an
// OBU boundary when a complete OBU leaves 0 to 2 bytes in a packet: it
// marks the packet Y and the next one Z although nothing was fragmented,
// so receivers join two OBUs into one (fixed upstream in gortsplib pull
// request 1153). A temporal unit that does not come back whole is packed
// again with a slightly smaller payload size, which moves the OBU ends.
type av1Packer struct {
	pt   uint8
	ssrc uint32
	seq  uint16 // of the next packet: gapless across temporal units
	max  int    // payload bytes per packet
}

func newAV1Packer(pt uint8) (*av1Packer, error) {
	e := rtpav1.Encoder{PayloadType: pt}
	if err := e.Init(); err != nil { // draws the random SSRC and first sequence number
		return nil, err
	}
	return &av1Packer{pt: pt, ssrc: *e.SSRC, seq: *e.InitialSequenceNumber, max: PayloadMaxSize}, nil
}

// AV1Packetizer packetizes the hub's AV1 temporal units for a protocol
// that sends RTP itself (WebRTC): the same checked packing RTSP readers
// get, with the N bit on a keyframe's first packet (section 4.4, which
// Chrome reads as "keyframe") and sequence numbers gapless across units.
type AV1Packetizer struct{ p *av1Packer }

// NewAV1Packetizer returns a packetizer of payloads of at most maxPayload
// bytes (WebRTC keeps packets under 1200 bytes; RTSP uses PayloadMaxSize).
func NewAV1Packetizer(pt uint8, maxPayload int) (*AV1Packetizer, error) {
	p, err := newAV1Packer(pt)
	if err != nil {
		return nil, err
	}
	p.max = maxPayload
	return &AV1Packetizer{p}, nil
}

// Encode packetizes one temporal unit; temporal delimiters and empty OBUs
// are left out (section 5). Timestamps start at 0: the caller adds its own.
func (a *AV1Packetizer) Encode(tu [][]byte) ([]*rtp.Packet, error) {
	tu = av1Elements(tu)
	if len(tu) == 0 {
		return nil, nil
	}
	return a.p.encode(tu)
}

// errAV1Packing means no payload size tried gave a temporal unit back whole.
var errAV1Packing = errors.New("rtpav1 could not packetize the temporal unit without merging OBUs")

func (p *av1Packer) encode(tu [][]byte) ([]*rtp.Packet, error) {
	for try := range 4 {
		seq := p.seq
		e := rtpav1.Encoder{PayloadType: p.pt, SSRC: &p.ssrc, InitialSequenceNumber: &seq, PayloadMaxSize: p.max - 3*try}
		if err := e.Init(); err != nil {
			return nil, err
		}
		pkts, err := e.Encode(tu)
		if err != nil {
			return nil, err
		}
		if av1Intact(pkts, tu) {
			p.seq += uint16(len(pkts))
			return pkts, nil
		}
	}
	return nil, errAV1Packing
}

// av1Intact reports whether pkts decode to exactly the OBUs of tu.
func av1Intact(pkts []*rtp.Packet, tu [][]byte) bool {
	var d rtpav1.Decoder
	if d.Init() != nil {
		return false
	}
	for i, pkt := range pkts {
		got, err := d.Decode(pkt)
		if i < len(pkts)-1 {
			if !errors.Is(err, rtpav1.ErrMorePacketsNeeded) {
				return false
			}
			continue
		}
		if err != nil || len(got) != len(tu) {
			return false
		}
		for j := range got {
			if !bytes.Equal(got[j], tu[j]) {
				return false
			}
		}
	}
	return true
}
