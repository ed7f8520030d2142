package hub

import (
	"sync"
	"sync/atomic"
	"time"
)

// ring is a single-writer, many-reader ring of frame pointers. The writer
// never waits for readers: a reader that falls more than len(slots) behind
// finds its frames overwritten and must skip.
//
// Wake-ups: a reader that has caught up parks itself on the ring (under mu)
// and blocks on its own cap-1 signal channel. The writer checks one atomic
// counter after each frame and, only when someone is parked, hands the whole
// parked list a token. A reader busy writing to its socket costs the writer
// nothing, no frame allocates, and no channel is shared by all readers (a
// shared channel made every woken reader contend on its lock: see docs/hub.md).
type ring struct {
	slots []atomic.Pointer[Frame]
	mask  uint64
	head  atomic.Uint64 // position the next frame will take

	// lastKey is the position of the newest keyframe + 1 (0 = none yet).
	lastKey atomic.Uint64

	// ended is set once no frame will follow (the publisher left, or the
	// converter that fills this ring returned). Readers drain, then end.
	ended atomic.Bool

	nparked atomic.Int32 // len(parked), readable without mu
	mu      sync.Mutex
	parked  []*Reader // readers blocked on their sig, waiting for a frame
	spare   []*Reader // the previous parked list, reused to avoid allocating

	// kick starts a wake-up round in the ring's waker goroutine, which runs
	// (started under mu) once more than inlineWakeMax readers were parked.
	kick   chan struct{}
	waking bool

	// Writer-only state for holding wake-ups until a video frame is whole.
	markers  uint64    // bit t: track t's video packets have carried the RTP marker
	held     int       // flushes skipped since the last wake-up
	heldFrom time.Time // Recv of the first frame whose wake-up was held
	lastMid  bool      // the newest frame is MidFrame
}

// Wake-ups are held while a video frame is incomplete, at most this many
// flushes or this long (by the frames' arrival times), so a stream whose
// markers are unreliable still flows.
const (
	maxHeldFlushes = 256
	maxHeldTime    = time.Millisecond
)

// inlineWakeMax is how many parked readers the writer wakes itself; a
// bigger list is handed to the ring's waker goroutine, so the writer's work
// per frame stays bounded whatever the reader count. A variable so the
// benchmark can compare both ways.
var inlineWakeMax int32 = 64

func newRing(size int) *ring {
	n := 1
	for n < size {
		n <<= 1
	}
	return &ring{slots: make([]atomic.Pointer[Frame], n), mask: uint64(n - 1)}
}

func (r *ring) size() uint64 { return uint64(len(r.slots)) }

// write appends f and wakes parked readers.
func (r *ring) write(f *Frame) {
	r.append(f)
	r.flush()
}

// flush wakes the readers parked since the last wake-up, unless the newest
// frame is the middle of a video frame whose rest is on its way (see
// Frame.MidFrame): readers then wake once per video frame, not once per
// socket read of the publisher, and write the frame with one writev. The
// frame cannot be decoded before its last packet anyway, so holding its
// first packets until then delays no picture.
func (r *ring) flush() {
	if r.lastMid {
		if r.held == 0 {
			r.heldFrom = r.slots[(r.head.Load()-1)&r.mask].Load().Recv
		}
		if r.held < maxHeldFlushes {
			f := r.slots[(r.head.Load()-1)&r.mask].Load()
			if f.Recv.Sub(r.heldFrom) < maxHeldTime {
				r.held++
				return
			}
		}
	}
	r.held = 0
	n := r.nparked.Load()
	switch {
	case n == 0:
	case n <= inlineWakeMax:
		r.wakeAll()
	default:
		r.kickWaker()
	}
}

// kickWaker asks the waker goroutine for a wake-up round, starting it the
// first time. Kicks coalesce: one round wakes everyone parked by then.
func (r *ring) kickWaker() {
	r.mu.Lock()
	if r.ended.Load() {
		r.mu.Unlock()
		r.wakeAll()
		return
	}
	if !r.waking {
		r.waking = true
		r.kick = make(chan struct{}, 1)
		go r.runWaker(r.kick)
	}
	kick := r.kick
	r.mu.Unlock()
	select {
	case kick <- struct{}{}:
	default:
	}
}

// runWaker does wake-up rounds until the ring ends: end sends a last kick
// after setting ended, and after the end no reader parks again.
func (r *ring) runWaker(kick chan struct{}) {
	for range kick {
		r.wakeAll()
		if r.ended.Load() {
			return
		}
	}
}

// append adds f without waking parked readers (readers that are running see
// it). Only one goroutine writes a ring at a time, and a frame is written to
// one ring once (its seq is the ring position).
func (r *ring) append(f *Frame) {
	r.lastMid = f.mid
	pos := r.head.Load()
	f.seq = pos
	r.slots[pos&r.mask].Store(f)
	if f.Key {
		r.lastKey.Store(pos + 1)
	}
	// head is stored before flush loads nparked, and a parking reader
	// stores nparked before it loads head (both sequentially consistent), so
	// either the writer sees the reader parked or the reader sees the new
	// head: no wake-up is lost.
	r.head.Store(pos + 1)
}

// end marks the ring finished and releases every parked reader.
func (r *ring) end() {
	r.ended.Store(true)
	r.wakeAll()
	r.mu.Lock()
	kick := r.kick
	r.mu.Unlock()
	if kick != nil {
		select {
		case kick <- struct{}{}:
		default: // a kick is pending; the waker sees ended after it
		}
	}
}

// wakeAll gives every parked reader a token. The list is taken under mu and
// signalled outside it, so readers that wake and park again do not wait for
// the writer to finish the list.
func (r *ring) wakeAll() {
	r.mu.Lock()
	list := r.parked
	r.parked, r.spare = r.spare, nil
	r.nparked.Store(0)
	r.mu.Unlock()
	for i, rd := range list {
		rd.signal()
		list[i] = nil
	}
	r.mu.Lock()
	if r.spare == nil {
		r.spare = list[:0]
	}
	r.mu.Unlock()
}

// park registers rd as waiting for a frame after seen. It returns false,
// without parking, when a frame came, the ring ended or rd was closed in the
// meantime; the caller then loops instead of blocking.
//
// A parked reader leaves the list only through wakeAll or unpark, and
// leaves its Read only with a token, so it is never listed twice; the one
// token not consumed by a parked Read is Close's, after which Read never
// parks again.
func (r *ring) park(rd *Reader, seen uint64) bool {
	r.mu.Lock()
	r.parked = append(r.parked, rd)
	r.nparked.Store(int32(len(r.parked)))
	if r.head.Load() != seen || r.ended.Load() || rd.closed.Load() {
		r.parked = r.parked[:len(r.parked)-1]
		r.nparked.Store(int32(len(r.parked)))
		r.mu.Unlock()
		return false
	}
	r.mu.Unlock()
	return true
}

// unpark removes a closed reader from the parked list so it is not kept
// alive until the next frame.
func (r *ring) unpark(rd *Reader) {
	r.mu.Lock()
	for i, p := range r.parked {
		if p == rd {
			last := len(r.parked) - 1
			r.parked[i] = r.parked[last]
			r.parked[last] = nil
			r.parked = r.parked[:last]
			r.nparked.Store(int32(last))
			break
		}
	}
	r.mu.Unlock()
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
