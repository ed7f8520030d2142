// Package fanout writes to many sockets from a few goroutines: the way a
// server serves hundreds of players of one stream without a goroutine
// (and its stack, and its wake-up per frame) per player.
//
// A player's hub reader, made event-driven with hub.Reader.SetReady, calls
// its Runner's Wake when frames come. Wake queues the runner for one of
// the Pool's goroutines (one per CPU), which runs the player's serve
// function: take the frames, build the batch, and Writer.TryWrite it with
// one non-blocking writev. When the socket does not take the whole batch,
// serve hands the rest to a goroutine of the player's own, which waits for
// the socket as a goroutine-per-player server would and then calls Run to
// go on; the next Wake goes to the pool again.
//
// A player also sends now and then (RTSP keep-alives and RTCP reports,
// RTMP pings and acknowledgements): the Poller waits for all those sockets
// with one epoll goroutine, and a goroutine runs only while something
// arrived is read and handled. A waiting player therefore holds no
// goroutine at all, and borrows its batch and iovecs from pools only for
// a turn.
//
// On systems without the non-blocking writev and epoll (anything but Linux
// here), NewWriter and Poller.Watch report false and servers keep one
// goroutine per player.
package fanout

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Pool is a server's sender goroutines. The zero value is ready; they
// start with the first Schedule.
type Pool struct {
	once sync.Once
	q    chan *Runner
	stop chan struct{}
	done atomic.Bool
}

// queueLen bounds the runners waiting for a sender; past it a runner gets
// a goroutine of its own for that turn, so a wake never blocks the hub.
const queueLen = 4096

func (p *Pool) schedule(r *Runner) {
	p.once.Do(p.start)
	select {
	case p.q <- r:
	default:
		go r.Run()
	}
}

func (p *Pool) start() {
	p.q, p.stop = make(chan *Runner, queueLen), make(chan struct{})
	for range runtime.GOMAXPROCS(0) {
		go p.serve()
	}
}

func (p *Pool) serve() {
	for {
		select {
		case r := <-p.q:
			r.Run()
		case <-p.stop:
			return
		}
	}
}

// Close stops the senders. Call it once every runner has finished (a
// turn queued after Close is never run).
func (p *Pool) Close() {
	p.once.Do(func() {}) // none start after this
	if p.stop != nil && p.done.CompareAndSwap(false, true) {
		close(p.stop)
	}
}

// Runner gives one player's serve function its turns, one goroutine at a
// time, as often as it is woken.
type Runner struct {
	pool *Pool
	// serve takes and writes what the player has. It returns true when the
	// player waits for its next Wake, false when the turn has left the
	// runner's hands (the play ended, or a goroutine of the player's own
	// finishes a write and then calls Run).
	serve func() bool
	// crashed is told of a panic in serve; the runner is then dead (its
	// wake-ups stay pending, so none is served again).
	crashed func(v any)
	// pending counts wake-ups not yet served; the one that makes it 1
	// queues the runner, so only one goroutine serves it at a time.
	pending atomic.Int32
}

// NewRunner makes a runner of serve on pool. A panic in serve is
// recovered and handed to crashed, which must end that player (close its
// connection): a sender serves every player, so one broken player must not
// take down the others, nor the server.
func NewRunner(pool *Pool, serve func() bool, crashed func(v any)) *Runner {
	return &Runner{pool: pool, serve: serve, crashed: crashed}
}

// Start gives the runner its first turn.
func (r *Runner) Start() { r.Wake() }

// Wake asks for a turn. It only queues, so the hub's writer may call it.
func (r *Runner) Wake() {
	if r.pending.Add(1) == 1 {
		r.pool.schedule(r)
	}
}

// Run serves until serve waits with no wake-up pending, or gives its turn
// away. The pool calls it; so does a player's own goroutine that took the
// turn from serve.
func (r *Runner) Run() {
	defer func() {
		if v := recover(); v != nil {
			r.crashed(v)
		}
	}()
	for {
		n := r.pending.Load()
		if !r.serve() {
			return
		}
		if r.pending.Add(-n) == 0 {
			return
		}
	}
}
