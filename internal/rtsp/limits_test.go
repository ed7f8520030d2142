package rtsp_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/rtsp"
)

// Limits against abuse (docs/reliability.md#limits-against-abuse): each
// holds over a real socket and its refusal is logged with the key to raise.

func TestSlowRequestIsAnswered408AfterTheHeaderTimeout(t *testing.T) {
	ts := startServer(t, func(s *rtsp.Server, _ *hub.Options) { s.HeaderTimeout = 300 * time.Millisecond })
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	// A slowloris client: one byte every 50 ms of a request it never ends.
	go func() {
		req := "OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: 1\r\nX-Slow: " + strings.Repeat("a", 1000)
		for i := range len(req) {
			if _, err := c.Write([]byte{req[i]}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // the client's pace, not a wait for the server
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to a slow request: %v", err)
	}
	if !strings.HasPrefix(status, "RTSP/1.0 408") {
		t.Fatalf("status %q, want 408", status)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the slow client was cut off after %s with a 300 ms header timeout", d)
	}
	ts.log.WaitLine(t, "did not arrive within [rtsp] header_timeout_sec", "Raise [rtsp] header_timeout_sec")
}

func TestRequestBodyOverTheCapIsAnswered413(t *testing.T) {
	ts := startServer(t, func(s *rtsp.Server, _ *hub.Options) { s.MaxBodyBytes = 100 })
	sdp := simpleSDP + strings.Repeat("a=x-pad:0123456789\r\n", 10)
	if got := rawRequest(t, ts.addr, announce(ts.url("live/big"), sdp, 1)); !strings.HasPrefix(got, "RTSP/1.0 413") {
		t.Fatalf("ANNOUNCE with a %d-byte SDP: %q, want 413", len(sdp), firstLine(got))
	}
	ts.log.WaitLine(t, "-byte body, over [rtsp] max_body_bytes=100", "Raise [rtsp] max_body_bytes")
	// A body within the cap still gets through the limit (and to the SDP parser).
	if got := rawRequest(t, ts.addr, announce(ts.url("live/ok"), "v=0\r\n", 2)); strings.HasPrefix(got, "RTSP/1.0 413") {
		t.Fatalf("a 5-byte body was refused: %q", firstLine(got))
	}
}

func TestLargeInterleavedFrameFromAPlayerClosesTheConnection(t *testing.T) {
	ts := startServer(t, func(s *rtsp.Server, _ *hub.Options) { s.MaxInterleavedBytes = 1024 })
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame := append([]byte{'$', 1, 0x10, 0x00}, make([]byte, 4096)...) // 4096 bytes on channel 1 with no session
	go c.Write(frame)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("the connection was not closed: %v", err)
	}
	ts.log.WaitLine(t, "4096-byte interleaved frame without publishing", "Raise [rtsp] max_interleaved_bytes")
}
