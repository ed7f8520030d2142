// Package ports owns every socket Berth listens on. Protocol servers receive
// ready listeners from here and never bind by themselves, so every bind goes
// through one place that binds exclusively, splits wildcard binds per family,
// and turns a failure into a Finding a human can act on.
package ports

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// Spec names one listener Berth wants.
type Spec struct {
	Name    string // what it serves, as users know it: "rtsp", "rtmp", "http", "rtp_proxy"
	Section string // config section holding its port key, for the fix: "rtsp" -> [rtsp] port; "" = opened by an API call
	Key     string // the port key in Section when it is not "port": "pprof_port"
	Flag    string // the flag that sets the port, for the fix: "--rtsp-port"
	Network string // "tcp" or "udp"
	Host    string // from [general] listen_ip; "::" or "0.0.0.0" mean every interface
	Port    int    // 0 asks the kernel for a free port
}

// Addr is host:port of the spec.
func (s Spec) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Wildcard reports whether the spec listens on every interface.
func (s Spec) Wildcard() bool {
	ip := net.ParseIP(s.Host)
	return s.Host == "" || (ip != nil && ip.IsUnspecified())
}

// families returns the concrete binds for a spec. A wildcard binds IPv4 and
// IPv6 as two sockets (the IPv6 one IPV6_V6ONLY), so a port whose IPv4 side
// belongs to someone else fails loudly instead of half-working.
func (s Spec) families() []bind {
	n := s.Network
	if s.Wildcard() {
		if s.Host == "0.0.0.0" {
			return []bind{{n + "4", "0.0.0.0", false}}
		}
		return []bind{{n + "4", "0.0.0.0", false}, {n + "6", "::", true}}
	}
	ip := net.ParseIP(s.Host)
	if ip != nil && ip.To4() == nil {
		return []bind{{n + "6", s.Host, false}}
	}
	return []bind{{n + "4", s.Host, false}}
}

type bind struct {
	network, host string
	optional      bool // the IPv6 half of a wildcard: skipped when the host has no IPv6
}

// Listen binds a TCP listener for spec. Failures are *Finding.
func Listen(spec Spec) (net.Listener, error) {
	spec.Network = "tcp"
	var ls []net.Listener
	port := spec.Port
	for _, b := range spec.families() {
		l, err := listenTCP(b.network, net.JoinHostPort(b.host, strconv.Itoa(port)))
		if err != nil {
			if b.optional && noFamily(err) {
				continue
			}
			for _, l := range ls {
				l.Close()
			}
			return nil, newFinding(spec, b.network, b.host, port, err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		ls = append(ls, l)
	}
	if len(ls) == 1 {
		return ls[0], nil
	}
	return newMultiListener(ls), nil
}

// ListenPacket binds a UDP socket set for spec. Failures are *Finding.
func ListenPacket(spec Spec) (*PacketConn, error) {
	spec.Network = "udp"
	pc := &PacketConn{}
	port := spec.Port
	for _, b := range spec.families() {
		c, err := listenUDP(b.network, net.JoinHostPort(b.host, strconv.Itoa(port)))
		if err != nil {
			if b.optional && noFamily(err) {
				continue
			}
			pc.Close()
			return nil, newFinding(spec, b.network, b.host, port, err)
		}
		port = c.LocalAddr().(*net.UDPAddr).Port
		pc.conns = append(pc.conns, c)
	}
	return pc, nil
}

// ListenUDPPair binds an even RTP port and the odd RTCP port above it on ip,
// trying pairs in [lo, hi]. It is how RTSP's UDP transport gets its
// server_port pairs; ports in use are skipped, not reported.
func ListenUDPPair(ip net.IP, lo, hi int) (rtp, rtcp *net.UDPConn, err error) {
	network := "udp4"
	if ip.To4() == nil {
		network = "udp6"
	}
	if lo%2 == 1 {
		lo++
	}
	pairMu.Lock()
	start := nextPair[lo]
	pairMu.Unlock()
	span := (hi - lo + 1) / 2
	if span <= 0 {
		return nil, nil, fmt.Errorf("rtsp: RTP port range %d-%d holds no even/odd pair; widen [rtsp] rtp_port_range", lo, hi)
	}
	for i := 0; i < span; i++ {
		p := lo + 2*((start+i)%span)
		a, err1 := listenUDP(network, net.JoinHostPort(ip.String(), strconv.Itoa(p)))
		if err1 != nil {
			continue
		}
		b, err2 := listenUDP(network, net.JoinHostPort(ip.String(), strconv.Itoa(p+1)))
		if err2 != nil {
			a.Close()
			continue
		}
		pairMu.Lock()
		nextPair[lo] = (start + i + 1) % span
		pairMu.Unlock()
		return a, b, nil
	}
	return nil, nil, fmt.Errorf("rtsp: no free UDP port pair in %d-%d on %s; widen [rtsp] rtp_port_range or use TCP transport", lo, hi, ip)
}

var (
	pairMu   sync.Mutex
	nextPair = map[int]int{} // rotates pair allocation so a just-closed pair is not reused at once
)

func noFamily(err error) bool {
	return errors.Is(err, errAddrNotAvail) || errors.Is(err, errAFNoSupport)
}

// multiListener accepts from several listeners (one per address family).
type multiListener struct {
	ls     []net.Listener
	conns  chan acceptResult
	closed chan struct{}
	once   sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newMultiListener(ls []net.Listener) *multiListener {
	m := &multiListener{ls: ls, conns: make(chan acceptResult), closed: make(chan struct{})}
	for _, l := range ls {
		go m.loop(l)
	}
	return m
}

func (m *multiListener) loop(l net.Listener) {
	for {
		c, err := l.Accept()
		select {
		case m.conns <- acceptResult{c, err}:
		case <-m.closed:
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			if !errors.Is(err, net.ErrClosed) {
				continue
			}
			return
		}
	}
}

func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case r := <-m.conns:
		return r.c, r.err
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

func (m *multiListener) Close() error {
	m.once.Do(func() {
		close(m.closed)
		for _, l := range m.ls {
			l.Close()
		}
	})
	return nil
}

func (m *multiListener) Addr() net.Addr { return m.ls[0].Addr() }

// Addrs lists every bound address; Listeners lists the per-family sockets.
func (m *multiListener) Addrs() []net.Addr {
	var out []net.Addr
	for _, l := range m.ls {
		out = append(out, l.Addr())
	}
	return out
}

// Addrs lists the addresses a listener from Listen is bound to.
func Addrs(l net.Listener) []net.Addr {
	if m, ok := l.(*multiListener); ok {
		return m.Addrs()
	}
	return []net.Addr{l.Addr()}
}

// PacketConn is a UDP socket per address family behind one port. Reads come
// from whichever family has a datagram; writes go out of the socket whose
// family matches the destination.
type PacketConn struct {
	conns []*net.UDPConn
}

// Conns returns the per-family sockets, for servers that read each in its own goroutine.
func (p *PacketConn) Conns() []*net.UDPConn { return p.conns }

// LocalAddr is the first socket's address.
func (p *PacketConn) LocalAddr() net.Addr { return p.conns[0].LocalAddr() }

// Port is the bound port, the same on every family.
func (p *PacketConn) Port() int { return p.conns[0].LocalAddr().(*net.UDPAddr).Port }

// WriteTo sends from the socket of addr's family.
func (p *PacketConn) WriteTo(b []byte, addr *net.UDPAddr) (int, error) {
	v4 := addr.IP.To4() != nil
	for _, c := range p.conns {
		if (c.LocalAddr().(*net.UDPAddr).IP.To4() != nil) == v4 {
			return c.WriteToUDP(b, addr)
		}
	}
	return p.conns[0].WriteToUDP(b, addr)
}

// Close closes every socket.
func (p *PacketConn) Close() error {
	for _, c := range p.conns {
		c.Close()
	}
	return nil
}
