//go:build linux

package fanout

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Poller waits for many idle sockets at once with one epoll instance and
// one goroutine: the way a server keeps a playing connection, which sends
// a request or an RTCP report every few seconds, without a goroutine (and
// its stack) blocked in Read for each. When a socket becomes readable, the
// Poller calls its Watch's ready function, which starts a short-lived
// goroutine to read and handle what came; that goroutine arms the Watch
// again when it has nothing left to read.
//
// The runtime's own netpoller cannot be used for this: RawConn.Read with a
// callback that asks to wait parks the calling goroutine, which is the
// goroutine per connection this avoids. The zero value is ready; the epoll
// goroutine starts with the first Watch.
type Poller struct {
	once    sync.Once
	err     error // why the poller could not start; every Watch then reports false
	epfd    int
	wakefd  int // an eventfd that ends the wait on Close
	mu      sync.Mutex
	watches map[uint64]*Watch
	next    uint64
	closed  bool
	done    chan struct{}
}

// Watch is one socket's registration with a Poller.
type Watch struct {
	p     *Poller
	rc    syscall.RawConn
	id    uint64
	ready func()
	added bool // registered with epoll (later arms modify it)
	state atomic.Int32
}

const (
	watchIdle    = iota // its owner reads the socket, or ready is running
	watchArmed          // epoll waits for it; ready comes next
	watchStopped        // Stop was called; ready never comes again
)

// wakeID is the epoll data of the eventfd; watches count from 1.
const wakeID = 0

func (p *Poller) start() {
	p.epfd, p.err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if p.err != nil {
		return
	}
	p.wakefd, p.err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if p.err != nil {
		unix.Close(p.epfd)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setData(&ev, wakeID)
	if p.err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, p.wakefd, &ev); p.err != nil {
		unix.Close(p.wakefd)
		unix.Close(p.epfd)
		return
	}
	p.watches = map[uint64]*Watch{}
	p.done = make(chan struct{})
	go p.loop()
}

// Watch registers nc, to be armed by Arm. It reports false where nc is not
// a socket the poller can wait for (a TLS connection, a pipe) or the
// poller is closed; the caller then waits for nc in a goroutine, as before.
func (p *Poller) Watch(nc net.Conn, ready func()) (*Watch, bool) {
	p.once.Do(p.start)
	if p.err != nil {
		return nil, false
	}
	rc, ok := rawConn(nc)
	if !ok {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, false
	}
	p.next++
	w := &Watch{p: p, rc: rc, id: p.next, ready: ready}
	p.watches[w.id] = w
	return w, true
}

// Arm asks for one call of ready when the socket has something to read,
// has been closed by the peer, or fails; or when Stop is called first.
// Where the socket cannot be armed (it is closed already, or Stop was
// called while it was not armed), ready is called at once, so its reader
// meets the error. Only the owner that ready last handed the socket to
// calls Arm.
func (w *Watch) Arm() {
	// Decided before the state changes: once armed, ready may run on
	// another goroutine, which may Arm again.
	op := unix.EPOLL_CTL_MOD
	if !w.added {
		op, w.added = unix.EPOLL_CTL_ADD, true
	}
	if !w.state.CompareAndSwap(watchIdle, watchArmed) {
		// Stopped while its owner was reading (the connection was closed
		// meanwhile): nothing will come, so the owner's next turn starts
		// now and meets the close.
		w.ready()
		return
	}
	// One-shot: the socket reports once, then waits for the next Arm, so
	// only one goroutine handles a connection at a time. RDHUP reports a
	// peer's close, so a player that hangs up is cleaned up at once.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	setData(&ev, w.id)
	var cerr error
	err := w.rc.Control(func(fd uintptr) { cerr = unix.EpollCtl(w.p.epfd, op, int(fd), &ev) })
	if err == nil && cerr == nil {
		return
	}
	if w.state.CompareAndSwap(watchArmed, watchIdle) {
		w.ready()
	}
}

// Stop ends the watch: call it before closing the socket. When the watch
// was armed, Stop calls ready itself (its reader then meets the closed
// socket and ends the connection); a later Arm calls ready at once.
// Closing the socket removes it from epoll.
func (w *Watch) Stop() {
	w.p.mu.Lock()
	delete(w.p.watches, w.id)
	w.p.mu.Unlock()
	if w.state.Swap(watchStopped) == watchArmed {
		w.ready()
	}
}

// Check calls ready for an armed watch whose socket was closed without
// Stop (by another owner of the connection, as kick_session closes it:
// closing removes it from epoll, which then never reports it). The
// poller's goroutine checks every armed watch every sweepEvery.
func (w *Watch) Check() {
	if w.state.Load() != watchArmed {
		return
	}
	if err := w.rc.Control(func(uintptr) {}); err == nil {
		return
	}
	if w.state.CompareAndSwap(watchArmed, watchIdle) {
		w.ready()
	}
}

// loop is the poller's goroutine: it blocks its thread in epoll_wait and
// hands each ready socket to its Watch's ready function.
func (p *Poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	swept := time.Now() // nothing is armed yet: the first sweep is one period away
	var armed []*Watch
	for {
		if now := time.Now(); now.Sub(swept) >= sweepEvery {
			swept = now
			armed = p.sweep(armed[:0])
		}
		n, err := unix.EpollWait(p.epfd, events, int(sweepEvery/time.Millisecond))
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return // EBADF after an unclean stop: nothing to wait for
		}
		for i := range events[:n] {
			id := getData(&events[i])
			if id == wakeID {
				unix.Close(p.wakefd)
				unix.Close(p.epfd)
				return
			}
			p.mu.Lock()
			w := p.watches[id]
			p.mu.Unlock()
			if w != nil && w.state.CompareAndSwap(watchArmed, watchIdle) {
				w.ready()
			}
		}
	}
}

// sweepEvery is how often the poller looks for sockets closed under their
// watch (Check): the longest a kicked idle player stays.
var sweepEvery = 2 * time.Second // a variable so a test can take the sweep out of the way

// sweep checks every armed watch; buf is reused between sweeps.
func (p *Poller) sweep(buf []*Watch) []*Watch {
	p.mu.Lock()
	for _, w := range p.watches {
		if w.state.Load() == watchArmed {
			buf = append(buf, w)
		}
	}
	p.mu.Unlock()
	for i, w := range buf {
		w.Check()
		buf[i] = nil
	}
	return buf
}

// Close stops the poller's goroutine. Call it once every watch is stopped;
// later Watch calls report false.
func (p *Poller) Close() {
	p.once.Do(func() { p.err = net.ErrClosed })
	p.mu.Lock()
	if p.closed || p.done == nil {
		p.closed = true
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	var one [8]byte
	one[0] = 1 // eventfd counters are host-endian; any non-zero value wakes
	unix.Write(p.wakefd, one[:])
	<-p.done
}

// Watching reports how many watches are registered, for tests.
func (p *Poller) Watching() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.watches)
}

// setData and getData keep a 64-bit id in epoll's data union (Fd and Pad).
func setData(ev *unix.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func getData(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}
