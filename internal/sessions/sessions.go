// Package sessions keeps a registry of every TCP connection of every
// listener: what ZLMediaKit's getAllSession lists and kick_session(s)
// closes. A listener is wrapped once, before its protocol server gets it;
// each accepted connection is registered until it is closed. Connections
// that come from no net.Listener (SRT's, accepted by gosrt on its own UDP
// socket) are registered one by one with Register.
//
// It knows no protocol: a connection's type is the name its listener was
// wrapped with ("RtspSession", "RtmpSession", "HttpSession", "RtpSession"),
// or the one Register was given ("SRT::SrtSession").
package sessions

import (
	"cmp"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Registry is every open connection of the listeners it wrapped. The zero
// value is ready to use.
type Registry struct {
	// Uncounted tells connections that Accepted does not count (Berth's own
	// self-probe at start); they are registered all the same. Nil: count all.
	Uncounted func(net.Conn) bool

	mu       sync.Mutex
	conns    map[uint64]*Conn
	accepted map[string]*atomic.Uint64
	next     atomic.Uint64
	servers  atomic.Int64 // wrapped listeners not closed yet
}

// Info describes one connection.
type Info struct {
	ID        string
	Type      string // the name its listener was wrapped with
	LocalIP   string
	LocalPort int
	PeerIP    string
	PeerPort  int
	Since     time.Time
}

// Conn is a registered connection: the accepted net.Conn with an ID. It
// keeps SyscallConn (internal/fanout writes to the socket directly) and can
// be closed from any goroutine.
//
// It keeps only its id, type and start; Info reads the addresses from the
// socket when asked (getAllSession), not at accept: formatted up front
// they cost every connection ~80 bytes for a listing few ever see
// (issue 14: memory per viewer).
type Conn struct {
	net.Conn
	id    string
	typ   string
	since time.Time
	n     uint64
	r     *Registry
	once  sync.Once
}

// ID is the connection's registry id: what getAllSession lists and
// kick_session takes, and what protocols put in hub.Origin.Conn.
func (c *Conn) ID() string { return c.id }

// Info describes the connection.
func (c *Conn) Info() Info {
	info := Info{ID: c.id, Type: c.typ, Since: c.since}
	info.LocalIP, info.LocalPort = split(c.LocalAddr())
	info.PeerIP, info.PeerPort = split(c.RemoteAddr())
	return info
}

// errNoSyscall is SyscallConn's answer for a connection that has no socket
// underneath (a net.Pipe in a test): callers fall back to plain writes.
var errNoSyscall = errors.New("sessions: the connection has no socket underneath")

// SyscallConn gives the socket of the accepted connection, as
// *net.TCPConn does.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNoSyscall
}

// CloseWrite half-closes the connection where the socket can (net/http
// does so before closing a connection whose request it did not read whole).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errNoSyscall
}

// ReadFrom lets io.Copy to the connection use the socket's own ReadFrom
// (sendfile, splice), as it would on the *net.TCPConn.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// Close closes the connection and removes it from the registry.
func (c *Conn) Close() error {
	c.Unregister()
	return c.Conn.Close()
}

// Listener wraps l: every connection it accepts is registered with type
// typ until closed.
func (r *Registry) Listener(l net.Listener, typ string) net.Listener {
	r.servers.Add(1)
	return &listener{Listener: l, r: r, typ: typ, accepted: r.acceptedOf(typ)}
}

// acceptedOf is the counter of the connections of type typ accepted so far.
func (r *Registry) acceptedOf(typ string) *atomic.Uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.accepted == nil {
		r.accepted = map[string]*atomic.Uint64{}
	}
	if r.accepted[typ] == nil {
		r.accepted[typ] = new(atomic.Uint64)
	}
	return r.accepted[typ]
}

type listener struct {
	net.Listener
	r        *Registry
	typ      string
	accepted *atomic.Uint64
	once     sync.Once
}

func (l *listener) Close() error {
	l.once.Do(func() { l.r.servers.Add(-1) })
	return l.Listener.Close()
}

// Listeners is the number of wrapped listeners not closed yet
// (ZLMediaKit's TcpServer count).
func (r *Registry) Listeners() int { return int(r.servers.Load()) }

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.r.Uncounted == nil || !l.r.Uncounted(nc) {
		l.accepted.Add(1)
	}
	return l.r.add(nc, l.typ), nil
}

// Register puts nc, accepted by something other than a wrapped listener,
// in the registry with type typ (counted as accepted). Close on the
// returned Conn (kick_session) closes nc; Unregister takes it off when its
// protocol has closed nc itself.
func (r *Registry) Register(nc net.Conn, typ string) *Conn {
	r.acceptedOf(typ).Add(1)
	return r.add(nc, typ)
}

// Unregister takes the connection off the registry without closing it.
func (c *Conn) Unregister() {
	c.once.Do(func() { c.r.remove(c.n) })
}

func (r *Registry) add(nc net.Conn, typ string) *Conn {
	n := r.next.Add(1)
	c := &Conn{Conn: nc, n: n, r: r, id: strconv.FormatUint(n, 10), typ: typ, since: time.Now()}
	r.mu.Lock()
	if r.conns == nil {
		r.conns = map[uint64]*Conn{}
	}
	r.conns[n] = c
	r.mu.Unlock()
	return c
}

func (r *Registry) remove(n uint64) {
	r.mu.Lock()
	delete(r.conns, n)
	r.mu.Unlock()
}

func split(a net.Addr) (string, int) {
	switch t := a.(type) {
	case *net.TCPAddr:
		return t.IP.String(), t.Port
	case *net.UDPAddr:
		// A dual-stack UDP socket ([::]) names IPv4 peers as ::ffff:a.b.c.d;
		// peer_ip filters and the caller's own address say a.b.c.d.
		ap := t.AddrPort()
		return ap.Addr().Unmap().String(), int(ap.Port())
	}
	if a == nil {
		return "", 0
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// Accepted is the count of connections accepted so far by type, over the
// process's life (for metrics). A type appears from the moment a listener
// is wrapped with it, at 0.
func (r *Registry) Accepted() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]uint64, len(r.accepted))
	for typ, n := range r.accepted {
		m[typ] += n.Load()
	}
	return m
}

// List describes every open connection, oldest first.
func (r *Registry) List() []Info {
	r.mu.Lock()
	conns := make([]*Conn, 0, len(r.conns))
	for _, c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	slices.SortFunc(conns, func(a, b *Conn) int { return cmp.Compare(a.n, b.n) })
	out := make([]Info, len(conns))
	for i, c := range conns {
		out[i] = c.Info()
	}
	return out
}

// Len is the number of open connections.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// Get describes connection id.
func (r *Registry) Get(id string) (Info, bool) {
	c := r.find(id)
	if c == nil {
		return Info{}, false
	}
	return c.Info(), true
}

func (r *Registry) find(id string) *Conn {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[n]
}

// IDOf is the registry id of nc, "" when nc is not a registered
// connection: the API lists a stream's origin and players by it
// (hub.Origin.Conn). It looks through the layers over the registered
// connection: TLS (RTSPS, RTMPS, HTTPS) and the fanout.SealConn under it.
func IDOf(nc net.Conn) string {
	for range 4 {
		if c, ok := nc.(*Conn); ok {
			return c.id
		}
		t, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		nc = t.NetConn()
	}
	return ""
}

// Kick closes connection id, as if its peer had gone: the protocol
// session's next read fails and it ends the way it ends on a disconnect
// (a publisher's stream ends, a player's reader is released). It reports
// whether the connection was open.
//
// A socket is shut down first and closed kickGrace later, if its owner has
// not closed it by then: epoll still reports a shut-down socket, so a
// player parked on a poller (fanout.Poller) hears of the kick at once,
// where a socket closed under it drops out of epoll unheard until the
// poller's next sweep, up to 2 s later.
func (r *Registry) Kick(id string) bool {
	c := r.find(id)
	if c == nil {
		return false
	}
	if !c.shutdown() {
		c.Close()
		return true
	}
	c.Unregister()
	time.AfterFunc(kickGrace, func() { c.Conn.Close() })
	return true
}

// kickGrace is how long a kicked socket, shut down, waits for its owner to
// close it before Kick closes it.
const kickGrace = time.Second

// shutdown shuts the socket down both ways, where there is one.
func (c *Conn) shutdown() bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = shutdownFD(fd) }); err != nil || serr != nil {
		return false
	}
	return true
}
