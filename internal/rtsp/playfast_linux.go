//go:build linux

package rtsp

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event-driven TCP player. Its hub reader calls wake instead of
// unparking a goroutine; wake queues the player for one of the server's
// sender goroutines (one per CPU), which takes the reader's frames and
// writes them with one non-blocking writev. A healthy player thus costs
// no goroutine while it waits, and a frame for 400 players is 400 writev
// calls made by a goroutine or two instead of 400 goroutine wake-ups. It
// is the same work the floor measures (docs/performance.md).
//
// When the socket does not take the whole batch (the client is slow, or a
// response holds the write lock), a goroutine of the player's own writes
// the rest, blocking up to writeTimeout as loop does, then serves the
// player until its reader parks; the next wake goes to the senders again.

type fastState struct {
	rc syscall.RawConn
	// pending counts wake-ups not yet served; the one that makes it 1
	// queues the player, so it is served by one goroutine at a time.
	pending atomic.Int32
	held    int  // frames[:held] are the first packets of a video frame whose rest is coming
	over    bool // finish has been called
	iov     [2*batchFrames + 1]unix.Iovec
	niov    int
	written int
	errno   syscall.Errno
	writeFn func(fd uintptr) bool // p.writev, bound once: a method value per write would allocate
}

// startFast makes p event-driven when its connection is a socket.
func (p *player) startFast() bool {
	sc, ok := p.c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	f := &p.fast
	f.rc, f.writeFn = rc, p.writev
	p.rd.SetReady(p.wake)
	f.pending.Store(1)
	p.c.s.send.schedule(p)
	return true
}

// wake runs on the hub's writer or waker goroutine: it only queues.
func (p *player) wake() {
	if p.fast.pending.Add(1) == 1 {
		p.c.s.send.schedule(p)
	}
}

// run serves p until its reader is parked with no wake-up pending.
func (p *player) run() {
	defer func() {
		if r := recover(); r != nil {
			p.c.log.Error("player crashed; closed its connection, others are unaffected", "panic", r, "stack", string(debug.Stack()))
			if !p.fast.over {
				p.fast.over = true
				go p.finish(fmt.Errorf("internal error: %v", r))
			}
		}
	}()
	for {
		n := p.fast.pending.Load()
		if !p.serve() {
			return
		}
		if p.fast.pending.Add(-n) == 0 {
			return
		}
	}
}

// serve writes what the reader has until it parks (true), or until p is
// no longer the senders' (false): the play ended, or a goroutine of its
// own finishes a write the socket did not take.
func (p *player) serve() bool {
	f := &p.fast
	if f.over {
		return false
	}
	for {
		m, err := p.rd.TryRead(p.frames[f.held:])
		n := f.held + m
		if err == nil {
			if m == 0 {
				f.held = n // parked; a part of a frame waits for the rest
				return true
			}
			if n < len(p.frames) && p.frames[n-1].MidFrame() {
				f.held = n // the rest of the frame may be there already
				continue
			}
		}
		f.held = 0
		if bufs := p.batch(n, time.Now()); len(bufs) > 0 {
			if w, ok := p.writeNow(bufs); !ok {
				go p.finishWrite(bufs, w, err)
				return false
			}
		}
		if err != nil {
			f.over = true
			go p.finish(err) // its goodbye write may block
			return false
		}
	}
}

// writeNow tries bufs with one non-blocking writev. ok is true when it
// all went; else w bytes did.
func (p *player) writeNow(bufs [][]byte) (w int, ok bool) {
	c, f := p.c, &p.fast
	if !c.wmu.TryLock() {
		return 0, false
	}
	total := 0
	f.niov = 0
	for _, b := range bufs {
		if len(b) > 0 {
			f.iov[f.niov].Base = &b[0]
			f.iov[f.niov].SetLen(len(b))
			f.niov++
			total += len(b)
		}
	}
	f.written, f.errno = 0, 0
	err := f.rc.Write(f.writeFn)
	c.wmu.Unlock()
	for i := range f.iov[:f.niov] {
		f.iov[i].Base = nil // do not keep frames alive from here
	}
	c.bytesOut.Add(uint64(f.written))
	if err != nil || f.written < total {
		return f.written, false // the blocking write meets the error, or waits for room
	}
	p.report = p.report[:0]
	return total, true
}

// writev is the one system call of a write; RawConn.Write holds the file
// descriptor open while it runs. It never asks to wait: a full socket is
// the blocking path's to wait for.
func (p *player) writev(fd uintptr) bool {
	f := &p.fast
	r, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&f.iov[0])), uintptr(f.niov))
	if e != 0 {
		f.errno, f.written = e, 0
	} else {
		f.written = int(r)
	}
	return true
}

// finishWrite writes what writeNow could not, blocking up to writeTimeout,
// then serves p here until its reader parks.
func (p *player) finishWrite(bufs [][]byte, w int, readErr error) {
	for w > 0 && len(bufs) > 0 {
		if w < len(bufs[0]) {
			bufs[0] = bufs[0][w:]
			break
		}
		w -= len(bufs[0])
		bufs = bufs[1:]
	}
	err := p.writeBlocking(bufs, time.Now())
	if err == nil {
		err = readErr
	}
	if err != nil {
		p.fast.over = true
		p.finish(err)
		return
	}
	// The fast path sets no deadline; one left set would fail it later.
	p.c.wmu.Lock()
	p.c.nc.SetWriteDeadline(time.Time{})
	p.wdl = time.Time{}
	p.c.wmu.Unlock()
	p.run()
}

// senders are the server's goroutines that serve event-driven players.
type senders struct {
	once sync.Once
	q    chan *player
	stop chan struct{}
	done atomic.Bool
}

// schedule queues p for a sender; a full queue gets p a goroutine.
func (s *senders) schedule(p *player) {
	s.once.Do(s.start)
	select {
	case s.q <- p:
	default:
		go p.run()
	}
}

func (s *senders) start() {
	s.q, s.stop = make(chan *player, 4096), make(chan struct{})
	for range runtime.GOMAXPROCS(0) {
		go s.serve()
	}
}

func (s *senders) serve() {
	for {
		select {
		case p := <-s.q:
			p.run()
		case <-s.stop:
			return
		}
	}
}

// close ends the senders once every player has finished.
func (s *senders) close() {
	s.once.Do(func() {}) // none start after this
	if s.stop != nil && s.done.CompareAndSwap(false, true) {
		close(s.stop)
	}
}
