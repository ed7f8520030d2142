//go:build windows

package ports

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/windows"
)

var (
	errAddrNotAvail = windows.WSAEADDRNOTAVAIL
	errAFNoSupport  = windows.WSAEAFNOSUPPORT
	errAddrInUse    = windows.WSAEADDRINUSE
	// WSAEACCES: the port is in an excluded range, or another socket holds
	// it with SO_EXCLUSIVEADDRUSE; the socket tables tell which.
	errAccess = windows.WSAEACCES
)

// soExclusiveAddrUse is ~SO_REUSEADDR, as winsock2.h defines it; x/sys does not export it.
const soExclusiveAddrUse = ^int(windows.SO_REUSEADDR)

// On Windows SO_REUSEADDR lets a second socket bind a port in use, the silent
// failure Berth exists to end; SO_EXCLUSIVEADDRUSE forbids that on every socket.
func exclusive(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = windows.SetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, soExclusiveAddrUse, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func listenTCP(network, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: exclusive}
	return lc.Listen(context.Background(), network, addr)
}

func listenUDP(network, addr string) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: exclusive}
	c, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}
