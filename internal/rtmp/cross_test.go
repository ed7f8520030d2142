package rtmp

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/rtsp"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// crossServer runs RTMP, RTSP and HTTP-FLV on one hub with the codec
// converters, as the composition root does.
type crossServer struct {
	hub        *hub.Hub
	rtmp, rtsp string
	web        string
	logs       *testutil.LogBuffer
}

func startCross(t *testing.T) *crossServer {
	t.Helper()
	logs := &testutil.LogBuffer{}
	log := logging.New(logs, logging.LevelTrace)
	h := hub.New(hub.Options{Log: log, Converters: codec.Converters(log)})
	lr, err := ports.Listen(ports.Spec{Name: "rtmp", Network: "tcp", Host: "127.0.0.1", Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := ports.Listen(ports.Spec{Name: "rtsp", Network: "tcp", Host: "127.0.0.1", Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	rs := &Server{Hub: h, Log: log, Instance: "x", Version: "test"}
	ss := &rtsp.Server{Hub: h, Log: log, Instance: "x", Version: "test"}
	go rs.Serve(lr)
	go ss.Serve(ls)
	web := httptest.NewServer(&flv.Handler{Hub: h, Log: log})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		web.Close()
		rs.Shutdown(ctx)
		ss.Shutdown(ctx)
		h.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &crossServer{hub: h, rtmp: lr.Addr().String(), rtsp: ls.Addr().String(), web: web.URL, logs: logs}
}

func TestRTSPPushIsReadableOverRTMPAndFLV(t *testing.T) {
	file := testmedia.File(t, testmedia.H264AAC)
	cs := startCross(t)
	cmd := []string{"-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", file, "-c", "copy",
		"-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://" + cs.rtsp + "/live/r1"}
	startFFmpeg(t, cmd...)
	waitFor(t, "live/r1 to be published over RTSP", 10*time.Second, func() bool { return cs.hub.Get("live/r1") != nil })

	rtmpURL := "rtmp://" + cs.rtmp + "/live/r1"
	httpURL := cs.web + "/live/r1.live.flv"
	t.Run("rtmp", func(t *testing.T) {
		checkH264AAC(t, ffprobeStreams(t, rtmpURL))
		ffmpegDecode(t, rtmpURL)
	})
	t.Run("http-flv", func(t *testing.T) {
		checkH264AAC(t, ffprobeStreams(t, httpURL))
		ffmpegDecode(t, httpURL)
	})
	t.Run("ws-flv", func(t *testing.T) { readWSFLV(t, "ws"+strings.TrimPrefix(httpURL, "http"), 2*time.Second) })
}

// TestRTSPPushKeepsAudioAndVideoInSync: ffmpeg pushing over RTSP (TCP
// interleaved and UDP) sends RTCP sender reports; the server records them
// and the RTP to AU conversion aligns the tracks by them, so RTMP and
// HTTP-FLV readers see the first audio and video within 100 ms, where
// arrival times alone put them up to 150 ms apart.
func TestRTSPPushKeepsAudioAndVideoInSync(t *testing.T) {
	file := testmedia.File(t, testmedia.H264AAC)
	cs := startCross(t)
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			path := "live/sync-" + transport
			startFFmpeg(t, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", file, "-c", "copy",
				"-f", "rtsp", "-rtsp_transport", transport, "rtsp://"+cs.rtsp+"/"+path)
			waitFor(t, path+" to be published over RTSP", 10*time.Second, func() bool { return cs.hub.Get(path) != nil })
			waitFor(t, "sender reports of both tracks", 10*time.Second, func() bool {
				s := cs.hub.Get(path)
				if s == nil {
					return false
				}
				_, v := s.ClockRef(0)
				_, a := s.ClockRef(1)
				return v && a
			})
			t.Run("rtmp", func(t *testing.T) { checkAVSync(t, "rtmp://"+cs.rtmp+"/"+path) })
			t.Run("http-flv", func(t *testing.T) { checkAVSync(t, cs.web+"/"+path+".live.flv") })
			// RTSP players align by Berth's sender reports, which carry the publisher's mapping.
			t.Run("rtsp", func(t *testing.T) { checkAVSync(t, "rtsp://"+cs.rtsp+"/"+path) })
		})
	}
}

func TestRTMPPushIsReadableOverRTSP(t *testing.T) {
	file := testmedia.File(t, testmedia.H264AAC)
	cs := startCross(t)
	pushFFmpeg(t, file, "rtmp://"+cs.rtmp+"/live/m1", true)
	waitFor(t, "live/m1 to be published over RTMP", 10*time.Second, func() bool { return cs.hub.Get("live/m1") != nil })
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			url := "rtsp://" + cs.rtsp + "/live/m1"
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			checkH264AAC(t, ffprobeStreamsArgs(t, ctx, "-rtsp_transport", transport, url))
		})
	}
	// RTSP players of an RTMP publisher align by Berth's sender reports,
	// which map the frames' own timestamps.
	t.Run("av-sync-rtsp", func(t *testing.T) { checkAVSync(t, "rtsp://"+cs.rtsp+"/live/m1") })
}
