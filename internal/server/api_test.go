package server_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// api calls the server's API with the test secret and kv as parameters.
func api(t *testing.T, srv *server.Server, call string, kv ...string) map[string]any {
	t.Helper()
	q := url.Values{"secret": {"s3cret"}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	res, err := http.Get("http://" + srv.Addr("http") + "/index/api/" + call + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v: %s", call, err, body)
	}
	return m
}

func list(m map[string]any) []map[string]any {
	var out []map[string]any
	d, _ := m["data"].([]any)
	for _, x := range d {
		out = append(out, x.(map[string]any))
	}
	return out
}

func port(addr string) float64 {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return float64(n)
}

// run starts an ffmpeg and returns a channel closed when it exits.
func run(t *testing.T, args ...string) <-chan struct{} {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-v", "error"}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	return exited
}

func waitExit(t *testing.T, exited <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("%s still runs 15 s after its session was ended", what)
	}
}

// The self-probe's own connections at start are Berth's, not clients: they
// are logged at debug, not as "connection accepted" at info, and not
// counted as accepted.
func TestSelfProbeConnectionsAreNotLoggedAsClients(t *testing.T) {
	srv, logs := start(t)
	if line := logs.Line("level=INFO", "connection accepted"); line != "" {
		t.Errorf("a self-probe connection was logged at info: %s", line)
	}
	if logs.Line("level=DEBUG", "connection accepted") == "" {
		t.Errorf("no self-probe connection logged at debug: did the probe run?")
	}
	for typ, n := range srv.Sessions.Accepted() {
		if n != 0 {
			t.Errorf("Accepted()[%s] = %d after start, want 0 (the probe is not a client)", typ, n)
		}
	}
}

// One server, real pushes and players: the API lists the players of each
// schema with their connections, kick_session ends the RTSP publisher
// (ffmpeg sees the disconnect) and close_streams the RTMP one, each
// without touching the other stream.
func TestAPIListsPlayersAndEndsTheRightSessions(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, _ := start(t)
	src := testmedia.File(t, testmedia.H264AAC)
	rtspPub := run(t, "-re", "-stream_loop", "-1", "-i", src, "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp",
		"rtsp://"+srv.Addr("rtsp")+"/live/a")
	rtmpPub := run(t, "-re", "-stream_loop", "-1", "-i", src, "-c", "copy", "-f", "flv", "rtmp://"+srv.Addr("rtmp")+"/live/b")
	testutil.WaitFor(t, 15*time.Second, "live/a and live/b to be published", func() bool {
		a, b := srv.Hub.Get("live/a"), srv.Hub.Get("live/b")
		return a != nil && b != nil && a.FramesIn.Load() > 20 && b.FramesIn.Load() > 20
	})
	run(t, "-rtsp_transport", "tcp", "-i", "rtsp://"+srv.Addr("rtsp")+"/live/a", "-f", "null", "-")
	flvPlayer := run(t, "-i", "http://"+srv.Addr("http")+"/live/a.live.flv", "-f", "null", "-")
	run(t, "-i", "http://"+srv.Addr("http")+"/live/a.live.mp4", "-f", "null", "-")
	run(t, "-i", "http://"+srv.Addr("http")+"/live/a.live.ts", "-f", "null", "-")

	stream := func(schema, name string) []string {
		return []string{"schema", schema, "vhost", "__defaultVhost__", "app", "live", "stream", name}
	}
	var rtspPlayers, flvPlayers, mp4Players, tsPlayers []map[string]any
	testutil.WaitFor(t, 15*time.Second, "an RTSP, an HTTP-FLV, an HTTP-fMP4 and an HTTP-TS player of live/a", func() bool {
		rtspPlayers = list(api(t, srv, "getMediaPlayerList", stream("rtsp", "a")...))
		flvPlayers = list(api(t, srv, "getMediaPlayerList", stream("rtmp", "a")...))
		mp4Players = list(api(t, srv, "getMediaPlayerList", stream("fmp4", "a")...))
		tsPlayers = list(api(t, srv, "getMediaPlayerList", stream("ts", "a")...))
		return len(rtspPlayers) == 1 && len(flvPlayers) == 1 && len(mp4Players) == 1 && len(tsPlayers) == 1
	})
	sessionIDs := map[string]map[string]any{}
	for _, s := range list(api(t, srv, "getAllSession")) {
		sessionIDs[s["id"].(string)] = s
	}
	for _, tc := range []struct {
		p      map[string]any
		typeid string
		local  string
	}{
		{rtspPlayers[0], "mediakit::RtspSession", srv.Addr("rtsp")},
		{flvPlayers[0], "mediakit::HttpSession", srv.Addr("http")},
		{mp4Players[0], "mediakit::HttpSession", srv.Addr("http")},
		{tsPlayers[0], "mediakit::HttpSession", srv.Addr("http")},
	} {
		if tc.p["typeid"] != tc.typeid || tc.p["local_port"] != port(tc.local) || tc.p["peer_ip"] != "127.0.0.1" {
			t.Errorf("player %v, want %s on port %v from 127.0.0.1", tc.p, tc.typeid, port(tc.local))
		}
		if s := sessionIDs[tc.p["identifier"].(string)]; s == nil || s["typeid"] != tc.typeid {
			t.Errorf("player %v: getAllSession has no such session (%v)", tc.p, s)
		}
	}
	for _, d := range list(api(t, srv, "getMediaList", "app", "live", "stream", "a")) {
		if speed, _ := d["bytesSpeed"].(float64); speed <= 0 {
			t.Errorf("getMediaList %s: bytesSpeed %v of a live push, want > 0", d["schema"], d["bytesSpeed"])
		}
		want := 1.0 // a player in each schema but HLS's
		if strings.HasPrefix(d["schema"].(string), "hls") {
			want = 0
		}
		if d["readerCount"] != want || d["totalReaderCount"] != 4.0 {
			t.Errorf("getMediaList %s: readerCount %v totalReaderCount %v, want %v and 4", d["schema"], d["readerCount"], d["totalReaderCount"], want)
		}
	}

	// kick_sessions of the HTTP port ends the FLV, fMP4 and TS players, not
	// the connection the call came on (its reply arrives).
	if r := api(t, srv, "kick_sessions", "local_port", strconv.Itoa(int(port(srv.Addr("http")))), "peer_ip", "127.0.0.1"); r["code"] != 0.0 || r["count_hit"].(float64) < 3 {
		t.Fatalf("kick_sessions of the HTTP port: %v, want the FLV, fMP4 and TS players hit", r)
	}
	waitExit(t, flvPlayer, "the kicked HTTP-FLV player (ffmpeg)")
	testutil.WaitFor(t, 5*time.Second, "the FLV player to leave live/a", func() bool {
		return len(list(api(t, srv, "getMediaPlayerList", stream("rtmp", "a")...))) == 0
	})
	if n := len(list(api(t, srv, "getMediaPlayerList", stream("rtsp", "a")...))); n != 1 {
		t.Fatalf("kick_sessions of the HTTP port: %d RTSP players left, want 1", n)
	}

	// The RTSP publisher's connection, from getMediaInfo, kicked.
	info := api(t, srv, "getMediaInfo", stream("rtsp", "a")...)
	sock := info["originSock"].(map[string]any)
	if info["originTypeStr"] != "rtsp_push" || sock["local_port"] != port(srv.Addr("rtsp")) {
		t.Fatalf("getMediaInfo live/a: %v", info)
	}
	byPort := list(api(t, srv, "getAllSession", "local_port", strconv.Itoa(int(port(srv.Addr("rtsp"))))))
	found := false
	for _, s := range byPort {
		found = found || s["id"] == sock["identifier"]
		if s["local_port"] != port(srv.Addr("rtsp")) {
			t.Errorf("getAllSession local_port=%v lists %v", port(srv.Addr("rtsp")), s)
		}
	}
	if !found {
		t.Fatalf("getAllSession local_port filter lacks the publisher %v: %v", sock["identifier"], byPort)
	}
	if r := api(t, srv, "kick_session", "id", sock["identifier"].(string)); r["code"] != 0.0 {
		t.Fatalf("kick_session: %v", r)
	}
	waitExit(t, rtspPub, "the kicked RTSP publisher (ffmpeg)")
	testutil.WaitFor(t, 5*time.Second, "live/a to go offline", func() bool {
		return api(t, srv, "isMediaOnline", stream("rtsp", "a")...)["online"] == false
	})
	if api(t, srv, "isMediaOnline", stream("rtmp", "b")...)["online"] != true {
		t.Fatal("kicking live/a's publisher ended live/b")
	}

	r := api(t, srv, "close_streams", "app", "live", "stream", "b", "force", "1")
	if r["count_hit"] != 6.0 || r["count_closed"] != 6.0 {
		t.Fatalf("close_streams live/b: %v, want 6 hits (rtsp, rtmp, fmp4, ts, hls, hls.fmp4), 6 closed", r)
	}
	waitExit(t, rtmpPub, "the RTMP publisher (ffmpeg) of the closed live/b")
	if srv.Hub.Get("live/b") != nil {
		t.Fatal("live/b still live after close_streams")
	}
}

func TestUnknownAPIPathIsA404PageAndALogLine(t *testing.T) {
	srv, logs := start(t)
	res, err := http.Get("http://" + srv.Addr("http") + "/index/api/noSuchCall?secret=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("unknown API path: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	logs.WaitLine(t, "API call to an unknown path", "/index/api/noSuchCall")
}
