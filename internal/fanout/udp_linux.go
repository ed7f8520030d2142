//go:build linux

package fanout

import (
	"errors"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrWouldBlock is what UDPSender.Send and TryRecvFrom report when the
// socket cannot take or give a datagram without waiting.
var ErrWouldBlock = errors.New("fanout: the socket would block")

// UDPSender sends datagrams from one socket to one address and never
// waits: what an event-driven RTSP/UDP player sends with on a sender
// goroutine, which must not block on one player's full socket buffer. A
// datagram the buffer cannot take is dropped, as the network would drop
// it. One goroutine sends at a time (the player's turn).
type UDPSender struct {
	pc  *net.UDPConn
	to  *net.UDPAddr
	rc  syscall.RawConn
	sa  unix.Sockaddr // to, in the socket's own address family
	buf []byte        // the datagram of the send under way
	err error
	fn  func(fd uintptr) bool // s.send, bound once: a method value per send would allocate
}

// NewUDPSender makes a sender from pc to to.
func NewUDPSender(pc *net.UDPConn, to *net.UDPAddr) *UDPSender {
	s := &UDPSender{pc: pc, to: to}
	rc, err := pc.SyscallConn()
	if err != nil {
		return s // Send falls back to pc's own write
	}
	// The destination in the socket's family: an IPv6 socket sends to an
	// IPv4 client by its mapped address.
	var local unix.Sockaddr
	rc.Control(func(fd uintptr) { local, _ = unix.Getsockname(int(fd)) })
	ip, ok := netip.AddrFromSlice(to.IP)
	if !ok {
		return s
	}
	switch local.(type) {
	case *unix.SockaddrInet4:
		if !ip.Unmap().Is4() {
			return s
		}
		s.sa = &unix.SockaddrInet4{Port: to.Port, Addr: ip.Unmap().As4()}
	case *unix.SockaddrInet6:
		s.sa = &unix.SockaddrInet6{Port: to.Port, Addr: ip.As16()}
	default:
		return s
	}
	s.rc = rc
	s.fn = s.send
	return s
}

// Send sends b: nil when it went, ErrWouldBlock when the socket buffer was
// full and b was dropped, or the socket's error.
func (s *UDPSender) Send(b []byte) error {
	if s.rc == nil {
		_, err := s.pc.WriteToUDP(b, s.to)
		return err
	}
	s.buf, s.err = b, nil
	if err := s.rc.Write(s.fn); err != nil {
		s.buf = nil
		return err
	}
	s.buf = nil
	return s.err
}

func (s *UDPSender) send(fd uintptr) bool {
	err := unix.Sendto(int(fd), s.buf, unix.MSG_DONTWAIT, s.sa)
	if err == unix.EAGAIN {
		err = ErrWouldBlock
	}
	s.err = err
	return true // never wait: a full buffer drops the datagram
}

// TryRecvFrom reads one datagram waiting on pc into buf without waiting:
// ErrWouldBlock when none waits, the socket's error when it failed or was
// closed. A datagram longer than buf is cut to it.
func TryRecvFrom(pc *net.UDPConn, buf []byte) (int, netip.Addr, error) {
	rc, err := pc.SyscallConn()
	if err != nil {
		return 0, netip.Addr{}, err
	}
	var n int
	var from unix.Sockaddr
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, from, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		return true
	})
	if err != nil {
		return 0, netip.Addr{}, err
	}
	if rerr == unix.EAGAIN {
		return 0, netip.Addr{}, ErrWouldBlock
	}
	if rerr != nil {
		return 0, netip.Addr{}, rerr
	}
	var addr netip.Addr
	switch sa := from.(type) {
	case *unix.SockaddrInet4:
		addr = netip.AddrFrom4(sa.Addr)
	case *unix.SockaddrInet6:
		addr = netip.AddrFrom16(sa.Addr).Unmap()
	}
	return n, addr, nil
}
