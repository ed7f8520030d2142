package hub

import (
	"sync/atomic"
	"time"
)

// Reader follows one view of a stream with its own cursor. One goroutine
// uses a Reader; Close may be called from any.
type Reader struct {
	s       *Stream
	v       *view
	r       *ring
	who     Origin
	kind    Kind
	counted bool
	since   int64         // UnixNano of the subscribe
	bytes   atomic.Uint64 // payload bytes handed out by Read/TryRead

	pos     uint64
	cursor  atomic.Uint64 // pos as of the last Read, for Lag from other goroutines
	started bool          // false until the first keyframe: a reader never starts mid-GOP
	err     error         // sticky ErrSlowReader under the close policy

	// sig gets a token when a frame arrives while the reader is parked, when
	// its ring ends, or on Close. Stale tokens only cause one more look.
	// The first Read that parks makes it (only the reader's goroutine
	// stores it, before the park that makes signals reach it): an
	// event-driven reader (SetReady) never needs one, and a channel is
	// 96 bytes per player (issue 14: memory per viewer).
	sig atomic.Pointer[chan struct{}]
	// ready, when set, is called instead of sending the token (SetReady).
	// Atomic: Close signals from any goroutine, and the load is what orders
	// the owner's set-up (SetReady and what ready uses) before that call.
	ready  atomic.Pointer[func()]
	closed atomic.Bool
	once   bool // Close ran; guarded by s.mu

	Skips uint64 // times this reader fell off the ring and jumped ahead
}

// Stream returns the stream read.
func (r *Reader) Stream() *Stream { return r.s }

// Kind returns the kind of frames the reader gets.
func (r *Reader) Kind() Kind { return r.kind }

// Lag is how many frames the reader was behind the newest one after its
// last Read (for metrics and logs; safe from any goroutine).
func (r *Reader) Lag() uint64 { return r.r.head.Load() - r.cursor.Load() }

func (r *Reader) signal() {
	if ready := r.ready.Load(); ready != nil {
		(*ready)()
		return
	}
	if sig := r.sig.Load(); sig != nil {
		select {
		case *sig <- struct{}{}:
		default:
		}
	}
	// No channel: the reader has never parked in Read, so there is no one
	// to wake; Close's flag and the ring's end are what its next Read sees.
}

// waitChan is the channel a blocking Read parks on, made on first use.
func (r *Reader) waitChan() chan struct{} {
	if sig := r.sig.Load(); sig != nil {
		return *sig
	}
	sig := make(chan struct{}, 1)
	r.sig.Store(&sig)
	return sig
}

// Read blocks until frames are available and copies up to len(dst) of them
// into dst. It returns ErrEnded once the stream has ended and its frames are
// read, ErrReaderClosed after Close, ErrSlowReader under the close policy.
// A Read with an empty dst returns 0, nil at once.
func (r *Reader) Read(dst []*Frame) (int, error) { return r.read(dst, true) }

// SetReady makes the reader event-driven: its owner calls TryRead instead
// of blocking in Read, and ready runs whenever a TryRead that found nothing
// may now find something (frames came, the ring ended, Close). It runs on
// the writer's or the waker's goroutine, so it must only schedule work.
// Call it once, before the first TryRead; Close may come from any
// goroutine after it.
//
// This is how a server writes to many sockets from a few goroutines (a
// non-blocking writev per reader per frame) instead of parking one
// goroutine per reader: no stack per reader, and no goroutine wake-up per
// reader per frame.
func (r *Reader) SetReady(ready func()) { r.ready.Store(&ready) }

// TryRead is Read without blocking: when there is no frame it parks the
// reader and returns 0, nil, and the ready function given to SetReady runs
// once there may be one. Without SetReady nothing would wake the reader.
func (r *Reader) TryRead(dst []*Frame) (int, error) { return r.read(dst, false) }

func (r *Reader) read(dst []*Frame, block bool) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	for {
		if r.closed.Load() {
			return 0, ErrReaderClosed
		}
		if r.err != nil {
			return 0, r.err
		}
		head := r.r.head.Load()
		if head-r.pos > r.r.size() {
			if err := r.fellBehind(); err != nil {
				return 0, err
			}
			continue
		}
		n := 0
		for r.pos < head && n < len(dst) {
			f := r.r.at(r.pos)
			if f == nil { // overwritten while we looked
				break
			}
			r.pos++
			if !r.started {
				if !f.Key {
					continue
				}
				r.started = true
			}
			dst[n] = f
			n++
		}
		if n > 0 {
			r.cursor.Store(r.pos)
			if r.counted {
				// One uncontended atomic per batch: the stream's and the
				// hub's totals add the readers up when asked (stats.go).
				r.bytes.Add(payloadBytes(dst[:n]))
			}
			return n, nil
		}
		if r.pos < head { // the frame at pos was overwritten
			if err := r.fellBehind(); err != nil {
				return 0, err
			}
			continue
		}
		if r.r.ended.Load() {
			// Frames written before the end are visible now; drain them first.
			if r.r.head.Load() == r.pos {
				return 0, ErrEnded
			}
			continue
		}
		var sig chan struct{}
		if block {
			sig = r.waitChan() // before park: a signal after it must find the channel
		}
		if r.r.park(r, head) {
			if !block {
				return 0, nil
			}
			<-sig
		}
	}
}

// fellBehind applies the slow-reader policy, logging at most every 5 s per stream.
func (r *Reader) fellBehind() error {
	r.Skips++
	r.s.Skips.Add(1)
	r.s.h.stats.skips.Add(1)
	now := time.Now().UnixNano()
	if last := r.s.lastSlowLog.Load(); now-last > int64(5*time.Second) && r.s.lastSlowLog.CompareAndSwap(last, now) {
		action := "skipped to the newest keyframe"
		if r.s.h.opts.SlowReader == CloseSlow {
			action = "closed"
		}
		r.s.h.log.Warn("slow reader fell behind the stream; "+action+
			" (its network or client is slower than the stream; a larger ring size absorbs longer stalls)",
			"path", r.s.Path, "reader", r.who.String(), "ring_frames", r.r.size(), "skips_total", r.s.Skips.Load())
	}
	if r.s.h.opts.SlowReader == CloseSlow {
		r.s.h.stats.drops.Add(1)
		r.err = ErrSlowReader
		return ErrSlowReader
	}
	pos, ok := r.r.startPos()
	r.pos = pos
	r.cursor.Store(pos)
	r.started = ok || !r.s.hasVideo
	return nil
}

// Close detaches the reader and wakes a Read blocked in another goroutine,
// which returns ErrReaderClosed. The last reader of a converted view stops
// its converter.
func (r *Reader) Close() {
	s := r.s
	s.mu.Lock()
	if r.once {
		s.mu.Unlock()
		return
	}
	r.once = true
	r.closed.Store(true)
	r.v.readers--
	if r.counted {
		s.readers--
		delete(s.players, r)
	}
	var stop *Reader
	if r.v.src != nil && r.v.readers == 0 {
		if s.views[r.kind] == r.v {
			s.views[r.kind] = nil
		}
		stop = r.v.src
	}
	s.mu.Unlock()
	r.signal()
	r.r.unpark(r)
	if stop != nil {
		stop.Close()
	}
	if r.counted {
		s.h.stats.playerLeft(r)
		s.h.readerRemoved(r)
	}
}
