package server_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// pushTarget is a second Berth the pushers push to: it listens on RTSP
// and RTMP only, and can be stopped and started again on the same ports.
type pushTarget struct {
	t          *testing.T
	srv        *server.Server
	logs       *testutil.LogBuffer
	rtsp, rtmp int
}

func startPushTarget(t *testing.T) *pushTarget {
	t.Helper()
	pt := &pushTarget{t: t}
	pt.start()
	t.Cleanup(pt.stop)
	return pt
}

// start starts the target: on ports the kernel picks the first time, on
// the same ones after that.
func (pt *pushTarget) start() {
	pt.t.Helper()
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	cfg.HTTP.Port, cfg.RTPProxy.Port = 0, 0
	if pt.rtsp != 0 { // a restart: the same ports (port 0 would turn the listener off)
		cfg.RTSP.Port, cfg.RTMP.Port = pt.rtsp, pt.rtmp
	}
	pt.logs = &testutil.LogBuffer{}
	srv := server.New(cfg, logging.New(pt.logs, logging.LevelTrace))
	srv.Ephemeral = pt.rtsp == 0
	if err := srv.Start(); err != nil {
		pt.t.Fatal(err)
	}
	pt.srv = srv
	pt.rtsp, pt.rtmp = int(port(srv.Addr("rtsp"))), int(port(srv.Addr("rtmp")))
}

func (pt *pushTarget) stop() {
	if pt.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pt.srv.Shutdown(ctx); err != nil {
		pt.t.Errorf("target shutdown: %v", err)
	}
	if pt.t.Failed() {
		pt.t.Logf("target log:\n%s", pt.logs.String())
	}
	pt.srv = nil
}

func (pt *pushTarget) url(schema, path string) string {
	p := pt.rtsp
	if schema == "rtmp" {
		p = pt.rtmp
	}
	return schema + "://127.0.0.1:" + strconv.Itoa(p) + "/" + path
}

// pushCodecs is what ffprobe reads at url: "h264,aac".
func pushCodecs(t *testing.T, url string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
		"-of", "csv=p=0", url).Output()
	return strings.Join(strings.Fields(string(out)), ","), err
}

func pushWantCodecs(t *testing.T, url, want string) {
	t.Helper()
	if got, err := pushCodecs(t, url); err != nil || got != want {
		t.Errorf("ffprobe %s: got %q, %v; want %s", url, got, err, want)
	}
}

// pushPublish pushes testmedia kind to url with ffmpeg in a loop at real-time
// speed (RTSP over TCP for rtsp:// URLs, FLV for rtmp://).
func pushPublish(t *testing.T, kind testmedia.Kind, url string) <-chan struct{} {
	t.Helper()
	args := []string{"-re", "-stream_loop", "-1", "-i", testmedia.File(t, kind), "-c", "copy"}
	if strings.HasPrefix(url, "rtsp:") {
		args = append(args, "-f", "rtsp", "-rtsp_transport", "tcp", url)
	} else {
		args = append(args, "-f", "flv", url)
	}
	return run(t, args...)
}

// addPusher calls addStreamPusherProxy and returns the key.
func addPusher(t *testing.T, srv *server.Server, schema, stream, dst string, kv ...string) string {
	t.Helper()
	args := append([]string{"schema", schema, "vhost", "__defaultVhost__", "app", "live", "stream", stream, "dst_url", dst}, kv...)
	res := api(t, srv, "addStreamPusherProxy", args...)
	data, _ := res["data"].(map[string]any)
	key, _ := data["key"].(string)
	if res["code"] != 0.0 || key == "" {
		t.Fatalf("addStreamPusherProxy %s: %v", dst, res)
	}
	return key
}

// pusherStatus is the status listStreamPusherProxy gives the pusher of key.
func pusherStatus(t *testing.T, srv *server.Server, key string) string {
	t.Helper()
	for _, p := range list(api(t, srv, "listStreamPusherProxy")) {
		if p["key"] == key {
			if code, _ := p["status"].(float64); (code == 0) != (p["status_str"] == "live") {
				t.Errorf("pusher %s: status %v with status_str %v", key, p["status"], p["status_str"])
			}
			s, _ := p["status_str"].(string)
			return s
		}
	}
	return ""
}

func waitPusher(t *testing.T, srv *server.Server, key, prefix string, d time.Duration) string {
	t.Helper()
	var got string
	testutil.WaitFor(t, d, "pusher "+key+" to be "+prefix, func() bool {
		got = pusherStatus(t, srv, key)
		return strings.HasPrefix(got, prefix)
	})
	return got
}

func pushWaitFrames(t *testing.T, srv *server.Server, path string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, path+" to be published on "+srv.Addr("rtsp"), func() bool {
		st := srv.Hub.Get(path)
		return st != nil && st.FramesIn.Load() > 20
	})
}

// TestPusherPushesOverRTSPAndRTMP: an RTMP-published stream pushed to a
// second Berth over RTSP (TCP and UDP: packetized from access units) and
// RTMP; ffprobe reads each back from the target; the pushers count as the
// source stream's readers of their schema.
func TestPusherPushesOverRTSPAndRTMP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, logs := start(t)
	target := startPushTarget(t)
	pushPublish(t, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/s")
	pushWaitFrames(t, srv, "live/s")

	tcp := addPusher(t, srv, "rtsp", "s", target.url("rtsp", "live/tcp"))
	udp := addPusher(t, srv, "rtsp", "s", target.url("rtsp", "live/udp"), "rtp_type", "1")
	viaRTMP := addPusher(t, srv, "rtmp", "s", target.url("rtmp", "live/rtmp"))
	if !strings.HasPrefix(tcp, "rtsp/__defaultVhost__/live/s/") || len(tcp) != len("rtsp/__defaultVhost__/live/s/")+32 {
		t.Errorf("key %q: want rtsp/__defaultVhost__/live/s/<md5 of dst_url>", tcp)
	}
	if again := addPusher(t, srv, "rtsp", "s", target.url("rtsp", "live/tcp")); again != tcp {
		t.Errorf("the same request again gave key %q, want %q", again, tcp)
	}
	for _, k := range []string{tcp, udp, viaRTMP} {
		waitPusher(t, srv, k, "live", 10*time.Second)
	}
	for _, p := range []string{"live/tcp", "live/udp", "live/rtmp"} {
		pushWaitFrames(t, target.srv, p)
	}
	pushWantCodecs(t, target.url("rtsp", "live/tcp"), "h264,aac")
	pushWantCodecs(t, target.url("rtsp", "live/udp"), "h264,aac")
	pushWantCodecs(t, target.url("rtmp", "live/rtmp"), "h264,aac")
	pushWantCodecs(t, target.url("rtsp", "live/rtmp"), "h264,aac")

	readers := map[string]float64{}
	for _, m := range list(api(t, srv, "getMediaList", "stream", "s")) {
		readers[m["schema"].(string)] = m["readerCount"].(float64)
	}
	if readers["rtsp"] != 2 || readers["rtmp"] != 1 {
		t.Errorf("source readerCount by schema %v: want the 2 RTSP pushers under rtsp and the RTMP one under rtmp", readers)
	}
	logs.WaitLine(t, "pusher live", "live/s")
	testutil.WaitFor(t, 5*time.Second, "listStreamPusherProxy to count bytes", func() bool {
		for _, p := range list(api(t, srv, "listStreamPusherProxy")) {
			if p["totalBytes"].(float64) == 0 {
				return false
			}
		}
		return true
	})
	for _, p := range list(api(t, srv, "listStreamPusherProxy")) {
		src, _ := p["src"].(map[string]any)
		if src["vhost"] != "__defaultVhost__" || src["app"] != "live" || src["stream"] != "s" || p["status"] != 0.0 ||
			!strings.HasPrefix(p["url"].(string), "rt") || p["rePublishCount"] != 0.0 {
			t.Errorf("listStreamPusherProxy entry %v: want ZLMediaKit's fields (src, url, status 0 while live)", p)
		}
	}
	res, err := http.Get("http://" + srv.Addr("http") + "/berth/status.json?secret=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	var status struct {
		Data struct {
			Pushers []struct{ Key, Path, URL, Status string }
		}
	}
	err = json.NewDecoder(res.Body).Decode(&status)
	res.Body.Close()
	if err != nil || len(status.Data.Pushers) != 3 || status.Data.Pushers[0].Status != "live" || status.Data.Pushers[0].Path != "live/s" {
		t.Errorf("status.json pushers: %+v, %v; want the 3 pushers of live/s, live", status.Data.Pushers, err)
	}

	del := api(t, srv, "delStreamPusherProxy", "key", udp)
	if d, _ := del["data"].(map[string]any); d["flag"] != true {
		t.Errorf("delStreamPusherProxy: %v", del)
	}
	testutil.WaitFor(t, 10*time.Second, "the target's live/udp to end after the delete", func() bool {
		return target.srv.Hub.Get("live/udp") == nil
	})
	if n := len(list(api(t, srv, "listStreamPusherProxy"))); n != 2 {
		t.Errorf("listStreamPusherProxy lists %d pushers after a delete, want 2", n)
	}
}

// TestPusherResumesAfterTargetRestart: the target goes away (retries are
// logged with their cause, and listed as retrying) and comes back on the
// same ports; both pushers resume and ffprobe reads again. The source is
// an RTSP push, so the RTMP pusher reads converted access units.
func TestPusherResumesAfterTargetRestart(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, logs := start(t)
	target := startPushTarget(t)
	pushPublish(t, testmedia.H264AAC, "rtsp://"+srv.Addr("rtsp")+"/live/s")
	pushWaitFrames(t, srv, "live/s")
	viaRTSP := addPusher(t, srv, "rtsp", "s", target.url("rtsp", "live/a"))
	viaRTMP := addPusher(t, srv, "rtmp", "s", target.url("rtmp", "live/b"))
	waitPusher(t, srv, viaRTSP, "live", 10*time.Second)
	waitPusher(t, srv, viaRTMP, "live", 10*time.Second)
	pushWantCodecs(t, target.url("rtmp", "live/b"), "h264,aac")

	target.stop()
	for _, k := range []string{viaRTSP, viaRTMP} {
		waitPusher(t, srv, k, "retrying", 10*time.Second)
	}
	logs.WaitLine(t, "push failed; retrying in", "connection refused")

	target.start()
	for _, k := range []string{viaRTSP, viaRTMP} {
		waitPusher(t, srv, k, "live", 40*time.Second)
	}
	pushWaitFrames(t, target.srv, "live/a")
	pushWaitFrames(t, target.srv, "live/b")
	pushWantCodecs(t, target.url("rtsp", "live/a"), "h264,aac")
	pushWantCodecs(t, target.url("rtmp", "live/b"), "h264,aac")
}

// TestPusherResumesAfterSourceRepublish: the source stream ends (the
// pusher waits for it and says so) and is published again; the pusher
// pushes the new session.
func TestPusherResumesAfterSourceRepublish(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	target := startPushTarget(t)
	src := "rtmp://" + srv.Addr("rtmp") + "/live/s"
	key := addPusher(t, srv, "rtmp", "s", target.url("rtmp", "live/s"))
	if got := waitPusher(t, srv, key, "waiting", 5*time.Second); got != "waiting for the stream" {
		t.Errorf("status before the stream is published: %q", got)
	}
	ffmpeg := run(t, "-re", "-stream_loop", "-1", "-i", testmedia.File(t, testmedia.H264AAC), "-c", "copy", "-f", "flv", src)
	waitPusher(t, srv, key, "live", 10*time.Second)
	pushWaitFrames(t, target.srv, "live/s")

	srv.Hub.Get("live/s").Close() // the publisher's stream ends, as when it disconnects
	waitExit(t, ffmpeg, "the first ffmpeg")
	waitPusher(t, srv, key, "waiting", 10*time.Second)
	testutil.WaitFor(t, 10*time.Second, "the target's stream to end with the source's", func() bool {
		return target.srv.Hub.Get("live/s") == nil
	})

	pushPublish(t, testmedia.H264AAC, src)
	waitPusher(t, srv, key, "live", 10*time.Second)
	pushWaitFrames(t, target.srv, "live/s")
	pushWantCodecs(t, target.url("rtmp", "live/s"), "h264,aac")
}

// TestPusherPushesH265OverEnhancedRTMP: an RTSP-published H.265 stream
// pushed over RTMP goes as enhanced RTMP (FourCC hvc1), which Berth's RTMP
// server takes and ffprobe reads back.
func TestPusherPushesH265OverEnhancedRTMP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	target := startPushTarget(t)
	pushPublish(t, testmedia.H265AAC, "rtsp://"+srv.Addr("rtsp")+"/live/h")
	pushWaitFrames(t, srv, "live/h")
	key := addPusher(t, srv, "rtmp", "h", target.url("rtmp", "live/h"))
	waitPusher(t, srv, key, "live", 10*time.Second)
	pushWaitFrames(t, target.srv, "live/h")
	pushWantCodecs(t, target.url("rtsp", "live/h"), "hevc,aac")
}

// TestPusherAPIRefusesBadRequests: requests that cannot work are refused
// with -300 and a message naming the parameter; a busy target path is
// retried with the target's own words as the cause.
func TestPusherAPIRefusesBadRequests(t *testing.T) {
	srv, _ := start(t)
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"schema", "rtsp", "vhost", "v", "app", "live", "stream", "s"}, "dst_url"},
		{[]string{"schema", "webrtc", "vhost", "v", "app", "live", "stream", "s", "dst_url", "webrtc://h:1/x"}, "schema"},
		{[]string{"schema", "srt", "vhost", "v", "app", "live", "stream", "s", "dst_url", "srt://h/x"}, "port"},
		{[]string{"schema", "rtsp", "vhost", "v", "app", "live", "stream", "s", "dst_url", "rtmp://h/live/x"}, "rtsp://"},
		{[]string{"schema", "rtmp", "vhost", "v", "app", "live", "stream", "s", "dst_url", "rtmp://h/onlyapp"}, "app and a stream"},
		{[]string{"schema", "rtsp", "vhost", "v", "app", "live", "stream", "s", "dst_url", "rtsp://h/x", "rtp_type", "2"}, "rtp_type"},
		{[]string{"schema", "rtsp", "vhost", "v", "app", "live", "stream", "s", "dst_url", "rtsp://h/x", "timeout_sec", "x"}, "timeout_sec"},
	} {
		res := api(t, srv, "addStreamPusherProxy", tc.kv...)
		if msg, _ := res["msg"].(string); res["code"] != -300.0 || !strings.Contains(msg, tc.want) {
			t.Errorf("addStreamPusherProxy %v: %v; want -300 naming %s", tc.kv, res, tc.want)
		}
	}
	if res := api(t, srv, "delStreamPusherProxy", "key", "nope"); res["code"] != 0.0 || res["data"].(map[string]any)["flag"] != false {
		t.Errorf("delStreamPusherProxy of no pusher: %v", res)
	}
	if res := api(t, srv, "getProxyPusherInfo", "key", "nope"); res["code"] != -500.0 {
		t.Errorf("getProxyPusherInfo of no pusher: %v; want -500", res)
	}
	key := addPusher(t, srv, "rtmp", "s", "rtmp://127.0.0.1:1/live/s")
	res := api(t, srv, "getProxyPusherInfo", "key", key)
	if d, _ := res["data"].(map[string]any); res["code"] != 0.0 || d["key"] != key || d["url"] != "rtmp://127.0.0.1:1/live/s" {
		t.Errorf("getProxyPusherInfo: %v", res)
	}
}

// TestPusherNamesTheTargetsRefusal: a target path someone else publishes
// is refused, and the pusher says so in the target's words; with
// retry_count=1 the RTSP pusher gives up after its retry and is listed as
// stopped with that cause.
func TestPusherNamesTheTargetsRefusal(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, logs := start(t)
	target := startPushTarget(t)
	pushPublish(t, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/s")
	pushPublish(t, testmedia.H264AAC, target.url("rtmp", "live/busy"))
	pushWaitFrames(t, srv, "live/s")
	pushWaitFrames(t, target.srv, "live/busy")

	viaRTMP := addPusher(t, srv, "rtmp", "s", target.url("rtmp", "live/busy"))
	got := waitPusher(t, srv, viaRTMP, "retrying", 10*time.Second)
	if !strings.Contains(got, "rtmp target refused publish: NetStream.Publish.BadName: stream live/busy is already published") {
		t.Errorf("status %q: want the target's refusal in its words", got)
	}
	logs.WaitLine(t, "push failed; retrying in", "NetStream.Publish.BadName")

	viaRTSP := addPusher(t, srv, "rtsp", "s", target.url("rtsp", "live/busy"), "retry_count", "1")
	got = waitPusher(t, srv, viaRTSP, "stopped", 10*time.Second)
	if !strings.Contains(got, "stopped: rtsp target refused ANNOUNCE: 406") {
		t.Errorf("status %q: want stopped with the target's 406", got)
	}
	logs.WaitLine(t, "pusher gave up", "attempts=2")
}

// TestStatusPageListsPushers: the status page, in headless Chromium, lists
// a pusher with its stream, destination (password hidden) and state.
func TestStatusPageListsPushers(t *testing.T) {
	chrome := requireChromium(t)
	srv, _ := start(t)
	addPusher(t, srv, "rtmp", "cam", "rtmp://user:hidden@127.0.0.1:1/live/cam")
	b := newBrowser(t, chrome)
	b.do(t, "the pushers table", 15*time.Second,
		chromedp.Navigate("http://"+srv.Addr("http")+"/?secret=s3cret"),
		chromedp.WaitVisible("#pushers"),
		poll(`document.querySelector("#pushers tbody").textContent.includes("waiting for the stream")`))
	got := b.text(t, "#pushers")
	for _, want := range []string{"live/cam", "rtmp://user:xxxxx@127.0.0.1:1/live/cam", "waiting for the stream"} {
		if !strings.Contains(got, want) {
			t.Errorf("the pushers table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "hidden") {
		t.Errorf("the pushers table shows the password:\n%s", got)
	}
}

// TestPusherPushesToFFmpeg: the targets are not Berth but ffmpeg listening
// as an RTSP server (ANNOUNCE/RECORD) and as an RTMP server, each
// recording 3 s of what it gets to a file that ffprobe then reads.
func TestPusherPushesToFFmpeg(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	pushPublish(t, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/s")
	pushWaitFrames(t, srv, "live/s")
	for _, schema := range []string{"rtsp", "rtmp"} {
		t.Run(schema, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0") // a free port for ffmpeg to listen on
			if err != nil {
				t.Fatal(err)
			}
			dst := schema + "://" + l.Addr().String() + "/live/s"
			l.Close()
			out := filepath.Join(t.TempDir(), "got.mkv")
			listen := []string{"-rtsp_flags", "listen", "-timeout", "20"} // seconds to wait for the pusher
			if schema == "rtmp" {
				listen = []string{"-listen", "1", "-timeout", "20"}
			}
			args := append(listen, "-i", dst, "-c", "copy", "-t", "3", out)
			exited := run(t, args...)
			// The pusher's first attempts may find nothing listening yet: it
			// retries after 1 s.
			key := addPusher(t, srv, schema, "s", dst)
			waitPusher(t, srv, key, "live", 15*time.Second)
			waitExit(t, exited, "ffmpeg recording the push")
			api(t, srv, "delStreamPusherProxy", "key", key)
			got, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", out).Output()
			if s := strings.Join(strings.Fields(string(got)), ","); err != nil || s != "h264,aac" {
				t.Errorf("ffmpeg as the %s target recorded %q, %v; want h264,aac", schema, s, err)
			}
		})
	}
}
