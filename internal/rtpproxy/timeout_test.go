package rtpproxy

import (
	"net"
	"strconv"
	"testing"
	"time"
)

// TestSilentOpenedPortCallsOnTimeout: the stream of a port opened with Open
// that goes silent ends, and OnTimeout hears which port it was (the web
// hook on_rtp_server_timeout); a stream on the shared port does not call it.
func TestSilentOpenedPortCallsOnTimeout(t *testing.T) {
	t.Parallel()
	got := make(chan PortInfo, 4)
	e := newEnv(t, 1, func(s *Server) { s.OnTimeout = func(p PortInfo) { got <- p } })
	port, err := e.srv.OpenPort("cam9", 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _, units := psCases[1].build(t)
	sendUDP(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), rtpPackets(units[:100], 0x9, 96, 1400))
	sendUDP(t, e.udp, rtpPackets(units[:100], 0x33330009, 96, 1400))
	e.waitStream(t, "rtp/cam9")
	select {
	case p := <-got:
		if p.Port != port || p.StreamID != "cam9" || p.TCPMode != 0 {
			t.Errorf("OnTimeout(%+v), want port %d, stream cam9", p, port)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnTimeout was not called")
	}
	// The shared port's stream timed out in the same janitor pass or the next.
	deadline := time.After(3 * time.Second)
	for e.hub.Get("rtp/33330009") != nil {
		select {
		case <-deadline:
			t.Fatal("the shared port's stream did not time out")
		case <-time.After(10 * time.Millisecond):
		}
	}
	select {
	case p := <-got:
		t.Errorf("OnTimeout called for %+v, a stream of the shared port", p)
	default:
	}
}
