//go:build unix

package ports

import (
	"context"
	"net"
	"syscall"
)

var (
	errAddrNotAvail = syscall.EADDRNOTAVAIL
	errAFNoSupport  = syscall.EAFNOSUPPORT
	errAddrInUse    = syscall.EADDRINUSE
	errAccess       = syscall.EACCES
)

// Go sets SO_REUSEADDR on TCP listeners (on Unix that only permits rebinding
// over TIME_WAIT, which is wanted) and never SO_REUSEPORT; Berth keeps it so.
func listenTCP(network, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(context.Background(), network, addr)
}

func listenUDP(network, addr string) (*net.UDPConn, error) {
	var lc net.ListenConfig
	c, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}
