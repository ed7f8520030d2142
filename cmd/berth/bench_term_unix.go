//go:build linux

package main

import "golang.org/x/sys/unix"

// termios reports whether fd is a terminal (it answers TCGETS).
func termios(fd uintptr) bool {
	_, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
	return err == nil
}
