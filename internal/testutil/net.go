package testutil

import (
	"net"
	"testing"
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
