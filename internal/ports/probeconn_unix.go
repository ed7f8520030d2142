//go:build unix

package ports

import (
	"net"
	"strconv"
	"syscall"
)

// probeDialer binds each socket to the loopback address it connects to,
// port 0, before connecting, and records the port the kernel gave: the
// server then sees exactly that address as the peer.
func probeDialer(p *probeAddrs) *net.Dialer {
	return &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil
		}
		ip := net.ParseIP(host)
		if ip == nil {
			return nil
		}
		var bindErr error
		err = c.Control(func(fd uintptr) {
			var sa syscall.Sockaddr
			if ip4 := ip.To4(); ip4 != nil && network != "tcp6" {
				s := &syscall.SockaddrInet4{}
				copy(s.Addr[:], ip4)
				sa = s
			} else {
				s := &syscall.SockaddrInet6{}
				copy(s.Addr[:], ip.To16())
				sa = s
			}
			if bindErr = syscall.Bind(int(fd), sa); bindErr != nil {
				return
			}
			got, err := syscall.Getsockname(int(fd))
			if err != nil {
				return
			}
			switch a := got.(type) {
			case *syscall.SockaddrInet4:
				p.add(net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port)))
			case *syscall.SockaddrInet6:
				p.add(net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port)))
			}
		})
		if err != nil {
			return err
		}
		// A failed bind leaves the socket as it was: the connect binds it as
		// usual, and that connection is logged like a client's.
		return nil
	}}
}
