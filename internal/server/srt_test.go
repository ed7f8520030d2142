package server_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// srtURL is an srt:// URL with a stream id in the SRT Access Control form.
func srtURL(addr, path, mode string) string {
	return "srt://" + addr + "?streamid=#!::r=" + path + ",m=" + mode
}

// pushSRT has ffmpeg send a test file as MPEG-TS over SRT, looping, until
// the test ends; it waits for the stream to have frames.
func pushSRT(t *testing.T, srv *server.Server, k testmedia.Kind, url, path string) {
	t.Helper()
	pub := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1", "-i", testmedia.File(t, k),
		"-c", "copy", "-f", "mpegts", url)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	testutil.WaitFor(t, 10*time.Second, "the SRT stream to be published", func() bool {
		st := srv.Hub.Get(path)
		return st != nil && st.FramesIn.Load() > 50
	})
}

// TestSRTPublishReadsBackOverRTSPRTMPAndHLS: ffmpeg publishes MPEG-TS
// over SRT with the Access Control stream id; ffprobe reads the stream
// back over RTSP, RTMP and HLS as H.264 320x240 and AAC, and
// getMediaList says its origin is SRT (originType 9).
func TestSRTPublishReadsBackOverRTSPRTMPAndHLS(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	pushSRT(t, srv, testmedia.H264AAC, srtURL(srv.Addr("srt"), "live/s", "publish"), "live/s")
	for _, u := range []string{
		"rtsp://" + srv.Addr("rtsp") + "/live/s",
		"rtmp://" + srv.Addr("rtmp") + "/live/s",
		"http://" + srv.Addr("http") + "/live/s/hls.m3u8",
	} {
		p := probeTS(t, u)
		if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 || p.Streams[0].Height != 240 ||
			p.Streams[1].CodecName != "aac" {
			t.Errorf("%s: ffprobe %+v, want h264 320x240 and aac", u, p.Streams)
		}
	}
	decode5s(t, "rtsp://"+srv.Addr("rtsp")+"/live/s")
	found := false
	for _, d := range list(api(t, srv, "getMediaList", "app", "live", "stream", "s")) {
		found = true
		if d["originType"] != float64(9) || d["originTypeStr"] == "" {
			t.Errorf("getMediaList %s: originType %v (%v), want 9 (srt)", d["schema"], d["originType"], d["originTypeStr"])
		}
	}
	if !found {
		t.Error("getMediaList lists no live/s")
	}
}

// TestSRTPlayReadsAnRTSPPush: ffprobe reads an ffmpeg RTSP push over SRT
// (m=request) as H.264 and AAC, ffmpeg decodes 5 s of it without a
// message, and while it plays the player counts as a reader of the stream.
func TestSRTPlayReadsAnRTSPPush(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtsp://"+srv.Addr("rtsp")+"/live/r", "live/r")
	u := srtURL(srv.Addr("srt"), "live/r", "request")
	p := probeTS(t, u)
	if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 || p.Streams[1].CodecName != "aac" {
		t.Errorf("%s: ffprobe %+v, want h264 320x240 and aac", u, p.Streams)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		decode5s(t, u)
	}()
	testutil.WaitFor(t, 10*time.Second, "the SRT player to count as a reader", func() bool {
		for _, r := range srv.Hub.Get("live/r").ReaderList() {
			if r.Who().Proto == "srt" {
				return true
			}
		}
		return false
	})
	<-done
}

// lossyRelay forwards UDP datagrams between callers and a server address,
// dropping a share of them each way: a lossy network path in the test.
type lossyRelay struct {
	front    *net.UDPConn
	target   *net.UDPAddr
	lossPct  int
	mu       sync.Mutex
	rng      *rand.Rand
	backs    map[string]*net.UDPConn
	fwd, ret atomic.Uint64 // datagrams forwarded each way
	dropFwd  atomic.Uint64
	dropRet  atomic.Uint64
}

func newLossyRelay(t *testing.T, target string, lossPct int) *lossyRelay {
	t.Helper()
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &lossyRelay{front: front, target: ta, lossPct: lossPct, rng: rand.New(rand.NewPCG(13, 2)), backs: map[string]*net.UDPConn{}}
	go r.run()
	t.Cleanup(func() {
		front.Close()
		r.mu.Lock()
		for _, b := range r.backs {
			b.Close()
		}
		r.mu.Unlock()
	})
	return r
}

func (r *lossyRelay) Addr() string { return r.front.LocalAddr().String() }

func (r *lossyRelay) drop() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.IntN(100) < r.lossPct
}

func (r *lossyRelay) run() {
	buf := make([]byte, 2048)
	for {
		n, from, err := r.front.ReadFromUDP(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		back := r.backs[from.String()]
		if back == nil {
			back, err = net.DialUDP("udp", nil, r.target)
			if err != nil {
				r.mu.Unlock()
				continue
			}
			r.backs[from.String()] = back
			go r.returnPath(back, from)
		}
		r.mu.Unlock()
		if r.drop() {
			r.dropFwd.Add(1)
			continue
		}
		r.fwd.Add(1)
		back.Write(buf[:n])
	}
}

func (r *lossyRelay) returnPath(back *net.UDPConn, to *net.UDPAddr) {
	buf := make([]byte, 2048)
	for {
		n, err := back.Read(buf)
		if err != nil {
			return
		}
		if r.drop() {
			r.dropRet.Add(1)
			continue
		}
		r.ret.Add(1)
		r.front.WriteToUDP(buf[:n], to)
	}
}

// TestSRTDecodesThroughFivePercentLoss: with a relay that drops 5% of the
// datagrams each way on both paths, an ffmpeg SRT publish and an ffmpeg
// SRT read of it still decode 5 s without a single error message: SRT's
// retransmission repairs the loss within the latency.
func TestSRTDecodesThroughFivePercentLoss(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	in := newLossyRelay(t, srv.Addr("srt"), 5)
	out := newLossyRelay(t, srv.Addr("srt"), 5)
	// 500 ms of latency (ffmpeg's latency= is in microseconds), as a lossy
	// link gets: under the race detector on a busy 2-core machine 120 ms
	// was seen to run out while a NAK and its retransmission were lost too.
	pushSRT(t, srv, testmedia.H264AAC, srtURL(in.Addr(), "live/lossy", "publish")+"&latency=500000", "live/lossy")
	decode5s(t, srtURL(out.Addr(), "live/lossy", "request")+"&latency=500000")
	for name, r := range map[string]*lossyRelay{"publish": in, "play": out} {
		t.Logf("%s path: %d/%d datagrams dropped to the server, %d/%d from it", name,
			r.dropFwd.Load(), r.fwd.Load()+r.dropFwd.Load(), r.dropRet.Load(), r.ret.Load()+r.dropRet.Load())
		if r.dropFwd.Load() == 0 || r.dropRet.Load() == 0 {
			t.Errorf("%s path: the relay dropped nothing one way; the test proves nothing", name)
		}
	}
}

func startSRTWith(t *testing.T, mod func(c *config.Config)) (*server.Server, *testutil.LogBuffer) {
	t.Helper()
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	cfg.API.Secret = "s3cret"
	mod(cfg)
	return startServer(t, cfg, logging.LevelTrace)
}

// TestSRTRefusals: callers Berth must turn away get an SRT rejection at
// the handshake and a warning that names the cause and the fix: a stream
// id without a path, missing [auth] credentials, a second publisher of a
// busy path, no passphrase or the wrong one where [srt] passPhrase is set.
// gosrt's client is the caller: it reports the rejection as an error.
func TestSRTRefusals(t *testing.T) {
	srv, logs := startSRTWith(t, func(c *config.Config) {
		c.Auth.Publish = []config.User{{Name: "alice", Password: "secret1"}}
	})
	enc, encLogs := startSRTWith(t, func(c *config.Config) { c.SRT.PassPhrase = "0123456789abc" })
	// An ffmpeg publisher holds live/busy, with alice's credentials.
	testmedia.RequireFFmpeg(t)
	pushSRT(t, srv, testmedia.H264AAC, srtURL(srv.Addr("srt"), "live/busy", "publish,u=alice,pass=secret1"), "live/busy")
	cases := []struct {
		name, addr, streamid, pass string
		logs                       *testutil.LogBuffer
		want                       []string
		code                       gosrt.RejectionReason
	}{
		{"stream id without a path", srv.Addr("srt"), "#!::m=publish", "", logs, []string{"srt caller refused", "no r= resource", "fix="}, gosrt.REJX_BAD_REQUEST},
		{"no credentials", srv.Addr("srt"), "#!::r=live/x,m=publish", "", logs, []string{"srt publish refused: bad or missing credentials", "u=NAME,pass=PASSWORD"}, gosrt.REJX_UNAUTHORIZED},
		{"busy path", srv.Addr("srt"), "#!::r=live/busy,m=publish,u=alice,pass=secret1", "", logs, []string{"srt publish refused", "already published", "allow_takeover"}, gosrt.REJX_CONFLICT},
		{"bidirectional", srv.Addr("srt"), "#!::r=live/x,m=bidirectional", "", logs, []string{"srt caller refused", "bidirectional"}, gosrt.REJX_BAD_REQUEST},
		{"no passphrase", enc.Addr("srt"), "#!::r=live/x,m=request", "", encLogs, []string{"does not encrypt", "passphrase="}, gosrt.REJ_UNSECURE},
		{"wrong passphrase", enc.Addr("srt"), "#!::r=live/x,m=request", "wrong-passphrase", encLogs, []string{"srt caller refused", "passphrase"}, gosrt.REJ_BADSECRET},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := dialSRT(t, c.addr, c.streamid, c.pass)
			if conn != nil {
				conn.Close()
				t.Fatalf("streamid %q was accepted", c.streamid)
			}
			// gosrt prints the code in base 32.
			if code := "(" + strconv.FormatUint(uint64(c.code), 32) + ")"; err == nil || !strings.Contains(err.Error(), code) {
				t.Errorf("dial error %v, want the rejection code %d", err, c.code)
			}
			c.logs.WaitLine(t, c.want...)
		})
	}
}

// dialSRT connects with gosrt's client; nil and the error when the server refused.
func dialSRT(t *testing.T, addr, streamid, pass string) (gosrt.Conn, error) {
	t.Helper()
	cfg := gosrt.DefaultConfig()
	cfg.StreamId = streamid
	cfg.Passphrase = pass
	cfg.ConnectionTimeout = 3 * time.Second
	conn, err := gosrt.Dial("srt", addr, cfg)
	if err != nil {
		t.Logf("dial %s streamid %q: %v", addr, streamid, err)
		return nil, err
	}
	return conn, nil
}

// TestSRTEncryptedPublishAndPlay: with [srt] passPhrase set, ffmpeg
// publishes with that passphrase (AES-256: pbkeylen=32, the caller's
// choice) and ffprobe reads the stream back over SRT with it.
func TestSRTEncryptedPublishAndPlay(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	const pass = "correct-horse-battery"
	srv, _ := startSRTWith(t, func(c *config.Config) { c.SRT.PassPhrase = pass })
	pushSRT(t, srv, testmedia.H264AAC, srtURL(srv.Addr("srt"), "live/enc", "publish")+"&passphrase="+pass+"&pbkeylen=32", "live/enc")
	u := srtURL(srv.Addr("srt"), "live/enc", "request") + "&passphrase=" + pass
	p := probeTS(t, u)
	if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || p.Streams[1].CodecName != "aac" {
		t.Errorf("%s: ffprobe %+v, want h264 and aac", u, p.Streams)
	}
}

// TestSRTHooks: an SRT publish asks on_publish (schema srt, originType 9,
// the stream id's extra keys as params) and an SRT play asks on_play; a
// hook's refusal turns the caller away with REJX_FORBIDDEN and a warning
// with the hook's reason.
func TestSRTHooks(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	hr := newHookRecorder(t, func(hook string, body map[string]any) string {
		if body["stream"] == "denied" && (hook == "on_publish" || hook == "on_play") {
			return `{"code":-1,"msg":"not on the list"}`
		}
		return ""
	})
	srv, logs := startHooked(t, hr.url, nil)
	pushSRT(t, srv, testmedia.H264AAC, srtURL(srv.Addr("srt"), "live/s", "publish,token=abc"), "live/s")
	pub := hr.wait(t, "on_publish", map[string]any{"stream": "s"})
	if pub["schema"] != "srt" || pub["originType"] != float64(9) || pub["originTypeStr"] != "srt_push" || pub["params"] != "token=abc" {
		t.Errorf("on_publish body %v, want schema srt, originType 9 (srt_push), params token=abc", pub)
	}
	probeTS(t, srtURL(srv.Addr("srt"), "live/s", "request"))
	if play := hr.wait(t, "on_play", map[string]any{"stream": "s"}); play["schema"] != "srt" {
		t.Errorf("on_play body %v, want schema srt", play)
	}
	for _, mode := range []string{"publish", "request"} {
		_, err := dialSRT(t, srv.Addr("srt"), "#!::r=live/denied,m="+mode, "")
		if code := "(" + strconv.FormatUint(uint64(gosrt.REJX_FORBIDDEN), 32) + ")"; err == nil || !strings.Contains(err.Error(), code) {
			t.Errorf("m=%s of a stream the hook refuses: %v, want rejection %d", mode, err, gosrt.REJX_FORBIDDEN)
		}
	}
	logs.WaitLine(t, "level=WARN", "srt publish refused by the web hook", "not on the list")
	logs.WaitLine(t, "level=WARN", "srt play refused by the web hook", "not on the list")
}

// TestSRTPortHeldIsAFinding: a taken [srt] port stops the start with the
// usual finding (listener, address, holder, fix) instead of an SRT error,
// and a free one is in the banner with srt:// push and play commands.
func TestSRTPortHeldIsAFinding(t *testing.T) {
	held, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.LocalAddr().(*net.UDPAddr).Port
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	cfg.RTSP.Port, cfg.RTMP.Port, cfg.HTTP.Port, cfg.RTPProxy.Port = 0, 0, 0, 0
	cfg.SRT.Port = port
	srv := server.New(cfg, logging.New(&testutil.LogBuffer{}, logging.LevelTrace))
	err = srv.Start()
	var se *ports.StartError
	if !errors.As(err, &se) || len(se.Findings) != 1 || se.Findings[0].Spec.Name != "srt" {
		if err == nil {
			srv.Shutdown(context.Background())
		}
		t.Fatalf("start with [srt] port %d held: %v, want one finding for srt", port, err)
	}
	msg := se.Findings[0].Error()
	t.Log(msg)
	if !strings.Contains(msg, "127.0.0.1:"+strconv.Itoa(port)+"/udp") || !strings.Contains(msg, "[srt]") {
		t.Errorf("finding %q, want the address and the [srt] key to change", msg)
	}

	var banner strings.Builder
	srv = server.New(cfg, logging.New(&testutil.LogBuffer{}, logging.LevelTrace))
	srv.Ephemeral, srv.Banner = true, &banner // [srt] on, at a port the kernel picks
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	want := "srt://" + srv.Addr("srt") + "?streamid=#!::r=live/stream,m=publish"
	t.Log(banner.String())
	if !strings.Contains(banner.String(), want) {
		t.Errorf("banner lacks %q:\n%s", want, banner.String())
	}
}

// TestSRTPublishH265AndOpus: H.265 with AAC, and H.264 with Opus, published
// over SRT read back over RTSP with their codecs.
func TestSRTPublishH265AndOpus(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	for _, c := range []struct {
		kind         testmedia.Kind
		path         string
		video, audio string
	}{
		{testmedia.H265AAC, "live/h265", "hevc", "aac"},
		{testmedia.H264Opus, "live/opus", "h264", "opus"},
	} {
		pushSRT(t, srv, c.kind, srtURL(srv.Addr("srt"), c.path, "publish"), c.path)
		u := "rtsp://" + srv.Addr("rtsp") + "/" + c.path
		p := probeTS(t, u)
		if len(p.Streams) != 2 || p.Streams[0].CodecName != c.video || p.Streams[1].CodecName != c.audio {
			t.Errorf("%s (%s over SRT): ffprobe %+v, want %s and %s", u, c.kind, p.Streams, c.video, c.audio)
		}
	}
}

// TestSRTServesBothFamilies: with listen_ip "::" (the default) SRT answers
// on IPv4 and IPv6: ffmpeg publishes to 127.0.0.1 and ffprobe reads over
// ::1 (skipped where the host has no IPv6 loopback).
func TestSRTServesBothFamilies(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	if l, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback on this host")
	} else {
		l.Close()
	}
	srv, _ := startSRTWith(t, func(c *config.Config) { c.General.ListenIP = "::" })
	_, port, _ := net.SplitHostPort(srv.Addr("srt"))
	pushSRT(t, srv, testmedia.H264AAC, srtURL("127.0.0.1:"+port, "live/v6", "publish"), "live/v6")
	u := srtURL("[::1]:"+port, "live/v6", "request")
	if p := probeTS(t, u); len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" {
		t.Errorf("%s: ffprobe %+v, want h264 and aac", u, p.Streams)
	}
}
