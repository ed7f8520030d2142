//go:build linux

package fanout

import (
	"crypto/tls"
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

	// A TLS connection over a SealConn (see SealConn): batches are sealed
	// into memory, then written as a plain batch is.
	tc  *tls.Conn
	sc  *SealConn
	one [1][]byte
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
	tc, sc, sealed := sealedOf(nc)
	if sealed {
		nc = sc
	}
	rc, ok := rawConn(nc)
	if !ok {
		return nil, false
	}
	w := &Writer{rc: rc, max: min(maxBufs, maxIovecs)}
	if sealed {
		w.tc, w.sc = tc, sc
	}
	w.fn = w.writev
	return w, true
}

// TryWrite writes bufs (up to maxBufs of them) with one writev that never
// waits. It returns the bytes written and whether that was all; when not,
// the caller writes the rest with a blocking write, which also meets any
// error the socket has.
//
// Over TLS (a SealConn under the connection) the bytes counted are the
// batch's before the seal, and a write the socket took in part counts
// whole: the sealed rest waits in the SealConn, and the caller's blocking
// write (of nothing, or of the next batch through the TLS layer) and
// Flush send it first.
func (w *Writer) TryWrite(bufs [][]byte) (int, bool) {
	if w.sc != nil {
		return w.trySealed(bufs)
	}
	return w.tryWritev(bufs)
}

// Flush writes what a TLS write left pending, waiting for the socket; it
// does nothing for a plain socket. The caller's blocking path calls it
// after writing its rest.
func (w *Writer) Flush() error {
	if w == nil || w.sc == nil {
		return nil
	}
	return w.sc.Flush()
}

// trySealed is TryWrite over TLS.
func (w *Writer) trySealed(bufs [][]byte) (int, bool) {
	sc := w.sc
	if !w.tryPending() {
		return 0, false // the caller's write through the TLS layer sends what waits first
	}
	sealed, buf, plain, err := sc.seal(w.tc, bufs)
	if err != nil {
		return 0, false // the caller's blocking write meets the error
	}
	w.one[0] = sealed
	n, ok := w.tryWritev(w.one[:])
	w.one[0] = nil
	if ok {
		putSealBuf(buf, sealed)
		return plain, true
	}
	sc.keepPending(sealed, buf, n)
	return plain, false
}

// tryPending writes what waits without waiting; true when nothing waits
// any more (or nothing did: the usual case, one lock).
func (w *Writer) tryPending() bool {
	sc := w.sc
	sc.mu.Lock()
	p := sc.pending
	sc.mu.Unlock()
	if len(p) == 0 {
		return true
	}
	if !sc.fmu.TryLock() {
		return false // a Flush is writing it
	}
	defer sc.fmu.Unlock()
	sc.mu.Lock()
	p = sc.pending // a Flush may have sent it meanwhile
	sc.mu.Unlock()
	if len(p) == 0 {
		return true
	}
	w.one[0] = p
	n, ok := w.tryWritev(w.one[:])
	w.one[0] = nil
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if ok {
		sc.dropPending()
		return true
	}
	sc.pending = sc.pending[n:]
	return false
}

// tryWritev is TryWrite to the socket itself.
func (w *Writer) tryWritev(bufs [][]byte) (int, bool) {
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
