package server_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// startEdge starts a Berth whose [cluster] origin_url lists origins.
func startEdge(t *testing.T, origins ...string) (*server.Server, *testutil.LogBuffer) {
	t.Helper()
	return startPuller(t, func(c *config.Config) {
		c.Origin.URLs = origins
		c.Origin.TimeoutSec = 10
		c.General.StreamNoneReaderDelayMS = 1000
	})
}

// originReaders is the readers of path on the origin, from getMediaList.
func originReaders(t *testing.T, origin *server.Server, path string) float64 {
	t.Helper()
	app, stream, _ := strings.Cut(path, "/")
	for _, m := range list(api(t, origin, "getMediaList", "schema", "rtsp")) {
		if m["app"] == app && m["stream"] == stream {
			n, _ := m["totalReaderCount"].(float64)
			return n
		}
	}
	return -1
}

// read plays u with ffmpeg for a few seconds, discarding what it gets.
func read(t *testing.T, u string) <-chan struct{} {
	t.Helper()
	return run(t, "-rw_timeout", "15000000", "-i", u, "-t", "6", "-c", "copy", "-f", "null", "-")
}

// TestEdgePullsFromTheOrigin: ffmpeg pushes RTSP to an origin; an edge whose
// origin_url names a dead origin first and the live one second plays the
// stream over RTMP and HTTP-FLV (ffprobe sees H.264 and AAC) with one
// pull: the origin's getMediaList shows one reader however many read the
// edge. The dead origin is logged once with its URL and cause; the pull
// ends after the last reader leaves, and the origin's reader with it; a
// later HLS viewer starts a new one.
func TestEdgePullsFromTheOrigin(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	origin, _ := start(t)
	push(t, origin, testmedia.H264AAC, "rtsp://"+origin.Addr("rtsp")+"/live/cam", "live/cam")
	dead := "rtsp://admin:secret@" + testutil.ClosedAddr(t) + "/$app/$stream"
	edge, logs := startEdge(t, dead, "rtsp://"+origin.Addr("rtsp")+"/%s/%s")

	// Two readers at once, over two protocols: one pull.
	u := urls(edge, "live/cam")
	r1, r2 := read(t, u["rtmp"]), read(t, u["http-flv"])
	testutil.WaitFor(t, 15*time.Second, "the edge to pull live/cam for its two readers", func() bool {
		st := edge.Hub.Get("live/cam")
		return st != nil && st.Readers() == 2
	})
	if n := originReaders(t, origin, "live/cam"); n != 1 {
		t.Errorf("the origin's getMediaList shows %v readers of live/cam, want 1 (the edge's pull)", n)
	}
	if st := edge.Hub.Get("live/cam"); st.Origin.Proto != "pull" || !strings.Contains(st.Origin.ID, origin.Addr("rtsp")) {
		t.Errorf("the edge's stream comes from %v, want a pull from the live origin", st.Origin)
	}
	for proto, u := range map[string]string{"rtmp": u["rtmp"], "http-flv": u["http-flv"]} {
		if got, err := probe(u); err != nil || got != "h264,aac" {
			t.Errorf("the edge over %s: ffprobe got %q, %v; want h264,aac", proto, got, err)
		}
	}
	line := logs.WaitLine(t, "pull failed; retrying", "connection refused")
	if !strings.Contains(line, "admin:***@") || strings.Contains(line, "secret") {
		t.Errorf("the dead origin's line does not name its URL with the password hidden: %s", line)
	}
	if n := strings.Count(logs.String(), "connection refused"); n != 1 {
		t.Errorf("the dead origin was logged %d times, want once", n)
	}

	<-r1
	<-r2
	testutil.WaitFor(t, 15*time.Second, "the pull to end after the last reader", func() bool {
		return edge.Hub.Get("live/cam") == nil && len(list(api(t, edge, "listStreamProxy"))) == 0
	})
	testutil.WaitFor(t, 10*time.Second, "the origin to lose the edge's reader", func() bool {
		return originReaders(t, origin, "live/cam") == 0
	})

	// A later reader starts a new pull; HLS last, as its viewer outlives
	// the request by 10 s.
	hls := "http://" + edge.Addr("http") + "/live/cam/hls.m3u8"
	// ffprobe lists an HLS stream's codecs once per program as well.
	if got, err := probe(hls); err != nil || strings.ReplaceAll(got, "h264,aac,h264,aac", "h264,aac") != "h264,aac" {
		t.Errorf("the edge over HLS: ffprobe got %q, %v; want h264,aac", got, err)
	}
}

// TestEdgeGivesUpWhenNoOriginHasTheStream: a reader of a stream no origin
// has hears "not found" once timeout_sec is over, the pull is removed (the
// next reader tries again), and the line names the origins and the fix. The
// edge sends no on_stream_not_found (the origins answer, as in
// ZLMediaKit); the origin's hook sees the edge's request marked edge=1.
func TestEdgeGivesUpWhenNoOriginHasTheStream(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	originHooks, edgeHooks := newHookRecorder(t, nil), newHookRecorder(t, nil)
	origin, _ := startHooked(t, originHooks.url, nil)
	edge, logs := startHooked(t, edgeHooks.url, func(c *config.Config) {
		c.API.Secret = "s3cret"
		c.Origin.URLs = []string{"rtmp://" + origin.Addr("rtmp") + "/$app/$stream"}
		c.Origin.TimeoutSec = 2
	})
	began := time.Now()
	out, err := exec.Command("ffprobe", "-v", "error", "-rw_timeout", "15000000", urls(edge, "live/none?token=abc")["rtsp"]).CombinedOutput()
	if err == nil {
		t.Fatalf("ffprobe of a stream no origin has succeeded: %s", out)
	}
	if waited := time.Since(began); waited > 10*time.Second {
		t.Errorf("the reader waited %s, want about timeout_sec (2s)", waited)
	}
	logs.WaitLine(t, "pull stopped", "live/none", "origin_url")
	testutil.WaitFor(t, 5*time.Second, "the pull to be removed", func() bool {
		return len(list(api(t, edge, "listStreamProxy"))) == 0
	})
	edgeHooks.wait(t, "on_play", map[string]any{"stream": "none"})
	if got := edgeHooks.of("on_stream_not_found", nil); len(got) != 0 {
		t.Errorf("the edge sent on_stream_not_found: %v", got)
	}
	body := originHooks.wait(t, "on_stream_not_found", map[string]any{"stream": "none"})
	if p, _ := body["params"].(string); !strings.Contains(p, "token=abc") || !strings.Contains(p, "edge=1") || !strings.Contains(p, "edge_hops=1") {
		t.Errorf("the origin's on_stream_not_found params %q, want the reader's token=abc, edge=1 and edge_hops=1", p)
	}
}

// TestEdgeTreeOfTwoTiers: a leaf edge pulls from a mid-tier edge, which
// pulls from the origin; ffprobe plays the leaf over RTSP; each upstream
// node has one reader, and each pull carries its hop count.
func TestEdgeTreeOfTwoTiers(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	origin, _ := start(t)
	push(t, origin, testmedia.H264AAC, "rtmp://"+origin.Addr("rtmp")+"/live/tree", "live/tree")
	mid, _ := startEdge(t, "rtmp://"+origin.Addr("rtmp")+"/$app/$stream")
	leaf, _ := startEdge(t, "rtsp://"+mid.Addr("rtsp")+"/$1/$2")
	if got, err := probe(urls(leaf, "live/tree")["rtsp"]); err != nil || got != "h264,aac" {
		t.Fatalf("the leaf over RTSP: ffprobe got %q, %v; want h264,aac", got, err)
	}
	for _, c := range []struct {
		node *server.Server
		hops string
	}{{leaf, "edge_hops=1"}, {mid, "edge_hops=2"}} {
		ps := list(api(t, c.node, "listStreamProxy"))
		if len(ps) != 1 || !strings.Contains(ps[0]["url"].(string), c.hops) {
			t.Errorf("pulls %v, want one whose URL carries %s", ps, c.hops)
		}
	}
	if n := originReaders(t, origin, "live/tree"); n != 1 {
		t.Errorf("the origin shows %v readers, want 1 (the mid tier)", n)
	}
}

// TestEdgesInALoopGiveUp: two edges whose origin_url names each other (a
// mistake; a's is set by a reload, which applies it to the next pull) and a
// stream neither has: the reader hears "not found", each node started at
// most a few pulls, and none is left.
func TestEdgesInALoopGiveUp(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	a, alogs := startPuller(t, func(c *config.Config) {
		c.Origin.URLs, c.Origin.TimeoutSec = []string{"rtsp://" + testutil.ClosedAddr(t) + "/$app/$stream"}, 2
	})
	b, blogs := startPuller(t, func(c *config.Config) {
		c.Origin.URLs, c.Origin.TimeoutSec = []string{"rtsp://" + a.Addr("rtsp") + "/$app/$stream"}, 2
	})
	next := a.CurrentConfig().Clone()
	next.Origin.URLs = []string{"rtsp://" + b.Addr("rtsp") + "/$app/$stream"}
	if rep, err := a.Reload(next); err != nil {
		t.Fatal(err)
	} else if c, ok := rep.Key("cluster.origin_url"); !ok || !c.Live {
		t.Fatalf("reload of origin_url: %+v", rep)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-rw_timeout", "20000000", urls(a, "live/loop")["rtsp"]).CombinedOutput()
	if err == nil {
		t.Fatalf("ffprobe of a stream no node has succeeded: %s", out)
	}
	testutil.WaitFor(t, 15*time.Second, "both edges to drop their pulls", func() bool {
		return len(list(api(t, a, "listStreamProxy"))) == 0 && len(list(api(t, b, "listStreamProxy"))) == 0
	})
	for name, logs := range map[string]*testutil.LogBuffer{"a": alogs, "b": blogs} {
		if n := strings.Count(logs.String(), "pulling it from the origin"); n < 1 || n > 3 {
			t.Errorf("edge %s started %d pulls of the looping path, want 1-3", name, n)
		}
	}
}
