package server_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/interceptor"
	pion "github.com/pion/webrtc/v4"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/rtspclient"
	"github.com/berthmedia/berth/internal/testutil"
)

// AV1 OBUs without obu_size fields, as RTP carries them: a sequence
// header (main profile, 8 bit), a temporal delimiter, a key frame big
// enough to fragment and a small inter frame.
var (
	whipAV1Seq   = []byte{0x08, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0xda, 0xf9, 0x20, 0x21, 0xa0, 0x04}
	whipAV1TD    = []byte{0x10}
	whipAV1Key   = append([]byte{0x30, 0x10}, bytes.Repeat([]byte{0xab}, 3000)...)
	whipAV1Inter = []byte{0x30, 0x30, 0xaa, 0xbb}
)

// TestWHIPAV1IsReadableOverRTSPFMP4AndFLV: a pion WHIP publisher that
// offers only AV1 publishes synthetic temporal units; an RTSP player
// (Berth's client) gets an AV1 media and its packets (passthrough), and
// .live.mp4 and .live.flv readers get an av01 init segment and an
// enhanced-FLV av01 sequence header (the RTP-to-AU conversion).
func TestWHIPAV1IsReadableOverRTSPFMP4AndFLV(t *testing.T) {
	srv, _ := start(t)
	pc := av1WHIPPublisher(t)
	track, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeAV1, ClockRate: 90000}, "video", "berth")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	exchange(t, pc, "http://"+srv.Addr("http")+"/index/api/whip?app=live&stream=av1")
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go sendAV1(track, done)
	testutil.WaitFor(t, 5*time.Second, "the WHIP AV1 stream to have frames", func() bool {
		st := srv.Hub.Get("live/av1")
		return st != nil && st.FramesIn.Load() > 10
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := rtspclient.Dial(ctx, "rtsp://"+srv.Addr("rtsp")+"/live/av1", rtspclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	desc, _, err := rc.Describe()
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.Medias) != 1 {
		t.Fatalf("RTSP DESCRIBE: %d medias, want 1", len(desc.Medias))
	}
	if _, ok := desc.Medias[0].Formats[0].(*format.AV1); !ok {
		t.Fatalf("RTSP DESCRIBE: %T, want *format.AV1", desc.Medias[0].Formats[0])
	}
	if err := rc.SetupAll(desc); err != nil {
		t.Fatal(err)
	}
	var packets atomic.Int64
	rc.OnPacket = func(int, []byte) { packets.Add(1) }
	if _, err := rc.Play(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ ext, want string }{{".live.mp4", "av01"}, {".live.flv", "av01"}} {
		got := readBodyUntil(ctx, t, "http://"+srv.Addr("http")+"/live/av1"+c.ext, []byte(c.want))
		if !bytes.Contains(got, []byte(c.want)) {
			t.Errorf("%s: no %q in the first %d bytes", c.ext, c.want, len(got))
		}
	}
	testutil.WaitFor(t, 5*time.Second, "AV1 RTP packets at the RTSP player", func() bool { return packets.Load() > 10 })
}

// readBodyUntil reads url's body until it holds want, 64 kB, or ctx ends.
func readBodyUntil(ctx context.Context, t *testing.T, url string, want []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	var got []byte
	buf := make([]byte, 4096)
	for len(got) < 64<<10 && !bytes.Contains(got, want) {
		n, err := res.Body.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF || ctx.Err() != nil || (err != nil && n == 0) {
			break
		}
	}
	return got
}

// sendAV1 writes a keyframe temporal unit every 10 frames at 25 fps
// until done (pion drops what is written before DTLS is up).
func sendAV1(track *pion.TrackLocalStaticRTP, done chan struct{}) {
	pk, err := codec.NewAV1Packetizer(45, 1100)
	if err != nil {
		return
	}
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		tu := [][]byte{whipAV1TD, whipAV1Inter}
		if i%10 == 0 {
			tu = [][]byte{whipAV1TD, whipAV1Seq, whipAV1Key}
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
}

// av1WHIPPublisher is a pion peer whose offer lists AV1 as its only video
// codec (a browser lists H.264 too, and Berth would pick that).
func av1WHIPPublisher(t *testing.T) *pion.PeerConnection {
	t.Helper()
	m := &pion.MediaEngine{}
	if err := m.RegisterCodec(pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeAV1, ClockRate: 90000},
		PayloadType: 45}, pion.RTPCodecTypeVideo); err != nil {
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
	t.Cleanup(func() { pc.Close() })
	return pc
}
