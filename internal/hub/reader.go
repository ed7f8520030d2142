package hub

import "time"

// Reader follows one view of a stream with its own cursor. One goroutine
// uses a Reader; Close may be called from any.
type Reader struct {
	s       *Stream
	v       *view
	r       *ring
	who     Origin
	kind    Kind
	counted bool

	pos     uint64
	started bool // false until the first keyframe: a reader never starts mid-GOP

	closed chan struct{}
	once   bool

	Skips uint64 // times this reader fell off the ring and jumped ahead
}

// Stream returns the stream read.
func (r *Reader) Stream() *Stream { return r.s }

// Read blocks until frames are available and copies up to len(dst) of them
// into dst. It returns ErrEnded once the stream has ended and its frames are
// read, ErrReaderClosed after Close, ErrSlowReader under the close policy.
func (r *Reader) Read(dst []*Frame) (int, error) {
	for {
		// Load the wake-up channel before looking at head, so a write
		// between the two cannot be missed.
		wait := *r.r.notify.Load()
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
			return n, nil
		}
		if r.pos < head { // overwritten: loop to the skip logic
			if r.r.at(r.pos) == nil {
				if err := r.fellBehind(); err != nil {
					return 0, err
				}
			}
			continue
		}
		select {
		case <-wait:
		case <-r.s.done:
			if r.r.head.Load() == r.pos {
				return 0, ErrEnded
			}
		case <-r.closed:
			return 0, ErrReaderClosed
		}
	}
}

// fellBehind applies the slow-reader policy, logging at most every 5 s per stream.
func (r *Reader) fellBehind() error {
	r.Skips++
	r.s.Skips.Add(1)
	now := time.Now().UnixNano()
	if last := r.s.lastSlowLog.Load(); now-last > int64(5*time.Second) && r.s.lastSlowLog.CompareAndSwap(last, now) {
		action := "skipped to the newest keyframe"
		if r.s.h.opts.SlowReader == CloseSlow {
			action = "closed"
		}
		r.s.h.log.Warn("slow reader fell behind the stream; "+action, "path", r.s.Path, "reader", r.who.String(),
			"skips_total", r.s.Skips.Load())
	}
	if r.s.h.opts.SlowReader == CloseSlow {
		return ErrSlowReader
	}
	pos, ok := r.r.startPos()
	r.pos = pos
	r.started = ok || !r.s.hasVideo
	return nil
}

// Close detaches the reader. The last reader of a converted view stops its converter.
func (r *Reader) Close() {
	s := r.s
	s.mu.Lock()
	if r.once {
		s.mu.Unlock()
		return
	}
	r.once = true
	close(r.closed)
	r.v.readers--
	if r.counted {
		s.readers--
	}
	var stop *Reader
	if r.v.src != nil && r.v.readers == 0 {
		if s.views[r.kind] == r.v {
			s.views[r.kind] = nil
		}
		stop = r.v.src
	}
	s.mu.Unlock()
	if stop != nil {
		stop.Close()
	}
}
