package fanout_test

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/fanout"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestUDPSenderAndTryRecvFrom: a datagram sent without waiting arrives
// whole, with its sender's address, over IPv4, IPv6, and from a dual-stack
// IPv6 socket to an IPv4 client; a receive with nothing waiting says so at
// once instead of waiting.
func TestUDPSenderAndTryRecvFrom(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the non-blocking UDP paths are Linux-only")
	}
	cases := []struct {
		name          string
		srcNet, srcIP string
		dstNet, dstIP string
		wantFrom      string
		skipIfNoIPv6  bool
	}{
		{"IPv4", "udp4", "127.0.0.1", "udp4", "127.0.0.1", "127.0.0.1", false},
		{"IPv6", "udp6", "::1", "udp6", "::1", "::1", true},
		{"dual-stack socket to an IPv4 client", "udp", "::", "udp4", "127.0.0.1", "127.0.0.1", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := net.ListenUDP(tc.srcNet, &net.UDPAddr{IP: net.ParseIP(tc.srcIP)})
			if err != nil {
				if tc.skipIfNoIPv6 {
					t.Skipf("no IPv6 here: %v", err)
				}
				t.Fatal(err)
			}
			defer src.Close()
			dst, err := net.ListenUDP(tc.dstNet, &net.UDPAddr{IP: net.ParseIP(tc.dstIP)})
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			buf := make([]byte, 1500)
			if _, _, err := fanout.TryRecvFrom(dst, buf); !errors.Is(err, fanout.ErrWouldBlock) {
				t.Fatalf("TryRecvFrom of an empty socket: %v, want ErrWouldBlock", err)
			}
			s := fanout.NewUDPSender(src, dst.LocalAddr().(*net.UDPAddr))
			if err := s.Send([]byte("hello")); err != nil {
				t.Fatalf("Send: %v", err)
			}
			var n int
			var from netip.Addr
			// Loopback delivers at once; a busy machine may take a moment.
			testutil.WaitFor(t, 5*time.Second, "the datagram", func() bool {
				n, from, err = fanout.TryRecvFrom(dst, buf)
				return !errors.Is(err, fanout.ErrWouldBlock)
			})
			if err != nil || string(buf[:n]) != "hello" || from.String() != tc.wantFrom {
				t.Fatalf("TryRecvFrom: %q from %v, %v; want \"hello\" from %s", buf[:n], from, err, tc.wantFrom)
			}
			dst.Close()
			if _, _, err := fanout.TryRecvFrom(dst, buf); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("TryRecvFrom of a closed socket: %v, want net.ErrClosed", err)
			}
		})
	}
}

// BenchmarkUDPSend: one RTP-sized datagram sent without waiting, as an
// event-driven RTSP/UDP player sends each packet; it must not allocate.
func BenchmarkUDPSend(b *testing.B) {
	src, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	s := fanout.NewUDPSender(src, dst.LocalAddr().(*net.UDPAddr))
	pkt := make([]byte, 1200)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		s.Send(pkt) // the receiver never reads: most are dropped at its buffer, as a slow client's would be
	}
}
