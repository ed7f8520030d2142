package rtsp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/rtsp"
)

// TestLiveSettings: SetKeepAlive changes the timeout announced to sessions
// set up afterwards, SetAuthBasic the challenge, and auth.SetUsers the
// users and realm, all while the server runs (hot reload).
func TestLiveSettings(t *testing.T) {
	ts := startServer(t, func(s *rtsp.Server, _ *hub.Options) {
		s.Auth = &auth.Checker{}
	})
	pub, err := ts.hub.Publish("live/l", hub.Origin{Proto: "test"}, hub.KindRTP,
		[]*hub.Track{{Format: &format.H264{PayloadTyp: 96, PacketizationMode: 1}, Video: true}}, []byte(simpleSDP))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	setup := func() string {
		return rawRequest(t, ts.addr, []byte("SETUP "+ts.url("live/l")+"/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"))
	}
	if got := setup(); !strings.Contains(got, ";timeout=5") {
		t.Fatalf("the start-up timeout (5 s in these tests): %q", got)
	}
	ts.srv.SetKeepAlive(40 * time.Second)
	if got := setup(); !strings.Contains(got, ";timeout=40") {
		t.Errorf("after SetKeepAlive(40s): %q", got)
	}

	ts.srv.Auth.SetUsers(nil, []config.User{{Name: "v", Password: "p"}}, "live-realm")
	describe := rawRequest(t, ts.addr, []byte("DESCRIBE "+ts.url("live/l")+" RTSP/1.0\r\nCSeq: 1\r\n\r\n"))
	if !strings.HasPrefix(describe, "RTSP/1.0 401") || !strings.Contains(describe, `realm="live-realm"`) || strings.Contains(describe, "Basic") {
		t.Errorf("after SetUsers: %q", describe)
	}
	ts.srv.SetAuthBasic(true)
	describe = rawRequest(t, ts.addr, []byte("DESCRIBE "+ts.url("live/l")+" RTSP/1.0\r\nCSeq: 1\r\n\r\n"))
	if !strings.Contains(describe, "Basic") {
		t.Errorf("after SetAuthBasic(true): %q", describe)
	}
}
