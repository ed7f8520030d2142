package rtsp

import (
	"bufio"
	"strings"
	"testing"
)

func TestMethodAhead(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"OPTIONS rtsp://h/ RTSP/1.0\r\n", true},
		{"GET_PARAMETER rtsp://h/ RTSP/1.0\r\n", true},
		{"\r\nOPTIONS * RTSP/1.0\r\n", true},
		{"OPTI", true}, // not all here yet: a slow client, left to the time limit
		{"", true},
		{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", false}, // a TLS ClientHello
		{"\x00\x01garbage", false},
		{" OPTIONS * RTSP/1.0\r\n", false},
		{strings.Repeat("A", 65), false},
		{"GET/ HTTP/1.1", false},
	} {
		br := bufio.NewReader(strings.NewReader(tc.in))
		br.Peek(len(tc.in)) // fill the buffer as a read from the socket would
		if got := methodAhead(br); got != tc.want {
			t.Errorf("methodAhead(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
