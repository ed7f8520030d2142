package fmp4

import (
	"log/slog"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/muxring"
)

// The registry, the ring of fragments and the readers' cursors are
// muxring's, shared with MPEG-TS; these names keep fMP4's callers reading
// as they did.
type (
	// Fragment is one moof+mdat; its mfhd sequence number is Seq+1.
	Fragment = muxring.Chunk
	// Cursor is one reader's position in a muxer's fragments.
	Cursor = muxring.Cursor
)

var (
	ErrClosed     = muxring.ErrClosed
	ErrSlowReader = muxring.ErrSlowReader
	ErrStopped    = muxring.ErrStopped
)

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

	reg muxring.Muxers
}

// muxFormat is Muxers as muxring sees it: the options, read at each Open and
// last Close, and the engine.
type muxFormat Muxers

func (f *muxFormat) Options() muxring.Options {
	ring := f.RingFragments
	if ring <= 0 {
		ring = DefaultRingFragments
	}
	return muxring.Options{Name: "fmp4", Log: f.Log, StopDelay: f.StopDelay, RingSize: ring}
}

func (f *muxFormat) NewEngine(s *hub.Stream, rd *hub.Reader, out *muxring.Ring, log *slog.Logger, first bool) (muxring.Engine, error) {
	return newMuxer(s, rd, out, log, f.MinFragment, first)
}

// Open returns a cursor on the fMP4 muxer of s, starting the muxer if none
// runs. The muxer reads s through an uncounted hub reader: it is not a
// player, the cursors' owners are (see docs/muxers.md). Its header
// (Cursor.Ready) is the init segment.
func (ms *Muxers) Open(s *hub.Stream) (*Cursor, error) { return ms.reg.Open(s, (*muxFormat)(ms)) }

// Started counts the muxers started over the registry's life.
func (ms *Muxers) Started() uint64 { return ms.reg.Started() }

// Running is how many muxers run now, stopping ones included.
func (ms *Muxers) Running() int { return ms.reg.Running() }

// Get returns the running muxer of s, or nil (for a status page).
func (ms *Muxers) Get(s *hub.Stream) *Muxer {
	if r := ms.reg.Get(s); r != nil {
		m, _ := r.Engine().(*Muxer)
		return m
	}
	return nil
}

// Close stops every muxer (their cursors drain and get ErrStopped) and
// refuses new ones. The composition root calls it when shutdown starts.
func (ms *Muxers) Close() { ms.reg.Close() }
