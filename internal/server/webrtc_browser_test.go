//go:build linux

package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// rtcPageHead negotiates as WHEP/WHIP pages do: a complete offer (or what
// gathered in 2 s) POSTed as application/sdp from another origin; on
// ZLMediaKit's /index/api/webrtc it posts as ZLMediaKit's browser SDK
// (ZLMRTCClient) does: the offer as text, the answer in a JSON reply.
const rtcPageHead = `<!doctype html><video id=v muted autoplay playsinline></video><script>
const report = s => fetch('/report', {method: 'POST', body: s});
async function exchange(pc, url) {
  await pc.setLocalDescription(await pc.createOffer());
  await Promise.race([new Promise(r => { pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); }),
                      new Promise(r => setTimeout(r, 2000))]);
  if (url.includes('/index/api/webrtc?')) { // ZLMediaKit's browser SDK: text body, JSON reply
    const resp = await fetch(url, {method: 'POST', headers: {'Content-Type': 'text/plain;charset=utf-8'}, body: pc.localDescription.sdp});
    const j = await resp.json();
    if (j.code !== 0 || j.type !== 'answer') throw new Error('POST ' + resp.status + ' ' + JSON.stringify(j));
    await pc.setRemoteDescription({type: 'answer', sdp: j.sdp});
    return;
  }
  const resp = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/sdp'}, body: pc.localDescription.sdp});
  if (resp.status !== 201) throw new Error('POST ' + resp.status + ' ' + await resp.text());
  await pc.setRemoteDescription({type: 'answer', sdp: await resp.text()});
}
`

// whepPage plays URL and reports the frames requestVideoFrameCallback saw.
const whepPage = rtcPageHead + `(async () => {
  try {
    const pc = new RTCPeerConnection(), v = document.getElementById('v');
    pc.addTransceiver('video', {direction: 'recvonly'});
    pc.addTransceiver('audio', {direction: 'recvonly'});
    pc.ontrack = e => { if (!v.srcObject) v.srcObject = e.streams[0]; };
    let frames = 0;
    const count = () => { frames++; v.requestVideoFrameCallback(count); };
    v.requestVideoFrameCallback(count);
    await exchange(pc, 'URL');
    setInterval(() => report('frames=' + frames + ' size=' + v.videoWidth + 'x' + v.videoHeight + ' state=' + pc.connectionState), 500);
  } catch (e) { report('error=' + e); }
})();
</script>`

// whipPage publishes the fake camera and microphone to URL.
const whipPage = rtcPageHead + `(async () => {
  try {
    const media = await navigator.mediaDevices.getUserMedia({video: {width: 320, height: 240}, audio: true});
    report('caps=' + RTCRtpSender.getCapabilities('video').codecs.map(c => c.mimeType).join(','));
    const pc = new RTCPeerConnection();
    for (const t of media.getTracks()) pc.addTransceiver(t, {direction: 'sendonly'});
    await exchange(pc, 'URL');
    setInterval(() => report('state=' + pc.connectionState), 500);
  } catch (e) { report('error=' + e); }
})();
</script>`

// runChromium serves page from its own origin and opens it in headless
// Chromium (fake camera and microphone, no prompts) until the test ends;
// the page's reports arrive on the channel.
func runChromium(t *testing.T, page string) <-chan string {
	t.Helper()
	browser := requireChromium(t)
	reports := make(chan string, 256)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	site := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/report" {
			b, _ := io.ReadAll(r.Body)
			select {
			case reports <- string(b):
			default:
			}
			return
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, page)
	})}
	go site.Serve(l)
	t.Cleanup(func() { site.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	cmd := exec.CommandContext(ctx, browser, "--headless=new", "--no-sandbox", "--disable-gpu",
		"--autoplay-policy=no-user-gesture-required", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
		"--user-data-dir="+t.TempDir(), "http://"+l.Addr().String()+"/")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Chromium's helpers: end the whole group
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	return reports
}

// TestChromiumPlaysAnRTSPPushOverWHEP: headless Chromium plays an ffmpeg
// RTSP push (H.264 + Opus) over WHEP from a page on another origin, and its
// <video> shows 50 frames at 320x240 (requestVideoFrameCallback).
func TestChromiumPlaysAnRTSPPushOverWHEP(t *testing.T) {
	chromiumPlays(t, "/index/api/whep?app=live&stream=cw")
}

// TestChromiumPlaysOverZLMediaKitsWebRTCCall: the same page plays through
// ZLMediaKit's POST /index/api/webrtc?type=play (offer in the body, the
// answer in {"code":0,"sdp":...,"type":"answer"}), as ZLMediaKit's browser
// SDK negotiates, and its <video> advances.
func TestChromiumPlaysOverZLMediaKitsWebRTCCall(t *testing.T) {
	chromiumPlays(t, "/index/api/webrtc?app=live&stream=cw&type=play")
}

// chromiumPlays pushes H.264 + Opus to live/cw over RTSP and has Chromium
// play it from the HTTP port's path (WHEP or ZLMediaKit's call) until its
// <video> shows 50 frames at 320x240.
func chromiumPlays(t *testing.T, path string) {
	t.Helper()
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264Opus, "rtsp://"+srv.Addr("rtsp")+"/live/cw", "live/cw")
	reports := runChromium(t, strings.Replace(whepPage, "URL", "http://"+srv.Addr("http")+path, 1))
	deadline := time.After(30 * time.Second)
	last := ""
	for {
		select {
		case r := <-reports:
			last = r
			if strings.HasPrefix(r, "error=") {
				t.Fatalf("page: %s", r)
			}
			var frames int
			var size string
			fmt.Sscanf(r, "frames=%d size=%s", &frames, &size)
			if frames >= 50 {
				if size != "320x240" {
					t.Errorf("video size %s, want 320x240", size)
				}
				return
			}
		case <-deadline:
			t.Fatalf("Chromium's video did not show 50 frames in 30 s on %s; last report %q", path, last)
		}
	}
}

// TestChromiumPublishesItsCameraOverWHIP: headless Chromium publishes its
// fake camera and microphone over WHIP; ffprobe reads the stream over RTSP
// as H.264 and Opus, and ffmpeg decodes it.
func TestChromiumPublishesItsCameraOverWHIP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	reports := runChromium(t, strings.Replace(whipPage, "URL", "http://"+srv.Addr("http")+"/index/api/whip?app=live&stream=cam", 1))
	go func() {
		for r := range reports {
			if strings.HasPrefix(r, "caps=") {
				t.Log(r)
			}
			if strings.HasPrefix(r, "error=") {
				t.Errorf("page: %s", r)
				return
			}
		}
	}()
	testutil.WaitFor(t, 20*time.Second, "Chromium's stream to have 300 frames", func() bool {
		st := srv.Hub.Get("live/cam")
		return st != nil && st.FramesIn.Load() > 300
	})
	u := "rtsp://" + srv.Addr("rtsp") + "/live/cam"
	p := ffprobe(t, u)
	got := map[string]int{}
	for _, s := range p.Streams {
		got[s.CodecName] = s.Width
	}
	if len(p.Streams) != 2 || got["h264"] != 320 || got["opus"] != 0 {
		t.Errorf("ffprobe %s: %+v, want h264 320 wide and opus (in the page's order)", u, p.Streams)
	}
	decode5s(t, u)
}

// TestStatusPagePreviewsOverWHEP: with WebRTC on, the status page previews
// an H.264 + Opus stream over WHEP: the <video> advances, the page says
// WebRTC, and the stream counts a webrtc reader.
func TestStatusPagePreviewsOverWHEP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	chrome := requireChromium(t)
	srv, _ := start(t)
	push(t, srv, testmedia.H264Opus, "rtsp://"+srv.Addr("rtsp")+"/live/pw", "live/pw")
	b := newBrowser(t, chrome)
	b.do(t, "the preview to play over WebRTC", 30*time.Second,
		chromedp.Navigate("http://"+srv.Addr("http")+"/?secret=s3cret"),
		chromedp.WaitVisible(`article.stream[data-path="live/pw"]`),
		poll(`document.getElementById("preview").currentTime > 1`),
		poll(`document.getElementById("preview-state").textContent.includes("WebRTC")`))
	testutil.WaitFor(t, 10*time.Second, "the preview to count as a webrtc reader", func() bool {
		for _, r := range srv.Hub.Get("live/pw").ReaderList() {
			if r.Who().Proto == "webrtc" {
				return true
			}
		}
		return false
	})
}
