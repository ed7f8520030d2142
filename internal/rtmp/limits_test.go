package rtmp

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"
)

// Limits against abuse (docs/reliability.md#limits-against-abuse) over a
// real socket: the limit holds and its line names the key to raise.

func TestMessageOverMaxMessageBytesClosesTheConnection(t *testing.T) {
	ts := startServer(t, nil, func(s *Server) { s.MaxMessageBytes = 64 << 10 })
	healthy := connected(t, ts.addr)
	c := connected(t, ts.addr)
	// A type 0 header announcing a 100,000-byte video message.
	hdr := []byte{csidVideo, 0, 0, 0, 0x01, 0x86, 0xa0, msgVideo}
	hdr = binary.LittleEndian.AppendUint32(hdr, 1)
	c.Conn().Write(append(hdr, 0x17, 1))
	closedByServer(t, c.Conn())
	waitFor(t, "the limit's log line", 5*time.Second, func() bool {
		return strings.Contains(ts.logs.String(), "more than [rtmp] max_message_bytes=65536 allows") &&
			strings.Contains(ts.logs.String(), "Raise [rtmp] max_message_bytes")
	})
	// A message within the cap still goes through on another connection.
	if err := healthy.WriteMessage(csidVideo, msgVideo, 1, 0, make([]byte, 60<<10)); err != nil {
		t.Fatal(err)
	}
	if code, err := healthy.Publish("ok"); err != nil || code != "NetStream.Publish.Start" {
		t.Fatalf("publish on the healthy connection: %q, %v", code, err)
	}
}

func TestSlowHandshakeIsCutOffAtHandshakeSecond(t *testing.T) {
	ts := startServer(t, nil, func(s *Server) { s.HandshakeTimeout = 300 * time.Millisecond })
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	go func() { // C0 then C1 a byte every 50 ms: a slowloris handshake
		for i := 0; i < 1537; i++ {
			b := byte(0)
			if i == 0 {
				b = 3
			}
			if _, err := nc.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // the client's pace, not a wait for the server
		}
	}()
	closedByServer(t, nc)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a slow handshake was kept %s with a 300 ms handshakeSecond", d)
	}
	waitFor(t, "the limit's log line", 5*time.Second, func() bool {
		return strings.Contains(ts.logs.String(), "did not finish the handshake within [rtmp] handshakeSecond")
	})
}
