package server_test

import (
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/flv"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// handlerGoroutines counts the goroutines whose stack is in a stream
// handler's ServeHTTP: a player served the plain way keeps one there for
// its whole play; an event-driven one returns from it at once.
func handlerGoroutines() int {
	return goroutinesIn("flv.(*Handler).ServeHTTP", "mpegts.(*Handler).ServeHTTP", "fmp4.(*Handler).ServeHTTP")
}

// goroutinesIn counts the goroutines whose stack holds any of fns.
func goroutinesIn(fns ...string) int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, fn := range fns {
			if strings.Contains(g, fn) {
				n++
				break
			}
		}
	}
	return n
}

// TestHTTPSPlayersAreEventDriven: HTTP-FLV, HTTP-TS and HTTP-fMP4 players
// over HTTPS are written as plain HTTP ones are, with no goroutine of the
// server's each on Linux: the TLS layer seals each batch into memory (the
// SealConn under it) and the batch goes out with one non-blocking writev.
// Each player's bytes decrypt and parse: FLV tag after tag, TS packets in
// sync, fMP4 boxes. RTSPS and RTMPS players have no writer goroutine
// either.
func TestHTTPSPlayersAreEventDriven(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	tc := testutil.NewTestCert(t, false)
	srv, logs := startTLS(t, tc, nil)
	run(t, "-re", "-stream_loop", "-1", "-i", testmedia.File(t, testmedia.H264AAC), "-c", "copy", "-f", "flv",
		"rtmp://"+srv.Addr("rtmp")+"/live/e")
	waitPublished(t, srv, "live/e")
	c := httpsClient(tc)
	c.Timeout = 0 // the bodies are streams
	base := "https://" + srv.Addr("https") + "/live/e"
	urls := []string{}
	for range 6 {
		urls = append(urls, base+".live.flv")
	}
	urls = append(urls, base+".live.ts", base+".live.ts", base+".live.mp4", base+".live.mp4")

	var wg sync.WaitGroup
	got := make([][]byte, len(urls))
	bodies := make([]io.ReadCloser, len(urls))
	for i, u := range urls {
		res, err := c.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		if res.StatusCode != 200 || res.TLS == nil {
			t.Fatalf("GET %s: %s (TLS %v)", u, res.Status, res.TLS != nil)
		}
		bodies[i] = res.Body
		defer res.Body.Close()
	}
	if runtime.GOOS == "linux" {
		testutil.WaitFor(t, 5*time.Second, "no handler goroutine per HTTPS player", func() bool { return handlerGoroutines() == 0 })
	}
	for i := range urls {
		wg.Go(func() {
			b := make([]byte, 256<<10)
			n, err := io.ReadAtLeast(bodies[i], b, len(b))
			if err != nil {
				t.Errorf("%s: read %d bytes: %v", urls[i], n, err)
			}
			got[i] = b[:n]
		})
	}
	wg.Wait()
	for i, u := range urls {
		b := got[i]
		switch {
		case strings.HasSuffix(u, ".flv"):
			r, err := flv.NewReader(strings.NewReader(string(b)))
			if err != nil {
				t.Fatalf("%s: %v", u, err)
			}
			tags := 0
			for ; ; tags++ {
				if _, err := r.ReadTag(); err != nil {
					break
				}
			}
			if tags < 50 {
				t.Errorf("%s: %d whole FLV tags in %d bytes, want the stream's", u, tags, len(b))
			}
		case strings.HasSuffix(u, ".ts"):
			for off := 0; off+188 <= len(b); off += 188 {
				if b[off] != 0x47 {
					t.Fatalf("%s: TS packet at %d out of sync (0x%02x)", u, off, b[off])
				}
			}
		default:
			if len(b) < 8 || string(b[4:8]) != "ftyp" || !strings.Contains(string(b), "moof") {
				t.Errorf("%s: no ftyp then moof in %d bytes", u, len(b))
			}
		}
	}

	// RTSPS and RTMPS players (ffmpeg) are written the same way: no
	// player goroutine of their own. Their requests are still read by a
	// goroutine each, through the TLS layer.
	for _, u := range []string{"rtsps://" + srv.Addr("rtsps") + "/live/e", "rtmps://" + srv.Addr("rtmps") + "/live/e"} {
		run(t, "-i", u, "-t", "20", "-c", "copy", "-f", "null", "-")
	}
	logs.WaitLine(t, "play started", "proto=rtsp", "path=live/e")
	logs.WaitLine(t, "rtmp play started", "path=live/e")
	testutil.WaitFor(t, 10*time.Second, "frames read by the RTSPS and the RTMPS player", func() bool {
		got := map[string]bool{}
		for _, r := range srv.Hub.Get("live/e").ReaderList() {
			got[r.Who().Proto] = got[r.Who().Proto] || r.Bytes() > 0
		}
		return got["rtsp"] && got["rtmp"]
	})
	if runtime.GOOS == "linux" {
		if n := goroutinesIn("rtsp.(*player).loop", "rtmp.(*playSession).run"); n != 0 {
			t.Errorf("%d RTSPS/RTMPS player goroutines, want none: the TLS layer seals for the event-driven writer", n)
		}
	}
	if line := logs.Line("level=ERROR"); line != "" {
		t.Errorf("a TLS player logged an error: %s", line)
	}
}
