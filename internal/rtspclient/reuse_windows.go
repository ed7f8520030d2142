package rtspclient

import "syscall"

// setReuseAddr lets several sockets bind one multicast port.
func setReuseAddr(fd uintptr) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
}
