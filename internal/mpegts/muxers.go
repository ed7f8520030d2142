package mpegts

import (
	"log/slog"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/muxring"
)

// DefaultRingChunks is how many chunks a muxer keeps. With a chunk per
// access unit, 25 fps video and 48 kHz AAC make about 72 a second: 1024 is
// about 14 s. A new reader starts at the newest keyframe still in the
// ring; a reader further behind than this is dropped.
const DefaultRingChunks = 1024

// Muxers holds the live MPEG-TS muxers, one per stream, started on demand
// by Open and stopped StopDelay after the last Cursor closes. The zero
// value works (a Log of nil discards).
type Muxers struct {
	Log *slog.Logger
	// StopDelay keeps a muxer without readers this long, so a player that
	// reconnects (or the next one, or the next HLS segment request) finds
	// it running. 0 stops it at once.
	StopDelay time.Duration
	// RingChunks is the ring size; 0 means DefaultRingChunks.
	RingChunks int

	reg muxring.Muxers
}

// muxFormat is Muxers as muxring sees it: the options, read at each Open
// and last Close, and the engine.
type muxFormat Muxers

func (f *muxFormat) Options() muxring.Options {
	ring := f.RingChunks
	if ring <= 0 {
		ring = DefaultRingChunks
	}
	return muxring.Options{Name: "mpegts", Log: f.Log, StopDelay: f.StopDelay, RingSize: ring}
}

func (f *muxFormat) NewEngine(s *hub.Stream, rd *hub.Reader, out *muxring.Ring, log *slog.Logger, first bool) (muxring.Engine, error) {
	return newMuxer(s, rd, out, log, first)
}

// Open returns a cursor on the MPEG-TS muxer of s, starting the muxer if
// none runs. The muxer reads s through an uncounted hub reader: it is not
// a player, the cursors' owners are (see docs/muxers.md). Its header
// (Cursor.Ready) is empty: it comes once the first keyframe is muxed.
func (ms *Muxers) Open(s *hub.Stream) (*muxring.Cursor, error) {
	return ms.reg.Open(s, (*muxFormat)(ms))
}

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

// Close stops every muxer (their cursors drain and get muxring.ErrStopped)
// and refuses new ones. The composition root calls it when shutdown starts.
func (ms *Muxers) Close() { ms.reg.Close() }
