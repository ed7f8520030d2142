package rtpproxy

import (
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testutil"
)

// garbageRTP is a well-formed RTP packet of ssrc whose payload is no
// MPEG-TS or PS: what a sender of random SSRCs sends.
func garbageRTP(ssrc uint32, seq uint16) []byte {
	p := []byte{0x80, 96, byte(seq >> 8), byte(seq), 0, 0, 0, 0}
	p = binary.BigEndian.AppendUint32(p, ssrc)
	return append(p, []byte(strings.Repeat("not a stream ", 20))...)
}

// TestGarbageSSRCsAreCappedPerPortAndTimedOut: a sender of new SSRCs gets
// max_ssrc_per_port streams on the port and no more (logged with the key),
// and SSRCs that never become a stream end after unready_timeout_sec, which
// frees their places.
func TestGarbageSSRCsAreCappedPerPortAndTimedOut(t *testing.T) {
	e := newEnv(t, 30, func(s *Server) { s.MaxSSRCPerPort = 3; s.UnreadyTimeout = 500 * time.Millisecond })
	var pkts [][]byte
	for i := range 10 {
		pkts = append(pkts, garbageRTP(0x1000+uint32(i), uint16(i)))
	}
	sendUDP(t, e.udp, pkts)
	testutil.WaitFor(t, 5*time.Second, "the refusal's log line", func() bool {
		return strings.Contains(e.logs.String(), "already has [rtp_proxy] max_ssrc_per_port=3 streams")
	})
	if n := e.srv.Stats().Streams; n > 3 {
		t.Fatalf("%d streams on one port with max_ssrc_per_port=3", n)
	}
	if !strings.Contains(e.logs.String(), "Raise [rtp_proxy] max_ssrc_per_port") {
		t.Errorf("the refusal does not name the key to raise:\n%s", e.logs.String())
	}
	// The garbage never becomes a stream: it ends after unready_timeout_sec,
	// not after timeoutSec (30 s here), even while it keeps sending.
	testutil.WaitFor(t, 5*time.Second, "the unready streams to end", func() bool {
		sendUDP(t, e.udp, pkts[:1])
		return strings.Count(e.logs.String(), reasonUnready) >= 3
	})
	if !strings.Contains(e.logs.String(), "Raise [rtp_proxy] unready_timeout_sec") {
		t.Errorf("the unready drop does not name the key to raise:\n%s", e.logs.String())
	}
	// The port takes a real stream again.
	_, _, units := psCases[1].build(t)
	sendUDP(t, e.udp, rtpPackets(units[:100], 0x77770001, 96, 1400))
	e.waitStream(t, "rtp/77770001")
}

// TestSSRCCapIsPerPort: a port opened for one stream is not affected by
// the shared port being full.
func TestSSRCCapIsPerPort(t *testing.T) {
	e := newEnv(t, 30, func(s *Server) { s.MaxSSRCPerPort = 1 })
	sendUDP(t, e.udp, [][]byte{garbageRTP(0x2001, 1), garbageRTP(0x2002, 2)})
	testutil.WaitFor(t, 5*time.Second, "the refusal's log line", func() bool {
		return strings.Contains(e.logs.String(), "max_ssrc_per_port=1")
	})
	port, err := e.srv.OpenPort("cam1", 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _, units := psCases[1].build(t)
	sendUDP(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), rtpPackets(units[:100], 0x9, 96, 1400))
	e.waitStream(t, "rtp/cam1")
}
