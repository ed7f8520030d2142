package sessions

import "syscall"

func shutdownFD(fd uintptr) error { return syscall.Shutdown(syscall.Handle(fd), syscall.SHUT_RDWR) }
