//go:build windows

package ports

import (
	"errors"

	"golang.org/x/sys/windows"
)

// Windows reports a port unreachable on a connected UDP socket as a reset.
func isWindowsReset(err error) bool { return errors.Is(err, windows.WSAECONNRESET) }
