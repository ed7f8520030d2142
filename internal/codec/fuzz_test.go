package codec

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/hub"
)

// fuzzTracks has one track of every convertible codec, the way an RTSP
// publisher's SDP would describe them.
func fuzzTracks() []*hub.Track {
	conf := &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2, ChannelConfig: 2}
	latm := &format.MPEG4AudioLATM{PayloadTyp: 98, ProfileLevelID: 30, StreamMuxConfig: &mpeg4audio.StreamMuxConfig{
		Programs: []*mpeg4audio.StreamMuxConfigProgram{{Layers: []*mpeg4audio.StreamMuxConfigLayer{{AudioSpecificConfig: conf, LatmBufferFullness: 255}}}},
	}}
	return []*hub.Track{
		H264Track(testSPS, testPPS),
		H264Track(nil, nil),
		H265Track(nil, nil, nil),
		AACTrackConfig(conf),
		{Format: latm},
		OpusTrack(2),
		G711Track(false, 8000, 1),
	}
}

// synthetic access units per fuzz track: big enough to fragment, with
// parameter sets in the keyframe.
func syntheticAUs() [][][]byte {
	big := bytes.Repeat([]byte{0xaa}, 3000)
	idr := append([]byte{0x65, 0x88}, big...)
	return [][][]byte{
		{testSPS, testPPS, idr},
		{{0x41, 0x9a, 0x01, 0x02}},
		{{0x40, 0x01, 0x0c}, {0x42, 0x01, 0x01}, {0x44, 0x01, 0xc0}, append([]byte{0x26, 0x01, 0xaf}, big...)},
		{{0x21, 0x10, 0x05, 0x00}},
		{{0x21, 0x10, 0x05}},
		{{0xfc, 0xff, 0xfe}},
		bytes.Split(bytes.Repeat([]byte{0xd5}, 160), nil)[:1],
	}
}

// encodeRecords serialises frames as the fuzz input: track, length, packet.
func encodeRecords(frames []*hub.Frame) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, byte(f.Track))
		b = binary.BigEndian.AppendUint16(b, uint16(len(f.RTP())))
		b = append(b, f.RTP()...)
	}
	return b
}

// FuzzRTPToAU feeds arbitrary packets to every codec's depacketizer: it
// must never panic (not even one it recovers from) and every AU it emits
// must be well formed.
func FuzzRTPToAU(f *testing.F) {
	tracks := fuzzTracks()
	p := newPacketizer(&hub.Stream{Tracks: tracks}, slog.New(slog.DiscardHandler))
	for i, au := range syntheticAUs() {
		var frames []*hub.Frame
		for k := range 3 {
			frames = p.push(&hub.Frame{Track: i, Key: k == 0, AU: au, PTS: time.Duration(k) * 40 * time.Millisecond}, frames)
		}
		f.Add(encodeRecords(frames))
		if len(frames) > 2 { // a lost packet
			f.Add(encodeRecords(append(frames[:1:1], frames[2:]...)))
		}
	}
	for _, c := range brokenPacketCases() {
		f.Add(encodeRecords([]*hub.Frame{hub.NewRTPFrame(c.track, c.pkt, false, time.Time{})}))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &hub.Stream{Path: "fuzz", Tracks: tracks, Since: time.Unix(0, 0)}
		d := newDepacketizer(s, slog.New(slog.DiscardHandler))
		recv := time.Unix(1, 0)
		var out []*hub.Frame
		for len(data) >= 3 {
			track := int(data[0]) % (len(tracks) + 1) // one index past the end too
			n := min(int(binary.BigEndian.Uint16(data[1:])), len(data)-3)
			pkt := data[3 : 3+n]
			data = data[3+n:]
			recv = recv.Add(time.Millisecond)
			out = d.push(hub.NewRTPFrame(track, pkt, false, recv), out[:0])
			for _, o := range out {
				if len(o.AU) == 0 || o.DTS > o.PTS || o.DTS < 0 {
					t.Fatalf("malformed AU frame: %d units, PTS %v DTS %v", len(o.AU), o.PTS, o.DTS)
				}
				for _, u := range o.AU {
					if len(u) == 0 {
						t.Fatal("empty unit in an AU")
					}
				}
			}
		}
		for _, o := range d.flush(out[:0]) {
			if o.DTS > o.PTS || o.DTS < 0 {
				t.Fatalf("malformed AU frame: PTS %v DTS %v", o.PTS, o.DTS)
			}
		}
		if d.panics != 0 {
			t.Fatalf("%d decoder panics recovered", d.panics)
		}
	})
}

// FuzzAUToRTP feeds arbitrary access units (as a buggy or hostile RTMP
// publisher could make them) to every codec's packetizer.
func FuzzAUToRTP(f *testing.F) {
	for i, au := range syntheticAUs() {
		f.Add(uint8(i), true, bytes.Join(au, []byte{0, 0, 1}))
	}
	f.Add(uint8(0), true, []byte{})
	f.Add(uint8(0), false, []byte{0, 0, 1, 0, 0, 1})
	tracks := fuzzTracks()
	f.Fuzz(func(t *testing.T, track uint8, key bool, data []byte) {
		s := &hub.Stream{Path: "fuzz", Tracks: tracks}
		p := newPacketizer(s, slog.New(slog.DiscardHandler))
		au := bytes.Split(data, []byte{0, 0, 1})
		out := p.push(&hub.Frame{Track: int(track) % (len(tracks) + 1), Key: key, AU: au, PTS: time.Second}, nil)
		for _, o := range out {
			if _, ok := ParseRTP(o.RTP()); !ok {
				t.Fatal("packetizer made a packet that is not RTP")
			}
			// An Opus packet is never split (RFC 7587): it may go over
			// PayloadMaxSize, never over what one Opus packet holds.
			max := PayloadMaxSize
			if _, opus := tracks[o.Track].Format.(*format.Opus); opus {
				max = maxOpusPacket
			}
			if len(o.RTP()) > 12+max {
				t.Fatalf("packet of %d bytes", len(o.RTP()))
			}
		}
		if p.panics != 0 {
			t.Fatalf("%d encoder panics recovered", p.panics)
		}
	})
}

type brokenPacket struct {
	name  string
	track int
	pkt   []byte
}

func rtpPacket(marker bool, seq uint16, ts uint32, payload ...byte) []byte {
	b := []byte{0x80, 96, byte(seq >> 8), byte(seq), byte(ts >> 24), byte(ts >> 16), byte(ts >> 8), byte(ts), 1, 2, 3, 4}
	if marker {
		b[1] |= 0x80
	}
	return append(b, payload...)
}

func brokenPacketCases() []brokenPacket {
	return []brokenPacket{
		{"not RTP", 0, []byte{0x00, 0x01}},
		{"empty H264 payload", 0, rtpPacket(true, 1, 0)},
		{"H264 FU-A without header", 0, rtpPacket(true, 1, 0, 0x7c)},
		{"H264 FU-A end without start", 0, rtpPacket(true, 1, 0, 0x7c, 0x45, 1)},
		{"H264 STAP-A length past end", 0, rtpPacket(true, 1, 0, 0x78, 0x00, 0x09, 0x67)},
		{"H264 STAP-A zero length", 0, rtpPacket(true, 1, 0, 0x78, 0x00, 0x00)},
		{"H264 IDR without SPS", 1, rtpPacket(true, 1, 0, 0x65, 0x88, 0x84)},
		{"H264 empty NALU type 0", 1, rtpPacket(true, 1, 0, 0x00)},
		{"H265 short", 2, rtpPacket(true, 1, 0, 0x40)},
		{"H265 FU bad", 2, rtpPacket(true, 1, 0, 0x62, 0x01)},
		{"H265 AP zero length", 2, rtpPacket(true, 1, 0, 0x60, 0x01, 0x00, 0x00)},
		{"AAC no AU headers", 3, rtpPacket(true, 1, 0, 0x00, 0x00)},
		{"AAC headers too long", 3, rtpPacket(true, 1, 0, 0xff, 0xff, 0x01)},
		{"LATM garbage", 4, rtpPacket(true, 1, 0, 0xff, 0xff, 0xff)},
		{"Opus empty", 5, rtpPacket(true, 1, 0)},
		{"G711 empty", 6, rtpPacket(true, 1, 0)},
		{"padding longer than packet", 6, append(rtpPacket(true, 1, 0, 1, 2), 200)},
		{"track out of range", 9, rtpPacket(true, 1, 0, 0x65)},
	}
}

// TestDepacketizerDropsBrokenPacketsAndKeepsGoing sends each broken packet,
// then a valid AU of the same track: the broken one yields nothing (or a
// logged drop), the valid one still comes out.
func TestDepacketizerDropsBrokenPacketsAndKeepsGoing(t *testing.T) {
	tracks := fuzzTracks()
	good := syntheticAUs()
	for _, c := range brokenPacketCases() {
		t.Run(c.name, func(t *testing.T) {
			s := &hub.Stream{Path: "live/broken", Tracks: tracks, Since: time.Unix(0, 0)}
			d := newDepacketizer(s, testLog(t))
			out := d.push(hub.NewRTPFrame(c.track, c.pkt, false, time.Unix(1, 0)), nil)
			if d.panics != 0 {
				t.Fatal("decoder panicked")
			}
			for _, o := range out {
				if c.track != 3 && c.track != 5 && c.track != 6 { // audio passes payload bytes through
					t.Errorf("broken packet made an AU of %d units", len(o.AU))
				}
			}
			if c.track >= len(tracks) {
				return
			}
			p := newPacketizer(s, testLog(t))
			tr := c.track
			if tr == 1 || tr == 2 {
				tr = 0 // H.264 with parameter sets decodes for sure
			}
			if tr != c.track {
				return
			}
			pkts := p.push(&hub.Frame{Track: tr, Key: true, AU: good[tr], PTS: time.Second}, nil)
			for i := range pkts {
				pkts[i].Recv = time.Unix(2, 0)
			}
			var got []*hub.Frame
			for _, pk := range pkts {
				got = d.push(pk, got)
			}
			if got = d.flush(got); len(got) == 0 {
				t.Fatalf("the valid AU after the broken packet did not come out")
			}
		})
	}
}

// TestOpusPacketSizes: an Opus packet is one RTP packet whatever its size
// (RFC 7587), up to what an Opus packet can hold; one past that is dropped.
func TestOpusPacketSizes(t *testing.T) {
	s := &hub.Stream{Path: "opus", Tracks: []*hub.Track{OpusTrack(2)}}
	for _, tc := range []struct {
		size, packets int
	}{
		{100, 1},
		{3000, 1}, // 60 ms at a high rate: over PayloadMaxSize, still one packet
		{maxOpusPacket, 1},
		{maxOpusPacket + 1, 0},
		{70000, 0}, // would overflow RTSP's 16-bit interleaved length
	} {
		p := newPacketizer(s, slog.New(slog.DiscardHandler))
		out := p.push(&hub.Frame{Track: 0, AU: [][]byte{bytes.Repeat([]byte{0xfc}, tc.size)}, PTS: time.Second}, nil)
		if len(out) != tc.packets {
			t.Errorf("an Opus AU of %d bytes made %d packets, want %d", tc.size, len(out), tc.packets)
		}
		if len(out) == 1 && len(out[0].RTP()) != 12+tc.size {
			t.Errorf("an Opus AU of %d bytes made an RTP packet of %d", tc.size, len(out[0].RTP()))
		}
	}
}
