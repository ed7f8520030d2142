package fanout

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"
)

// SealConn sits between a TLS layer and its socket so that a player over
// TLS is written as a plain one is (NewWriter takes the *tls.Conn over
// it): the Writer has the TLS layer seal a batch into memory instead of
// writing it, then writes the sealed bytes to the socket with one
// non-blocking writev. What the socket does not take waits in the
// SealConn and goes out before anything else written on the connection
// (the TLS layer's own writes included), so the records stay in order.
// Wrap a listener's connections before its TLS layer: SealListener.
type SealConn struct {
	net.Conn
	mu       sync.Mutex // guards the fields below; never held across a write
	catching bool       // a Seal runs: the TLS layer's writes are kept
	caught   []byte
	pending  []byte  // sealed bytes the socket has not taken yet
	pendBuf  *[]byte // pending's pooled buffer
	fmu      sync.Mutex
}

// SealListener wraps every connection l accepts in a SealConn.
func SealListener(l net.Listener) net.Listener { return sealListener{l} }

type sealListener struct{ net.Listener }

func (l sealListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &SealConn{Conn: c}, nil
}

// Write sends b after what is pending, or keeps it while a Seal runs.
func (c *SealConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.catching {
		c.caught = append(c.caught, b...)
		c.mu.Unlock()
		return len(b), nil
	}
	c.mu.Unlock()
	if err := c.Flush(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// Flush writes what a Writer's write left pending, waiting for the socket
// (the connection's write deadline applies).
func (c *SealConn) Flush() error {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	c.mu.Lock()
	p := c.pending
	c.mu.Unlock()
	if len(p) == 0 {
		return nil
	}
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	if err != nil {
		c.pending = c.pending[n:]
	} else {
		c.dropPending()
	}
	c.mu.Unlock()
	return err
}

// dropPending gives pending's buffer back; c.mu is held.
func (c *SealConn) dropPending() {
	if c.pendBuf != nil {
		putSealBuf(c.pendBuf, *c.pendBuf)
	}
	c.pending, c.pendBuf = nil, nil
}

// NetConn is the connection underneath, as tls.Conn's NetConn is: the
// code that finds a connection's registration looks through both.
func (c *SealConn) NetConn() net.Conn { return c.Conn }

// SyscallConn gives the socket, for the Writer.
func (c *SealConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNotSocket
}

var errNotSocket = errors.New("fanout: the connection has no socket underneath")

// sealedOf is the TLS connection and the SealConn under it, when nc is a
// TLS connection a Writer can write.
func sealedOf(nc net.Conn) (*tls.Conn, *SealConn, bool) {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return nil, nil, false
	}
	sc, ok := tc.NetConn().(*SealConn)
	return tc, sc, ok
}

// sealPool holds the plaintext and sealed buffers of one batch: a player
// borrows them for a write, as it does its batch.
var sealPool = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// putSealBuf gives buf back with b, its grown contents, unless b grew
// too large to keep.
func putSealBuf(buf *[]byte, b []byte) {
	if cap(b) <= 256<<10 {
		*buf = b[:0]
		sealPool.Put(buf)
	}
}

// seal has tc seal bufs as one write, copied into one plaintext buffer
// first so that it becomes as few TLS records as it can (up to 16 KB
// each), not one per buffer. Nothing reaches the socket. The caller holds
// the connection's turn: no other write of the player's runs meanwhile.
func (c *SealConn) seal(tc *tls.Conn, bufs [][]byte) (sealed []byte, buf *[]byte, plain int, err error) {
	pb := sealPool.Get().(*[]byte)
	p := (*pb)[:0]
	for _, b := range bufs {
		p = append(p, b...)
	}
	out := sealPool.Get().(*[]byte)
	c.mu.Lock()
	c.caught, c.catching = (*out)[:0], true
	c.mu.Unlock()
	_, err = tc.Write(p)
	c.mu.Lock()
	sealed = c.caught
	c.caught, c.catching = nil, false
	c.mu.Unlock()
	putSealBuf(pb, p)
	if err != nil {
		putSealBuf(out, sealed)
		return nil, nil, 0, err
	}
	return sealed, out, len(p), nil
}

// keepPending holds the sealed bytes the socket did not take, from w on.
func (c *SealConn) keepPending(sealed []byte, buf *[]byte, w int) {
	*buf = sealed // the whole buffer, to give back
	c.mu.Lock()
	c.pending, c.pendBuf = sealed[w:], buf
	c.mu.Unlock()
}

// Sealed reports whether nc is a TLS connection over a SealConn, which a
// Writer writes as it writes a socket.
func Sealed(nc net.Conn) bool {
	_, _, ok := sealedOf(nc)
	return ok
}
