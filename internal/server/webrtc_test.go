package server_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// rtcClientAPI is a pion peer of its own (default codecs and
// interceptors, like a browser's) that gathers only loopback candidates:
// the test's traffic stays on 127.0.0.1.
func rtcClientAPI(t *testing.T, types ...pion.NetworkType) *pion.API {
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
	if len(types) == 0 {
		types = []pion.NetworkType{pion.NetworkTypeUDP4}
	}
	se.SetNetworkTypes(types)
	return pion.NewAPI(pion.WithMediaEngine(m), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se))
}

// exchange posts pc's complete offer to url and applies the answer; it
// returns the response (its body read into answer).
func exchange(t *testing.T, pc *pion.PeerConnection, url string) (*http.Response, string) {
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
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %s: %s", url, resp.Status, body)
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: string(body)}); err != nil {
		t.Fatalf("answer from %s: %v\n%s", url, err, body)
	}
	return resp, string(body)
}

// whepPlayer plays a stream over WHEP and counts what it receives.
type whepPlayer struct {
	pc       *pion.PeerConnection
	mu       sync.Mutex
	mimes    []string
	idrs     atomic.Int64 // H.264 access units with SPS, PPS and an IDR
	aus      atomic.Int64 // H.264 access units decoded from the RTP
	audio    atomic.Int64 // audio packets
	location string
	// relay, when set, gets every received packet by kind ("video", "audio").
	relay func(kind string, pkt *rtp.Packet)
}

func playWHEP(t *testing.T, url string, relay func(string, *rtp.Packet), types ...pion.NetworkType) *whepPlayer {
	t.Helper()
	pc, err := rtcClientAPI(t, types...).NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	p := &whepPlayer{pc: pc, relay: relay}
	for _, k := range []pion.RTPCodecType{pion.RTPCodecTypeVideo, pion.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		p.mu.Lock()
		p.mimes = append(p.mimes, tr.Codec().MimeType)
		p.mu.Unlock()
		var dec *rtph264.Decoder
		if tr.Codec().MimeType == pion.MimeTypeH264 {
			dec = &rtph264.Decoder{}
			dec.Init()
		}
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if p.relay != nil {
				p.relay(tr.Kind().String(), pkt)
			}
			if dec == nil {
				p.audio.Add(1)
				continue
			}
			au, err := dec.Decode(pkt)
			if err != nil {
				continue
			}
			p.aus.Add(1)
			var sps, pps, idr bool
			for _, n := range au {
				switch h264.NALUType(n[0] & 0x1f) {
				case h264.NALUTypeSPS:
					sps = true
				case h264.NALUTypePPS:
					pps = true
				case h264.NALUTypeIDR:
					idr = true
				}
			}
			if sps && pps && idr {
				p.idrs.Add(1)
			}
		}
	})
	resp, _ := exchange(t, pc, url)
	p.location = resp.Header.Get("Location")
	return p
}

func (p *whepPlayer) codecs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.mimes...)
}

// TestWHEPPlaysAnRTSPPushH264Opus: ffmpeg pushes H.264 and Opus over RTSP;
// a pion WHEP player gets both tracks and decodes H.264 access units, the
// first keyframe carrying SPS and PPS in-band; while it plays it counts as
// a reader; DELETE on the Location ends it.
func TestWHEPPlaysAnRTSPPushH264Opus(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264Opus, "rtsp://"+srv.Addr("rtsp")+"/live/w", "live/w")
	p := playWHEP(t, "http://"+srv.Addr("http")+"/index/api/whep?app=live&stream=w", nil)
	testutil.WaitFor(t, 10*time.Second, "25 H.264 access units and 25 Opus packets over WebRTC", func() bool {
		return p.aus.Load() >= 25 && p.idrs.Load() >= 1 && p.audio.Load() >= 25
	})
	if c := p.codecs(); len(c) != 2 {
		t.Errorf("tracks %v, want H.264 and Opus", c)
	}
	if n := srv.Hub.Get("live/w").Readers(); n != 1 {
		t.Errorf("readers = %d, want the WebRTC player", n)
	}
	req, _ := http.NewRequest(http.MethodDelete, "http://"+srv.Addr("http")+p.location, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE %s: %v %v", p.location, err, resp)
	}
	testutil.WaitFor(t, 5*time.Second, "the reader to leave after DELETE", func() bool { return srv.Hub.Get("live/w").Readers() == 0 })
}

// TestWHEPLeavesAACOut: an H.264+AAC push plays over WHEP with video only,
// and the log says why the audio is missing.
func TestWHEPLeavesAACOut(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, logs := start(t)
	push(t, srv, testmedia.H264AAC, "rtsp://"+srv.Addr("rtsp")+"/live/a", "live/a")
	p := playWHEP(t, "http://"+srv.Addr("http")+"/index/api/whep?app=live&stream=a", nil)
	testutil.WaitFor(t, 10*time.Second, "H.264 over WebRTC", func() bool { return p.idrs.Load() >= 1 })
	if c := p.codecs(); len(c) != 1 || c[0] != pion.MimeTypeH264 {
		t.Errorf("tracks %v, want H.264 only", c)
	}
	logs.WaitLine(t, "webrtc play: track left out", "MPEG-4 Audio")
}

// TestWHIPPublishReadsBackOverRTSPAndWHEP: a pion peer publishes H.264
// and Opus over WHIP (the packets of a WHEP play of an ffmpeg push,
// relayed); ffprobe reads the WHIP stream over RTSP as H.264 and Opus,
// another WHEP player decodes its H.264, and getMediaList says its origin
// is WebRTC (originType 8).
func TestWHIPPublishReadsBackOverRTSPAndWHEP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264Opus, "rtsp://"+srv.Addr("rtsp")+"/live/src", "live/src")

	pub, err := rtcClientAPI(t).NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	video, _ := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "test")
	audio, _ := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "test")
	for _, tr := range []*pion.TrackLocalStaticRTP{video, audio} {
		if _, err := pub.AddTransceiverFromTrack(tr, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	exchange(t, pub, "http://"+srv.Addr("http")+"/index/api/whip?app=live&stream=pub")
	playWHEP(t, "http://"+srv.Addr("http")+"/index/api/whep?app=live&stream=src", func(kind string, pkt *rtp.Packet) {
		if kind == "video" {
			video.WriteRTP(pkt)
		} else {
			audio.WriteRTP(pkt)
		}
	})
	testutil.WaitFor(t, 10*time.Second, "the WHIP stream to have frames", func() bool {
		st := srv.Hub.Get("live/pub")
		return st != nil && st.FramesIn.Load() > 100
	})
	p := ffprobe(t, "rtsp://"+srv.Addr("rtsp")+"/live/pub")
	if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 || p.Streams[1].CodecName != "opus" {
		t.Errorf("ffprobe over RTSP: %+v, want h264 320x240 and opus", p.Streams)
	}
	pl := playWHEP(t, "http://"+srv.Addr("http")+"/index/api/whep?app=live&stream=pub", nil)
	testutil.WaitFor(t, 10*time.Second, "H.264 from the WHIP stream over WHEP", func() bool { return pl.idrs.Load() >= 1 && pl.aus.Load() >= 25 })
	found := false
	for _, d := range list(api(t, srv, "getMediaList", "app", "live", "stream", "pub")) {
		found = true
		if d["originType"] != float64(8) {
			t.Errorf("getMediaList %s: originType %v, want 8 (webrtc)", d["schema"], d["originType"])
		}
	}
	if !found {
		t.Error("getMediaList lists no live/pub")
	}
}

// TestZLMWebRTCCallPlaysAndRefuses: ZLMediaKit's POST
// /index/api/webrtc?type=play answers {"code":0,"sdp":...,"type":"answer",
// "id":...} that a pion peer connects with and plays H.264 from; a missing
// stream and a bad type answer a code other than 0 with a message.
func TestZLMWebRTCCallPlaysAndRefuses(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264Opus, "rtsp://"+srv.Addr("rtsp")+"/live/z", "live/z")
	call := func(pc *pion.PeerConnection, query string) map[string]any {
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
		resp, err := http.Post("http://"+srv.Addr("http")+"/index/api/webrtc?"+query, "text/plain;charset=utf-8", strings.NewReader(pc.LocalDescription().SDP))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s, %v", query, resp.Status, err)
		}
		return m
	}
	newPC := func() *pion.PeerConnection {
		pc, err := rtcClientAPI(t).NewPeerConnection(pion.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		pc.AddTransceiverFromKind(pion.RTPCodecTypeVideo, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly})
		return pc
	}
	pc := newPC()
	var aus atomic.Int64
	pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			aus.Add(1)
		}
	})
	m := call(pc, "app=live&stream=z&type=play")
	if m["code"] != float64(0) || m["type"] != "answer" || m["id"] == "" {
		t.Fatalf("reply %v, want code 0, type answer and an id", m)
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: m["sdp"].(string)}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "video packets over ZLMediaKit's webrtc call", func() bool { return aus.Load() >= 50 })
	for _, q := range []string{"app=live&stream=missing&type=play", "app=live&stream=z&type=echo"} {
		if m := call(newPC(), q); m["code"] == float64(0) || m["msg"] == "" {
			t.Errorf("%s: reply %v, want a non-zero code and a msg", q, m)
		}
	}
}

// TestWHEPRefusals: a bad body is 400, a missing stream 404, a PATCH 405,
// a DELETE of an unknown session 404; each says why.
func TestWHEPRefusals(t *testing.T) {
	srv, _ := start(t)
	base := "http://" + srv.Addr("http") + "/index/api/whep"
	do := func(method, url, body string) (int, string) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/sdp")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	pc, _ := rtcClientAPI(t).NewPeerConnection(pion.Configuration{})
	defer pc.Close()
	pc.AddTransceiverFromKind(pion.RTPCodecTypeVideo, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly})
	offer, _ := pc.CreateOffer(nil)
	for _, c := range []struct {
		method, url, body string
		status            int
		says              string
	}{
		{http.MethodPost, base + "?app=live&stream=s", "hello", http.StatusBadRequest, "SDP offer"},
		{http.MethodPost, base + "?app=live", offer.SDP, http.StatusBadRequest, "?app=APP&stream=STREAM"},
		{http.MethodPost, base + "?app=live&stream=none", offer.SDP, http.StatusNotFound, "not found"},
		{http.MethodPatch, base + "/abc", "a=candidate", http.StatusMethodNotAllowed, "trickle"},
		{http.MethodDelete, base + "/abc", "", http.StatusNotFound, "no WebRTC session"},
		{http.MethodGet, base, "", http.StatusMethodNotAllowed, "POST"},
	} {
		status, body := do(c.method, c.url, c.body)
		if status != c.status || !strings.Contains(body, c.says) {
			t.Errorf("%s %s: %d %q, want %d saying %q", c.method, c.url, status, body, c.status, c.says)
		}
	}
}

// TestWHEPOverICETCP: a peer that may use only TCP ([rtc] tcpPort, RFC 6544)
// plays H.264 from an ffmpeg push.
func TestWHEPOverICETCP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264Opus, "rtsp://"+srv.Addr("rtsp")+"/live/tcp", "live/tcp")
	p := playWHEP(t, "http://"+srv.Addr("http")+"/index/api/whep?app=live&stream=tcp", nil, pion.NetworkTypeTCP4)
	testutil.WaitFor(t, 10*time.Second, "H.264 over ICE-TCP", func() bool { return p.idrs.Load() >= 1 && p.aus.Load() >= 25 })
	pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local.Protocol != pion.ICEProtocolTCP {
		t.Errorf("selected candidate pair %v (%v), want TCP", pair, err)
	}
}

// TestWHEPPlaysH265WhereOffered: an H.265 push plays to a peer whose offer
// lists H.265 (pion's does) as an H.265 track, AAC left out.
func TestWHEPPlaysH265WhereOffered(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H265AAC, "rtsp://"+srv.Addr("rtsp")+"/live/hevc", "live/hevc")
	var pkts atomic.Int64
	p := playWHEP(t, "http://"+srv.Addr("http")+"/index/api/whep?app=live&stream=hevc", func(kind string, _ *rtp.Packet) {
		if kind == "video" {
			pkts.Add(1)
		}
	})
	testutil.WaitFor(t, 10*time.Second, "H.265 packets over WebRTC", func() bool { return pkts.Load() >= 50 })
	if c := p.codecs(); len(c) != 1 || c[0] != pion.MimeTypeH265 {
		t.Errorf("tracks %v, want H.265 only", c)
	}
}

// TestWHEPPlaysG711: an H.264 + G.711 A-law push plays as H.264 and PCMA.
func TestWHEPPlaysG711(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264PCMA, "rtsp://"+srv.Addr("rtsp")+"/live/pcma", "live/pcma")
	p := playWHEP(t, "http://"+srv.Addr("http")+"/index/api/whep?app=live&stream=pcma", nil)
	testutil.WaitFor(t, 10*time.Second, "H.264 and PCMA over WebRTC", func() bool { return p.idrs.Load() >= 1 && p.audio.Load() >= 25 })
	c := p.codecs()
	if len(c) != 2 || !slices.Contains(c, pion.MimeTypePCMA) || !slices.Contains(c, pion.MimeTypeH264) {
		t.Errorf("tracks %v, want H.264 and PCMA", c)
	}
}

// TestZLMWebRTCPushAndBusyPath: ZLMediaKit's type=push publishes a pion
// peer's H.264 (code 0); a WHIP offer for the same path is then 409 naming
// the holder.
func TestZLMWebRTCPushAndBusyPath(t *testing.T) {
	srv, _ := start(t)
	newPub := func() *pion.PeerConnection {
		pc, err := rtcClientAPI(t).NewPeerConnection(pion.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		video, _ := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "test")
		if _, err := pc.AddTransceiverFromTrack(video, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
		offer, _ := pc.CreateOffer(nil)
		gathered := pion.GatheringCompletePromise(pc)
		pc.SetLocalDescription(offer)
		<-gathered
		return pc
	}
	pc := newPub()
	resp, err := http.Post("http://"+srv.Addr("http")+"/index/api/webrtc?app=live&stream=zp&type=push", "text/plain", strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if m["code"] != float64(0) || m["sdp"] == nil {
		t.Fatalf("push reply %v, want code 0 and an answer", m)
	}
	if st := srv.Hub.Get("live/zp"); st == nil || st.Origin.Proto != "webrtc" {
		t.Fatalf("live/zp is %v, want a webrtc publisher", st)
	}
	resp, err = http.Post("http://"+srv.Addr("http")+"/index/api/whip?app=live&stream=zp", "application/sdp", strings.NewReader(newPub().LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "webrtc") || !strings.Contains(string(body), "allow_takeover") {
		t.Errorf("second publisher: %s %q, want 409 naming the holder and the fix", resp.Status, body)
	}
}
