//go:build !windows

package sessions

import "syscall"

func shutdownFD(fd uintptr) error { return syscall.Shutdown(int(fd), syscall.SHUT_RDWR) }
