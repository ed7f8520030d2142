package rtsp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/rtsp"
	"github.com/berthmedia/berth/internal/rtspclient"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testmedia.Cleanup()
	os.Exit(code)
}

type testServer struct {
	addr string
	hub  *hub.Hub
	srv  *rtsp.Server
	log  *testutil.LogBuffer
}

func (ts *testServer) url(path string) string { return "rtsp://" + ts.addr + "/" + path }

type serverOpt func(*rtsp.Server, *hub.Options)

func startServer(t *testing.T, opts ...serverOpt) *testServer {
	t.Helper()
	lb := &testutil.LogBuffer{}
	log := logging.New(lb, logging.LevelTrace)
	hopts := hub.Options{Log: log}
	srv := &rtsp.Server{Log: log, Instance: "test-instance", Version: "test", KeepAlive: 5 * time.Second,
		UDPRange: config.PortRange{Lo: 40000, Hi: 49999}}
	for _, o := range opts {
		o(srv, &hopts)
	}
	h := hub.New(hopts)
	srv.Hub = h
	l, err := ports.Listen(ports.Spec{Name: "rtsp", Section: "rtsp", Network: "tcp", Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		h.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", lb.String())
		}
	})
	return &testServer{addr: l.Addr().String(), hub: h, srv: srv, log: lb}
}

// push starts ffmpeg publishing file to url at real-time speed, looping.
func push(t *testing.T, file, url, transport string, extra ...string) *exec.Cmd {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", file, "-c", "copy"}
	args = append(args, extra...)
	args = append(args, "-f", "rtsp", "-rtsp_transport", transport, url)
	cmd := exec.Command("ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func waitPublished(t *testing.T, ts *testServer, path string) *hub.Stream {
	t.Helper()
	var st *hub.Stream
	testutil.WaitFor(t, 10*time.Second, "stream "+path+" to be published with frames", func() bool {
		st = ts.hub.Get(path)
		return st != nil && st.FramesIn.Load() > 0
	})
	return st
}

type probeStream struct {
	CodecType  string `json:"codec_type"`
	CodecName  string `json:"codec_name"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	SampleRate string `json:"sample_rate"`
	Channels   int    `json:"channels"`
}

func ffprobe(t *testing.T, url, transport string) []probeStream {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-rtsp_transport", transport, "-show_streams", "-of", "json", url).Output()
	if err != nil {
		t.Fatalf("ffprobe %s over %s: %v", url, transport, err)
	}
	var res struct {
		Streams []probeStream `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return res.Streams
}

func summary(ss []probeStream) string {
	var parts []string
	for _, s := range ss {
		if s.CodecType == "video" {
			parts = append(parts, fmt.Sprintf("%s %dx%d", s.CodecName, s.Width, s.Height))
		} else {
			parts = append(parts, fmt.Sprintf("%s %sHz %dch", s.CodecName, s.SampleRate, s.Channels))
		}
	}
	return strings.Join(parts, ", ")
}

// TestFFmpegPushIsReadableOverTCPAndUDP is the story Berth exists for: the
// classic ffmpeg RTSP push, over TCP and UDP, read back over both.
func TestFFmpegPushIsReadableOverTCPAndUDP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	file := testmedia.File(t, testmedia.H264AAC)
	for _, pushT := range []string{"tcp", "udp"} {
		t.Run("push-"+pushT, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t)
			push(t, file, ts.url("live/stream"), pushT)
			waitPublished(t, ts, "live/stream")
			ts.log.WaitLine(t, "publish started", "path=live/stream", "transport="+pushT)
			want := "h264 320x240, aac 48000Hz 1ch"
			for _, readT := range []string{"tcp", "udp"} {
				if got := summary(ffprobe(t, ts.url("live/stream"), readT)); got != want {
					t.Errorf("ffprobe over %s: got %q, want %q", readT, got, want)
				}
			}
			ts.log.WaitLine(t, "connection accepted", "local_port=")
		})
	}
}

// TestReaderDecodesWithoutErrorsFromAKeyframe: ffmpeg decodes 3 s with no
// error, and the first video packet a new reader gets is a keyframe.
func TestReaderDecodesWithoutErrorsFromAKeyframe(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	ts := startServer(t)
	push(t, testmedia.File(t, testmedia.H264AAC), ts.url("live/stream"), "tcp")
	waitPublished(t, ts, "live/stream")
	for _, tr := range []string{"tcp", "udp"} {
		out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-rtsp_transport", tr,
			"-i", ts.url("live/stream"), "-t", "3", "-f", "null", "-").CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("decoding over %s: err=%v, errors:\n%s", tr, err, out)
		}
		out, err = exec.Command("ffprobe", "-v", "error", "-rtsp_transport", tr, "-select_streams", "v",
			"-show_entries", "packet=flags", "-read_intervals", "%+#1", "-of", "csv=p=0", ts.url("live/stream")).Output()
		if err != nil {
			t.Fatalf("ffprobe packets: %v", err)
		}
		if first := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]); !strings.HasPrefix(first, "K") {
			t.Errorf("over %s the first video packet has flags %q, want a keyframe (K)", tr, first)
		}
	}
}

// TestCodecsPassThrough: H.265, Opus and G.711 pushes read back with the same codecs.
func TestCodecsPassThrough(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	cases := []struct {
		kind testmedia.Kind
		want string
	}{
		{testmedia.H265AAC, "hevc 320x240, aac 48000Hz 1ch"},
		{testmedia.H264Opus, "h264 320x240, opus 48000Hz 2ch"}, // RTP Opus is always opus/48000/2 (RFC 7587),
		{testmedia.H264PCMA, "h264 320x240, pcm_alaw 8000Hz 1ch"},
		{testmedia.AACOnly, "aac 48000Hz 1ch"},
	}
	for _, c := range cases {
		t.Run(string(c.kind), func(t *testing.T) {
			t.Parallel()
			ts := startServer(t)
			push(t, testmedia.File(t, c.kind), ts.url("live/c"), "tcp")
			waitPublished(t, ts, "live/c")
			if got := summary(ffprobe(t, ts.url("live/c"), "tcp")); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestTwoStreamsAtOnce: two paths publish and play independently.
func TestTwoStreamsAtOnce(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	ts := startServer(t)
	push(t, testmedia.File(t, testmedia.H264AAC), ts.url("live/a"), "tcp")
	push(t, testmedia.File(t, testmedia.H264PCMA), ts.url("live/b"), "udp")
	waitPublished(t, ts, "live/a")
	waitPublished(t, ts, "live/b")
	if got := summary(ffprobe(t, ts.url("live/a"), "tcp")); got != "h264 320x240, aac 48000Hz 1ch" {
		t.Errorf("live/a: %s", got)
	}
	if got := summary(ffprobe(t, ts.url("live/b"), "udp")); got != "h264 320x240, pcm_alaw 8000Hz 1ch" {
		t.Errorf("live/b: %s", got)
	}
}

// TestPublisherLeavingEndsReaders: every reader ends within 1 s.
func TestPublisherLeavingEndsReaders(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	ts := startServer(t)
	pub := push(t, testmedia.File(t, testmedia.H264AAC), ts.url("live/s"), "tcp")
	st := waitPublished(t, ts, "live/s")
	var readers []*exec.Cmd
	for _, tr := range []string{"tcp", "udp", "tcp"} {
		cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-rtsp_transport", tr, "-i", ts.url("live/s"), "-f", "null", "-")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		readers = append(readers, cmd)
		defer cmd.Process.Kill()
	}
	testutil.WaitFor(t, 10*time.Second, "3 readers", func() bool { return st.Readers() == 3 })
	pub.Process.Kill()
	left := time.Now()
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Add(1)
		go func() { defer wg.Done(); r.Wait() }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		t.Logf("all readers ended %s after the publisher left", time.Since(left).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatalf("readers still running 3 s after the publisher left")
	}
	if d := time.Since(left); d > time.Second {
		t.Errorf("readers took %s to end, want within 1 s", d)
	}
	testutil.WaitFor(t, time.Second, "the stream to leave the registry", func() bool { return ts.hub.Get("live/s") == nil })
	ts.log.WaitLine(t, "publish ended", "path=live/s", "bytes_in=")
	ts.log.WaitLine(t, "play ended", "reason=\"publisher left\"")
}

// rawRequest sends raw bytes on a new connection and returns the reply head.
func rawRequest(t *testing.T, addr string, raw []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go c.Write(raw)
	br := bufio.NewReader(c)
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		head.WriteString(line)
		if err != nil || line == "\r\n" {
			break
		}
	}
	return head.String()
}

func announce(path, sdp string, cseq int) []byte {
	return []byte(fmt.Sprintf("ANNOUNCE %s RTSP/1.0\r\nCSeq: %d\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", path, cseq, len(sdp), sdp))
}

const simpleSDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=test\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:streamid=0\r\n"

// TestSecondPublisherIsRefused: 406 and a log line naming both publishers.
func TestSecondPublisherIsRefused(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	ts := startServer(t)
	push(t, testmedia.File(t, testmedia.H264AAC), ts.url("live/s"), "tcp")
	waitPublished(t, ts, "live/s")
	reply := rawRequest(t, ts.addr, announce(ts.url("live/s"), simpleSDP, 1))
	if !strings.HasPrefix(reply, "RTSP/1.0 406") {
		t.Errorf("second ANNOUNCE got %q, want 406", reply)
	}
	ts.log.WaitLine(t, "publish refused", "path=live/s", "holder=\"rtsp 127.0.0.1:", "fix=")
	// ffmpeg as the second publisher fails.
	out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-i", testmedia.File(t, testmedia.H264AAC),
		"-t", "1", "-c", "copy", "-f", "rtsp", ts.url("live/s")).CombinedOutput()
	if err == nil {
		t.Errorf("second ffmpeg publisher succeeded; output: %s", out)
	}
}

// TestMalformedRequests get 400 and a log line, and the server serves others.
func TestMalformedRequests(t *testing.T) {
	ts := startServer(t)
	cases := []struct {
		name string
		raw  []byte
		want string
		log  string
	}{
		{"garbage bytes", []byte("\x00\x01garbage\xff\xfe NOT RTSP\r\n\r\n"), "RTSP/1.0 400", "malformed request"},
		{"1 MB header", []byte("OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: 1\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"), "RTSP/1.0 431", "Raise [rtsp] max_header_bytes"},
		{"bad CSeq", []byte("OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: abc\r\n\r\n"), "RTSP/1.0 400", "CSeq that is not a number"},
		{"no CSeq", []byte("OPTIONS rtsp://h/ RTSP/1.0\r\n\r\n"), "RTSP/1.0 400", "without a CSeq"},
		{"SDP that does not parse", announce("rtsp://h/live/bad", "this is not sdp", 2), "RTSP/1.0 400", "SDP that does not parse"},
		{"unknown stream", []byte("DESCRIBE rtsp://h/live/none RTSP/1.0\r\nCSeq: 3\r\n\r\n"), "RTSP/1.0 404", "not published"},
		{"unknown session", []byte("PLAY rtsp://h/live/none RTSP/1.0\r\nCSeq: 4\r\nSession: nope\r\n\r\n"), "RTSP/1.0 454", "unknown session"},
		{"unknown method", []byte("FOO rtsp://h/ RTSP/1.0\r\nCSeq: 5\r\n\r\n"), "RTSP/1.0 501", "unsupported method"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := rawRequest(t, ts.addr, c.raw); !strings.HasPrefix(got, c.want) {
				t.Errorf("got %q, want %s", firstLine(got), c.want)
			}
			ts.log.WaitLine(t, c.log)
			// The server still answers.
			if got := rawRequest(t, ts.addr, []byte("OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: 9\r\n\r\n")); !strings.HasPrefix(got, "RTSP/1.0 200") ||
				!strings.Contains(got, "X-Berth-Instance: test-instance") {
				t.Errorf("after %s, OPTIONS got %q", c.name, got)
			}
		})
	}
}

// TestMalformedRequestsFromManyPeersLogOneLine: garbage from connection
// after connection (a scan) is answered 400 each time and warned about once
// (the Warner's rate); each connection's closed line keeps the cause.
func TestMalformedRequestsFromManyPeersLogOneLine(t *testing.T) {
	ts := startServer(t)
	for range 5 {
		if got := rawRequest(t, ts.addr, []byte("\x16\x03\x01 not rtsp\r\n\r\n")); !strings.HasPrefix(got, "RTSP/1.0 400") {
			t.Fatalf("got %q, want 400", firstLine(got))
		}
	}
	testutil.WaitFor(t, 5*time.Second, "5 closed lines", func() bool {
		return strings.Count(ts.log.String(), "reason=\"malformed request:") == 5
	})
	if n := strings.Count(ts.log.String(), "level=WARN msg=\"malformed request from 127.0.0.1 on the RTSP port"); n != 1 {
		t.Errorf("%d warnings for 5 malformed requests within 10 s, want 1:\n%s", n, ts.log.String())
	}
}

func firstLine(s string) string { return strings.SplitN(s, "\r\n", 2)[0] }

// TestAuth: publish and play with Digest (ffmpeg's choice); wrong
// passwords get 401 and a log line.
func TestAuth(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	ts := startServer(t, func(s *rtsp.Server, _ *hub.Options) {
		s.Auth = &auth.Checker{
			Publish: []config.User{{Name: "pub", Password: "secret"}},
			Play:    []config.User{{Name: "viewer", Password: "pw"}},
			Realm:   "berth",
		}
	})
	// Without credentials: 401 with a Digest challenge.
	got := rawRequest(t, ts.addr, announce(ts.url("live/s"), simpleSDP, 1))
	if !strings.HasPrefix(got, "RTSP/1.0 401") || !strings.Contains(got, "Digest") {
		t.Fatalf("ANNOUNCE without credentials: %q", got)
	}
	push(t, testmedia.File(t, testmedia.H264AAC), "rtsp://pub:secret@"+ts.addr+"/live/s", "tcp")
	waitPublished(t, ts, "live/s")
	if got := summary(ffprobe(t, "rtsp://viewer:pw@"+ts.addr+"/live/s", "tcp")); !strings.HasPrefix(got, "h264") {
		t.Errorf("authorised play: %s", got)
	}
	if err := exec.Command("ffprobe", "-v", "error", "-rtsp_transport", "tcp", "rtsp://viewer:wrong@"+ts.addr+"/live/s").Run(); err == nil {
		t.Errorf("play with a wrong password succeeded")
	}
	ts.log.WaitLine(t, "authentication failed", "user=viewer", "action=play")
}

// TestFiftyReadersGetEveryPacketInOrder: 50 of Berth's own clients read one
// stream while ffmpeg publishes at real-time speed; every reader sees every
// RTP packet of every track with no gap in sequence numbers.
func TestFiftyReadersGetEveryPacketInOrder(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	ts := startServer(t)
	push(t, testmedia.File(t, testmedia.H264AAC), ts.url("live/s"), "tcp")
	st := waitPublished(t, ts, "live/s")

	const readers = 50
	type counts struct {
		mu      sync.Mutex
		packets int
		gaps    int
		last    map[int]uint16
	}
	all := make([]*counts, readers)
	clients := make([]*rtspclient.Client, readers)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range all {
		cn := &counts{last: map[int]uint16{}}
		all[i] = cn
		c, err := rtspclient.Dial(ctx, ts.url("live/s"), rtspclient.Options{Transport: rtspclient.TCP, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
		defer c.Close()
		desc, _, err := c.Describe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetupAll(desc); err != nil {
			t.Fatal(err)
		}
		c.OnPacket = func(track int, pkt []byte) {
			h, ok := codec.ParseRTP(pkt)
			if !ok {
				return
			}
			cn.mu.Lock()
			if prev, seen := cn.last[track]; seen && h.Seq != prev+1 {
				cn.gaps++
			}
			cn.last[track] = h.Seq
			cn.packets++
			cn.mu.Unlock()
		}
		if _, err := c.Play(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "50 readers on the stream", func() bool { return st.Readers() == readers })
	start := st.FramesIn.Load()
	testutil.WaitFor(t, 20*time.Second, "3 s of media to pass", func() bool { return st.FramesIn.Load() > start+400 })
	for i, c := range clients {
		c.Close()
		cn := all[i]
		cn.mu.Lock()
		if cn.gaps > 0 || cn.packets < 400 {
			t.Errorf("reader %d: %d packets, %d sequence gaps", i, cn.packets, cn.gaps)
		}
		cn.mu.Unlock()
	}
	if n := st.Skips.Load(); n > 0 {
		t.Errorf("%d slow-reader skips while 50 readers kept up", n)
	}
}

// TestSessionTimeout: a UDP session that sends neither requests nor RTCP is
// closed after keepAliveSecond with a log line that says why.
func TestSessionTimeout(t *testing.T) {
	ts := startServer(t, func(s *rtsp.Server, _ *hub.Options) { s.KeepAlive = time.Second })
	pub, err := ts.hub.Publish("live/t", hub.Origin{Proto: "test"}, hub.KindRTP,
		[]*hub.Track{{Format: &format.H264{PayloadTyp: 96, PacketizationMode: 1}, Video: true}}, []byte(simpleSDP))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "SETUP %s/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=50000-50001\r\n\r\n", ts.url("live/t"))
	br := bufio.NewReader(c)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "RTSP/1.0 200") {
		t.Fatalf("SETUP: %q", line)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := br.ReadString('\n'); err != nil {
			break
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("silent session closed after %s, want about 1 s", d)
	}
	ts.log.WaitLine(t, "session timed out", "keepAliveSecond=1")
}

// TestBasicAuth: with [rtsp] authBasic=1 the challenge offers Basic too, and
// Basic credentials are checked like Digest ones.
func TestBasicAuth(t *testing.T) {
	ts := startServer(t, func(s *rtsp.Server, _ *hub.Options) {
		s.AuthBasic = true
		s.Auth = &auth.Checker{Play: []config.User{{Name: "viewer", Password: "pw"}}, Realm: "berth"}
	})
	describe := func(authz string) string {
		h := ""
		if authz != "" {
			h = "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(authz)) + "\r\n"
		}
		return rawRequest(t, ts.addr, []byte("DESCRIBE "+ts.url("live/none")+" RTSP/1.0\r\nCSeq: 1\r\n"+h+"\r\n"))
	}
	if got := describe(""); !strings.HasPrefix(got, "RTSP/1.0 401") || !strings.Contains(got, "Basic realm") || !strings.Contains(got, "Digest") {
		t.Errorf("challenge: %q", got)
	}
	if got := describe("viewer:wrong"); !strings.HasPrefix(got, "RTSP/1.0 401") {
		t.Errorf("wrong password: %q", firstLine(got))
	}
	// Right credentials get past auth to the 404 of a stream nobody publishes.
	if got := describe("viewer:pw"); !strings.HasPrefix(got, "RTSP/1.0 404") {
		t.Errorf("right password: %q", firstLine(got))
	}
}

// TestSlowReaderNeverSlowsOthers: a player that stops reading its socket is
// dropped (logged) once its socket takes nothing for the write timeout,
// while a healthy player of the same stream keeps every packet in order and
// the publisher is untouched. (Skipping within the ring is unit-tested in
// the hub: here the kernel's socket buffers absorb megabytes first.)
func TestSlowReaderNeverSlowsOthers(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	ts := startServer(t, func(_ *rtsp.Server, o *hub.Options) { o.RingSize = 128 })
	push(t, testmedia.File(t, testmedia.H264CBR), ts.url("live/s"), "tcp")
	st := waitPublished(t, ts, "live/s")

	// The slow player: a raw client with a tiny receive buffer that never reads after PLAY.
	raw, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.(*net.TCPConn).SetReadBuffer(4096)
	br := bufio.NewReader(raw)
	session := ""
	for i, req := range []string{
		"SETUP " + ts.url("live/s") + "/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
		"PLAY " + ts.url("live/s") + " RTSP/1.0\r\nCSeq: 2\r\nSession: %s\r\n\r\n",
	} {
		if i == 1 {
			req = fmt.Sprintf(req, session)
		}
		raw.Write([]byte(req))
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(line, "Session: ") {
				session = strings.SplitN(strings.TrimSpace(strings.TrimPrefix(line, "Session: ")), ";", 2)[0]
			}
			if line == "\r\n" {
				break
			}
		}
	}

	// The healthy player.
	c := dialPlayer(t, ts, "live/s", rtspclient.TCP)
	var mu sync.Mutex
	last := map[int]uint16{}
	packets, gaps := 0, 0
	c.OnPacket = func(track int, pkt []byte) {
		h, ok := codec.ParseRTP(pkt)
		if !ok {
			return
		}
		mu.Lock()
		if prev, seen := last[track]; seen && h.Seq != prev+1 {
			gaps++
		}
		last[track] = h.Seq
		packets++
		mu.Unlock()
	}
	if _, err := c.Play(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the stuck reader to be dropped", func() bool {
		return ts.log.Line("slow reader dropped") != ""
	})
	start := st.FramesIn.Load()
	testutil.WaitFor(t, 20*time.Second, "2 s more of media", func() bool { return st.FramesIn.Load() > start+500 })
	mu.Lock()
	defer mu.Unlock()
	if gaps > 0 || packets < 250 {
		t.Errorf("healthy reader: %d packets, %d gaps while another reader was stuck", packets, gaps)
	}
	if ts.hub.Get("live/s") == nil {
		t.Errorf("the stream ended because of a slow reader")
	}
}

// dialPlayer connects Berth's client to path and sets up every track, ready
// for PLAY. The client lives 30 s at most (its context's), and the test's
// cleanup closes it.
func dialPlayer(t *testing.T, ts *testServer, path string, tr rtspclient.Transport) *rtspclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := rtspclient.Dial(ctx, ts.url(path), rtspclient.Options{Transport: tr, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	desc, _, err := c.Describe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc); err != nil {
		t.Fatal(err)
	}
	return c
}
