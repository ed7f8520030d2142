package rtpproxy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/rtmp"
	"github.com/berthmedia/berth/internal/rtsp"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// serveRTSP puts the lead's RTSP server on the test hub and returns its address.
func (e *testEnv) serveRTSP(t *testing.T) string {
	t.Helper()
	l, err := ports.Listen(ports.Spec{Name: "rtsp", Section: "rtsp", Network: "tcp", Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	s := &rtsp.Server{Hub: e.hub, Log: e.srv.Log}
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return l.Addr().String()
}

// serveRTMP puts the RTMP server on the test hub and returns its address.
func (e *testEnv) serveRTMP(t *testing.T) string {
	t.Helper()
	l, err := ports.Listen(ports.Spec{Name: "rtmp", Section: "rtmp", Network: "tcp", Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	s := &rtmp.Server{Hub: e.hub, Log: e.srv.Log}
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return l.Addr().String()
}

// ffprobeCodecs returns the sorted codec names ffprobe finds at url.
func ffprobeCodecs(t *testing.T, url string) []string {
	t.Helper()
	var c []string
	for _, s := range probeStreams(t, url) {
		c = append(c, s.Codec)
		if s.Codec == "h264" && s.Width != 320 {
			t.Errorf("h264 width %d, want 320", s.Width)
		}
	}
	sort.Strings(c)
	return c
}

func TestTSPushIsReadableOverRTSPAndRTMP(t *testing.T) {
	t.Parallel()
	src := requireMedia(t, testmedia.H264AAC)
	e := newEnv(t, 5)
	addr := e.serveRTSP(t)
	rtmpAddr := e.serveRTMP(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", src, "-c", "copy",
		"-f", "rtp_mpegts", "-rtp_muxer_options", "ssrc=1", "rtp://"+e.udp)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	e.waitStream(t, "rtp/00000001")
	if got := strings.Join(ffprobeCodecs(t, "rtsp://"+addr+"/rtp/00000001"), ","); got != "aac,h264" {
		t.Fatalf("ffprobe over RTSP: %s, want aac,h264", got)
	}
	if got := strings.Join(ffprobeCodecs(t, "rtmp://"+rtmpAddr+"/rtp/00000001"), ","); got != "aac,h264" {
		t.Fatalf("ffprobe over RTMP: %s, want aac,h264", got)
	}
}

func TestPSPushWithG711IsReadableOverRTSP(t *testing.T) {
	t.Parallel()
	c := psCases[1]
	e := newEnv(t, 30)
	addr := e.serveRTSP(t)
	_, _, units := c.build(t)
	conn, err := net.Dial("tcp", e.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan struct{})
	go func() { // push in real time, as a camera does, while ffprobe reads
		defer close(done)
		start := time.Now()
		seq := uint16(0)
		for i, u := range units {
			if d := time.Duration(u.pts-units[0].pts) * time.Second / clockHz; d > time.Since(start) {
				time.Sleep(d - time.Since(start)) // pacing a sender
			}
			var buf []byte
			pkts := rtpPacketsFrom(units[i:i+1], 0x34020000, 96, 1400, seq)
			seq += uint16(len(pkts))
			for _, p := range pkts {
				buf = append(buf, byte(len(p)>>8), byte(len(p)))
				buf = append(buf, p...)
			}
			if _, err := conn.Write(buf); err != nil {
				return
			}
		}
	}()
	e.waitStream(t, "rtp/34020000")
	if got := strings.Join(ffprobeCodecs(t, "rtsp://"+addr+"/rtp/34020000"), ","); got != "h264,pcm_alaw" {
		t.Fatalf("ffprobe over RTSP: %s, want h264,pcm_alaw", got)
	}
	conn.Close()
	<-done
}

// ffmpeg's own MPEG-2 PS (-f vob): frames cut across 2 KB packs, no PSM,
// stream id 0xE2. Every frame must come out whole.
func TestPSFromFFmpegVOBIsSplitIntoWholeFrames(t *testing.T) {
	t.Parallel()
	src := requireMedia(t, testmedia.H264AAC)
	vob := filepath.Join(t.TempDir(), "v.vob")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", src, "-an", "-c:v", "copy",
		"-bsf:v", "h264_mp4toannexb", "-f", "vob", vob).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	data, err := os.ReadFile(vob)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, 5)
	var units []psUnit
	for len(data) > 0 { // the RTP timestamp does not matter to the demuxer
		n := min(len(data), 2048)
		units = append(units, psUnit{data: data[:n]})
		data = data[n:]
	}
	sendUDP(t, e.udp, rtpPackets(units, 0x7777, 96, 1400))
	s := e.waitStream(t, "rtp/00007777")
	if got := codecNames(s); got != "H264" {
		t.Fatalf("tracks %s", got)
	}
	// 10 s at 25 fps; the last frame waits for a next one that never comes.
	testutil.WaitFor(t, 10*time.Second, "249 frames", func() bool { return len(e.frames.get("rtp/00007777")) >= 249 })
	frames := e.frames.get("rtp/00007777")
	keys := 0
	for i, f := range frames {
		if f.Key {
			keys++
		}
		if i > 0 && f.DTS-frames[i-1].DTS != 40*time.Millisecond {
			t.Fatalf("frame %d: DTS step %v, want 40ms", i, f.DTS-frames[i-1].DTS)
		}
		slices := 0
		for _, n := range f.AU {
			if t := n[0] & 0x1f; t == 1 || t == 5 {
				slices++
			}
		}
		if slices == 0 {
			t.Fatalf("frame %d has no slice", i)
		}
	}
	if keys != 10 {
		t.Fatalf("%d keyframes, want 10 (1 s GOP)", keys)
	}
}
