package limits

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
)

// HTTPListener is Listener for an HTTP port. net/http enforces the head
// limits itself (http.Server's MaxHeaderBytes answers 431,
// ReadHeaderTimeout closes a slow head) but logs neither, so a public server
// would lose slowloris clients and oversized heads silently. The
// connections of this listener watch for the two and log them through w:
//
//   - a response that starts "HTTP/1.1 431" is net/http refusing a head over
//     MaxHeaderBytes ([http] max_header_bytes);
//   - a read that fails on its deadline after the client had sent part of a
//     request (bytes read since the last response) is a head that did not
//     arrive in time ([http] header_timeout_sec). An idle keep-alive
//     connection that times out has sent nothing since its last response
//     and is not logged.
func (c *Conns) HTTPListener(l net.Listener, name string, w *Warner) net.Listener {
	return &listener{Listener: l, c: c, name: name, http: true, w: w}
}

// headConn is an HTTP connection whose head limits are logged.
type headConn struct {
	*tcpConn
	name    string
	ip      netip.Addr
	w       *Warner
	pending atomic.Int64 // bytes read since the last write
}

var status431 = []byte("HTTP/1.1 431")

func (c *headConn) Read(p []byte) (int, error) {
	n, err := c.tcpConn.Read(p)
	if n > 0 {
		c.pending.Add(int64(n))
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.pending.Load() > 0 {
		c.w.Warn("http.header_timeout_sec", c.name, fmt.Sprintf("%s request from %s did not arrive in time (%d bytes of it came); connection closed. Raise [http] header_timeout_sec if real clients are that slow",
			c.name, c.ip, c.pending.Load()), "listener", c.name, "remote_ip", c.ip.String())
	}
	return n, err
}

func (c *headConn) Write(p []byte) (int, error) {
	c.wrote(p)
	return c.tcpConn.Write(p)
}

// wrote is what a write adds to the socket's: a response resets the count
// of request bytes, and net/http's 431 is logged. Only the first write
// after a request has anything to do (net/http writes its 431 after reading
// the head, so with nothing pending p cannot be one): the rest of a long
// response (HTTP-FLV, TS) costs a load per write, not a store and a compare.
func (c *headConn) wrote(p []byte) {
	if c.pending.Load() == 0 {
		return
	}
	c.pending.Store(0)
	if bytes.HasPrefix(p, status431) {
		c.w.Warn("http.max_header_bytes", c.name, fmt.Sprintf("%s request from %s has a head over [http] max_header_bytes; answered 431 and closed. Raise [http] max_header_bytes if real clients send heads that large (many cookies)",
			c.name, c.ip), "listener", c.name, "remote_ip", c.ip.String())
	}
}
