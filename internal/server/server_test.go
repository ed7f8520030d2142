package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testmedia.Cleanup()
	os.Exit(code)
}

func start(t *testing.T) (*server.Server, *testutil.LogBuffer) {
	t.Helper()
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	cfg.API.Secret = "s3cret"
	logs := &testutil.LogBuffer{}
	srv := server.New(cfg, logging.New(logs, logging.LevelTrace))
	srv.Ephemeral = true
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return srv, logs
}

// TestStartProvesItsListeners: every listener passes the self-probe (no
// error line) and the health path names this instance.
func TestStartProvesItsListeners(t *testing.T) {
	srv, logs := start(t)
	if line := logs.Line("level=ERROR"); line != "" {
		t.Errorf("start logged an error: %s", line)
	}
	res, err := http.Get("http://" + srv.Addr("http") + "/berth/health")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var health struct{ Server, Instance string }
	if err := json.NewDecoder(res.Body).Decode(&health); err != nil || health.Server != "berth" || health.Instance != srv.Instance {
		t.Errorf("health: %+v %v", health, err)
	}
}

// TestRTSPPushPlaysInEveryProtocol is the composition test: one ffmpeg RTSP
// push, read back over RTSP, RTMP and HTTP-FLV, and listed by the API.
func TestRTSPPushPlaysInEveryProtocol(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	url := "rtsp://" + srv.Addr("rtsp") + "/live/s"
	pub := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1",
		"-i", testmedia.File(t, testmedia.H264AAC), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	testutil.WaitFor(t, 10*time.Second, "the stream to be published", func() bool {
		st := srv.Hub.Get("live/s")
		return st != nil && st.FramesIn.Load() > 50
	})
	for _, u := range []string{
		url,
		"rtmp://" + srv.Addr("rtmp") + "/live/s",
		"http://" + srv.Addr("http") + "/live/s.live.flv",
	} {
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", u).Output()
		if got := strings.Join(strings.Fields(string(out)), ","); err != nil || got != "h264,aac" {
			t.Errorf("%s: got %q, %v; want h264,aac", u, got, err)
		}
	}
	res, err := http.Get("http://" + srv.Addr("http") + "/index/api/getMediaList?secret=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `"code":0`) || !strings.Contains(string(body), `"stream":"s"`) {
		t.Errorf("getMediaList: %s", body)
	}
}

// TestGStreamerPlays: gstreamer's players decode 100 video frames over RTSP
// TCP and UDP, HTTP-FLV and RTMP. CI installs gstreamer (.ci/run); elsewhere
// it skips, saying what to install.
func TestGStreamerPlays(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	const install = "apt-get install gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav"
	if _, err := exec.LookPath("gst-launch-1.0"); err != nil {
		testutil.Missing(t, "gst-launch-1.0 is not installed: "+install)
	}
	// The elements the pipelines below use, each from one of those packages.
	for _, el := range []string{"rtspsrc", "rtph264depay", "souphttpsrc", "flvdemux", "rtmpsrc", "h264parse", "avdec_h264"} {
		if err := exec.Command("gst-inspect-1.0", "--exists", el).Run(); err != nil {
			testutil.Missing(t, "gstreamer has no element "+el+": "+install)
		}
	}
	srv, _ := start(t)
	url := "rtsp://" + srv.Addr("rtsp") + "/live/g"
	pub := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1",
		"-i", testmedia.File(t, testmedia.H264AAC), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	testutil.WaitFor(t, 10*time.Second, "the stream to be published", func() bool { return srv.Hub.Get("live/g") != nil })
	decode := "! h264parse ! avdec_h264 ! fakesink num-buffers=100"
	for name, src := range map[string]string{
		"rtsp tcp": "rtspsrc location=" + url + " protocols=tcp ! rtph264depay " + decode,
		"rtsp udp": "rtspsrc location=" + url + " protocols=udp ! rtph264depay " + decode,
		"http-flv": "souphttpsrc location=http://" + srv.Addr("http") + "/live/g.live.flv ! flvdemux name=d d.video " + decode,
		"rtmp":     "rtmpsrc location=rtmp://" + srv.Addr("rtmp") + "/live/g ! flvdemux name=d d.video " + decode,
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, "gst-launch-1.0", strings.Fields(src)...).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("gstreamer over %s: %v\n%s", name, err, out)
		}
	}
}
