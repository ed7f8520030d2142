package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestSRTPullFromAnotherBerth: ffmpeg pushes RTSP to Berth B; Berth A
// pulls B's stream over srt:// (m=request) and ffprobe reads it on A over
// RTSP as H.264 and AAC. The source's publisher restarting ends B's SRT
// play; A retries with the cause named and resumes the same stream.
func TestSRTPullFromAnotherBerth(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	b, _ := start(t)
	pub := startPush(t, testmedia.H264AAC, "rtsp://"+b.Addr("rtsp")+"/live/src")
	waitPublished(t, b, "live/src")
	a, logs := startPuller(t, nil)
	key := addProxy(t, a, "pull/srt", srtURL(b.Addr("srt"), "live/src", "request"), "timeout_sec", "3")
	waitLive(t, a, "pull/srt")
	pushWantCodecs(t, urls(a, "pull/srt")["rtsp"], "h264,aac")
	if info := api(t, a, "getProxyInfo", "key", key); info["code"] != 0.0 || info["data"].(map[string]any)["statusStr"] != "live" {
		t.Errorf("getProxyInfo: %v, want live", info)
	}
	st := a.Hub.Get("pull/srt")

	pub.Process.Kill()
	pub.Wait()
	line := logs.WaitLine(t, "pull failed; retrying", "pull/srt", "cause=")
	if !strings.Contains(line, "SRT source") {
		t.Errorf("retry line %q does not say the SRT source ended", line)
	}
	startPush(t, testmedia.H264AAC, "rtsp://"+b.Addr("rtsp")+"/live/src")
	back := time.Now()
	testutil.WaitFor(t, 15*time.Second, "the pull to resume", func() bool {
		return logs.Line("pull resumed on the same stream", "pull/srt") != ""
	})
	t.Logf("reconnect: the SRT pull resumed %s after the source's publisher was started again", time.Since(back).Round(time.Millisecond))
	if a.Hub.Get("pull/srt") != st {
		t.Error("the pulled stream was replaced instead of resumed")
	}
	pushWantCodecs(t, urls(a, "pull/srt")["rtsp"], "h264,aac")
}

// TestSRTPullNamesTheRefusal: a pull whose passphrase the source does not
// share retries with SRT's rejection in words, and its passphrase never
// shows in the API.
func TestSRTPullNamesTheRefusal(t *testing.T) {
	b, _ := start(t)
	a, _ := startPuller(t, nil)
	key := addProxy(t, a, "pull/enc", srtURL(b.Addr("srt"), "live/src", "request")+"&passphrase=0123456789abc", "timeout_sec", "3")
	var status string
	testutil.WaitFor(t, 10*time.Second, "the pull to fail", func() bool {
		info := api(t, a, "getProxyInfo", "key", key)
		d, _ := info["data"].(map[string]any)
		status, _ = d["statusStr"].(string)
		if u, _ := d["url"].(string); strings.Contains(u, "0123456789abc") {
			t.Fatalf("getProxyInfo shows the passphrase: %s", u)
		}
		return strings.HasPrefix(status, "retrying")
	})
	if !strings.Contains(status, "one side encrypts and the other does not") {
		t.Errorf("status %q does not name the encryption mismatch", status)
	}
}

// TestSRTPushToAnotherBerth: ffmpeg pushes RTSP to Berth A; A pushes the
// stream to Berth B over srt:// (m=publish) from its shared TS muxer, and
// ffprobe reads it on B over RTSP as H.264 and AAC; the pusher counts as
// a reader of A's stream. A's publisher restarting: the pusher ends its
// SRT session (B's stream ends), waits, and pushes the new publish.
func TestSRTPushToAnotherBerth(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	a, _ := start(t)
	pub := startPush(t, testmedia.H264AAC, "rtsp://"+a.Addr("rtsp")+"/live/src")
	waitPublished(t, a, "live/src")
	b, _ := start(t)
	key := addPusher(t, a, "srt", "src", srtURL(b.Addr("srt"), "live/pushed", "publish"))
	waitPusher(t, a, key, "live", 10*time.Second)
	waitPublished(t, b, "live/pushed")
	pushWantCodecs(t, urls(b, "live/pushed")["rtsp"], "h264,aac")
	if n := a.Hub.Get("live/src").Readers(); n < 1 {
		t.Errorf("the source stream has %d readers; the SRT pusher should count as one", n)
	}

	first := b.Hub.Get("live/pushed")
	pub.Process.Kill()
	pub.Wait()
	testutil.WaitFor(t, 10*time.Second, "B's stream to end with A's", func() bool { return first.Ended() })
	startPush(t, testmedia.H264AAC, "rtsp://"+a.Addr("rtsp")+"/live/src")
	testutil.WaitFor(t, 15*time.Second, "the push to resume", func() bool {
		st := b.Hub.Get("live/pushed")
		return st != nil && st != first && st.FramesIn.Load() > 50
	})
	pushWantCodecs(t, urls(b, "live/pushed")["rtsp"], "h264,aac")
}

// TestSRTPullEncrypted: a source Berth with [srt] passPhrase is pulled with
// the same passphrase= in the URL; ffprobe reads the pull over RTSP.
func TestSRTPullEncrypted(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	b, _ := startPuller(t, func(c *config.Config) { c.SRT.PassPhrase = "0123456789abc" })
	startPush(t, testmedia.H264AAC, "rtsp://"+b.Addr("rtsp")+"/live/src")
	waitPublished(t, b, "live/src")
	a, _ := startPuller(t, nil)
	addProxy(t, a, "pull/enc", srtURL(b.Addr("srt"), "live/src", "request")+"&passphrase=0123456789abc&pbkeylen=32&latency=200000")
	waitLive(t, a, "pull/enc")
	pushWantCodecs(t, urls(a, "pull/enc")["rtsp"], "h264,aac")
}
