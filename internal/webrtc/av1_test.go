package webrtc

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
)

// AV1 OBUs as the hub carries them (no obu_size fields): a sequence
// header (main profile, 8 bit), a temporal delimiter, a key frame big
// enough to fragment and a small inter frame.
var (
	av1Seq   = []byte{0x08, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0xda, 0xf9, 0x20, 0x21, 0xa0, 0x04}
	av1TD    = []byte{0x10}
	av1Key   = append([]byte{0x30, 0x10}, bytes.Repeat([]byte{0xab}, 3000)...)
	av1Inter = []byte{0x30, 0x30, 0xaa, 0xbb}
)

// TestAV1PacketsCarryTheSequenceHeaderBeforeKeyframes: a keyframe temporal
// unit without a sequence header gets the newest one in front, one that
// has it is left alone, an inter frame never gets it; temporal delimiters
// are left out, the packets fit WebRTC, decode back to the OBUs, and the
// first packet of a keyframe has the N bit (aggregation header, section
// 4.4) that Chrome reads as "keyframe".
func TestAV1PacketsCarryTheSequenceHeaderBeforeKeyframes(t *testing.T) {
	ot, err := newOutTrack(0, &format.AV1{PayloadTyp: 96})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		key  bool
		au   [][]byte
		want [][]byte
	}{
		{"keyframe with its header", true, [][]byte{av1TD, av1Seq, av1Key}, [][]byte{av1Seq, av1Key}},
		{"inter frame", false, [][]byte{av1TD, av1Inter}, [][]byte{av1Inter}},
		{"keyframe without a header", true, [][]byte{av1Key}, [][]byte{av1Seq, av1Key}},
	} {
		pkts, err := ot.packets(&hub.Frame{Key: c.key, AU: c.au, PTS: time.Second})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if n := pkts[0].Payload[0]&0x08 != 0; n != c.key {
			t.Errorf("%s: N bit %v, want %v", c.name, n, c.key)
		}
		var d rtpav1.Decoder
		d.Init()
		var got [][]byte
		for _, p := range pkts {
			if p.MarshalSize() > maxPacket {
				t.Errorf("%s: packet of %d bytes, want at most %d", c.name, p.MarshalSize(), maxPacket)
			}
			if p.Timestamp != 90000 {
				t.Errorf("%s: timestamp %d, want 90000 (PTS 1 s)", c.name, p.Timestamp)
			}
			if tu, err := d.Decode(p); err == nil {
				got = tu
			} else if !errors.Is(err, rtpav1.ErrMorePacketsNeeded) {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		if !equalOBUs(got, c.want) {
			t.Errorf("%s: decoded %d OBUs, want %d: %x", c.name, len(got), len(c.want), got)
		}
	}
}

func equalOBUs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestWHEPPlaysAV1WhereOffered: a pion WHEP player that offers AV1 (as
// Chromium does) gets an AV1 track of a stream published to the hub as
// AV1 temporal units; the first temporal unit it depacketizes is a
// keyframe with the sequence header, and a later keyframe that the
// publisher sent without one arrives with it.
func TestWHEPPlaysAV1WhereOffered(t *testing.T) {
	h := hub.New(hub.Options{Log: logging.Discard()})
	defer h.Close()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	s := &Server{Hub: h, Log: logging.Discard(), UDP: []net.PacketConn{udp}}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	web := httptest.NewServer(s)
	defer web.Close()
	pub, err := h.Publish("live/av1", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.AV1Track(av1Seq)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pub.Write(&hub.Frame{Key: true, AU: [][]byte{av1TD, av1Seq, av1Key}})

	pc := clientPC(t)
	defer pc.Close()
	pc.AddTransceiverFromKind(pion.RTPCodecTypeVideo, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly})
	type unit struct {
		mime string
		obus [][]byte
	}
	units := make(chan unit, 64)
	pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		var d rtpav1.Decoder
		d.Init()
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if tu, err := d.Decode(p); err == nil {
				units <- unit{tr.Codec().MimeType, tu}
			}
		}
	})
	whep(t, pc, web.URL+WHEPPath+"?app=live&stream=av1")

	next := func(what string) unit {
		t.Helper()
		select {
		case u := <-units:
			return u
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s reached the player in 10 s", what)
		}
		return unit{}
	}
	first := next("temporal unit")
	if first.mime != pion.MimeTypeAV1 || !equalOBUs(first.obus, [][]byte{av1Seq, av1Key}) {
		t.Fatalf("first unit: %s with %d OBUs, want AV1 with the sequence header and the keyframe", first.mime, len(first.obus))
	}
	pub.Write(&hub.Frame{AU: [][]byte{av1TD, av1Inter}, PTS: 40 * time.Millisecond})
	pub.Write(&hub.Frame{Key: true, AU: [][]byte{av1Key}, PTS: 80 * time.Millisecond})
	if u := next("inter frame"); !equalOBUs(u.obus, [][]byte{av1Inter}) {
		t.Errorf("inter frame: %x", u.obus)
	}
	if u := next("second keyframe"); !equalOBUs(u.obus, [][]byte{av1Seq, av1Key}) {
		t.Errorf("a keyframe sent without its sequence header arrived with %d OBUs, want it with the header in front", len(u.obus))
	}
}

// clientPC is a pion player with pion's default codecs (AV1 among them)
// that connects over loopback UDP.
func clientPC(t *testing.T) *pion.PeerConnection {
	t.Helper()
	m := &pion.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	var se pion.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	pc, err := pion.NewAPI(pion.WithMediaEngine(m), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se)).NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// whep posts pc's complete offer to url and applies the answer.
func whep(t *testing.T, pc *pion.PeerConnection, url string) {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	resp, err := http.Post(url, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("%s: %s", resp.Status, answer)
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
}

// FuzzAV1Packets: AV1 temporal units come from publishers; packetizing
// any of them neither panics nor makes a packet too big for WebRTC.
func FuzzAV1Packets(f *testing.F) {
	f.Add(av1Seq, av1Key, true)
	f.Add(av1TD, av1Inter, false)
	f.Add([]byte{}, []byte{0x30}, true)
	f.Fuzz(func(t *testing.T, a, b []byte, key bool) {
		ot, err := newOutTrack(0, &format.AV1{PayloadTyp: 96})
		if err != nil {
			t.Fatal(err)
		}
		pkts, _ := ot.packets(&hub.Frame{Key: key, AU: [][]byte{a, b}})
		for _, p := range pkts {
			if p.MarshalSize() > maxPacket {
				t.Fatalf("packet of %d bytes", p.MarshalSize())
			}
		}
	})
}

// BenchmarkAV1Packets: the per-frame cost of an AV1 WebRTC player (a 3 kB
// keyframe that gets the sequence header in front).
func BenchmarkAV1Packets(b *testing.B) {
	ot, _ := newOutTrack(0, &format.AV1{PayloadTyp: 96})
	ot.av1Seq = av1Seq
	f := &hub.Frame{Key: true, AU: [][]byte{av1Key}, PTS: time.Second}
	b.ReportAllocs()
	for b.Loop() {
		ot.packets(f)
	}
}
