package testutil

import (
	"io"
	"net"
	"testing"
	"time"
)

// ClosedAddr is a 127.0.0.1 address nothing listens on: a dial of it fails
// with "connection refused", as one of a killed server does.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// DialFrom connects to addr over TCP from the local address ip: Linux
// routes all of 127.0.0.0/8 to lo, so 127.0.0.2 is a second client address
// on one machine (for per-IP limits). The connection closes at the test's end.
func DialFrom(t testing.TB, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	nc, err := d.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// ClosedWithin reports whether the server closed nc within d: reading
// what it sends meets the end (or a reset) before the deadline.
func ClosedWithin(nc net.Conn, d time.Duration) bool {
	nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, nc)
	ne, ok := err.(net.Error)
	return !(ok && ne.Timeout())
}
