package hub

import (
	"sync/atomic"
)

// ring is a single-writer, many-reader ring of frame pointers. The writer
// never waits for readers: a reader that falls more than len(slots) behind
// finds its frames overwritten and must skip.
type ring struct {
	slots []atomic.Pointer[Frame]
	mask  uint64
	head  atomic.Uint64 // position the next frame will take

	// lastKey is the position of the newest keyframe + 1 (0 = none yet).
	lastKey atomic.Uint64

	// notify is closed and replaced on every write, waking every reader that
	// waits, with one allocation per frame whatever the number of readers.
	notify atomic.Pointer[chan struct{}]
}

func newRing(size int) *ring {
	n := 1
	for n < size {
		n <<= 1
	}
	r := &ring{slots: make([]atomic.Pointer[Frame], n), mask: uint64(n - 1)}
	ch := make(chan struct{})
	r.notify.Store(&ch)
	return r
}

func (r *ring) size() uint64 { return uint64(len(r.slots)) }

// write appends f. Only one goroutine writes a ring at a time.
func (r *ring) write(f *Frame) {
	pos := r.head.Load()
	f.seq = pos
	r.slots[pos&r.mask].Store(f)
	if f.Key {
		r.lastKey.Store(pos + 1)
	}
	r.head.Store(pos + 1)
	ch := make(chan struct{})
	old := r.notify.Swap(&ch)
	close(*old)
}

// wake releases waiting readers without a frame (stream closed).
func (r *ring) wake() {
	ch := make(chan struct{})
	old := r.notify.Swap(&ch)
	close(*old)
}

// at returns the frame at pos, or nil when it has been overwritten or not
// written yet.
func (r *ring) at(pos uint64) *Frame {
	f := r.slots[pos&r.mask].Load()
	if f == nil || f.seq != pos {
		return nil
	}
	return f
}

// startPos is where a new reader begins: the newest keyframe still in the
// ring (the GOP cache), else the head, waiting for the next keyframe.
func (r *ring) startPos() (pos uint64, haveKey bool) {
	head := r.head.Load()
	if k := r.lastKey.Load(); k > 0 && head-(k-1) <= r.size() {
		return k - 1, true
	}
	return head, false
}
