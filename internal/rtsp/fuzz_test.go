package rtsp

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/berthmedia/berth/internal/hub"
)

// scriptConn replays client bytes and swallows the server's replies: a unit
// harness for the connection state machine (end-to-end tests use sockets).
type scriptConn struct {
	r   io.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *scriptConn) Close() error                { return nil }
func (c *scriptConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8554}
}
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }
func (c *scriptConn) replies() string                  { return c.out.String() }
func newScript(s string) *scriptConn                   { return &scriptConn{r: strings.NewReader(s)} }

const publishSDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:streamid=0\r\n"

var publishScript = "ANNOUNCE rtsp://h/live/f RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(publishSDP)) + "\r\n\r\n" +
	publishSDP +
	"SETUP rtsp://h/live/f/streamid=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n\r\n" +
	"RECORD rtsp://h/live/f RTSP/1.0\r\nCSeq: 3\r\n\r\n" +
	"$\x00\x00\x0e\x80\x60\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x65\x88" +
	"$\x00\x00\x03abc" +
	"TEARDOWN rtsp://h/live/f RTSP/1.0\r\nCSeq: 4\r\n\r\n"

func runScript(t testing.TB, h *hub.Hub, script string) string {
	srv := &Server{Hub: h}
	srv.init()
	sc := newScript(script)
	c := newConn(srv, sc, 1)
	c.readLoop()
	c.sess.teardown(c)
	srv.Shutdown(context.Background())
	return sc.replies()
}

func TestScriptedPublish(t *testing.T) {
	h := hub.New(hub.Options{})
	replies := runScript(t, h, publishScript)
	if n := strings.Count(replies, "RTSP/1.0 200 OK"); n != 4 {
		t.Errorf("%d OK replies, want 4:\n%s", n, replies)
	}
	if !strings.Contains(replies, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record") {
		t.Errorf("SETUP reply lacks the transport:\n%s", replies)
	}
	if h.Get("live/f") != nil {
		t.Errorf("stream still registered after TEARDOWN")
	}
}

func TestPlayTrack(t *testing.T) {
	cases := []struct {
		url   string
		path  string
		track int
		ok    bool
	}{
		{"rtsp://h/live/s/trackID=1", "live/s", 1, true},
		{"rtsp://h/live/s/streamid=0", "live/s", 0, true},
		{"rtsp://h/app/live/s/track2", "app/live/s", 2, true},
		{"rtsp://h/live/s", "", 0, false},
		{"rtsp://h/live/s/trackID=x", "", 0, false},
		{"rtsp://h/live/s/trackID=-1", "", 0, false},
	}
	for _, c := range cases {
		u, _ := base.ParseURL(c.url)
		p, n, ok := playTrack(&base.Request{URL: u})
		if p != c.path || n != c.track || ok != c.ok {
			t.Errorf("%s: got %q %d %v, want %q %d %v", c.url, p, n, ok, c.path, c.track, c.ok)
		}
	}
}

func TestRewriteControls(t *testing.T) {
	in := "v=0\r\ns=x\r\na=control:*\r\nm=video 0 RTP/AVP 96\r\na=control:rtsp://cam/ch1/video\r\nm=audio 0 RTP/AVP 97\na=control:streamid=1\n"
	want := "v=0\r\ns=x\r\nm=video 0 RTP/AVP 96\r\na=control:trackID=0\r\nm=audio 0 RTP/AVP 97\r\na=control:trackID=1\r\n"
	if got := string(rewriteControls([]byte(in))); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// FuzzConn feeds arbitrary client bytes through the whole request and
// interleaved-frame path: no input may panic or hang the connection.
func FuzzConn(f *testing.F) {
	for _, s := range []string{
		publishScript,
		"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
		"DESCRIBE rtsp://h/live/f RTSP/1.0\r\nCSeq: 1\r\n\r\nSETUP rtsp://h/live/f/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\nPLAY rtsp://h/live/f RTSP/1.0\r\nCSeq: 3\r\n\r\n",
		"SETUP rtsp://h/live/f/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n",
		"\x00\x01garbage\xff\xfe NOT RTSP\r\n\r\n",
		"OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: abc\r\n\r\n",
		"ANNOUNCE rtsp://h/live/bad RTSP/1.0\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 15\r\n\r\nthis is not sdp",
		"$\x01\xff\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h := hub.New(hub.Options{RingSize: 64})
		// a live stream so DESCRIBE/SETUP/PLAY paths run too
		pub, _ := h.Publish("live/f", hub.Origin{Proto: "test"}, hub.KindRTP, nil, nil)
		defer pub.Close()
		done := make(chan struct{})
		go func() { runScript(t, h, string(data)); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("connection hung on %q:\n%s", data, buf[:n])
		}
	})
}

// FuzzSDP: whatever an ANNOUNCE carries, parsing and the control rewrite
// never panic, and a parsed SDP stays parseable with the same media count.
func FuzzSDP(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:streamid=0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\na=fmtp:97 streamtype=5; profile-level-id=15; mode=AAC-hbr; config=1190; sizeLength=13; indexLength=3; indexDeltaLength=3\r\na=control:streamid=1\r\n"))
	f.Add([]byte("this is not sdp"))
	f.Add([]byte("v=0\r\nm=audio 0 RTP/AVP 8\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		desc, err := parseSDP(data)
		out := rewriteControls(data)
		if err != nil {
			return
		}
		again, err := parseSDP(out)
		if err != nil {
			t.Fatalf("rewritten SDP does not parse: %v\n%q", err, out)
		}
		if len(again.Medias) != len(desc.Medias) {
			t.Fatalf("media count changed %d -> %d", len(desc.Medias), len(again.Medias))
		}
	})
}

// FuzzContentLength: the head scan that enforces [rtsp] max_body_bytes
// never panics and never reports a negative length.
func FuzzContentLength(f *testing.F) {
	for _, s := range []string{
		"ANNOUNCE rtsp://h/a RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 12\r\n\r\n",
		"OPTIONS * RTSP/1.0\r\ncontent-length:   7  \r\n\r\n",
		"X\r\nContent-Length: -5\r\n\r\n",
		"X\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		"Content-Length",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		if n := contentLength(head); n < 0 {
			t.Fatalf("contentLength(%q) = %d", head, n)
		}
	})
}
