package webrtc

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
)

// TestShutdownLeavesNoGoroutines: a server with a connected WHEP player
// of a live stream, shut down (and its ICE socket closed, as the
// composition root does), leaves no goroutine behind, pion's included.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	h := hub.New(hub.Options{Log: logging.Discard()})
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Hub: h, Log: logging.Discard(), UDP: []net.PacketConn{udp}}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(s)
	pub, err := h.Publish("live/s", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.H264Track(sps, pps)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub.Write(&hub.Frame{AU: [][]byte{idr}, Key: true})

	m := &pion.MediaEngine{}
	m.RegisterDefaultCodecs()
	ir := &interceptor.Registry{}
	pion.RegisterDefaultInterceptors(m, ir)
	var se pion.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	pc, err := pion.NewAPI(pion.WithMediaEngine(m), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se)).NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	pc.AddTransceiverFromKind(pion.RTPCodecTypeVideo, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly})
	got := make(chan struct{}, 1)
	pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			select {
			case got <- struct{}{}:
			default:
			}
		}
	})
	offer, _ := pc.CreateOffer(nil)
	gathered := pion.GatheringCompletePromise(pc)
	pc.SetLocalDescription(offer)
	<-gathered
	resp, err := http.Post(web.URL+WHEPPath+"?app=live&stream=s", "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("%s: %s", resp.Status, answer)
	}
	pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: string(answer)})
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the player got no packet in 10 s")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	udp.Close()
	s.Shutdown(ctx)
	pc.Close()
	pub.Close()
	h.Close()
	web.Close()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling the condition, with the deadline above
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after shutdown, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
