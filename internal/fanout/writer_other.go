//go:build !linux

package fanout

import "net"

// Writer is Linux-only for now: elsewhere NewWriter reports false and
// servers keep one goroutine per player.
type Writer struct{}

// NewWriter reports false: no non-blocking writev here.
func NewWriter(nc net.Conn, maxBufs int) (*Writer, bool) { return nil, false }

// TryWrite is never called where NewWriter reports false.
func (w *Writer) TryWrite(bufs [][]byte) (int, bool) { return 0, false }

// Flush is never called where NewWriter reports false.
func (w *Writer) Flush() error { return nil }

// Supported reports whether NewWriter works on this system.
func Supported() bool { return false }
