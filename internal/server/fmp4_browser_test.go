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

	"github.com/berthmedia/berth/internal/testmedia"
)

// msePage plays STREAM through Media Source Extensions, over fetch or, with
// WS set, over a WebSocket, and posts what the <video> does to REPORT every
// 500 ms: "time=<currentTime> size=<w>x<h>" or "error=<why>". The codecs come
// from X-Codecs on a HEAD request, as docs/muxers.md tells pages to do.
const msePage = `<!doctype html><video id=v muted></video><script>
const report = s => fetch('REPORT', {method: 'POST', body: s});
(async () => {
  try {
    const url = 'STREAM';
    const head = await fetch(url, {method: 'HEAD'});
    const mime = 'video/mp4; codecs="' + head.headers.get('X-Codecs') + '"';
    if (!MediaSource.isTypeSupported(mime)) { report('error=unsupported ' + mime); return; }
    const ms = new MediaSource(), v = document.getElementById('v');
    v.src = URL.createObjectURL(ms);
    await new Promise(r => ms.addEventListener('sourceopen', r, {once: true}));
    const sb = ms.addSourceBuffer(mime);
    v.addEventListener('error', () => report('error=video ' + (v.error && v.error.message)));
    const queue = [];
    const pump = () => { if (queue.length && !sb.updating) sb.appendBuffer(queue.shift()); };
    sb.addEventListener('updateend', pump);
    let started = false;
    setInterval(() => {
      const b = sb.buffered;
      if (b.length && !started) { started = true; v.currentTime = b.start(0); v.play().catch(e => report('error=play ' + e)); }
      report('time=' + v.currentTime.toFixed(2) + ' size=' + v.videoWidth + 'x' + v.videoHeight);
    }, 500);
    if (WS) {
      const ws = new WebSocket(url.replace('http:', 'ws:'));
      ws.binaryType = 'arraybuffer';
      ws.onmessage = e => { queue.push(e.data); pump(); };
      return;
    }
    const rd = (await fetch(url)).body.getReader();
    for (;;) {
      const {value, done} = await rd.read();
      if (done) { report('error=the response ended'); return; }
      queue.push(value); pump();
    }
  } catch (e) { report('error=' + e); }
})();
</script>`

// TestChromiumPlaysFMP4ThroughMSE: headless Chromium plays .live.mp4 through
// Media Source Extensions, over HTTP and over WebSocket, from a page on
// another origin (so CORS is exercised), and the <video> advances by 1.5 s
// of media at 320x240. It runs where chromium is installed.
func TestChromiumPlaysFMP4ThroughMSE(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	srv, _ := start(t)
	push(t, srv, testmedia.H264AAC, "rtmp://"+srv.Addr("rtmp")+"/live/mse", "live/mse")
	for _, ws := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "ws"}[ws]
		t.Run(name, func(t *testing.T) {
			reports := make(chan string, 64)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			page := strings.NewReplacer("STREAM", "http://"+srv.Addr("http")+"/live/mse.live.mp4",
				"REPORT", "/report", "WS", fmt.Sprint(ws)).Replace(msePage)
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
			defer site.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, browser, "--headless=new", "--no-sandbox", "--disable-gpu",
				"--autoplay-policy=no-user-gesture-required", "--user-data-dir="+t.TempDir(), "http://"+l.Addr().String()+"/")
			// Chromium starts helper processes: end the whole group.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); cmd.Wait() }()

			first, last := -1.0, ""
			for {
				select {
				case r := <-reports:
					last = r
					if strings.HasPrefix(r, "error=") {
						t.Fatalf("page: %s", r)
					}
					var at float64
					var size string
					fmt.Sscanf(r, "time=%f size=%s", &at, &size)
					if at > 0 && first < 0 {
						first = at
					}
					if first >= 0 && at-first >= 1.5 {
						if size != "320x240" {
							t.Errorf("video size %s, want 320x240", size)
						}
						return
					}
				case <-ctx.Done():
					t.Fatalf("the video did not advance 1.5 s in 30 s; last report %q", last)
				}
			}
		})
	}
}
