package rtpproxy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testmedia.Cleanup()
	os.Exit(code)
}

// frameLog records what the server published, per path.
type frameLog struct {
	mu     sync.Mutex
	frames map[string][]*hub.Frame
}

func (f *frameLog) tap(path string, fr *hub.Frame) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frames == nil {
		f.frames = map[string][]*hub.Frame{}
	}
	f.frames[path] = append(f.frames[path], fr)
}

func (f *frameLog) get(path string) []*hub.Frame {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*hub.Frame(nil), f.frames[path]...)
}

type testEnv struct {
	srv     *Server
	hub     *hub.Hub
	udp     string
	tcp     string
	logs    *testutil.LogBuffer
	frames  *frameLog
	udpPort int
}

func newEnv(t *testing.T, timeoutSec int, opts ...func(*Server)) *testEnv {
	t.Helper()
	logs := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := hub.New(hub.Options{Log: log, Converters: codec.Converters(log)})
	pc, err := ports.ListenPacket(ports.Spec{Name: "rtp_proxy", Section: "rtp_proxy", Network: "udp", Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ports.Listen(ports.Spec{Name: "rtp_proxy", Section: "rtp_proxy", Network: "tcp", Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	fl := &frameLog{}
	srv := &Server{Hub: h, Log: log, TimeoutSec: timeoutSec, Host: "127.0.0.1", tap: fl.tap}
	for _, o := range opts {
		o(srv)
	}
	go srv.ServeUDP(pc)
	go srv.ServeTCP(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		h.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testEnv{srv: srv, hub: h, udp: pc.LocalAddr().String(), tcp: l.Addr().String(), logs: logs, frames: fl,
		udpPort: pc.Port()}
}

func (e *testEnv) waitStream(t *testing.T, path string) *hub.Stream {
	t.Helper()
	var s *hub.Stream
	testutil.WaitFor(t, 15*time.Second, "stream "+path, func() bool { s = e.hub.Get(path); return s != nil })
	return s
}

func codecNames(s *hub.Stream) string {
	var n []string
	for _, tr := range s.Tracks {
		n = append(n, tr.Format.Codec())
	}
	return strings.Join(n, ",")
}

// readFrames subscribes to path and reads until it has a keyframe of every
// video track and n frames in all.
func readFrames(t *testing.T, h *hub.Hub, path string, n int) []*hub.Frame {
	t.Helper()
	r, err := h.Subscribe(path, hub.KindAU, hub.Origin{Proto: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []*hub.Frame
	buf := make([]*hub.Frame, 64)
	done := make(chan struct{})
	timer := time.AfterFunc(15*time.Second, func() { r.Close(); close(done) })
	defer timer.Stop()
	for len(out) < n {
		k, err := r.Read(buf)
		if err != nil {
			t.Fatalf("read %s after %d frames: %v", path, len(out), err)
		}
		out = append(out, buf[:k]...)
	}
	return out
}

func TestTSOverUDPFromFFmpegIsPublishedUnderItsSSRC(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		media  testmedia.Kind
		ssrc   string // as ffmpeg's signed int option
		path   string
		codecs string
	}{
		{testmedia.H264AAC, "305419896", "rtp/12345678", "H264,MPEG-4 Audio"},
		{testmedia.H265AAC, "-1", "rtp/FFFFFFFF", "H265,MPEG-4 Audio"},
		{testmedia.H264Opus, "16", "rtp/00000010", "H264,Opus"},
		{testmedia.AACOnly, "171", "rtp/000000AB", "MPEG-4 Audio"},
	} {
		t.Run(string(c.media), func(t *testing.T) {
			t.Parallel()
			src := requireMedia(t, c.media)
			e := newEnv(t, 5)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", src, "-c", "copy",
				"-f", "rtp_mpegts", "-rtp_muxer_options", "ssrc="+c.ssrc, "rtp://"+e.udp)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); cmd.Wait() }()

			s := e.waitStream(t, c.path)
			if got := codecNames(s); got != c.codecs {
				t.Fatalf("tracks = %s, want %s", got, c.codecs)
			}
			switch f := s.Tracks[0].Format.(type) {
			case *format.H264:
				if len(f.SPS) == 0 || len(f.PPS) == 0 {
					t.Fatal("H264 track published without SPS/PPS")
				}
			case *format.H265:
				if len(f.VPS) == 0 || len(f.SPS) == 0 || len(f.PPS) == 0 {
					t.Fatal("H265 track published without VPS/SPS/PPS")
				}
			}
			if aac, ok := s.Tracks[len(s.Tracks)-1].Format.(*format.MPEG4Audio); ok && aac.Config.SampleRate != 48000 {
				t.Fatalf("AAC sample rate %d, want 48000", aac.Config.SampleRate)
			}
			frames := readFrames(t, e.hub, c.path, 60)
			if !frames[0].Key {
				t.Fatalf("first frame read is not a keyframe: track %d", frames[0].Track)
			}
			if len(s.Tracks) > 1 {
				audio := 0
				for _, f := range frames {
					if f.Track == 1 {
						audio++
					}
				}
				if audio == 0 {
					t.Fatal("no audio frames read")
				}
			}
			if !strings.Contains(e.logs.String(), "RTP stream started") || !strings.Contains(e.logs.String(), "path="+c.path) {
				t.Fatalf("no INFO line for the new SSRC stream:\n%s", e.logs.String())
			}
		})
	}
}

// psCase is one PS-over-RTP source made by the test muxer.
type psCase struct {
	name      string
	media     testmedia.Kind
	h265      bool
	audio     string // "aac", "alaw" or ""
	vType     byte
	aType     byte
	wantCodec string
	pts0      int64
}

var psCases = []psCase{
	{name: "H264+AAC", media: testmedia.H264AAC, audio: "aac", vType: stH264, aType: stAAC, wantCodec: "H264,MPEG-4 Audio", pts0: 90000},
	{name: "H264+G711A", media: testmedia.H264PCMA, audio: "alaw", vType: stH264, aType: stG711A, wantCodec: "H264,G711", pts0: 90000},
	{name: "H265+AAC", media: testmedia.H265AAC, h265: true, audio: "aac", vType: stH265, aType: stAAC, wantCodec: "H265,MPEG-4 Audio", pts0: 90000},
	// Timestamps that wrap the 33-bit clock 4 s in.
	{name: "H264+AAC across the 33-bit wrap", media: testmedia.H264AAC, audio: "aac", vType: stH264, aType: stAAC, wantCodec: "H264,MPEG-4 Audio", pts0: clock33 - 4*90000},
}

func (c psCase) build(t *testing.T) (video, audio []esFrame, units []psUnit) {
	src := requireMedia(t, c.media)
	video = videoFrames(t, src, c.h265, c.pts0)
	switch c.audio {
	case "aac":
		audio = aacFrames(t, src, c.pts0)
	case "alaw":
		audio = alawFrames(t, src, c.pts0)
	}
	return video, audio, muxPS(video, audio, c.vType, c.aType)
}

// checkPublished compares what was published on path with the frames the
// muxer was given: every video access unit (minus delimiters) and every
// audio frame, in order, with keyframes marked and times kept.
func checkPublished(t *testing.T, e *testEnv, path string, c psCase, video, audio []esFrame) {
	t.Helper()
	s := e.waitStream(t, path)
	if got := codecNames(s); got != c.wantCodec {
		t.Fatalf("tracks = %s, want %s", got, c.wantCodec)
	}
	// The last video frame stays in the splitter until the next one starts.
	want := len(video) - 1 + len(audio)
	testutil.WaitFor(t, 15*time.Second, fmt.Sprintf("%d frames", want), func() bool { return len(e.frames.get(path)) >= want })
	got := e.frames.get(path)
	var gv, ga []*hub.Frame
	for _, f := range got {
		if f.Track == 0 {
			gv = append(gv, f)
		} else {
			ga = append(ga, f)
		}
	}
	if len(gv) != len(video)-1 {
		t.Fatalf("video frames published %d, want %d", len(gv), len(video)-1)
	}
	for i, f := range gv {
		var wantNALUs [][]byte
		for _, n := range splitAnnexB(video[i].data) {
			if (!c.h265 && n[0]&0x1f == 9) || (c.h265 && (n[0]>>1)&0x3f == 35) {
				continue
			}
			wantNALUs = append(wantNALUs, n)
		}
		if len(f.AU) != len(wantNALUs) {
			t.Fatalf("video frame %d: %d NAL units, want %d", i, len(f.AU), len(wantNALUs))
		}
		for j := range f.AU {
			if !bytes.Equal(f.AU[j], wantNALUs[j]) {
				t.Fatalf("video frame %d NAL %d differs", i, j)
			}
		}
		if f.Key != video[i].key {
			t.Fatalf("video frame %d: key %v, want %v", i, f.Key, video[i].key)
		}
		if wantPTS := ticksToDuration(video[i].pts - video[0].pts); f.PTS != wantPTS {
			t.Fatalf("video frame %d: PTS %v, want %v", i, f.PTS, wantPTS)
		}
	}
	if len(ga) != len(audio) {
		t.Fatalf("audio frames published %d, want %d", len(ga), len(audio))
	}
	for i, f := range ga {
		w := audio[i].data
		if c.audio == "aac" {
			w = w[7:] // the ADTS header is not part of the access unit
		}
		if !bytes.Equal(f.AU[0], w) {
			t.Fatalf("audio frame %d differs", i)
		}
		if wantPTS := ticksToDuration(audio[i].pts - video[0].pts); f.PTS != wantPTS {
			t.Fatalf("audio frame %d: PTS %v, want %v", i, f.PTS, wantPTS)
		}
	}
}

func TestPSOverUDPIsDemuxedFrameForFrame(t *testing.T) {
	t.Parallel()
	for i, c := range psCases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, 5)
			video, audio, units := c.build(t)
			ssrc := uint32(0x0BADCAFE + i)
			sendUDP(t, e.udp, rtpPackets(units, ssrc, 96, 1400))
			checkPublished(t, e, StreamPath(ssrc), c, video, audio)
		})
	}
}

func TestPSOverTCPIsDemuxedAndEndsWithTheConnection(t *testing.T) {
	t.Parallel()
	c := psCases[0]
	e := newEnv(t, 30)
	video, audio, units := c.build(t)
	conn := sendTCP(t, e.tcp, rtpPackets(units, 0xABCDEF01, 96, 1400))
	checkPublished(t, e, "rtp/ABCDEF01", c, video, audio)
	conn.Close()
	testutil.WaitFor(t, 5*time.Second, "stream end after the TCP connection closed", func() bool { return e.hub.Get("rtp/ABCDEF01") == nil })
	if !strings.Contains(e.logs.String(), "RTP stream ended") || !strings.Contains(e.logs.String(), "TCP connection closed") {
		t.Fatalf("no end line:\n%s", e.logs.String())
	}
}

func TestPSOverRTPWithReorderedPacketsIsIdentical(t *testing.T) {
	t.Parallel()
	c := psCases[0]
	// Only the window gives up on a gap: under the race detector on 2 busy cores a read can stall past 100 ms.
	e := newEnv(t, 5, func(s *Server) { s.reorderDelay = 5 * time.Second })
	video, audio, units := c.build(t)
	pkts := rtpPackets(units, 0x11110001, 96, 1400)
	// Swap neighbours and move some packets back by up to 10 places.
	// (The first packet is left first: before it nothing tells a late packet from an early one.)
	for i := 13; i+12 < len(pkts); i += 13 {
		pkts[i], pkts[i+1] = pkts[i+1], pkts[i]
		p := pkts[i+2]
		copy(pkts[i+2:i+12], pkts[i+3:i+13])
		pkts[i+12] = p
	}
	sendUDP(t, e.udp, pkts)
	checkPublished(t, e, "rtp/11110001", c, video, audio)
	st := e.srv.Stats()
	if len(st.Sessions) != 1 || st.Sessions[0].Lost != 0 {
		t.Fatalf("stats %+v, want one stream without loss", st)
	}
}

func TestPSOverRTPWithLossCountsItAndKeepsGoing(t *testing.T) {
	t.Parallel()
	c := psCases[0]
	e := newEnv(t, 5)
	video, _, units := c.build(t)
	pkts := rtpPackets(units, 0x22220002, 96, 1400)
	sent, dropped := dropSome(pkts)
	sendUDP(t, e.udp, sent)
	s := e.waitStream(t, "rtp/22220002")
	testutil.WaitFor(t, 10*time.Second, "most video frames", func() bool {
		n := 0
		for _, f := range e.frames.get("rtp/22220002") {
			if f.Track == 0 {
				n++
			}
		}
		return n >= len(video)/2
	})
	testutil.WaitFor(t, 5*time.Second, "loss counted", func() bool {
		st := e.srv.Stats()
		// At least what the test dropped; a loaded machine may drop more.
		return len(st.Sessions) == 1 && st.Sessions[0].Lost >= uint64(dropped)
	})
	_ = s
	// The log says so, rate-limited.
	testutil.WaitFor(t, 5*time.Second, "loss log line", func() bool { return strings.Contains(e.logs.String(), "RTP packets lost") })
}

func TestSilentStreamEndsAfterTimeout(t *testing.T) {
	t.Parallel()
	c := psCases[1]
	e := newEnv(t, 1)
	_, _, units := c.build(t)
	sendUDP(t, e.udp, rtpPackets(units[:100], 0x33330003, 96, 1400))
	e.waitStream(t, "rtp/33330003")
	testutil.WaitFor(t, 5*time.Second, "the stream to end", func() bool { return e.hub.Get("rtp/33330003") == nil })
	if !strings.Contains(e.logs.String(), "no packets for 1s") {
		t.Fatalf("no timeout line:\n%s", e.logs.String())
	}
}

func TestGarbageDatagramsAreCountedAndDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 5)
	junk := [][]byte{
		{}, {0}, []byte("GET / HTTP/1.1\r\n\r\n"), bytes.Repeat([]byte{0xff}, 1400),
		{0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1},       // RTP header, no payload
		{0x8f, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2}, // CSRC count beyond the packet
	}
	conn, err := net.Dial("udp", e.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, j := range junk {
		if len(j) > 0 {
			conn.Write(j)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "garbage counted", func() bool { return e.srv.Stats().Garbage == uint64(len(junk)-1) })
	if n := len(e.hub.Streams()); n != 0 {
		t.Fatalf("%d streams from garbage", n)
	}
	// RTP with a payload type that is neither PS nor TS and a payload that is neither: no stream.
	p := []byte{0x80, 0x62, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 'h', 'e', 'l', 'l', 'o'}
	conn.Write(p)
	testutil.WaitFor(t, 5*time.Second, "warning about the payload", func() bool { return strings.Contains(e.logs.String(), "neither MPEG-TS nor PS") })
}

func TestOpenPortPicksAFreePortInTheRangeAndTakenPortsAreFindings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 5)
	// A range of two ports, one of them taken by someone else.
	other, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	taken := other.LocalAddr().(*net.UDPAddr).Port

	_, err = e.srv.OpenPort("cam1", taken, 0, 0)
	if err == nil {
		t.Fatal("OpenPort on a taken port succeeded")
	}
	var f *ports.Finding
	if !asFinding(err, &f) {
		t.Fatalf("error %T %v is not a *ports.Finding", err, err)
	}
	if !strings.Contains(err.Error(), "rtp_proxy: cannot listen on 127.0.0.1:"+strconv.Itoa(taken)) {
		t.Fatalf("finding text %q", err.Error())
	}

	port, err := e.srv.OpenPort("cam1", 0, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.OpenPort("cam1", 0, 0, 0); err == nil {
		t.Fatal("a second port for the same stream_id was opened")
	}
	if got := e.srv.Ports(); len(got) != 1 || got[0].Port != port || got[0].StreamID != "cam1" || got[0].TCPMode != 1 {
		t.Fatalf("Ports() = %+v", got)
	}
	// The port takes any SSRC and names the stream by its id, over UDP and TCP.
	c := psCases[1]
	_, _, units := c.build(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	sendUDP(t, addr, rtpPackets(units[:200], 0x1, 96, 1400))
	e.waitStream(t, "rtp/cam1")
	if !e.srv.ClosePort("cam1") {
		t.Fatal("ClosePort found no port")
	}
	testutil.WaitFor(t, 5*time.Second, "the stream to end with its port", func() bool { return e.hub.Get("rtp/cam1") == nil })
	if e.srv.ClosePort("cam1") {
		t.Fatal("ClosePort closed a port twice")
	}
	port2, err := e.srv.OpenPort("cam2", 0, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := sendTCP(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port2)), rtpPackets(units[:200], 0x2, 96, 1400))
	defer conn.Close()
	e.waitStream(t, "rtp/cam2")
}

func TestOpenPortUsesTheConfiguredRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 5)
	// Find two free adjacent-ish ports by asking the kernel, then use them as the range.
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	e.srv.PortRange.Lo, e.srv.PortRange.Hi = p, p
	got, err := e.srv.OpenPort("r1", 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got != p {
		t.Fatalf("port %d, want %d from the range", got, p)
	}
	if _, err := e.srv.OpenPort("r2", 0, 0, 0); err == nil || !strings.Contains(err.Error(), "no free port") {
		t.Fatalf("full range: err = %v", err)
	}
}

func asFinding(err error, f **ports.Finding) bool {
	for err != nil {
		if x, ok := err.(*ports.Finding); ok {
			*f = x
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// dropSome drops one packet in 50 (the 25th of each 50), as a lossy path
// would: what is sent and how many were dropped.
func dropSome(pkts [][]byte) (sent [][]byte, dropped int) {
	for i, p := range pkts {
		if i%50 == 25 {
			dropped++
			continue
		}
		sent = append(sent, p)
	}
	return sent, dropped
}
