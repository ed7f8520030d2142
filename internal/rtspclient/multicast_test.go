package rtspclient

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
)

// multicastAnswers are SETUP answers as cameras send them; they also seed
// FuzzMulticastAnswer.
var multicastAnswers = []struct {
	name, transport string
	group           string // "" = an error is wanted
	ports           [2]int
	ttl             int
	source          string
	err             string
}{
	{name: "gst-rtsp-server", transport: `RTP/AVP;multicast;destination=239.255.42.7;ttl=1;port=46000-46001;mode="PLAY"`,
		group: "239.255.42.7", ports: [2]int{46000, 46001}, ttl: 1, source: "10.0.0.5"},
	{name: "source named", transport: "RTP/AVP;multicast;destination=232.1.2.3;source=10.0.0.9;port=5000-5001;ttl=16",
		group: "232.1.2.3", ports: [2]int{5000, 5001}, ttl: 16, source: "10.0.0.9"},
	{name: "one port", transport: "RTP/AVP;multicast;destination=239.0.0.1;port=6000",
		group: "239.0.0.1", ports: [2]int{6000, 6001}, ttl: 16, source: "10.0.0.5"},
	{name: "server_port instead of port, ttl 64", transport: "RTP/AVP;multicast;destination=239.0.0.1;server_port=7000-7001;ttl=64",
		group: "239.0.0.1", ports: [2]int{7000, 7001}, ttl: 64, source: "10.0.0.5"},
	{name: "unicast answer", transport: "RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001", err: "answered unicast"},
	{name: "no destination", transport: "RTP/AVP;multicast;port=5000-5001", err: "no destination="},
	{name: "unicast destination", transport: "RTP/AVP;multicast;destination=10.0.0.7;port=5000-5001", err: "not an IPv4 multicast group"},
	{name: "IPv6 group", transport: "RTP/AVP;multicast;destination=ff0e::1;port=5000-5001", err: "not an IPv4 multicast group"},
	{name: "no ports", transport: "RTP/AVP;multicast;destination=239.0.0.1", err: "no port="},
	{name: "port zero", transport: "RTP/AVP;multicast;destination=239.0.0.1;port=0-1", err: "out of range"},
}

func TestParseMulticastAnswer(t *testing.T) {
	srv := netip.MustParseAddr("10.0.0.5")
	for _, c := range multicastAnswers {
		t.Run(c.name, func(t *testing.T) {
			var rt headers.Transport
			if err := rt.Unmarshal(base.HeaderValue{c.transport}); err != nil {
				t.Fatalf("the header does not parse: %v", err)
			}
			a, err := parseMulticastAnswer(&rt, srv)
			if c.err != "" {
				if !errors.Is(err, ErrNotMulticast) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v; want ErrNotMulticast saying %q", err, c.err)
				}
				return
			}
			if err != nil || a.group.String() != c.group || a.ports != c.ports || a.ttl != c.ttl || a.source.String() != c.source {
				t.Fatalf("= %s %v ttl %d from %s, %v; want %s %v ttl %d from %s", a.group, a.ports, a.ttl, a.source, err, c.group, c.ports, c.ttl, c.source)
			}
		})
	}
}

// FuzzMulticastAnswer: any Transport a server sends either is refused
// with ErrNotMulticast or gives an IPv4 group and ports in range.
func FuzzMulticastAnswer(f *testing.F) {
	for _, c := range multicastAnswers {
		f.Add(c.transport)
	}
	srv := netip.MustParseAddr("10.0.0.5")
	f.Fuzz(func(t *testing.T, s string) {
		var rt headers.Transport
		if rt.Unmarshal(base.HeaderValue{s}) != nil {
			return
		}
		a, err := parseMulticastAnswer(&rt, srv)
		if err != nil {
			if !errors.Is(err, ErrNotMulticast) {
				t.Fatalf("%q: %v is not ErrNotMulticast", s, err)
			}
			return
		}
		if !a.group.Is4() || !a.group.IsMulticast() || a.ttl < 1 || a.ttl > 255 || a.ports[0] < 1 || a.ports[0] > 65535 || a.ports[1] < 1 || a.ports[1] > 65535 {
			t.Fatalf("%q: accepted %s %v", s, a.group, a.ports)
		}
	})
}

func TestSenderRTCPKeepsOnlyTheSender(t *testing.T) {
	sr := []byte{0x80, 200, 0, 6, 0, 0, 0x12, 0x34}
	rr := []byte{0x81, 201, 0, 7, 0, 0, 0x56, 0x78}
	bye := []byte{0x81, 203, 0, 1, 0, 0, 0x56, 0x78}
	var tr track
	if !tr.senderRTCP(sr) || tr.senderRTCP(rr) || tr.senderRTCP(bye) {
		t.Error("before RTP: only sender reports may pass")
	}
	tr.received.Store(1)
	tr.ssrc.Store(0x5678)
	if tr.senderRTCP(sr) || !tr.senderRTCP(bye) {
		t.Error("after RTP: the RTP sender's SSRC decides")
	}
	if tr.senderRTCP([]byte{0x80, 200}) {
		t.Error("a truncated packet passed")
	}
}

// BenchmarkMulticastFilter is what each packet read on a group costs
// beyond the UDP path: the source check, and for RTCP the sender's SSRC.
func BenchmarkMulticastFilter(b *testing.B) {
	var tr track
	tr.source = netip.MustParseAddr("10.0.0.5")
	tr.received.Store(1)
	tr.ssrc.Store(0x1234)
	from := netip.MustParseAddrPort("10.0.0.5:46000")
	sr := []byte{0x80, 200, 0, 6, 0, 0, 0x12, 0x34}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if tr.fromSource(from) && tr.senderRTCP(sr) {
			n++
		}
	}
	if n == 0 {
		b.Fatal("the camera's packet was dropped")
	}
}
