package ps

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// unit is one start-code unit of a program stream as a test reads it.
type unit struct {
	id       byte
	body     []byte // after the 4-byte start code (and for PES/PSM/system, after the length)
	pts, dts int64
	timed    bool
	payload  []byte // PES only
}

// walk splits a program stream into its units, checking every length; it
// is a strict reader of what the muxer writes, independent of Berth's
// tolerant demuxer (internal/rtpproxy), which the round-trip tests use.
func walk(t testing.TB, b []byte) []unit {
	t.Helper()
	var out []unit
	for len(b) > 0 {
		if len(b) < 4 || b[0] != 0 || b[1] != 0 || b[2] != 1 {
			t.Fatalf("no start code at % x", b[:min(len(b), 8)])
		}
		id := b[3]
		if id == StartPack {
			if len(b) < packHeaderLen || b[4]&0xC4 != 0x44 || b[13]&7 != 0 {
				t.Fatalf("bad pack header % x", b[:min(len(b), 14)])
			}
			out = append(out, unit{id: id, body: b[4:packHeaderLen]})
			b = b[packHeaderLen:]
			continue
		}
		if len(b) < 6 {
			t.Fatalf("truncated unit % x", b)
		}
		n := 6 + int(binary.BigEndian.Uint16(b[4:]))
		if n > len(b) {
			t.Fatalf("unit 0x%02x of %d bytes runs past the end (%d left)", id, n, len(b))
		}
		u := unit{id: id, body: b[6:n]}
		if id >= 0xC0 && id <= 0xEF {
			h := b[6:n]
			if len(h) < 3 || h[0]&0xC0 != 0x80 || int(h[2])+3 > len(h) {
				t.Fatalf("bad PES header % x", h[:min(len(h), 16)])
			}
			switch h[1] >> 6 {
			case 2:
				u.pts, u.dts, u.timed = readClock(h[3:]), readClock(h[3:]), true
			case 3:
				u.pts, u.dts, u.timed = readClock(h[3:]), readClock(h[8:]), true
			}
			u.payload = h[3+int(h[2]):]
		}
		out = append(out, u)
		b = b[n:]
	}
	return out
}

func readClock(b []byte) int64 {
	return int64(b[0]>>1&0x07)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}

// scr reads a pack header's SCR base (ISO/IEC 13818-1 2.5.3.4).
func scr(h []byte) int64 {
	return int64(h[0]>>3&7)<<30 | int64(h[0]&3)<<28 | int64(h[1])<<20 | int64(h[2]>>3)<<15 |
		int64(h[2]&3)<<13 | int64(h[3])<<5 | int64(h[4]>>3)
}

func TestAppendFrame(t *testing.T) {
	av := []Stream{{VideoID, TypeH264}, {AudioID, TypeAAC}}
	big := bytes.Repeat([]byte{0xAB}, 2*MaxPESPayload+100)
	for _, tc := range []struct {
		name     string
		streams  []Stream
		i        int
		pts, dts int64
		headers  bool
		payload  []byte
		ids      []byte // the units in order
	}{
		{"keyframe with headers", av, 0, 9000, 9000, true, []byte{0, 0, 0, 1, 0x65, 1, 2}, []byte{StartPack, StartSystem, StartMap, VideoID}},
		{"B-frame: PTS and DTS", av, 0, 12600, 9000, false, []byte{0, 0, 0, 1, 0x41, 9}, []byte{StartPack, VideoID}},
		{"audio", av, 1, 1 << 32, 1 << 32, false, []byte{0xFF, 0xF1, 1, 2, 3}, []byte{StartPack, AudioID}},
		{"a frame bigger than a PES", av, 0, 0, 0, false, big, []byte{StartPack, VideoID, VideoID, VideoID}},
		{"G.711 alone", []Stream{{AudioID, TypeG711A}}, 0, 1800, 1800, true, make([]byte, 160), []byte{StartPack, StartSystem, StartMap, AudioID}},
		{"33-bit wrap", av, 0, 1<<33 + 5, 1<<33 + 5, false, []byte{1}, []byte{StartPack, VideoID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Muxer{Streams: tc.streams}
			b := m.AppendFrame([]byte{0xEE}, tc.i, tc.pts, tc.dts, tc.headers, tc.payload)
			if b[0] != 0xEE {
				t.Fatal("AppendFrame overwrote dst")
			}
			if len(b)-1 > m.FrameSize(len(tc.payload)) {
				t.Errorf("wrote %d bytes, FrameSize said at most %d", len(b)-1, m.FrameSize(len(tc.payload)))
			}
			units := walk(t, b[1:])
			var ids []byte
			var payload []byte
			seen := false
			for k, u := range units {
				ids = append(ids, u.id)
				if u.id == tc.streams[tc.i].ID {
					payload = append(payload, u.payload...)
					if u.timed == seen {
						t.Errorf("PES #%d timed=%v; only the first PES of a frame carries PTS", k, u.timed)
					}
					if u.timed && (u.pts != tc.pts&(1<<33-1) || u.dts != tc.dts&(1<<33-1)) {
						t.Errorf("PTS/DTS = %d/%d, want %d/%d", u.pts, u.dts, tc.pts, tc.dts)
					}
					seen = true
				}
			}
			if !bytes.Equal(ids, tc.ids) {
				t.Errorf("units % x, want % x", ids, tc.ids)
			}
			if !bytes.Equal(payload, tc.payload) {
				t.Errorf("payload differs: %d bytes, want %d", len(payload), len(tc.payload))
			}
			if got := scr(units[0].body); got != tc.dts&(1<<33-1) {
				t.Errorf("SCR %d, want the DTS %d", got, tc.dts)
			}
		})
	}
}

// TestProgramStreamMap checks the PSM a GB28181 receiver reads the codecs
// from: its length, the stream list and the CRC over the whole section.
func TestProgramStreamMap(t *testing.T) {
	m := &Muxer{Streams: []Stream{{VideoID, TypeH265}, {AudioID, TypeG711A}}}
	units := walk(t, m.AppendFrame(nil, 0, 0, 0, true, []byte{1}))
	var psm, sys []byte
	for _, u := range units {
		switch u.id {
		case StartMap:
			psm = u.body
		case StartSystem:
			sys = u.body
		}
	}
	if want := []byte{TypeH265, VideoID, 0, 0, TypeG711A, AudioID, 0, 0}; !bytes.Equal(psm[6:len(psm)-4], want) {
		t.Errorf("PSM stream list % x, want % x", psm[6:len(psm)-4], want)
	}
	whole := append([]byte{0, 0, 1, StartMap, byte(len(psm) >> 8), byte(len(psm))}, psm...)
	if crc32MPEG(whole) != 0 {
		t.Errorf("PSM CRC does not check: % x", whole)
	}
	if sys[3]>>2 != 1 || sys[4]&0x1f != 1 {
		t.Errorf("system header bounds: audio %d video %d, want 1 and 1", sys[3]>>2, sys[4]&0x1f)
	}
	if crc32MPEG([]byte("123456789")) != 0x0376E6E7 {
		t.Errorf("CRC-32/MPEG-2 check value: %08x", crc32MPEG([]byte("123456789")))
	}
}

// FuzzAppendFrame: any payload and time comes back whole from the packs.
func FuzzAppendFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x65}, int64(0), int64(0), true, false)
	f.Add(bytes.Repeat([]byte{0, 0, 1, 0xBA}, 20000), int64(1<<33+7), int64(5), false, true)
	f.Fuzz(func(t *testing.T, payload []byte, pts, dts int64, headers, audio bool) {
		m := &Muxer{Streams: []Stream{{VideoID, TypeH264}, {AudioID, TypeAAC}}}
		i := 0
		if audio {
			i = 1
		}
		b := m.AppendFrame(nil, i, pts, dts, headers, payload)
		var got []byte
		for _, u := range walk(t, b) {
			if u.id == m.Streams[i].ID {
				got = append(got, u.payload...)
			}
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("payload of %d bytes came back as %d", len(payload), len(got))
		}
	})
}

func BenchmarkAppendFrame(b *testing.B) {
	m := &Muxer{Streams: []Stream{{VideoID, TypeH264}, {AudioID, TypeAAC}}}
	payload := make([]byte, 20000) // a 4 Mb/s frame at 25 fps
	buf := make([]byte, 0, m.FrameSize(len(payload)))
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for i := range b.N {
		buf = m.AppendFrame(buf[:0], 0, int64(i)*3600, int64(i)*3600, i%25 == 0, payload)
	}
}
