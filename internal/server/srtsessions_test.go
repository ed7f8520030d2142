package server_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// splitAddr splits host:port.
func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// TestSRTSessionsAreListedAndKicked: an ffmpeg SRT publisher and a gosrt
// player are listed by getAllSession (typeid SRT::SrtSession, the SRT
// port, the peers' addresses) beside the TCP sessions; getMediaList's
// originSock names the publisher's session; kick_session ends the player's
// connection and then the publisher's stream, and each leaves the list.
func TestSRTSessionsAreListedAndKicked(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	srv, logs := start(t)
	pushSRT(t, srv, testmedia.H264AAC, srtURL(srv.Addr("srt"), "live/s", "publish"), "live/s")
	player, err := dialSRT(t, srv.Addr("srt"), "#!::r=live/s,m=request", "")
	if err != nil {
		t.Fatal(err)
	}
	defer player.Close()
	_, srtPort := splitAddr(t, srv.Addr("srt"))
	_, playerPort := splitAddr(t, player.LocalAddr().String())
	var sessions []map[string]any
	testutil.WaitFor(t, 5*time.Second, "getAllSession to list the SRT publisher and player", func() bool {
		sessions = list(api(t, srv, "getAllSession", "local_port", strconv.Itoa(srtPort)))
		return len(sessions) == 2
	})
	var playerID, pubID string
	for _, s := range sessions {
		if s["typeid"] != "SRT::SrtSession" || s["peer_ip"] != "127.0.0.1" || s["local_port"] != float64(srtPort) || s["id"] == "" {
			t.Errorf("getAllSession entry: %v; want typeid SRT::SrtSession, peer 127.0.0.1, local_port %d", s, srtPort)
		}
		if s["peer_port"] == float64(playerPort) {
			playerID = s["id"].(string)
		} else {
			pubID = s["id"].(string)
		}
	}
	if playerID == "" || pubID == "" {
		t.Fatalf("getAllSession does not list the player (port %d) and the publisher apart: %v", playerPort, sessions)
	}
	media := list(api(t, srv, "getMediaList", "schema", "rtsp", "app", "live", "stream", "s"))
	if len(media) != 1 {
		t.Fatalf("getMediaList: %v", media)
	}
	if sock, _ := media[0]["originSock"].(map[string]any); sock == nil || sock["identifier"] != pubID || sock["local_port"] != float64(srtPort) {
		t.Errorf("originSock %v; want identifier %s (the publisher's session) on port %d", media[0]["originSock"], pubID, srtPort)
	}

	if r := api(t, srv, "kick_session", "id", playerID); r["code"] != 0.0 {
		t.Fatalf("kick_session of the player: %v", r)
	}
	ended := make(chan struct{})
	go func() { // gosrt has no read deadline: read until the connection ends
		defer close(ended)
		buf := make([]byte, 1500)
		for {
			if _, err := player.Read(buf); err != nil {
				return
			}
		}
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the kicked player's SRT connection is still up after 10 s")
	}
	testutil.WaitFor(t, 5*time.Second, "the kicked player to leave getAllSession", func() bool {
		return len(list(api(t, srv, "getAllSession", "local_port", strconv.Itoa(srtPort)))) == 1
	})
	if r := api(t, srv, "kick_session", "id", pubID); r["code"] != 0.0 {
		t.Fatalf("kick_session of the publisher: %v", r)
	}
	testutil.WaitFor(t, 5*time.Second, "the kicked publisher's stream to end", func() bool { return srv.Hub.Get("live/s") == nil })
	testutil.WaitFor(t, 5*time.Second, "the kicked publisher to leave getAllSession", func() bool {
		return len(list(api(t, srv, "getAllSession", "local_port", strconv.Itoa(srtPort)))) == 0
	})
	logs.WaitLine(t, "srt publish ended", "live/s")
}
