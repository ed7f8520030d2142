package webrtc

import (
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
)

// TestWHIPPublishesAV1: a pion WHIP publisher that offers only AV1 is
// answered with AV1, the hub stream gets a format.AV1 track, and its RTP
// comes back through Berth's RTP-to-AU converter (what HTTP-fMP4 and
// enhanced RTMP/FLV read) as keyframe temporal units with the sequence
// header, and inter frames.
func TestWHIPPublishesAV1(t *testing.T) {
	h := hub.New(hub.Options{Converters: codec.Converters(logging.Discard()), Log: logging.Discard()})
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

	pc := av1OnlyPC(t)
	defer pc.Close()
	track, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeAV1, ClockRate: 90000}, "video", "berth")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	whep(t, pc, web.URL+WHIPPath+"?app=live&stream=av1") // WHIP's exchange is WHEP's: POST an offer, 201 with the answer

	st := h.Get("live/av1")
	if st == nil || len(st.Tracks) != 1 {
		t.Fatalf("hub stream live/av1: %+v, want one track", st)
	}
	if _, ok := st.Tracks[0].Format.(*format.AV1); !ok {
		t.Fatalf("hub track is %T, want *format.AV1", st.Tracks[0].Format)
	}
	r, err := h.Subscribe("live/av1", hub.KindAU, hub.Origin{Proto: "test"})
	if err != nil {
		t.Fatal(err)
	}
	frames := make(chan *hub.Frame, 256)
	go func() {
		buf := make([]*hub.Frame, 16)
		for {
			n, err := r.Read(buf)
			if err != nil {
				close(frames)
				return
			}
			for _, f := range buf[:n] {
				frames <- f
			}
		}
	}()
	defer r.Close()

	// The publisher sends a keyframe every 10 frames at 25 fps until the
	// test ends (pion drops what is written before DTLS is up).
	done := make(chan struct{})
	defer close(done)
	go func() {
		pk, err := codec.NewAV1Packetizer(45, payloadMaxSize)
		if err != nil {
			return
		}
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			tu := [][]byte{av1TD, av1Inter}
			if i%10 == 0 {
				tu = [][]byte{av1TD, av1Seq, av1Key}
			}
			pkts, err := pk.Encode(tu)
			if err != nil {
				return
			}
			for _, p := range pkts {
				p.Timestamp += uint32(i * 3600)
				track.WriteRTP(p)
			}
			select {
			case <-tick.C:
			case <-done:
				return
			}
		}
	}()

	var keys, inters int
	deadline := time.After(4 * time.Second)
	for keys < 2 || inters < 5 {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatal("the AU reader ended")
			}
			if f.Track != 0 {
				t.Fatalf("frame of track %d", f.Track)
			}
			switch {
			case f.Key:
				if !equalOBUs(f.AU, [][]byte{av1Seq, av1Key}) {
					t.Fatalf("keyframe AU: %d OBUs %x, want the sequence header and the keyframe", len(f.AU), f.AU)
				}
				keys++
			case keys == 0:
				t.Fatal("an inter frame came before the first keyframe")
			default:
				if !equalOBUs(f.AU, [][]byte{av1Inter}) {
					t.Fatalf("inter AU: %x", f.AU)
				}
				inters++
			}
		case <-deadline:
			t.Fatalf("in 4 s the AU reader got %d keyframes and %d inter frames, want 2 and 5", keys, inters)
		}
	}
}

// av1OnlyPC is a pion peer whose offer lists AV1 as its only video codec,
// so Berth's answer can only keep AV1.
func av1OnlyPC(t *testing.T) *pion.PeerConnection {
	t.Helper()
	m := &pion.MediaEngine{}
	if err := m.RegisterCodec(pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeAV1, ClockRate: 90000,
		RTCPFeedback: videoFeedback}, PayloadType: 45}, pion.RTPCodecTypeVideo); err != nil {
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
