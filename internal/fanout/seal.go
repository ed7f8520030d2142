package fanout

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"
)

// SealConn sits between a TLS layer and its socket so that an event-driven
// player over TLS can write as a plain one does: the TLS layer seals a
// batch into memory (Seal) instead of writing it, and the player writes
// the sealed bytes to the socket with one non-blocking writev, and the
// rest, if the socket did not take it all, with a blocking write. Outside
// Seal every call passes through to the socket. Wrap a listener's
// connections before its TLS layer: SealListener.
type SealConn struct {
	net.Conn
	catching bool   // only Seal sets it, on the goroutine that holds the player's turn
	caught   []byte // sealed bytes, while catching
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

// Write sends b, or keeps it while Seal runs.
func (c *SealConn) Write(b []byte) (int, error) {
	if c.catching {
		c.caught = append(c.caught, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// NetConn is the connection underneath, as tls.Conn's NetConn is: the
// code that finds a connection's registration looks through both.
func (c *SealConn) NetConn() net.Conn { return c.Conn }

// SyscallConn gives the socket, for NewWriter and the Poller.
func (c *SealConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNotSocket
}

var errNotSocket = errors.New("fanout: the connection has no socket underneath")

// sealPool holds the plaintext and sealed buffers of one batch: a player
// borrows them for a turn, as it does its batch.
var sealPool = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// Sealed is one batch sealed by Seal; Release gives its buffer back once
// the bytes are written.
type Sealed struct {
	Bytes []byte
	buf   *[]byte
}

// Release gives the buffer back; s is then empty.
func (s *Sealed) Release() {
	if s.buf != nil && cap(*s.buf) <= 256<<10 {
		*s.buf = s.Bytes[:0]
		sealPool.Put(s.buf)
	}
	s.Bytes, s.buf = nil, nil
}

// Seal has tc, whose connection underneath is c, seal bufs as one write:
// the batch is copied into one plaintext buffer first, so that it becomes
// as few TLS records as it can (up to 16 KB each), not one per buffer.
// Nothing reaches the socket. Only the holder of the player's turn may
// call it, and no other write on tc may run meanwhile.
func (c *SealConn) Seal(tc *tls.Conn, bufs [][]byte) (Sealed, error) {
	plain := sealPool.Get().(*[]byte)
	p := (*plain)[:0]
	for _, b := range bufs {
		p = append(p, b...)
	}
	out := sealPool.Get().(*[]byte)
	c.caught, c.catching = (*out)[:0], true
	_, err := tc.Write(p)
	sealed := c.caught
	c.caught, c.catching = nil, false
	*plain = p[:0]
	if cap(p) <= 256<<10 {
		sealPool.Put(plain)
	}
	s := Sealed{Bytes: sealed, buf: out}
	if err != nil {
		s.Release()
		return Sealed{}, err
	}
	return s, nil
}
