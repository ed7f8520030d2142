package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// requireChromium finds a Chromium to drive. Away from CI a missing one
// skips the test; CI (CI=true) installs it, so there it is a failure.
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium found, and CI is set: .ci/run should have installed it (apt-get install chromium)")
	}
	t.Skip("no chromium found: apt-get install chromium (CI installs it)")
	return ""
}

// browser starts a headless Chromium with a new empty profile, ended when
// the test ends, and collects what the page logs as console errors and
// uncaught exceptions.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newBrowser(t *testing.T, path string) *browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	) // no UserDataDir: chromedp makes a new empty one and removes it
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	b := &browser{ctx: bctx}
	// Listen starts the browser and opens the tab; the handler runs on the
	// tab's reader goroutine, so it only appends under a lock.
	err := chromedp.Listen(bctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					if a.Value != nil {
						args = append(args, string(a.Value))
					} else {
						args = append(args, a.Description)
					}
				}
				b.note("console." + string(ev.Type) + ": " + strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.note(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		}
	})
	if err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return b
}

func (b *browser) note(s string) {
	b.mu.Lock()
	b.errors = append(b.errors, s)
	b.mu.Unlock()
}

func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// do runs steps with a deadline of their own, so a wait that never ends
// fails this step with its name rather than the whole test's timeout.
func (b *browser) do(t *testing.T, what string, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// text is the visible text of the first node sel matches.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// currentTime is the preview video's playback position.
func (b *browser) currentTime(t *testing.T) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("preview").currentTime`))
	if err != nil {
		t.Fatalf("the preview's currentTime: %v", err)
	}
	return v
}

// poll waits until the JavaScript expression is true.
func poll(expr string) chromedp.Action[chromedp.Void] { return chromedp.Poll[chromedp.Void](expr) }

// TestStatusPage opens the page in headless Chromium while ffmpeg pushes
// H.264+AAC over RTMP: without the secret it explains how to get one; with
// it, it lists the stream with its tracks and URLs, shows the listeners,
// plays the HTTP-fMP4 preview, and logs no console error.
func TestStatusPage(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	chrome := requireChromium(t)
	srv, _ := start(t)
	push := "rtmp://" + srv.Addr("rtmp") + "/live/web"
	pub := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-g", "25", "-bf", "0",
		"-c:a", "aac", "-b:a", "64k", "-f", "flv", push)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	testutil.WaitFor(t, 10*time.Second, "the stream to be published", func() bool { return srv.Hub.Get("live/web") != nil })
	// A second stream, H.265, that sorts after live/web (the preview starts
	// with the first): its init segment and switching the preview to it.
	hevc := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1",
		"-i", testmedia.File(t, testmedia.H265AAC), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp",
		"rtsp://"+srv.Addr("rtsp")+"/live/x265")
	if err := hevc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hevc.Process.Kill(); hevc.Wait() })

	b := newBrowser(t, chrome)
	base := "http://" + srv.Addr("http")

	t.Run("without the secret it says where to find it", func(t *testing.T) {
		b.do(t, "the secret form", 15*time.Second, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#login"))
		why, help := b.text(t, "#login-why"), b.text(t, "#login")
		if !strings.Contains(why, "missing secret") || !strings.Contains(help, "[api]") {
			t.Errorf("login says %q / %q; want the API's refusal and where the secret is set", why, help)
		}
	})

	t.Run("with the secret it lists the live stream", func(t *testing.T) {
		b.do(t, "the stream's card", 15*time.Second,
			chromedp.Navigate(base+"/?secret=s3cret"),
			chromedp.WaitVisible(`article.stream[data-path="live/web"]`),
			poll(`document.querySelector('article.stream[data-path="live/web"] .tracks').textContent.includes("AAC")`))
		card, listeners := b.text(t, `article.stream[data-path="live/web"]`), b.text(t, "#listeners")
		for _, want := range []string{"H264 320×240 @ 25 fps", "AAC 44100 Hz", "rtmp_push",
			"rtsp://127.0.0.1:" + portOf(srv.Addr("rtsp")) + "/live/web",
			"rtmp://127.0.0.1:" + portOf(srv.Addr("rtmp")) + "/live/web",
			base + "/live/web.live.flv", "ws://" + srv.Addr("http") + "/live/web.live.flv", base + "/live/web.live.mp4"} {
			if !strings.Contains(card, want) {
				t.Errorf("the stream's card lacks %q:\n%s", want, card)
			}
		}
		for _, want := range []string{"rtsp/tcp", "rtmp/tcp", "http/tcp", srv.Addr("http"), "127.0.0.1 ok"} {
			if !strings.Contains(listeners, want) {
				t.Errorf("the listeners table lacks %q:\n%s", want, listeners)
			}
		}
	})

	t.Run("the preview plays near the live edge", func(t *testing.T) {
		if !servesFMP4(t, base+"/live/web.live.mp4") {
			t.Skip("no HTTP-fMP4 handler in this build: /live/web.live.mp4 is a 404 (it comes with branch fmp4, internal/fmp4)")
		}
		b.do(t, "the preview to start", 20*time.Second, poll(`document.getElementById("preview").currentTime > 0.5`))
		first := b.currentTime(t)
		b.do(t, "the preview to keep playing", 20*time.Second,
			poll(fmt.Sprintf(`document.getElementById("preview").currentTime > %f + 1`, first)))
		// The preview is an HTTP-fMP4 player of the stream, and the page says so.
		b.do(t, "the preview counted as a reader", 10*time.Second,
			poll(`document.querySelector('article.stream[data-path="live/web"] dd:nth-of-type(3)').textContent.includes("http-fmp4 1")`))
		if state := b.text(t, "#preview-state"); !strings.Contains(state, "playing") {
			t.Errorf("preview state %q, want playing", state)
		}
	})

	t.Run("the init segment names the codecs the server sends", func(t *testing.T) {
		if !servesFMP4(t, base+"/live/web.live.mp4") {
			t.Skip("no HTTP-fMP4 handler in this build: /live/web.live.mp4 is a 404 (it comes with branch fmp4, internal/fmp4)")
		}
		// The H.265 stream too: the browser need not decode it to read its init segment.
		testutil.WaitFor(t, 10*time.Second, "the H.265 stream to be published", func() bool { return srv.Hub.Get("live/x265") != nil })
		// The page falls back to reading the codecs from the init segment
		// when the response does not name them: both must agree.
		for _, path := range []string{"/live/web.live.mp4", "/live/x265.live.mp4"} {
			ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
			got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(async () => {
				const res = await fetch("`+path+`");
				const reader = res.body.getReader();
				let b = new Uint8Array(0), end = 0;
				while (!(end = initSegmentEnd(b))) b = concat(b, (await reader.read()).value);
				reader.cancel();
				return [res.headers.get("X-Codecs"), codecsFromInit(b.subarray(0, end))];
			})()`, chromedp.EvalAwaitPromise))
			cancel()
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if len(got) != 2 || got[0] == "" || codecsPrefix(got[0]) != codecsPrefix(got[1]) {
				t.Errorf("%s: X-Codecs and the init segment's codecs: %q; want two equal, non-empty strings", path, got)
			}
		}
	})

	t.Run("Chromium plays WS-FLV, WS-TS and WS-fMP4 and closes cleanly", func(t *testing.T) {
		// The server answers these upgrades itself (event-driven players):
		// Chromium's handshake (it offers permessage-deflate, which is
		// declined), binary messages, and its close echoed.
		for _, c := range []struct{ path, magic string }{
			{"/live/web.live.flv", "464c5601"}, // "FLV", version 1
			{"/live/web.live.ts", "47"},        // a TS sync byte
			{"/live/web.live.mp4", ""},         // the init segment: "ftyp" at 4
		} {
			ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
			got, err := chromedp.Run(ctx, chromedp.Evaluate[[]any](`new Promise((resolve, reject) => {
				const ws = new WebSocket("ws://`+srv.Addr("http")+c.path+`");
				ws.binaryType = "arraybuffer";
				let first = "", bytes = 0, msgs = 0;
				ws.onmessage = (e) => {
					const b = new Uint8Array(e.data);
					if (msgs++ === 0) first = Array.from(b.subarray(0, 8), (x) => x.toString(16).padStart(2, "0")).join("");
					bytes += b.length;
					if (bytes > 20000 && ws.readyState === WebSocket.OPEN) ws.close(1000, "done");
				};
				ws.onclose = (e) => resolve([first, bytes, e.code, e.wasClean]);
				ws.onerror = () => reject(new Error("WebSocket error"));
			})`, chromedp.EvalAwaitPromise))
			cancel()
			if err != nil {
				t.Fatalf("%s: %v", c.path, err)
			}
			first, _ := got[0].(string)
			magicOK := strings.HasPrefix(first, c.magic)
			if c.magic == "" {
				magicOK = len(first) == 16 && first[8:] == "66747970" // "ftyp"
			}
			if !magicOK || got[2] != float64(1000) || got[3] != true {
				t.Errorf("%s: first bytes %v, %v bytes, close code %v, clean %v; want %q..., a clean 1000", c.path, got[0], got[1], got[2], got[3], c.magic)
			}
		}
	})

	t.Run("the preview switches streams and back", func(t *testing.T) {
		if !servesFMP4(t, base+"/live/web.live.mp4") {
			t.Skip("no HTTP-fMP4 handler in this build: /live/web.live.mp4 is a 404 (it comes with branch fmp4, internal/fmp4)")
		}
		// Chromium may or may not decode H.265 here: either it plays, or the
		// page says why; both without an error in the console.
		b.do(t, "the preview of live/x265", 15*time.Second,
			chromedp.WaitVisible(`article.stream[data-path="live/x265"]`),
			chromedp.Click(`article.stream[data-path="live/x265"] header button`),
			poll(`document.getElementById("preview-state").textContent.includes("/live/x265.live.mp4")`))
		t.Logf("H.265 preview: %s", b.text(t, "#preview-state"))
		b.do(t, "the preview back on live/web", 20*time.Second,
			chromedp.Click(`article.stream[data-path="live/web"] header button`),
			poll(`document.getElementById("preview-state").textContent.startsWith("playing /live/web.live.mp4")`))
		first := b.currentTime(t)
		b.do(t, "live/web to play again", 20*time.Second,
			poll(fmt.Sprintf(`document.getElementById("preview").currentTime > %f + 1`, first)))
	})

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("the page logged %d console errors:\n%s", len(errs), strings.Join(errs, "\n"))
	}
}

// codecsPrefix keeps each codec's first four fields: for H.265 the
// profile, compatibility flags, tier and level. The constraint bytes after
// them differ: X-Codecs reads them from the SPS without its emulation
// prevention bytes, and mediacommon v2.9.3 copies the hvcC's from the SPS
// with them (internal/mp4/codec_boxes.go, SPS[7:13]).
func codecsPrefix(codecs string) string {
	var out []string
	for _, c := range strings.Split(codecs, ",") {
		f := strings.Split(c, ".")
		out = append(out, strings.Join(f[:min(len(f), 4)], "."))
	}
	return strings.Join(out, ",")
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// servesFMP4 asks for the stream's HTTP-fMP4 and hangs up after the head.
func servesFMP4(t *testing.T, url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	res.Body.Close()
	return res.StatusCode != http.StatusNotFound
}
