package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// startPuller starts a Berth with the test secret, cfg changed by mod.
func startPuller(t *testing.T, mod func(c *config.Config)) (*server.Server, *testutil.LogBuffer) {
	t.Helper()
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	cfg.API.Secret = "s3cret"
	if mod != nil {
		mod(cfg)
	}
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
			t.Logf("puller log:\n%s", logs.String())
		}
	})
	return srv, logs
}

// addProxy calls addStreamProxy and returns the key.
func addProxy(t *testing.T, srv *server.Server, path, url string, kv ...string) string {
	t.Helper()
	app, stream, _ := strings.Cut(path, "/")
	r := api(t, srv, "addStreamProxy", append([]string{"vhost", "__defaultVhost__", "app", app, "stream", stream, "url", url}, kv...)...)
	d, _ := r["data"].(map[string]any)
	if r["code"] != 0.0 || d == nil || d["key"] != "__defaultVhost__/"+path {
		t.Fatalf("addStreamProxy %s %s: %v", path, url, r)
	}
	return d["key"].(string)
}

// waitLive waits until the pulled stream has frames.
func waitLive(t *testing.T, srv *server.Server, path string) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, path+" to be pulled", func() bool {
		st := srv.Hub.Get(path)
		return st != nil && st.FramesIn.Load() > 50
	})
}

// TestPullRTSPOverTCPAndUDP: a second Berth, fed by ffmpeg, is pulled over
// RTSP with rtp_type 0 (TCP) and 1 (UDP); each pulled stream plays as
// H.264 and AAC over RTSP, RTMP and HTTP-FLV, getMediaList says it is a
// pull (originType 4) from its URL, and listStreamProxy says it is live.
func TestPullRTSPOverTCPAndUDP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	src, _ := start(t)
	push(t, src, testmedia.H264AAC, "rtsp://"+src.Addr("rtsp")+"/live/src", "live/src")
	srv, _ := startPuller(t, nil)
	from := "rtsp://" + src.Addr("rtsp") + "/live/src"
	addProxy(t, srv, "pull/tcp", from, "rtp_type", "0")
	addProxy(t, srv, "pull/udp", from, "rtp_type", "1")
	for _, path := range []string{"pull/tcp", "pull/udp"} {
		waitLive(t, srv, path)
		for proto, u := range urls(srv, path) {
			if got, err := probe(u); err != nil || got != "h264,aac" {
				t.Errorf("%s over %s: ffprobe got %q, %v; want h264,aac", path, proto, got, err)
			}
		}
	}
	for _, m := range list(api(t, srv, "getMediaList", "schema", "rtsp")) {
		if m["originType"] != 4.0 || m["originTypeStr"] != "pull" || m["originUrl"] != from {
			t.Errorf("getMediaList %s/%s: originType %v %v, originUrl %v; want 4 pull %s", m["app"], m["stream"],
				m["originType"], m["originTypeStr"], m["originUrl"], from)
		}
	}
	proxies := list(api(t, srv, "listStreamProxy"))
	if len(proxies) != 2 {
		t.Fatalf("listStreamProxy: %v", proxies)
	}
	for _, p := range proxies {
		if p["state"] != "live" || p["status"] != 0.0 || p["url"] != from {
			t.Errorf("listStreamProxy entry: %v", p)
		}
	}
	info := api(t, srv, "getProxyInfo", "key", "__defaultVhost__/pull/udp")
	if d, _ := info["data"].(map[string]any); d == nil || d["rtp_type"] != 1.0 {
		t.Errorf("getProxyInfo: %v", info)
	}
	res, err := http.Get("http://" + srv.Addr("http") + "/berth/status.json?secret=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), `"path":"pull/udp"`) || !strings.Contains(string(page), `"summary":"live"`) {
		t.Errorf("the status page's JSON does not list the live pulls: %s", page)
	}
	del := api(t, srv, "delStreamProxy", "key", "__defaultVhost__/pull/tcp")
	if d, _ := del["data"].(map[string]any); d == nil || d["flag"] != true {
		t.Errorf("delStreamProxy: %v", del)
	}
	testutil.WaitFor(t, 5*time.Second, "the deleted pull's stream to end", func() bool { return srv.Hub.Get("pull/tcp") == nil })
}

// TestPullRTMPFLVAndHLS: the same source Berth pulled over RTMP, HTTP-FLV
// and HLS plays back over RTSP as H.264 and AAC.
func TestPullRTMPFLVAndHLS(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	src, _ := start(t)
	push(t, src, testmedia.H264AAC, "rtmp://"+src.Addr("rtmp")+"/live/src", "live/src")
	srv, _ := startPuller(t, nil)
	sources := map[string]string{
		"pull/rtmp": "rtmp://" + src.Addr("rtmp") + "/live/src",
		"pull/flv":  "http://" + src.Addr("http") + "/live/src.live.flv",
		"pull/hls":  "http://" + src.Addr("http") + "/live/src/hls.m3u8",
	}
	for path, u := range sources {
		addProxy(t, srv, path, u)
	}
	for path := range sources {
		waitLive(t, srv, path)
		if got, err := probe(urls(srv, path)["rtsp"]); err != nil || got != "h264,aac" {
			t.Errorf("%s read over RTSP: ffprobe got %q, %v; want h264,aac", path, got, err)
		}
	}
}

// TestPullReconnectKeepsItsReader: the source's publisher is killed and
// started again; the pull retries (logging the cause), resumes on the same
// stream, and an HTTP-FLV and an RTSP reader that stayed connected decode
// on: each ffmpeg exits 0 after 8 s of media without a timestamp warning.
func TestPullReconnectKeepsItsReader(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	src, _ := start(t)
	srcURL := "rtsp://" + src.Addr("rtsp") + "/live/src"
	pub := startPush(t, testmedia.H264AAC, srcURL)
	waitPublished(t, src, "live/src")
	srv, logs := startPuller(t, nil)
	addProxy(t, srv, "pull/re", srcURL, "timeout_sec", "3")
	waitLive(t, srv, "pull/re")
	st := srv.Hub.Get("pull/re")

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	// Two readers: HTTP-FLV (access units, converted) and RTSP (the
	// source's RTP, renumbered across sessions).
	readers := map[string]*exec.Cmd{}
	outs := map[string]*bytes.Buffer{}
	for proto, u := range map[string]string{"http-flv": urls(srv, "pull/re")["http-flv"], "rtsp": urls(srv, "pull/re")["rtsp"]} {
		var out bytes.Buffer
		args := []string{"-hide_banner", "-v", "warning"}
		if proto == "rtsp" {
			args = append(args, "-rtsp_transport", "tcp")
		}
		reader := exec.CommandContext(ctx, "ffmpeg", append(args, "-i", u, "-t", "8", "-f", "null", "-")...)
		reader.Stdout, reader.Stderr = &out, &out
		if err := reader.Start(); err != nil {
			t.Fatal(err)
		}
		readers[proto], outs[proto] = reader, &out
	}
	testutil.WaitFor(t, 10*time.Second, "the readers to join", func() bool { return st.Readers() == 2 })

	pub.Process.Kill()
	pub.Wait()
	logs.WaitLine(t, "pull failed; retrying", "pull/re", "cause=")
	startPush(t, testmedia.H264AAC, srcURL)
	back := time.Now()
	logs.WaitLine(t, "pull resumed on the same stream", "pull/re")
	t.Logf("reconnect: the pull resumed %s after the source's publisher was started again", time.Since(back).Round(time.Millisecond))

	for proto, reader := range readers {
		err := reader.Wait()
		if out := outs[proto].String(); err != nil || timeWentBack(out) {
			t.Errorf("the %s reader across the reconnect: %v\n%s", proto, err, out)
		}
	}
	if srv.Hub.Get("pull/re") != st {
		t.Errorf("the pulled stream was replaced instead of resumed")
	}
}

// nonMonotonic is ffmpeg's warning about a packet's DTS: "... in stream 0: A >= B".
var nonMonotonic = regexp.MustCompile(`non monotonically increasing dts to muxer in stream \d+: (\d+) >= (\d+)`)

// timeWentBack reports an ffmpeg warning of a DTS lower than the one
// before. A DTS equal to the one before (A == B) is not counted: after a
// resume the source's GOP cache arrives as a burst, and one video frame of
// it now and then gets its predecessor's millisecond in the readers' own
// timing (known; docs/proxy.md).
func timeWentBack(out string) bool {
	for _, m := range nonMonotonic.FindAllStringSubmatch(out, -1) {
		a, _ := strconv.ParseInt(m[1], 10, 64)
		b, _ := strconv.ParseInt(m[2], 10, 64)
		if a > b {
			return true
		}
	}
	return false
}

// TestPullOnDemand: a [proxy] pull with on_demand=1 makes no connection to
// its source until a reader asks; the reader (ffprobe over RTSP) waits for
// it and plays; the source connection closes streamNoneReaderDelayMS after
// the last reader.
func TestPullOnDemand(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	src, _ := start(t)
	push(t, src, testmedia.H264AAC, "rtsp://"+src.Addr("rtsp")+"/live/src", "live/src")
	srcStream := src.Hub.Get("live/src")
	srv, logs := startPuller(t, func(c *config.Config) {
		c.General.StreamNoneReaderDelayMS = 1000
		c.General.MaxStreamWaitMS = 10000
		c.Proxy.OnDemand = true
		if err := c.Parse(strings.NewReader("[proxy]\nlive/od=rtsp://"+src.Addr("rtsp")+"/live/src\n"), "proxy.ini"); err != nil {
			t.Fatal(err)
		}
	})
	// Another stream's not-found and the API's list must not start it.
	probe(urls(srv, "live/other")["rtsp"])
	if ps := list(api(t, srv, "listStreamProxy")); len(ps) != 1 || ps[0]["state"] != "idle" {
		t.Errorf("an on-demand pull before its first reader: %v", ps)
	}
	if n := srcStream.Readers(); n != 0 {
		t.Fatalf("the source has %d readers before anyone asked for the on-demand pull", n)
	}
	if got, err := probe(urls(srv, "live/od")["rtsp"]); err != nil || got != "h264,aac" {
		t.Fatalf("the first reader of an on-demand pull: ffprobe got %q, %v", got, err)
	}
	logs.WaitLine(t, "pull on demand: a reader asked; starting")
	testutil.WaitFor(t, 10*time.Second, "the source connection to close after the last reader and the delay", func() bool {
		return srcStream.Readers() == 0 && srv.Hub.Get("live/od") == nil
	})
	logs.WaitLine(t, "pull: no reader for the delay; stopping", "live/od")
	if got, err := probe(urls(srv, "live/od")["http-flv"]); err != nil || got != "h264,aac" {
		t.Errorf("the next reader over HTTP-FLV starts it again: ffprobe got %q, %v", got, err)
	}
}

// TestStreamNotFoundHookAddsAProxy: as ZLMediaKit users do it, the hook
// server answers on_stream_not_found by calling addStreamProxy (with
// auto_close=1); the reader that asked waits for the pull and plays, and
// the pull is removed streamNoneReaderDelayMS after its last reader.
func TestStreamNotFoundHookAddsAProxy(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	src, _ := start(t)
	push(t, src, testmedia.H264AAC, "rtmp://"+src.Addr("rtmp")+"/live/src", "live/src")
	var mu sync.Mutex
	var srv *server.Server
	hr := newHookRecorder(t, func(hook string, body map[string]any) string {
		if hook != "on_stream_not_found" || body["stream"] != "cam" {
			return ""
		}
		mu.Lock()
		s := srv
		mu.Unlock()
		r := api(t, s, "addStreamProxy", "vhost", "__defaultVhost__", "app", "live", "stream", "cam",
			"url", "rtmp://"+src.Addr("rtmp")+"/live/src", "auto_close", "1")
		if r["code"] != 0.0 {
			t.Errorf("addStreamProxy from the hook server: %v", r)
		}
		return ""
	})
	started, logs := startHooked(t, hr.url, func(c *config.Config) {
		c.API.Secret = "s3cret"
		c.General.StreamNoneReaderDelayMS = 1000
	})
	mu.Lock()
	srv = started
	mu.Unlock()
	if got, err := probe(urls(started, "live/cam")["rtsp"]); err != nil || got != "h264,aac" {
		t.Fatalf("a reader of a stream the hook server pulls: ffprobe got %q, %v", got, err)
	}
	testutil.WaitFor(t, 10*time.Second, "the auto_close pull to be removed after its last reader", func() bool {
		return len(list(api(t, started, "listStreamProxy"))) == 0 && started.Hub.Get("live/cam") == nil
	})
	logs.WaitLine(t, "pull proxy deleted", "live/cam")
}

// TestStatusPageListsPulls: the status page shows each pull with its
// state: one live, one retrying with its cause (the source has no such
// stream), and the browser logs no script error.
func TestStatusPageListsPulls(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	chrome := requireChromium(t)
	src, _ := start(t)
	push(t, src, testmedia.H264AAC, "rtmp://"+src.Addr("rtmp")+"/live/src", "live/src")
	srv, _ := startPuller(t, nil)
	addProxy(t, srv, "pull/ok", "rtmp://"+src.Addr("rtmp")+"/live/src")
	addProxy(t, srv, "pull/missing", "rtsp://"+src.Addr("rtsp")+"/live/nothing")
	waitLive(t, srv, "pull/ok")
	b := newBrowser(t, chrome)
	b.do(t, "the pulls table", 15*time.Second,
		chromedp.Navigate("http://"+srv.Addr("http")+"/?secret=s3cret"),
		chromedp.WaitVisible("#proxies"),
		poll(`document.querySelector("#proxies").textContent.includes("404")`))
	table := b.text(t, "#proxies")
	for _, want := range []string{"pull/ok", "live", "rtmp://" + src.Addr("rtmp") + "/live/src",
		"pull/missing", "retrying", "404: the source has no stream at this path"} {
		if !strings.Contains(table, want) {
			t.Errorf("the pulls table lacks %q:\n%s", want, table)
		}
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("script errors: %v", errs)
	}
}

// TestPullH265OverRTSP: an H.265 stream pulled over RTSP plays over RTSP
// (the source's payloads) and HTTP-TS (converted). (This machine's ffmpeg
// 5.1 reads no enhanced FLV, so HTTP-FLV is not the converted reader.)
func TestPullH265OverRTSP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	src, _ := start(t)
	push(t, src, testmedia.H265AAC, "rtsp://"+src.Addr("rtsp")+"/live/hevc", "live/hevc")
	srv, _ := startPuller(t, nil)
	addProxy(t, srv, "pull/hevc", "rtsp://"+src.Addr("rtsp")+"/live/hevc")
	waitLive(t, srv, "pull/hevc")
	for _, u := range []string{urls(srv, "pull/hevc")["rtsp"], "http://" + srv.Addr("http") + "/pull/hevc.live.ts"} {
		got, err := probe(u)
		if got == "hevc,aac,hevc,aac" {
			got = "hevc,aac" // ffprobe lists a TS's streams under its program too
		}
		if err != nil || got != "hevc,aac" {
			t.Errorf("%s: ffprobe got %q, %v; want hevc,aac", u, got, err)
		}
	}
}

// redirector is an RTSP server that answers every request with 302 and
// Location to (RFC 2326 section 11.3.3), as a load-balancing NVR does.
func redirector(t *testing.T, to string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				cseq := ""
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if v, ok := strings.CutPrefix(line, "CSeq:"); ok {
						cseq = strings.TrimSpace(v)
					}
					if line == "\r\n" {
						fmt.Fprintf(c, "RTSP/1.0 302 Moved Temporarily\r\nCSeq: %s\r\nLocation: %s\r\n\r\n", cseq, to)
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// TestPullFollowsRTSPRedirect: a source that answers 302 with Location is
// followed to the stream it names.
func TestPullFollowsRTSPRedirect(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	src, _ := start(t)
	push(t, src, testmedia.H264AAC, "rtsp://"+src.Addr("rtsp")+"/live/src", "live/src")
	nvr := redirector(t, "rtsp://"+src.Addr("rtsp")+"/live/src")
	srv, logs := startPuller(t, nil)
	addProxy(t, srv, "pull/moved", "rtsp://"+nvr+"/cam1")
	waitLive(t, srv, "pull/moved")
	logs.WaitLine(t, "the RTSP source redirects", "pull/moved")
	if got, err := probe(urls(srv, "pull/moved")["rtsp"]); err != nil || got != "h264,aac" {
		t.Errorf("a redirected pull: ffprobe got %q, %v", got, err)
	}
}
