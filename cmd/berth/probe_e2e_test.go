package main

import (
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// berth probe of a stream being published: exit 0; of a path nobody
// publishes: the 404 is reported; over RTSP, RTMP and HTTP-FLV.
func TestProbeRunningBerth(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	rtsp, rtmp, http := testutil.FreeDualPort(t), testutil.FreeDualPort(t), testutil.FreeDualPort(t)
	b := startBerth(t, "-c", berthConfig(t, "::", rtsp, rtmp, http, 0))
	url := fmt.Sprintf("rtsp://127.0.0.1:%d/live/probe", rtsp)
	pub := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1", "-i", testmedia.File(t, testmedia.H264AAC),
		"-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { pub.Process.Kill(); pub.Wait() }()

	var code int
	var out string
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, out, _ = runBerth(t, "probe", url)
		if code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Log(out)
	if code != 0 {
		t.Fatalf("probe of a published stream: exit %d\n%s", code, b.logs.String())
	}
	for _, want := range []string{"Berth ", fmt.Sprintf("pid %d", b.pid), "DESCRIBE RTSP/1.0 200 OK: the stream exists: 2 track(s): video H264, audio MPEG4-GENERIC"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	cases := []struct {
		url, want string
		code      int
	}{
		{fmt.Sprintf("rtsp://[::1]:%d/live/probe", rtsp), "the stream exists", 0},
		{fmt.Sprintf("rtsp://127.0.0.1:%d/live/nothing", rtsp), "FAIL: DESCRIBE RTSP/1.0 404 Not Found: no stream at /live/nothing", 1},
		{fmt.Sprintf("rtmp://127.0.0.1:%d/live/probe", rtmp), "NetStream.Play.Start: the stream exists", 0},
		{fmt.Sprintf("rtmp://127.0.0.1:%d/live/nothing", rtmp), "NetStream.Play.StreamNotFound", 1},
		{fmt.Sprintf("http://127.0.0.1:%d/live/probe.live.flv", http), "the stream answers with FLV", 0},
		{fmt.Sprintf("http://127.0.0.1:%d/live/nothing.live.flv", http), "404 Not Found: no stream at /live/nothing.live.flv", 1},
	}
	for _, c := range cases {
		if strings.Contains(c.url, "[::1]") && !hasIPv6Loopback() {
			continue
		}
		code, out, _ := runBerth(t, "probe", c.url)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("probe %s: exit %d, want %d; output should contain %q:\n%s", c.url, code, c.code, c.want, out)
		}
	}

	// The user pushes to a port where nothing listens while Berth runs on
	// another: the probe prints the URL that works.
	closed := testutil.FreeDualPort(t)
	code, out, _ = runBerth(t, "probe", fmt.Sprintf("rtsp://127.0.0.1:%d/live/probe", closed))
	want := fmt.Sprintf("runs on this host and serves RTSP on 127.0.0.1:%d: try rtsp://127.0.0.1:%d/live/probe", rtsp, rtsp)
	if code != 1 || !strings.Contains(out, "connection refused") || !strings.Contains(out, want) {
		t.Errorf("probe of a closed port: exit %d; want refused and %q:\n%s", code, want, out)
	}
}

// An HTTP server where RTSP is expected is identified as such.
func TestProbeHTTPServerOnRTSPPort(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found")
	}
	p := testutil.FreeDualPort(t)
	py := exec.Command("python3", "-m", "http.server", strconv.Itoa(p), "--bind", "127.0.0.1")
	py.Dir = t.TempDir()
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { py.Process.Kill(); py.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("python http.server did not listen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, out, _ := runBerth(t, "probe", fmt.Sprintf("rtsp://127.0.0.1:%d/live/stream", p))
	t.Log(out)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"not an RTSP server: HTTP/1.0 ", "SimpleHTTP"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if runtime.GOOS == "linux" && !strings.Contains(out, fmt.Sprintf("pid %d (python3", py.Process.Pid)) {
		t.Errorf("output does not name the python3 process")
	}
}

func TestProbeClosedPortAndBadURL(t *testing.T) {
	p := testutil.FreeDualPort(t)
	code, out, _ := runBerth(t, "probe", fmt.Sprintf("rtsp://127.0.0.1:%d/live/stream", p))
	if code != 1 || !strings.Contains(out, fmt.Sprintf("FAIL: 127.0.0.1:%d/tcp: connection refused: nothing listens on port %d there", p, p)) {
		t.Errorf("closed port: exit %d:\n%s", code, out)
	}
	code, out, _ = runBerth(t, "probe", "srt://127.0.0.1:1/x")
	if code != 2 || !strings.Contains(out, `scheme "srt" is not one berth probe speaks`) {
		t.Errorf("bad scheme: exit %d:\n%s", code, out)
	}
	code, _, _ = runBerth(t, "probe")
	if code != 2 {
		t.Errorf("no URL: exit %d", code)
	}
}
