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
