package ports

import (
	"context"
	"net"
	"time"
)

// DialUDP binds a UDP socket for spec (Port 0: any port) and connects it to
// raddr: a sending socket, like the RTP sender's, that is also a listener
// (the peer's RTCP comes back to it). Connected, it hears the peer's ICMP
// port unreachable as ECONNREFUSED on its next read or write, which an
// unconnected socket never does on Linux. The bind is on spec.Host of
// raddr's family (a wildcard picks 0.0.0.0 or ::). A failed bind is a
// *Finding, as any listener's.
func DialUDP(spec Spec, raddr *net.UDPAddr) (*net.UDPConn, error) {
	spec.Network = "udp"
	network, host := dialFamily(spec, raddr.IP)
	d := net.Dialer{Control: dialControl, LocalAddr: &net.UDPAddr{IP: net.ParseIP(host), Port: spec.Port}}
	c, err := d.Dial(network, raddr.String())
	if err != nil {
		return nil, dialError(spec, network, host, err)
	}
	return c.(*net.UDPConn), nil
}

// DialTCP connects to raddr from a socket bound for spec (Port 0: any
// port), within timeout. A failed bind is a *Finding; a failed connect is
// the dial's error, which names raddr.
func DialTCP(ctx context.Context, spec Spec, raddr *net.TCPAddr, timeout time.Duration) (*net.TCPConn, error) {
	spec.Network = "tcp"
	network, host := dialFamily(spec, raddr.IP)
	d := net.Dialer{Control: dialControl, Timeout: timeout}
	if spec.Port != 0 || !spec.Wildcard() {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(host), Port: spec.Port}
	}
	c, err := d.DialContext(ctx, network, raddr.String())
	if err != nil {
		return nil, dialError(spec, network, host, err)
	}
	return c.(*net.TCPConn), nil
}

// dialFamily is the concrete network and bind host of spec for a peer at ip.
func dialFamily(spec Spec, ip net.IP) (network, host string) {
	v4 := ip.To4() != nil
	network = spec.Network + "6"
	if v4 {
		network = spec.Network + "4"
	}
	switch {
	case spec.Wildcard() && v4:
		host = "0.0.0.0"
	case spec.Wildcard():
		host = "::"
	default:
		host = spec.Host
	}
	return network, host
}

// dialError makes a bind failure a Finding; other errors (no route,
// refused) are the peer's and come back as they are.
func dialError(spec Spec, network, host string, err error) error {
	if c := classify(err); c == CauseInUse || c == CausePermission || c == CauseExcluded {
		return newFinding(spec, network, host, spec.Port, err)
	}
	return err
}
