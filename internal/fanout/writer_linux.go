//go:build linux

package fanout

import (
	"net"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Writer writes batches to one socket with a non-blocking writev.
type Writer struct {
	rc      syscall.RawConn
	max     int     // buffers per writev
	iov     *iovecs // borrowed from iovPool for one TryWrite only
	niov    int
	written int
	errno   syscall.Errno
	fn      func(fd uintptr) bool // w.writev, bound once: a method value per write would allocate
}

// maxIovecs bounds the buffers of one writev (the kernel's IOV_MAX is 1024).
const maxIovecs = 128

type iovecs [maxIovecs]unix.Iovec

// iovPool holds the iovec arrays of writes in progress: a few per sender
// goroutine in use at once, instead of one per player held while it waits
// (1 KB each at 400 players).
var iovPool = sync.Pool{New: func() any { return new(iovecs) }}

// rawConn is nc's file descriptor for the Writer and the Poller, or false
// where nc has none of its own (a TLS connection, a pipe).
func rawConn(nc net.Conn) (syscall.RawConn, bool) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	return rc, err == nil
}

// NewWriter makes a Writer of up to maxBufs buffers per write for nc, or
// reports false when nc is not a socket it can write that way.
func NewWriter(nc net.Conn, maxBufs int) (*Writer, bool) {
	rc, ok := rawConn(nc)
	if !ok {
		return nil, false
	}
	w := &Writer{rc: rc, max: min(maxBufs, maxIovecs)}
	w.fn = w.writev
	return w, true
}

// TryWrite writes bufs (up to maxBufs of them) with one writev that never
// waits. It returns the bytes written and whether that was all; when not,
// the caller writes the rest with a blocking write, which also meets any
// error the socket has.
func (w *Writer) TryWrite(bufs [][]byte) (int, bool) {
	total, n := 0, 0
	iov := iovPool.Get().(*iovecs)
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if n == w.max {
			total = -1 // more than one writev holds: the rest is the caller's
			break
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
		total += len(b)
	}
	w.iov, w.niov, w.written, w.errno = iov, n, 0, 0
	err := w.rc.Write(w.fn)
	for i := range iov[:n] {
		iov[i].Base = nil // keep no frame alive from here
	}
	w.iov = nil
	iovPool.Put(iov)
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
