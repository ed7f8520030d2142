package fmp4

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
)

// ErrClosed is returned by Open after Close (server shutdown).
var ErrClosed = errors.New("fmp4: server is shutting down")

// DefaultRingFragments is how many fragments a muxer keeps: with a fragment
// per video frame, 10 s at 25 fps. A new reader starts at the newest
// keyframe still in the ring, so a GOP longer than this makes it wait for
// the next keyframe; a reader further behind than this is dropped.
const DefaultRingFragments = 256

// Muxers holds the live fMP4 muxers, one per stream, started on demand by
// Open and stopped StopDelay after the last Cursor closes. The zero value
// works (a Log of nil discards).
type Muxers struct {
	Log *slog.Logger
	// StopDelay keeps a muxer without readers this long, so a player that
	// reconnects (or the next one) finds it running: [general]
	// streamNoneReaderDelayMS. 0 stops it at once.
	StopDelay time.Duration
	// MinFragment is the least media a fragment holds before it is cut on
	// the next video frame; 0 cuts after every video frame (every audio
	// frame for audio-only streams), the lowest delay. See docs/muxers.md.
	MinFragment time.Duration
	// RingFragments is the ring size; 0 means DefaultRingFragments.
	RingFragments int

	mu      sync.Mutex
	live    map[*hub.Stream]*Muxer
	seen    map[*hub.Stream]struct{} // streams that had a muxer: the tracks-left-out line is said once per stream
	closed  bool
	started atomic.Uint64
}

// Started counts the muxers started over the registry's life (tests assert
// one muxer per stream with it; metrics may export it).
func (ms *Muxers) Started() uint64 { return ms.started.Load() }

// Running is how many muxers run now, stopping ones included.
func (ms *Muxers) Running() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return len(ms.live)
}

// Get returns the running muxer of s, or nil (for a status page).
func (ms *Muxers) Get(s *hub.Stream) *Muxer {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.live[s]
}

func (ms *Muxers) log() *slog.Logger {
	if ms.Log == nil {
		return logging.Discard()
	}
	return ms.Log
}

// Open returns a cursor on the fMP4 muxer of s, starting the muxer if none
// runs. The muxer reads s through an uncounted hub reader: it is not a
// player, the cursors' owners are (see docs/muxers.md).
func (ms *Muxers) Open(s *hub.Stream) (*Cursor, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.closed {
		return nil, ErrClosed
	}
	m := ms.live[s]
	if m == nil {
		rd, err := s.SubscribeUncounted(hub.KindAU, hub.Origin{Proto: "fmp4", ID: "muxer"})
		if err != nil {
			return nil, err
		}
		ring := ms.RingFragments
		if ring <= 0 {
			ring = DefaultRingFragments
		}
		m, err = newMuxer(s, rd, ms.log().With("path", s.Path), ms.MinFragment, ring, ms.firstMuxerLocked(s))
		if err != nil {
			rd.Close()
			return nil, err
		}
		if ms.live == nil {
			ms.live = map[*hub.Stream]*Muxer{}
		}
		ms.live[s] = m
		ms.started.Add(1)
		go m.run(ms.ended)
	}
	m.readers++
	if m.stopTimer != nil {
		m.stopTimer.Stop()
		m.stopTimer = nil
	}
	c := &Cursor{m: m, ms: ms}
	m.mu.Lock()
	c.next = m.startLocked()
	m.mu.Unlock()
	return c, nil
}

// firstMuxerLocked reports whether s gets its first muxer, forgetting the
// streams that ended.
func (ms *Muxers) firstMuxerLocked(s *hub.Stream) bool {
	if ms.seen == nil {
		ms.seen = map[*hub.Stream]struct{}{}
	}
	for old := range ms.seen {
		select {
		case <-old.Done():
			delete(ms.seen, old)
		default:
		}
	}
	if _, ok := ms.seen[s]; ok {
		return false
	}
	ms.seen[s] = struct{}{}
	return true
}

// ended forgets a muxer whose goroutine returned.
func (ms *Muxers) ended(m *Muxer) {
	ms.mu.Lock()
	if ms.live[m.stream] == m {
		delete(ms.live, m.stream)
	}
	ms.mu.Unlock()
}

// release is a cursor's Close: the last one starts the stop delay.
func (ms *Muxers) release(m *Muxer) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m.readers--
	if m.readers > 0 {
		return
	}
	if ms.StopDelay <= 0 {
		ms.stopLocked(m)
		return
	}
	var tm *time.Timer
	tm = time.AfterFunc(ms.StopDelay, func() {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		if m.readers == 0 && m.stopTimer == tm {
			m.stopTimer = nil
			ms.stopLocked(m)
		}
	})
	m.stopTimer = tm
}

// stopLocked ends m's hub reader; its goroutine then ends the muxer. A
// muxer that already ended with its stream is left alone.
func (ms *Muxers) stopLocked(m *Muxer) {
	if ms.live[m.stream] != m {
		return
	}
	delete(ms.live, m.stream)
	m.log.Info("fmp4 muxer stopped: no reader left")
	m.rd.Close()
}

// Close stops every muxer (their cursors drain and get ErrStopped) and
// refuses new ones. The composition root calls it when shutdown starts.
func (ms *Muxers) Close() {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.closed = true
	for _, m := range ms.live {
		if m.stopTimer != nil {
			m.stopTimer.Stop()
		}
		m.rd.Close()
	}
	clear(ms.live)
}

// Cursor is one reader's position in a muxer's fragments. One goroutine
// uses it; Close may come from any.
type Cursor struct {
	m       *Muxer
	ms      *Muxers
	next    uint64
	started bool
	once    sync.Once
}

// Muxer returns the muxer read.
func (c *Cursor) Muxer() *Muxer { return c.m }

// Ready waits for the init segment: the stream's first keyframe with
// parameter sets after the muxer started.
func (c *Cursor) Ready(ctx context.Context) (init []byte, codecs string, err error) {
	m := c.m
	for {
		m.mu.Lock()
		init, codecs, err, wake := m.init, m.codecs, m.err, m.wake
		m.mu.Unlock()
		if init != nil {
			return init, codecs, nil
		}
		if err != nil {
			return nil, "", err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
}

// Next appends the fragments after the cursor's position to dst, waiting
// for at least one. A cursor starts at the newest keyframe fragment when it
// is opened (or the next one), so a reader never starts mid-GOP. Once the muxer stopped it returns what
// is left, then the reason (hub.ErrEnded, ErrStopped); ErrSlowReader when
// the reader fell off the ring.
func (c *Cursor) Next(ctx context.Context, dst []*Fragment) ([]*Fragment, error) {
	m := c.m
	size := uint64(len(m.ring))
	for {
		m.mu.Lock()
		if m.head-c.next > size {
			if c.started {
				m.mu.Unlock()
				return dst, ErrSlowReader
			}
			c.next = m.startLocked() // still waiting for its first keyframe
		}
		n := len(dst)
		for c.next < m.head && len(dst) < cap(dst) {
			f := m.ring[c.next%size]
			c.next++
			if !c.started && !f.Key {
				continue
			}
			c.started = true
			dst = append(dst, f)
		}
		if len(dst) > n || cap(dst) == n {
			m.mu.Unlock()
			return dst, nil
		}
		err, wake := m.err, m.wake
		m.mu.Unlock()
		if err != nil {
			return dst, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
}

// startLocked is where a new reader starts: the newest keyframe fragment
// still in the ring, else the next fragment (and it skips to a keyframe).
func (m *Muxer) startLocked() uint64 {
	if m.haveKey && m.head-m.lastKey <= uint64(len(m.ring)) {
		return m.lastKey
	}
	return m.head
}

// Lag is how many fragments the cursor is behind the muxer.
func (c *Cursor) Lag() uint64 {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	return c.m.head - c.next
}

// Close releases the cursor; the muxer's last one starts its stop delay.
func (c *Cursor) Close() {
	c.once.Do(func() { c.ms.release(c.m) })
}
