package limits

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Conns counts the open connections of every listener it wraps, in total
// and per remote IP, and refuses a connection over either cap: the listener
// closes it at once, before any protocol reads a byte, so a flood of
// connections costs a file descriptor for a moment and no goroutine.
//
// The zero value has no caps. Set them with Set (a reload may change them
// while connections come in).
type Conns struct {
	Warn *Warner // the refusals' log lines; nil: not logged
	// Exempt tells connections that are neither counted nor refused:
	// Berth's own self-probe at start, which opens several at once from
	// loopback and must prove the listeners whatever the caps. Nil: none.
	Exempt func(net.Conn) bool

	max, perIP atomic.Int64 // 0 = no cap
	exempt     atomic.Bool  // loopback peers are not held to the per-IP cap

	mu    sync.Mutex
	total int
	byIP  map[netip.Addr]int
}

// Set changes the caps: max connections in total, perIP from one remote IP
// (0 = no cap), and whether loopback peers (127.0.0.0/8, ::1) are exempt
// from the per-IP cap — tests, local tools and a reverse proxy on the same
// machine connect from there.
func (c *Conns) Set(max, perIP int, exemptLoopback bool) {
	c.max.Store(int64(max))
	c.perIP.Store(int64(perIP))
	c.exempt.Store(exemptLoopback)
}

// Open is the number of connections open now.
func (c *Conns) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// OpenFrom is the number of connections open now from ip.
func (c *Conns) OpenFrom(ip netip.Addr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byIP[ip.Unmap()]
}

// Refusal says why a connection was refused; "" when it was admitted.
type Refusal string

const (
	RefusedTotal Refusal = "total"  // [general] max_connections
	RefusedPerIP Refusal = "per_ip" // [general] max_connections_per_ip
)

// admit counts a connection from ip, or says which cap refuses it.
func (c *Conns) admit(ip netip.Addr) Refusal {
	max, perIP := int(c.max.Load()), int(c.perIP.Load())
	perIPApplies := perIP > 0 && ip.IsValid() && !(c.exempt.Load() && ip.IsLoopback())
	c.mu.Lock()
	defer c.mu.Unlock()
	if max > 0 && c.total >= max {
		return RefusedTotal
	}
	if perIPApplies && c.byIP[ip] >= perIP {
		return RefusedPerIP
	}
	c.total++
	if ip.IsValid() {
		if c.byIP == nil {
			c.byIP = map[netip.Addr]int{}
		}
		c.byIP[ip]++
	}
	return ""
}

func (c *Conns) release(ip netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if ip.IsValid() {
		if n := c.byIP[ip] - 1; n > 0 {
			c.byIP[ip] = n
		} else {
			delete(c.byIP, ip)
		}
	}
}

// Acquire counts one connection of name ("srt") from the peer at from that
// does not come through a wrapped listener: an SRT session over UDP. ok is
// false, and the refusal logged, when a cap refuses it; otherwise call done
// when the session ends.
func (c *Conns) Acquire(name string, from net.Addr) (done func(), ok bool) {
	ip := addrIP(from)
	if why := c.admit(ip); why != "" {
		c.refused(why, name, ip)
		return nil, false
	}
	r := &release{c: c, ip: ip}
	return r.do, true
}

// Listener wraps l, a listener of the named protocol ("rtsp", "http"): each
// connection it accepts counts until it is closed, and one over a cap is
// closed at once with a rate-limited warning naming the cap and the key to
// raise. Accept never returns a refused connection.
func (c *Conns) Listener(l net.Listener, name string) net.Listener {
	return &listener{Listener: l, c: c, name: name}
}

type listener struct {
	net.Listener
	c    *Conns
	name string
	http bool // HTTP heads are watched (see heads.go)
	w    *Warner
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.c.Exempt != nil && l.c.Exempt(nc) {
			return nc, nil
		}
		ip := addrIP(nc.RemoteAddr())
		why := l.c.admit(ip)
		if why == "" {
			return l.wrap(nc, ip), nil
		}
		nc.Close()
		l.c.refused(why, l.name, ip)
	}
}

func (c *Conns) refused(why Refusal, name string, ip netip.Addr) {
	switch why {
	case RefusedTotal:
		c.Warn.Warn("general.max_connections", "",
			fmt.Sprintf("%s connection from %s refused: %d connections are open, the cap of all listeners; raise [general] max_connections if the load is legitimate",
				name, ip, c.max.Load()),
			"listener", name, "remote_ip", ip.String())
	case RefusedPerIP:
		c.Warn.Warn("general.max_connections_per_ip", name,
			fmt.Sprintf("%s connection from %s refused: that address already has %d connections open; raise [general] max_connections_per_ip if many clients share it (a NAT, a proxy)",
				name, ip, c.perIP.Load()),
			"listener", name, "remote_ip", ip.String())
	}
}

// addrIP is the IP of a peer's address, IPv4 in IPv6 unmapped (a
// dual-stack socket's ::ffff:a.b.c.d is a.b.c.d), so the per-IP count of
// one client is the same on every listener.
func addrIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr().Unmap()
	}
}

// wrap returns nc counted until its Close. A *net.TCPConn is embedded, so
// every method of the socket (SyscallConn for internal/fanout's writev,
// CloseWrite, ReadFrom for sendfile) stays as fast as it was.
func (l *listener) wrap(nc net.Conn, ip netip.Addr) net.Conn {
	rel := &release{c: l.c, ip: ip}
	tc, ok := nc.(*net.TCPConn)
	switch {
	case ok && l.http:
		return &headConn{tcpConn: &tcpConn{TCPConn: tc, rel: rel}, name: l.name, ip: ip, w: l.w}
	case ok:
		return &tcpConn{TCPConn: tc, rel: rel}
	}
	return &otherConn{Conn: nc, rel: rel}
}

type release struct {
	c    *Conns
	ip   netip.Addr
	once sync.Once
}

func (r *release) do() { r.once.Do(func() { r.c.release(r.ip) }) }

type tcpConn struct {
	*net.TCPConn
	rel *release
}

func (c *tcpConn) Close() error {
	c.rel.do()
	return c.TCPConn.Close()
}

type otherConn struct {
	net.Conn
	rel *release
}

func (c *otherConn) Close() error {
	c.rel.do()
	return c.Conn.Close()
}
