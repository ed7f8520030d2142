//go:build !unix

package ports

import "net"

// probeDialer is a plain dialer where a socket cannot be bound before the
// connect in Go's dial (Windows binds it in ConnectEx): the probe's
// connections are logged there like clients'.
func probeDialer(*probeAddrs) *net.Dialer { return &net.Dialer{} }
