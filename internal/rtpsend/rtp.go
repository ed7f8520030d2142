package rtpsend

import "encoding/binary"

// rtpWriter cuts a frame's payload into RTP packets of one SSRC (RFC 3550
// section 5.1): a sequence number per packet, the frame's timestamp on
// each, the marker on its last, so a receiver knows the frame is whole.
type rtpWriter struct {
	ssrc   uint32
	pt     uint8
	seq    uint16
	framed bool // TCP: each packet preceded by its 16-bit length (RFC 4571)

	buf  []byte   // the frame's packets back to back, reused
	pkts [][]byte // each packet (with its length prefix over TCP), slices of buf
}

// packets builds the packets of one frame and returns them; they stay
// valid until the next call.
func (w *rtpWriter) packets(payload []byte, ts uint32) [][]byte {
	n := (len(payload) + maxPayload - 1) / maxPayload
	prefix := 0
	if w.framed {
		prefix = 2
	}
	need := len(payload) + n*(rtpHeader+prefix)
	if cap(w.buf) < need {
		w.buf = make([]byte, 0, need+need/4)
	}
	w.buf, w.pkts = w.buf[:0], w.pkts[:0]
	for i := 0; len(payload) > 0; i++ {
		chunk := payload[:min(len(payload), maxPayload)]
		payload = payload[len(chunk):]
		start := len(w.buf)
		if w.framed {
			w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(rtpHeader+len(chunk)))
		}
		mark := byte(0)
		if len(payload) == 0 {
			mark = 0x80
		}
		w.buf = append(w.buf, 0x80, mark|w.pt&0x7f, byte(w.seq>>8), byte(w.seq))
		w.buf = binary.BigEndian.AppendUint32(w.buf, ts)
		w.buf = binary.BigEndian.AppendUint32(w.buf, w.ssrc)
		w.buf = append(w.buf, chunk...)
		w.pkts = append(w.pkts, w.buf[start:])
		w.seq++
	}
	return w.pkts
}

// relay rewrites one RTP packet of the stream (raw ES sending) with this
// sender's SSRC, payload type and sequence numbers; the timestamp and
// marker stay as the packetizer made them.
func (w *rtpWriter) relay(pkt []byte) [][]byte {
	prefix := 0
	if w.framed {
		prefix = 2
	}
	w.buf = w.buf[:0]
	if w.framed {
		w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(pkt)))
	}
	w.buf = append(w.buf, pkt...)
	h := w.buf[prefix:]
	h[1] = h[1]&0x80 | w.pt&0x7f
	binary.BigEndian.PutUint16(h[2:], w.seq)
	binary.BigEndian.PutUint32(h[8:], w.ssrc)
	w.seq++
	w.pkts = append(w.pkts[:0], w.buf)
	return w.pkts
}
