package webrtc

import (
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	pion "github.com/pion/webrtc/v4"

	"github.com/berthmedia/berth/internal/hub"
)

var offerCases = []struct {
	name  string
	offer string
	mime  string
	want  bool
}{
	{"h264 listed", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n", pion.MimeTypeH264, true},
	{"case-insensitive", "v=0\na=rtpmap:111 opus/48000/2\n", pion.MimeTypeOpus, true},
	{"absent", "v=0\r\na=rtpmap:96 VP8/90000\r\n", pion.MimeTypeH264, false},
	{"pcmu static", "v=0\r\na=rtpmap:0 PCMU/8000\r\n", pion.MimeTypePCMU, true},
	{"not an rtpmap", "v=0\r\na=fmtp:102 H264\r\n", pion.MimeTypeH264, false},
	{"no space", "a=rtpmap:102H264/90000", pion.MimeTypeH264, false},
	{"empty", "", pion.MimeTypeH264, false},
}

func TestOffered(t *testing.T) {
	for _, c := range offerCases {
		if got := offered(c.offer, c.mime); got != c.want {
			t.Errorf("%s: offered(%q) = %v, want %v", c.name, c.mime, got, c.want)
		}
	}
}

// FuzzOffered: an offer's text is untrusted; offered never panics.
func FuzzOffered(f *testing.F) {
	for _, c := range offerCases {
		f.Add(c.offer)
	}
	f.Fuzz(func(t *testing.T, offer string) {
		for _, m := range []string{pion.MimeTypeH264, pion.MimeTypeOpus, pion.MimeTypePCMA} {
			offered(offer, m)
		}
	})
}

var (
	sps    = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8}
	pps    = []byte{0x68, 0xce, 0x3c, 0x80}
	idr    = append([]byte{0x65, 0x88, 0x84}, make([]byte, 3000)...)
	nonIDR = []byte{0x41, 0x9a, 0x02}
)

// TestH264PacketsCarryParamsBeforeIDR: an IDR without SPS/PPS gets the
// track's in front (browsers decode only after them), a frame that has
// them is left alone, a non-IDR never gets them; the packets decode back to
// the access unit, with the frame's PTS in the 90 kHz timestamp.
func TestH264PacketsCarryParamsBeforeIDR(t *testing.T) {
	for _, c := range []struct {
		name string
		au   [][]byte
		want int // NAL units decoded
	}{
		{"IDR alone", [][]byte{idr}, 3},
		{"IDR with params", [][]byte{sps, pps, idr}, 3},
		{"non-IDR", [][]byte{nonIDR}, 1},
	} {
		ot, err := newOutTrack(0, &format.H264{PayloadTyp: 96, SPS: sps, PPS: pps, PacketizationMode: 1})
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := ot.packets(&hub.Frame{AU: c.au, PTS: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		dec := &rtph264.Decoder{}
		dec.Init()
		var au [][]byte
		for _, p := range pkts {
			if p.MarshalSize() > maxPacket {
				t.Errorf("%s: packet of %d bytes, want at most 1200", c.name, p.MarshalSize())
			}
			if p.Timestamp-pkts[0].Timestamp != 0 {
				t.Errorf("%s: packets of one frame carry different timestamps", c.name)
			}
			if a, err := dec.Decode(p); err == nil {
				au = a
			}
		}
		if len(au) != c.want {
			t.Errorf("%s: decoded %d NAL units, want %d", c.name, len(au), c.want)
		}
	}
}

func TestNewOutTrackRefusesWhatWebRTCCannotCarry(t *testing.T) {
	for _, c := range []struct {
		f    format.Format
		want string // mime, "" = refused
	}{
		{&format.H264{PayloadTyp: 96, PacketizationMode: 1}, pion.MimeTypeH264},
		{&format.H265{PayloadTyp: 96}, pion.MimeTypeH265},
		{&format.AV1{PayloadTyp: 96}, pion.MimeTypeAV1},
		{&format.Opus{PayloadTyp: 111, ChannelCount: 2}, pion.MimeTypeOpus},
		{&format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}, pion.MimeTypePCMU},
		{&format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}, pion.MimeTypePCMA},
		{&format.G711{PayloadTyp: 97, SampleRate: 16000, ChannelCount: 1}, ""},
		{&format.MPEG4Audio{PayloadTyp: 97}, ""},
	} {
		ot, err := newOutTrack(0, c.f)
		got := ""
		if err == nil {
			got = ot.mime
		}
		if got != c.want {
			t.Errorf("%s: %q (%v), want %q", c.f.Codec(), got, err, c.want)
		}
	}
}

// FuzzPackets: access units come from publishers; packetizing any of them
// neither panics nor makes a packet too big for WebRTC.
func FuzzPackets(f *testing.F) {
	f.Add(idr, []byte{}, false)
	f.Add(sps, pps, false)
	f.Add([]byte{0x80}, []byte{0xff, 0xff}, true)
	f.Fuzz(func(t *testing.T, a, b []byte, opus bool) {
		var fm format.Format = &format.H264{PayloadTyp: 96, SPS: sps, PPS: pps, PacketizationMode: 1}
		if opus {
			fm = &format.Opus{PayloadTyp: 111, ChannelCount: 2}
		}
		ot, err := newOutTrack(0, fm)
		if err != nil {
			t.Fatal(err)
		}
		pkts, _ := ot.packets(&hub.Frame{AU: [][]byte{a, b}})
		for _, p := range pkts {
			if p.MarshalSize() > maxPacket {
				t.Fatalf("packet of %d bytes", p.MarshalSize())
			}
		}
	})
}

// BenchmarkH264Packets: the per-frame cost of a WebRTC player (a 3 kB IDR
// with parameter sets put in front).
func BenchmarkH264Packets(b *testing.B) {
	ot, _ := newOutTrack(0, &format.H264{PayloadTyp: 96, SPS: sps, PPS: pps, PacketizationMode: 1})
	f := &hub.Frame{AU: [][]byte{idr}, PTS: time.Second}
	b.ReportAllocs()
	for b.Loop() {
		ot.packets(f)
	}
}
