package rtpproxy

import (
	"context"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/hub"
)

// tsPacket makes one 188-byte TS packet with pid and payload (padded with 0xFF).
func tsPacket(pid uint16, pusi bool, cc byte, payload []byte) []byte {
	p := make([]byte, 188)
	for i := range p {
		p[i] = 0xFF
	}
	p[0] = 0x47
	p[1] = byte(pid>>8) & 0x1f
	if pusi {
		p[1] |= 0x40
	}
	p[2] = byte(pid)
	p[3] = 0x10 | cc&0x0f
	copy(p[4:], payload)
	return p
}

// rtpWrap puts payload in an RTP packet.
func rtpWrap(pt byte, seq uint16, ssrc uint32, payload []byte) []byte {
	p := make([]byte, 12+len(payload))
	p[0], p[1] = 0x80, pt
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	copy(p[12:], payload)
	return p
}

// FuzzServerPackets drives the whole packet path (RTP parse, routing,
// reordering, TS and PS demuxing, publishing) with arbitrary packets: the
// input is a sequence of 2-byte length-prefixed packets, as on a TCP port.
func FuzzServerPackets(f *testing.F) {
	frame := func(pkts ...[]byte) []byte {
		var b []byte
		for _, p := range pkts {
			b = append(b, byte(len(p)>>8), byte(len(p)))
			b = append(b, p...)
		}
		return b
	}
	// A PAT and a PMT (H.264 on PID 256), then garbage TS, as ffmpeg's rtp_mpegts would carry.
	pat := tsPacket(0, true, 0, []byte{0, 0x00, 0xB0, 0x0D, 0, 1, 0xC1, 0, 0, 0, 1, 0xF0, 0, 0x2A, 0xB1, 0x04, 0xB2})
	pmt := tsPacket(0x1000, true, 0, []byte{0, 0x02, 0xB0, 0x12, 0, 1, 0xC1, 0, 0, 0xE1, 0, 0xF0, 0, 0x1B, 0xE1, 0, 0xF0, 0, 0, 0, 0, 0})
	ts := append(append([]byte{}, pat...), pmt...)
	f.Add(frame(rtpWrap(33, 1, 5, ts), rtpWrap(33, 2, 5, tsPacket(256, true, 0, []byte{0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1, 0, 0, 0, 1, 0x67}))))
	ps := synthPS(4)
	f.Add(frame(rtpWrap(96, 1, 6, ps[:700]), rtpWrap(96, 3, 6, ps[1400:2000]), rtpWrap(96, 2, 6, ps[700:1400])))
	f.Add(frame(rtpWrap(96, 1, 6, []byte{0, 0, 1, 0xBA}), rtpWrap(97, 2, 6, []byte{1, 2, 3})))
	f.Add(frame([]byte{0x80, 200, 0, 1}, []byte{1, 2, 3}))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := hub.New(hub.Options{})
		s := &Server{Hub: h, Log: slog.New(slog.DiscardHandler), TimeoutSec: 1}
		s.init()
		for len(data) >= 2 {
			n := int(binary.BigEndian.Uint16(data))
			data = data[2:]
			if n > len(data) {
				n = len(data)
			}
			s.packet(data[:n], "127.0.0.1:1", "tcp", 1, nil, nil)
			data = data[n:]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := s.Shutdown(ctx); err != nil || time.Since(start) > 3*time.Second {
			t.Fatalf("shutdown took %v: %v", time.Since(start), err)
		}
		h.Close()
	})
}
