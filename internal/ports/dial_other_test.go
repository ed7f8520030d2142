//go:build !windows

package ports

func isWindowsReset(error) bool { return false }
