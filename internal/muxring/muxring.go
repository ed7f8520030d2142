// Package muxring is what every shared, on-demand muxer has in common,
// whatever its format: a registry of one muxer per hub stream, started by
// its first reader and stopped a grace time after its last (Muxers); the
// ring of immutable chunks a muxer publishes, with its header and the
// position of its newest keyframe (Ring); and the readers' positions in it
// (Cursor). A format (fMP4, MPEG-TS) supplies only the Engine that turns
// the stream's access units into chunks. See docs/muxers.md.
package muxring

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/hub"
)

// Errors a Cursor or Open returns besides the hub's ErrEnded.
var (
	// ErrSlowReader: the reader fell more than the ring of chunks behind
	// the muxer; it is dropped, the stream and the other readers go on.
	ErrSlowReader = errors.New("reader fell a whole ring of muxed chunks behind the stream")
	// ErrStopped: the muxer was stopped (no reader left, or server
	// shutdown) while read.
	ErrStopped = errors.New("muxer stopped")
	// ErrClosed is returned by Open after Close (server shutdown).
	ErrClosed = errors.New("muxers closed: the server is shutting down")
)

// DefaultRingSize is the ring's size when Options.RingSize is 0.
const DefaultRingSize = 256

// Chunk is one piece of a muxer's output, immutable once published: an
// fMP4 fragment (moof+mdat), the TS packets of one access unit. Every
// reader gets the same *Chunk.
type Chunk struct {
	Seq uint64 // from 0 in the muxer's life
	// Key: the chunk begins with a video keyframe (every chunk of an
	// audio-only stream), self-contained after the header: a reader, an
	// HLS segment or a recording may start here.
	Key bool
	// Discontinuity: the stream's timestamps do not continue from the
	// previous chunk (a publisher's clock restarted or jumped); HLS writes
	// EXT-X-DISCONTINUITY before it. DTS jumps here, so a duration must not
	// be measured across it.
	Discontinuity bool
	DTS           time.Duration // decode time of its first lead-track sample, in the hub's clock
	Duration      time.Duration // of its lead-track samples; 0 where unknown (TS chunks)
	Data          []byte
	Recv          time.Time // when its first lead-track frame reached the server: Made - Recv is the muxer's delay
	Made          time.Time
}

// Engine is one stream's muxer of one format, built by Format.NewEngine
// on the stream's hub reader and the Ring it publishes into.
type Engine interface {
	// Mux reads the stream and publishes until its hub reader fails
	// (hub.ErrEnded when the stream ended: it publishes what it still
	// holds first; hub.ErrReaderClosed when Muxers stopped it) or the
	// stream cannot be muxed, and returns why. A panic ends this muxer
	// with an error, not the server.
	Mux() error
}

// Format is what Muxers asks of a format. Options is read at each Open and
// at each last Close, so a changed stop delay applies to the next muxer.
type Format interface {
	Options() Options
	// NewEngine builds the muxer of s. first reports whether s had no
	// muxer of this format before, so that what the format leaves out of a
	// stream is logged once per stream, not once per muxer.
	NewEngine(s *hub.Stream, rd *hub.Reader, out *Ring, log *slog.Logger, first bool) (Engine, error)
}

// Options configure a format's muxers.
type Options struct {
	// Name is the format ("fmp4", "mpegts"): the Origin.Proto of the
	// muxer's own hub reader and the head of its log lines.
	Name string
	Log  *slog.Logger // nil discards
	// StopDelay keeps a muxer without readers this long, so a player that
	// reconnects (or the next one) finds it running; 0 stops it at once.
	StopDelay time.Duration
	// RingSize is how many chunks a muxer keeps; 0 means DefaultRingSize.
	RingSize int
}

// Ring is one running muxer: the chunks its engine published, newest
// last, and its header. The engine writes it from its goroutine; readers
// follow it with Cursors.
type Ring struct {
	stream *hub.Stream
	rd     *hub.Reader
	engine Engine
	format Format
	name   string
	log    *slog.Logger

	mu      sync.Mutex
	header  []byte
	codecs  string
	chunks  []*Chunk
	head    uint64 // Seq of the next chunk
	lastKey uint64 // Seq of the newest Key chunk, valid when haveKey
	haveKey bool
	wake    chan struct{}      // closed and replaced when something changes
	ready   map[*Cursor]func() // event-driven cursors' wake-ups (Cursor.SetReady)
	err     error              // why it stopped; readers drain the ring first

	// Guarded by the owning Muxers' mu.
	readers   int
	stopTimer *time.Timer
}

// NewRing returns a ring of size chunks that belongs to no Muxers: for an
// engine's own tests, which publish without a registry.
func NewRing(size int) *Ring {
	if size <= 0 {
		size = DefaultRingSize
	}
	return &Ring{chunks: make([]*Chunk, size), wake: make(chan struct{})}
}

// Stream is the stream muxed (nil for a ring of NewRing).
func (r *Ring) Stream() *hub.Stream { return r.stream }

// Engine is the format's muxer that writes the ring.
func (r *Ring) Engine() Engine { return r.engine }

// Header returns what a reader gets before the chunks (fMP4: the init
// segment; MPEG-TS: empty) and the RFC 6381 codecs of the tracks; header
// is nil until the engine set it.
func (r *Ring) Header() (header []byte, codecs string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.header, r.codecs
}

// SetHeader publishes the header; Cursor.Ready waits for it. A format
// without one sets an empty, non-nil header once it can be read.
func (r *Ring) SetHeader(header []byte, codecs string) {
	if header == nil {
		header = []byte{}
	}
	r.mu.Lock()
	r.header, r.codecs = header, codecs
	r.signalLocked()
	r.mu.Unlock()
}

// NextSeq is the Seq the next published chunk gets (an fMP4 engine writes
// it into the fragment's mfhd before publishing).
func (r *Ring) NextSeq() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.head
}

// Publish appends c, setting its Seq, and wakes the readers. c must not
// change afterwards.
func (r *Ring) Publish(c *Chunk) {
	r.mu.Lock()
	c.Seq = r.head
	r.chunks[c.Seq%uint64(len(r.chunks))] = c
	if c.Key {
		r.lastKey, r.haveKey = c.Seq, true
	}
	r.head++
	r.signalLocked()
	r.mu.Unlock()
}

// end records why the muxer stopped; readers get it after the last chunk.
func (r *Ring) end(err error) {
	r.mu.Lock()
	r.err = err
	r.signalLocked()
	r.mu.Unlock()
}

func (r *Ring) signalLocked() {
	close(r.wake)
	r.wake = make(chan struct{})
	for _, ready := range r.ready {
		ready()
	}
}

// startLocked is where a new reader starts: the newest Key chunk still in
// the ring, else the next chunk (and the reader skips to a Key one).
func (r *Ring) startLocked() uint64 {
	if r.haveKey && r.head-r.lastKey <= uint64(len(r.chunks)) {
		return r.lastKey
	}
	return r.head
}
