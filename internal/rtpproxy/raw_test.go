package rtpproxy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testmedia"
)

// rtpArgs sends src's video and audio as two RTP streams (PT 96 and 97) to one port.
func rtpArgs(src, addr, sdpFile string, extra ...string) []string {
	a := []string{"-hide_banner", "-loglevel", "error", "-y"}
	a = append(a, extra...)
	a = append(a, "-i", src,
		"-map", "0:v", "-c:v", "copy", "-f", "rtp", "rtp://"+addr,
		"-map", "0:a", "-c:a", "copy", "-f", "rtp", "rtp://"+addr, "-sdp_file", sdpFile)
	return a
}

func TestRawRTPToAPortOpenedWithAnSDPIsPublishedAsRTP(t *testing.T) {
	t.Parallel()
	src := requireMedia(t, testmedia.H264AAC)
	e := newEnv(t, 5)
	rtspAddr := e.serveRTSP(t)

	// The SDP ffmpeg would announce: from a short dry run to a discard port.
	sdpFile := filepath.Join(t.TempDir(), "s.sdp")
	if out, err := exec.Command("ffmpeg", rtpArgs(src, "127.0.0.1:9", sdpFile, "-t", "0.2")...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg dry run: %v\n%s", err, out)
	}
	sdp, err := os.ReadFile(sdpFile)
	if err != nil {
		t.Fatal(err)
	}
	port, err := e.srv.Open(PortOptions{StreamID: "raw1", SDP: sdp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", rtpArgs(src, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		filepath.Join(t.TempDir(), "s2.sdp"), "-re")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()

	s := e.waitStream(t, "rtp/raw1")
	if s.Native != hub.KindRTP || codecNames(s) != "H264,MPEG-4 Audio" {
		t.Fatalf("published as %v with %s, want rtp with H264,MPEG-4 Audio", s.Native, codecNames(s))
	}
	// Access-unit readers (RTMP, FLV) get it through the hub's converter.
	frames := readFrames(t, e.hub, "rtp/raw1", 30)
	if !frames[0].Key {
		t.Fatal("first access unit is not a keyframe")
	}
	if got := strings.Join(ffprobeCodecs(t, "rtsp://"+rtspAddr+"/rtp/raw1"), ","); got != "aac,h264" {
		t.Fatalf("ffprobe over RTSP: %s", got)
	}
}

func TestOpenWithABadSDPIsRefused(t *testing.T) {
	e := newEnv(t, 5)
	for _, sdp := range []string{"hello", "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n"} {
		if _, err := e.srv.Open(PortOptions{StreamID: "bad", SDP: []byte(sdp)}); err == nil {
			t.Fatalf("SDP %q accepted", sdp)
		}
	}
}
