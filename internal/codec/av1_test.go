package codec

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/pion/rtp"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testmedia"
)

// The sequence header OBU (without obu_size) SVT-AV1 1.4 writes for
// testsrc at 320x240: main profile, level 2.0, main tier.
var testAV1Seq = []byte{0x08, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0x02, 0xf8, 0x00, 0x40}

func TestAV1TrackSDPCarriesProfileLevelAndTier(t *testing.T) {
	for _, tc := range []struct {
		name string
		seq  []byte
		want []string
		not  []string
	}{
		{"with sequence header", testAV1Seq, []string{"m=video 0 RTP/AVP 96", "a=rtpmap:96 AV1/90000", "level-idx=0", "profile=0", "tier=0"}, nil},
		{"without", nil, []string{"a=rtpmap:96 AV1/90000"}, []string{"a=fmtp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := AV1Track(tc.seq)
			if !tr.Video {
				t.Error("AV1 track is not video")
			}
			sdp, err := SDP([]*hub.Track{tr})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(sdp), w) {
					t.Errorf("SDP lacks %q:\n%s", w, sdp)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(string(sdp), n) {
					t.Errorf("SDP has %q:\n%s", n, sdp)
				}
			}
		})
	}
}

func TestKeyDetectorAV1(t *testing.T) {
	seq := append([]byte{byte(len(testAV1Seq))}, testAV1Seq...) // as an element with its length
	cases := []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"N bit", []byte{0x18, 0x30, 0x01}, true},
		{"sequence header, one element (W=1)", append([]byte{0x10}, testAV1Seq...), true},
		{"sequence header then frame (W=2)", append(append([]byte{0x20}, seq...), 0x30, 0x01), true},
		{"frame then sequence header (W=0)", append([]byte{0x00, 0x02, 0x30, 0x01}, seq...), true},
		{"inter frame", []byte{0x10, 0x30, 0x01, 0x02}, false},
		{"continuation that looks like a sequence header", append([]byte{0x90}, testAV1Seq...), false},
		{"element longer than the packet", []byte{0x00, 0x20, 0x08}, false},
		{"LEB128 truncated", []byte{0x00, 0x80}, false},
		{"too short", []byte{0x10}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := KeyDetector{Codec: AV1}
			if got := d.Key(RTPHeader{Timestamp: 1, Payload: tc.payload}); got != tc.want {
				t.Errorf("Key = %v, want %v", got, tc.want)
			}
		})
	}
}

var (
	av1MediaOnce sync.Once
	av1Media     *media
)

// testAV1Media makes (once per process) a 2 s AV1 stream with SVT-AV1,
// 25 fps with a 1 s GOP, split into temporal units (OBUs without obu_size
// or temporal delimiters, as the hub carries them).
func testAV1Media(t testing.TB) *media {
	t.Helper()
	testmedia.RequireFFmpeg(t)
	av1MediaOnce.Do(func() {
		dir := t.TempDir()
		p := filepath.Join(dir, "av1.obu")
		ffmpeg(t, "-nostdin", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=2", "-pix_fmt", "yuv420p",
			"-c:v", "libsvtav1", "-preset", "12", "-g", "25", "-f", "obu", p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var bs av1.Bitstream
		if err := bs.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		m := &media{}
		for _, obu := range bs {
			if obuType(obu) == av1.OBUTypeTemporalDelimiter {
				d := time.Duration(len(m.aus)) * 40 * time.Millisecond
				m.aus = append(m.aus, mediaAU{pts: d, dts: d})
				continue
			}
			au := &m.aus[len(m.aus)-1]
			au.au = append(au.au, obu)
			au.key = av1.IsRandomAccess2(au.au)
		}
		av1Media = m
	})
	if av1Media == nil || len(av1Media.aus) != 50 || !av1Media.aus[0].key || !av1Media.aus[25].key {
		t.Fatalf("the AV1 test stream does not have 50 temporal units with keyframes at 0 and 25")
	}
	return av1Media
}

// TestRoundTripAV1 packetizes real AV1 temporal units (RTP AV1 payload,
// via rtpav1) and depacketizes them again: the same OBUs, keyframes and
// timestamps come back, also across an RTP timestamp wrap, and the RTSP
// keyframe detector marks exactly the keyframes' first packets.
func TestRoundTripAV1(t *testing.T) {
	m := testAV1Media(t)
	for _, wrap := range []bool{false, true} {
		name := "plain"
		if wrap {
			name = "wrap"
		}
		t.Run(name, func(t *testing.T) {
			tr := AV1Track(AV1SequenceHeader(m.aus[0].au))
			base := time.Second
			if wrap {
				base = wrapBase(90000)
			}
			since := time.Unix(1_700_000_000, 0)
			s := &hub.Stream{Path: "live/av1", Tracks: []*hub.Track{tr}, Since: since}
			p, d := newPacketizer(s, testLog(t)), newDepacketizer(s, testLog(t))
			kd := KeyDetector{Codec: AV1}
			var got []*hub.Frame
			var fragmented bool
			for i, in := range m.aus {
				f := &hub.Frame{Key: in.key, AU: in.au, PTS: base + in.pts, DTS: base + in.dts, Recv: since.Add(base + in.dts)}
				pkts := p.push(f, nil)
				if len(pkts) == 0 {
					t.Fatalf("TU %d: no packets", i)
				}
				fragmented = fragmented || len(pkts) > 1
				for j, pk := range pkts {
					h, ok := ParseRTP(pk.RTP())
					if !ok || len(h.Payload) > PayloadMaxSize {
						t.Fatalf("TU %d packet %d: not RTP or payload over %d bytes", i, j, PayloadMaxSize)
					}
					if pk.Key != (in.key && j == 0) {
						t.Errorf("TU %d packet %d: Key = %v", i, j, pk.Key)
					}
					if k := kd.Key(h); k != (in.key && j == 0) {
						t.Errorf("TU %d packet %d: KeyDetector says %v", i, j, k)
					}
					got = d.push(pk, got)
				}
			}
			got = d.flush(got)
			if !fragmented {
				t.Error("no temporal unit needed more than one packet: the test does not cover fragmentation")
			}
			if len(got) != len(m.aus) {
				t.Fatalf("got %d TUs back, sent %d", len(got), len(m.aus))
			}
			tick := time.Second/90000 + 1
			for i, in := range m.aus {
				out := got[i]
				if !equalAU(in.au, out.AU) {
					t.Fatalf("TU %d: OBUs differ: sent %d, got %d", i, len(in.au), len(out.AU))
				}
				if out.Key != in.key {
					t.Errorf("TU %d: Key = %v, sent %v", i, out.Key, in.key)
				}
				if diff := out.PTS - (base + in.pts); diff < -tick || diff > tick || out.DTS != out.PTS {
					t.Errorf("TU %d: PTS %v DTS %v, want both %v", i, out.PTS, out.DTS, base+in.pts)
				}
			}
		})
	}
}

// TestRTPToAUAV1StartsAtAKeyframe: a reader that joins mid-GOP gets
// nothing before the next temporal unit with a sequence header, and the
// temporal delimiters a sender leaves in are dropped.
func TestRTPToAUAV1StartsAtAKeyframe(t *testing.T) {
	m := testAV1Media(t)
	s := &hub.Stream{Path: "live/av1", Tracks: []*hub.Track{AV1Track(nil)}, Since: time.Unix(1_700_000_000, 0)}
	d := newDepacketizer(s, testLog(t))
	enc := &rtpav1.Encoder{PayloadType: VideoPayloadType}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	var got []*hub.Frame
	for _, in := range m.aus[10:] {
		pkts, err := enc.Encode(append([][]byte{{0x10}}, in.au...)) // a temporal delimiter first
		if err != nil {
			t.Fatal(err)
		}
		for _, pk := range pkts {
			pk.Timestamp = uint32(hub.DurationToTicks(in.pts, 90000))
			b, err := pk.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got = d.push(hub.NewRTPFrame(0, b, false, s.Since.Add(in.dts)), got)
		}
	}
	got = d.flush(got)
	if len(got) != 25 || !got[0].Key {
		t.Fatalf("got %d TUs (first key %v), want the 25 from the keyframe at 1 s", len(got), len(got) > 0 && got[0].Key)
	}
	for i, f := range got {
		if !equalAU(f.AU, m.aus[25+i].au) {
			t.Fatalf("TU %d: OBUs differ (temporal delimiter not dropped?)", i)
		}
	}
}

// TestAV1PacketsKeepOBUBoundaries: temporal units whose first OBU leaves 0
// to 2 bytes in the first packet (where gortsplib v5.6.4's encoder merges
// it with the next OBU) come back whole, with gapless sequence numbers.
func TestAV1PacketsKeepOBUBoundaries(t *testing.T) {
	s := &hub.Stream{Path: "live/av1", Tracks: []*hub.Track{AV1Track(testAV1Seq)}, Since: time.Unix(1_700_000_000, 0)}
	p, d := newPacketizer(s, testLog(t)), newDepacketizer(s, testLog(t))
	obu := func(n int, fill byte) []byte { return append([]byte{0x30}, bytes.Repeat([]byte{fill}, n-1)...) }
	var sent [][][]byte
	var got []*hub.Frame
	var lastSeq uint16
	started := false
	merged := 0
	for i, first := range []int{1440, 1444, 1445, 1446, 1447, 1448, 1449, 1450, 2893, 2894, 2895} {
		tu := [][]byte{testAV1Seq, obu(first, 0xaa), obu(219, 0xbb), obu(30, 0xcc)}
		if i > 0 {
			tu = tu[1:]
		}
		sent = append(sent, tu)
		lib := &rtpav1.Encoder{PayloadType: 96}
		if err := lib.Init(); err != nil {
			t.Fatal(err)
		}
		if pkts, err := lib.Encode(tu); err == nil && !av1Intact(pkts, tu) {
			merged++
		}
		for _, pk := range p.push(&hub.Frame{Key: i == 0, AU: tu, PTS: time.Duration(i) * 40 * time.Millisecond}, nil) {
			h, _ := ParseRTP(pk.RTP())
			if started && h.Seq != lastSeq+1 {
				t.Errorf("TU %d: sequence number %d after %d", i, h.Seq, lastSeq)
			}
			started, lastSeq = true, h.Seq
			got = d.push(pk, got)
		}
	}
	got = d.flush(got)
	if len(got) != len(sent) {
		t.Fatalf("got %d TUs back, sent %d", len(got), len(sent))
	}
	for i := range sent {
		if !equalAU(got[i].AU, sent[i]) {
			t.Errorf("TU %d: %d OBUs back, sent %d", i, len(got[i].AU), len(sent[i]))
		}
	}
	t.Logf("rtpav1's encoder alone merged OBUs in %d of %d temporal units", merged, len(sent))
	if merged == 0 {
		t.Log("rtpav1's encoder no longer merges OBUs here: av1Packer's check may go")
	}
}

// FuzzAV1RTP feeds arbitrary AV1 RTP payloads to the keyframe detector
// and the depacketizer, and arbitrary OBUs to the packetizer: none panics
// (not even a recovered panic), and every AU holds only non-empty OBUs.
func FuzzAV1RTP(f *testing.F) {
	f.Add([]byte{0x18, 0x30, 0x01}, true)
	f.Add(append([]byte{0x10}, testAV1Seq...), true)
	f.Add([]byte{0x40, 0x05, 0x30, 0x01}, false)
	f.Add([]byte{0x90, 0x30, 0x01}, true)
	f.Fuzz(func(t *testing.T, payload []byte, marker bool) {
		kd := KeyDetector{Codec: AV1}
		kd.Key(RTPHeader{Payload: payload})
		s := &hub.Stream{Path: "live/fuzz", Tracks: []*hub.Track{AV1Track(nil)}, Since: time.Unix(1_700_000_000, 0)}
		log := slog.New(slog.DiscardHandler)
		d, p := newDepacketizer(s, log), newPacketizer(s, log)
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Marker: marker, SequenceNumber: 1}, Payload: payload}
		b, err := pkt.Marshal()
		if err != nil {
			return
		}
		out := d.flush(d.push(hub.NewRTPFrame(0, b, false, s.Since), nil))
		for _, fr := range out {
			for _, obu := range fr.AU {
				if len(obu) == 0 {
					t.Fatal("empty OBU in an AU")
				}
			}
		}
		p.push(&hub.Frame{Key: true, AU: [][]byte{payload, payload}}, nil)
		if d.panics > 0 || p.panics > 0 {
			t.Fatalf("recovered %d depacketizer and %d packetizer panics", d.panics, p.panics)
		}
	})
}
