//go:build linux

package fanout

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Writer writes batches to one socket with a non-blocking writev.
type Writer struct {
	rc      syscall.RawConn
	iov     []unix.Iovec
	niov    int
	written int
	errno   syscall.Errno
	fn      func(fd uintptr) bool // w.writev, bound once: a method value per write would allocate
}

// NewWriter makes a Writer of up to maxBufs buffers per write for nc, or
// reports false when nc is not a socket it can write that way.
func NewWriter(nc net.Conn, maxBufs int) (*Writer, bool) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	w := &Writer{rc: rc, iov: make([]unix.Iovec, maxBufs)}
	w.fn = w.writev
	return w, true
}

// TryWrite writes bufs (up to maxBufs of them) with one writev that never
// waits. It returns the bytes written and whether that was all; when not,
// the caller writes the rest with a blocking write, which also meets any
// error the socket has.
func (w *Writer) TryWrite(bufs [][]byte) (int, bool) {
	total, n := 0, 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if n == len(w.iov) {
			total = -1 // more than one writev holds: the rest is the caller's
			break
		}
		w.iov[n].Base = &b[0]
		w.iov[n].SetLen(len(b))
		n++
		total += len(b)
	}
	w.niov, w.written, w.errno = n, 0, 0
	err := w.rc.Write(w.fn)
	for i := range w.iov[:n] {
		w.iov[i].Base = nil // keep no frame alive from here
	}
	return w.written, err == nil && w.written == total
}

// writev is the one system call of a write; RawConn.Write holds the file
// descriptor open while it runs. It never asks to wait: a full socket is
// the blocking write's to wait for.
func (w *Writer) writev(fd uintptr) bool {
	if w.niov == 0 {
		return true
	}
	r, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(w.niov))
	if e != 0 {
		w.errno, w.written = e, 0
	} else {
		w.written = int(r)
	}
	return true
}

// Supported reports whether NewWriter works on this system, for a caller
// that must decide before it has the socket (HTTP-FLV hijacks it first).
func Supported() bool { return true }
