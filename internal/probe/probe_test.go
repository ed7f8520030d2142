package probe

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeRTSP answers each request with reply(method, headers).
func fakeRTSP(t *testing.T, reply func(method string, h map[string]string) string) string {
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
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					method, _, _ := strings.Cut(line, " ")
					h := map[string]string{}
					for {
						l, err := br.ReadString('\n')
						if err != nil {
							return
						}
						l = strings.TrimSpace(l)
						if l == "" {
							break
						}
						k, v, _ := strings.Cut(l, ":")
						h[k] = strings.TrimSpace(v)
					}
					c.Write([]byte(reply(method, h)))
				}
			}()
		}
	}()
	return l.Addr().String()
}

const sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\n"

func rtspReply(code int, status string, extra string, body string) string {
	return fmt.Sprintf("RTSP/1.0 %d %s\r\nCSeq: 1\r\nServer: WMServer/9.1.1.5000\r\n%sContent-Length: %d\r\n\r\n%s", code, status, extra, len(body), body)
}

func TestProbeAgainstFakeServers(t *testing.T) {
	ok := fakeRTSP(t, func(m string, _ map[string]string) string {
		if m == "DESCRIBE" {
			return rtspReply(200, "OK", "Content-Type: application/sdp\r\n", sdp)
		}
		return rtspReply(200, "OK", "", "")
	})
	missing := fakeRTSP(t, func(m string, _ map[string]string) string {
		if m == "DESCRIBE" {
			return rtspReply(404, "Not Found", "", "")
		}
		return rtspReply(200, "OK", "", "")
	})
	locked := fakeRTSP(t, func(m string, h map[string]string) string {
		if m == "DESCRIBE" && !strings.Contains(h["Authorization"], `username="u"`) {
			return rtspReply(401, "Unauthorized", "WWW-Authenticate: Digest realm=\"r\", nonce=\"abc\"\r\n", "")
		}
		if m == "DESCRIBE" {
			return rtspReply(200, "OK", "", sdp)
		}
		return rtspReply(200, "OK", "", "")
	})
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	http := fakeRTSP(t, func(string, map[string]string) string {
		return "HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22\r\nContent-Length: 0\r\n\r\n"
	})

	cases := []struct {
		name, url string
		code      int
		want      []string
	}{
		{"playable", "rtsp://" + ok + "/live/s", 0, []string{`RTSP server "WMServer/9.1.1.5000" (Windows Media Services (wmpnetwk))`, "2 track(s): video H264, audio MPEG4-GENERIC"}},
		{"404", "rtsp://" + missing + "/live/s", 1, []string{"FAIL: DESCRIBE RTSP/1.0 404 Not Found: no stream at /live/s", "fix:      publish first"}},
		{"401 without credentials", "rtsp://" + locked + "/live/s", 1, []string{"the server wants a user and password", "rtsp://user:password@"}},
		{"401 with credentials", "rtsp://u:secret@" + locked + "/live/s", 0, []string{"the stream exists"}},
		{"silent", "rtsp://" + silent.Addr().String() + "/x", 1, []string{"FAIL: not an RTSP server: no reply to OPTIONS within 300ms"}},
		{"http on rtsp port", "rtsp://" + http + "/x", 1, []string{`FAIL: not an RTSP server: HTTP/1.1 400 Bad Request from "nginx/1.22" (nginx)`}},
		{"rtmp on rtsp server", "rtmp://" + ok + "/live/s", 1, []string{`FAIL: not an RTMP server: RTSP/1.0 200 OK from "WMServer/9.1.1.5000"`}},
		{"bad scheme", "ftp://x/y", 2, []string{`scheme "ftp"`}},
		{"unresolvable", "rtsp://no-such-host.invalid/x", 1, []string{`FAIL: cannot resolve "no-such-host.invalid"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			code := Run(context.Background(), c.url, &out, Options{StepTimeout: 300 * time.Millisecond})
			if code != c.code {
				t.Errorf("exit %d, want %d", code, c.code)
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "secret") {
				t.Errorf("password printed:\n%s", out.String())
			}
		})
	}
}

func TestSummarizeSDP(t *testing.T) {
	cases := []struct{ in, want string }{
		{sdp, "the stream exists: 2 track(s): video H264, audio MPEG4-GENERIC"},
		{"v=0\r\nm=application 0 RTP/AVP 107\r\n", "the stream exists: 1 track(s): application"},
		{"", "the stream exists (no media described)"},
	}
	for _, c := range cases {
		if got := summarizeSDP([]byte(c.in)); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestSplitRTMPPath(t *testing.T) {
	cases := []struct{ in, app, stream string }{
		{"/live/stream", "live", "stream"},
		{"/live/a/b", "live", "a/b"},
		{"/live", "live", ""},
	}
	for _, c := range cases {
		if a, s := splitRTMPPath(c.in); a != c.app || s != c.stream {
			t.Errorf("%q -> %q %q", c.in, a, s)
		}
	}
}
