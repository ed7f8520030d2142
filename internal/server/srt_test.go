package server_test

import (
	"os/exec"
	"testing"
	"time"

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
