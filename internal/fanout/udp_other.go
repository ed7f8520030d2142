//go:build !linux

package fanout

import (
	"errors"
	"net"
	"net/netip"
)

// ErrWouldBlock is what TryRecvFrom reports when no datagram waits.
var ErrWouldBlock = errors.New("fanout: the socket would block")

// UDPSender sends from one socket to one address; elsewhere than Linux
// with the socket's own write, which may wait (players there have a
// goroutine each).
type UDPSender struct {
	pc *net.UDPConn
	to *net.UDPAddr
}

// NewUDPSender makes a sender from pc to to.
func NewUDPSender(pc *net.UDPConn, to *net.UDPAddr) *UDPSender { return &UDPSender{pc: pc, to: to} }

// Send sends b.
func (s *UDPSender) Send(b []byte) error {
	_, err := s.pc.WriteToUDP(b, s.to)
	return err
}

// TryRecvFrom is never called where the Poller cannot watch a socket.
func TryRecvFrom(pc *net.UDPConn, buf []byte) (int, netip.Addr, error) {
	return 0, netip.Addr{}, ErrWouldBlock
}
