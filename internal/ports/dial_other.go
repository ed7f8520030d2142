//go:build !windows

package ports

import "syscall"

// dialControl: Go sets no SO_REUSEADDR or SO_REUSEPORT on dialed sockets
// here, so their binds are exclusive already.
var dialControl func(network, address string, c syscall.RawConn) error
