package rtsp

import (
	"strings"
	"testing"
)

// TestHeadStringRedactsCredentials: a trace line keeps the head of a dump,
// on one line, and never the credentials of an Authorization header.
func TestHeadStringRedactsCredentials(t *testing.T) {
	for _, c := range []struct{ name, in, want, secret string }{
		{"plain", "OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: 1\r\n\r\n", "OPTIONS rtsp://h/ RTSP/1.0 | CSeq: 1", ""},
		{"body cut", "RTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\nv=0\r\n", "RTSP/1.0 200 OK | CSeq: 2", ""},
		{"basic", "DESCRIBE rtsp://h/s RTSP/1.0\r\nAuthorization: Basic dXNlcjpzZWNyZXQ=\r\nCSeq: 3\r\n\r\n",
			"DESCRIBE rtsp://h/s RTSP/1.0 | Authorization: Basic (redacted) | CSeq: 3", "dXNlcjpzZWNyZXQ="},
		{"digest, any case", "PLAY rtsp://h/s RTSP/1.0\r\nauthorization: Digest username=\"u\", response=\"abc123\"\r\n\r\n",
			"PLAY rtsp://h/s RTSP/1.0 | authorization: Digest (redacted)", "abc123"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := headString(c.in)
			if got != c.want {
				t.Errorf("headString = %q; want %q", got, c.want)
			}
			if c.secret != "" && strings.Contains(got, c.secret) {
				t.Errorf("the credentials %q are in the trace line %q", c.secret, got)
			}
		})
	}
}
