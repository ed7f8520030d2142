//go:build !linux

package main

// termios is false off Linux: progress is printed a line at a time.
func termios(fd uintptr) bool { return false }
