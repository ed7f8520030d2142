package rtmp

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/flv/amf0"
)

// connected dials the test server and performs handshake and connect.
func connected(t *testing.T, addr string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Connect("live", "rtmp://"+addr+"/live"); err != nil {
		t.Fatal(err)
	}
	c.Conn().SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// closedByServer reads until the server closes the connection.
func closedByServer(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, nc)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server did not close the connection")
	}
}

func TestMalformedInputClosesOnlyThatConnection(t *testing.T) {
	ts := startServer(t, nil)
	// A healthy connection that must survive every bad one.
	healthy := connected(t, ts.addr)

	cases := []struct {
		name    string
		send    func(t *testing.T) net.Conn
		wantLog string
	}{
		{"bad handshake version", func(t *testing.T) net.Conn {
			nc, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			nc.Write(append([]byte("GET / HTTP/1.1\r\n"), make([]byte, 1600)...))
			return nc
		}, "handshake failed"},
		{"chunk size 0", func(t *testing.T) net.Conn {
			c := connected(t, ts.addr)
			c.SetChunkSizeRaw(0)
			return c.Conn()
		}, "invalid chunk size"},
		{"chunk size 2^31", func(t *testing.T) net.Conn {
			c := connected(t, ts.addr)
			c.SetChunkSizeRaw(1 << 31)
			return c.Conn()
		}, "peer asked for 2147483648"},
		{"AMF garbage command", func(t *testing.T) net.Conn {
			c := connected(t, ts.addr)
			c.WriteMessage(csidCommand, msgCommandAMF0, 0, 0, []byte{0x02, 0xff, 0xff, 'x', 0x42, 0x42})
			return c.Conn()
		}, "malformed command"},
		{"command name not a string", func(t *testing.T) net.Conn {
			c := connected(t, ts.addr)
			c.WriteMessage(csidCommand, msgCommandAMF0, 0, 0, amf0.Encode(1.0, 2.0))
			return c.Conn()
		}, "not a command name"},
		{"huge message length", func(t *testing.T) net.Conn {
			c := connected(t, ts.addr)
			// A type 0 header announcing 0xFFFFFF bytes (the field's limit; a
			// "100 MB" claim is cut to this) and then nothing.
			hdr := []byte{csidVideo, 0, 0, 0, 0xff, 0xff, 0xff, msgVideo}
			hdr = binary.LittleEndian.AppendUint32(hdr, 1)
			c.Conn().Write(append(hdr, 0x17, 1))
			return c.Conn()
		}, "message larger than the server accepts"},
		{"continuation without header", func(t *testing.T) net.Conn {
			c := connected(t, ts.addr)
			c.Conn().Write([]byte{0xc0 | 40, 1, 2, 3})
			return c.Conn()
		}, "has no header yet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc := tc.send(t)
			defer nc.Close()
			closedByServer(t, nc)
			waitFor(t, "the log line", 5*time.Second, func() bool { return strings.Contains(ts.logs.String(), tc.wantLog) })
		})
	}
	// The healthy connection still works.
	code, err := healthy.Publish("ok")
	if err != nil || code != "NetStream.Publish.Start" {
		t.Fatalf("healthy connection publish: %q, %v", code, err)
	}
}

// TestGarbageFromManyPeersWarnsOnce: a scan (connection after connection
// of non-RTMP bytes) gets one warning per the Warner's rate, not one per
// peer; each connection's closed line (info) keeps its error.
func TestGarbageFromManyPeersWarnsOnce(t *testing.T) {
	ts := startServer(t, nil)
	for range 5 {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(append([]byte("GET / HTTP/1.1\r\n"), make([]byte, 1600)...))
		closedByServer(t, nc)
		nc.Close()
	}
	waitFor(t, "5 closed lines", 5*time.Second, func() bool {
		return strings.Count(ts.logs.String(), "level=INFO msg=\"rtmp connection closed\"") == 5
	})
	if n := strings.Count(ts.logs.String(), "level=WARN msg=\"RTMP connection from 127.0.0.1 ended before it published or played"); n != 1 {
		t.Errorf("%d warnings for 5 garbage connections within 10 s, want 1:\n%s", n, ts.logs.String())
	}
}

func TestSecondPublisherGetsBadName(t *testing.T) {
	ts := startServer(t, nil)
	first := connected(t, ts.addr)
	if code, err := first.Publish("s1"); err != nil || code != "NetStream.Publish.Start" {
		t.Fatalf("first publish: %q %v", code, err)
	}
	sendH264AAC(t, first, 0)
	waitFor(t, "live/s1 to be live", 5*time.Second, func() bool { return ts.hub.Get("live/s1") != nil })

	// Refused at the publish command itself, before any media.
	second := connected(t, ts.addr)
	if code, err := second.Publish("s1"); err != nil || code != "NetStream.Publish.BadName" {
		t.Fatalf("second publisher got %q, %v; want NetStream.Publish.BadName", code, err)
	}
	closedByServer(t, second.Conn())
	if !strings.Contains(ts.logs.String(), "rtmp publish refused: stream live/s1 is already published by rtmp") {
		t.Errorf("log lacks the refusal:\n%s", ts.logs.String())
	}
	if ts.hub.Get("live/s1").Origin.ID == "" {
		t.Error("the first publisher lost the stream")
	}
}

func TestAuthFromURLQuery(t *testing.T) {
	checker := &auth.Checker{
		Publish: []config.User{{Name: "pub", Password: "pw1"}},
		Play:    []config.User{{Name: "viewer", Password: "pw2"}},
	}
	ts := startServer(t, checker)
	c := connected(t, ts.addr)
	if code, _ := c.Publish("s1"); code != "NetStream.Publish.Unauthorized" {
		t.Errorf("publish without credentials: %q, want NetStream.Publish.Unauthorized", code)
	}
	c = connected(t, ts.addr)
	if code, _ := c.Publish("s1?user=pub&pass=wrong"); code != "NetStream.Publish.Unauthorized" {
		t.Errorf("publish with a wrong password: %q", code)
	}
	pub := connected(t, ts.addr)
	if code, err := pub.Publish("s1?user=pub&pass=pw1"); code != "NetStream.Publish.Start" {
		t.Fatalf("publish with credentials: %q %v", code, err)
	}
	sendH264AAC(t, pub, 0)
	waitFor(t, "live/s1 to be live", 5*time.Second, func() bool { return ts.hub.Get("live/s1") != nil })

	c = connected(t, ts.addr)
	if code, _ := c.Play("s1"); code != "NetStream.Play.Unauthorized" {
		t.Errorf("play without credentials: %q", code)
	}
	c = connected(t, ts.addr)
	if code, _ := c.Play("s1?user=viewer&pass=pw2"); code != "NetStream.Play.Start" {
		t.Errorf("play with credentials: %q", code)
	}
	if !strings.Contains(ts.logs.String(), "rtmp publish refused: bad or missing credentials") {
		t.Error("no log line for the refused publish")
	}
}

func TestConnectReplyNamesBerth(t *testing.T) {
	ts := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, ts.addr, true) // digest handshake: Dial checks S2
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect("live", "rtmp://x/live"); err != nil {
		t.Fatal(err)
	}
	if got := c.Props.String("fmsVer"); got != "Berth/test" {
		t.Errorf("fmsVer = %q", got)
	}
	if got := c.Info.String("berth_instance"); got != "test-instance" {
		t.Errorf("berth_instance = %q", got)
	}
}

func TestPlayUnknownStreamIsNotFound(t *testing.T) {
	ts := startServer(t, nil)
	c := connected(t, ts.addr)
	if code, _ := c.Play("nope"); code != "NetStream.Play.StreamNotFound" {
		t.Errorf("play of a missing stream: %q", code)
	}
}
