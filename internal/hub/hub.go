// Package hub is Berth's core: a registry of live streams, each a publisher
// slot, its tracks and a ring of immutable frames that every reader follows
// with its own cursor. It imports no protocol package; protocols publish into
// it and read from it, and conversions between frame kinds are injected.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
)

// Errors returned by the hub; protocol servers map them to status codes.
var (
	ErrNotFound     = errors.New("stream not found")
	ErrPathBusy     = errors.New("stream is already being published")
	ErrEnded        = errors.New("stream ended")
	ErrReaderClosed = errors.New("reader closed")
	ErrSlowReader   = errors.New("reader fell behind the stream")
	ErrNoConversion = errors.New("no conversion to the requested format")
	ErrHubClosed    = errors.New("server is shutting down")
)

// BusyError tells who already publishes a path.
type BusyError struct {
	Path   string
	Holder Origin
	Since  time.Time
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("stream %s is already published by %s since %s", e.Path, e.Holder, e.Since.Format(time.TimeOnly))
}

func (e *BusyError) Unwrap() error { return ErrPathBusy }

// Origin says who a publisher or reader is, for logs and the API.
type Origin struct {
	Proto  string // "rtsp", "rtmp", "rtp", ...
	Remote string // remote address
	ID     string // session id, where the protocol has one
	Params string // the URL's query, credentials removed (web hooks pass it on)
	Conn   string // id of the TCP connection in the session registry, "" if none
}

func (o Origin) String() string {
	if o.ID != "" {
		return o.Proto + " " + o.Remote + " (session " + o.ID + ")"
	}
	return o.Proto + " " + o.Remote
}

// Track is one media of a stream with its codec parameters.
type Track struct {
	Format format.Format // codec, clock rate, payload type, parameter sets
	Media  *description.Media
	Video  bool
}

// SlowPolicy is what happens to a reader that falls off the ring.
type SlowPolicy uint8

const (
	SkipToKeyframe SlowPolicy = iota // jump to the newest keyframe
	CloseSlow                        // end the reader with ErrSlowReader
)

// Converter fills a view of one kind from a reader of another. It runs in
// its own goroutine and returns when src.Read fails (the stream ended or the
// view lost its last reader).
type Converter func(s *Stream, src *Reader, dst *Writer)

// Options configure a Hub. The zero value works.
type Options struct {
	RingSize      int // RTP packets per ring (an access-unit ring holds a quarter as many frames); default 4096
	SlowReader    SlowPolicy
	AllowTakeover bool
	Log           *slog.Logger
	// Converters makes frames of kind [1] from a stream published in kind [0].
	Converters map[[2]Kind]Converter
	// Observer hears publishes, ends, players and misses (events.go); nil = none.
	Observer Observer
}

// Hub is the registry of live streams.
type Hub struct {
	opts     Options
	log      *slog.Logger
	ringSize atomic.Int64 // RingSize for streams published from now on (SetRingSize)
	mu       sync.Mutex
	streams  map[string]*Stream
	waiters  map[string]*waiter // players of missing paths; closed when the path is published (SubscribeWait)
	closed   bool
	stats    counters
}

// ringSize is how many frames a ring of kind k holds. An access unit is a
// whole video frame (tens of RTP packets at 4 Mb/s) or an audio frame, so
// RingSize of them would be a minute of a 4 Mb/s stream, 56 MB with their
// cached RTMP/FLV encodings, in every converted or RTMP-published stream; a
// quarter still holds 14 s at 25 fps plus audio, more than the RTP ring.
func ringSize(n int, k Kind) int {
	if k == KindAU {
		return max(n/4, 1)
	}
	return n
}

// New returns an empty hub.
func New(opts Options) *Hub {
	if opts.RingSize <= 0 {
		opts.RingSize = 4096
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{opts: opts, log: opts.Log, streams: map[string]*Stream{}, waiters: map[string]*waiter{}}
	h.ringSize.Store(int64(opts.RingSize))
	return h
}

// Publish claims path for a publisher. A live path is refused with a
// *BusyError unless takeover is allowed, in which case the old stream ends.
func (h *Hub) Publish(path string, origin Origin, native Kind, tracks []*Track, sdp []byte) (*Publisher, error) {
	var takenOver *Stream
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHubClosed
	}
	if native >= numKinds {
		h.mu.Unlock()
		return nil, fmt.Errorf("hub: publish %s: unknown frame kind %d", path, native)
	}
	if old := h.streams[path]; old != nil {
		if !h.opts.AllowTakeover {
			h.mu.Unlock()
			h.stats.publishRefused.Add(1)
			h.log.Warn("publish refused: path is busy (set allow_takeover to let a new publisher replace it)",
				"path", path, "publisher", origin.String(), "holder", old.Origin.String())
			return nil, &BusyError{Path: path, Holder: old.Origin, Since: old.Since}
		}
		// End the old stream while still holding h.mu: releasing it here
		// let two takeovers (or Close) interleave and orphan a stream.
		delete(h.streams, path)
		old.end()
		takenOver = old
		h.log.Warn("publisher taken over", "path", path, "new", origin.String(), "old", old.Origin.String())
	}
	s := &Stream{
		Path: path, Tracks: tracks, SDP: sdp, Native: native, Origin: origin, Since: time.Now(),
		h: h, done: make(chan struct{}), ringSize: int(h.ringSize.Load()), players: map[*Reader]struct{}{},
		inProto: protoCounter(&h.stats.in, origin.Proto),
	}
	for _, t := range tracks {
		if t.Video {
			s.hasVideo = true
		}
	}
	s.views[native] = &view{ring: newRing(ringSize(s.ringSize, native))}
	h.streams[path] = s
	wake := h.waiters[path]
	delete(h.waiters, path)
	h.mu.Unlock()
	if wake != nil {
		close(wake.ch)
	}
	if takenOver != nil {
		h.ended(takenOver)
	}
	h.published(s)
	return &Publisher{Writer: Writer{s: s, r: s.views[native].ring}}, nil
}

// CheckPublish returns the *BusyError Publish would return for path now,
// or nil. Protocols whose tracks are only known after media starts (RTMP)
// call it when the client asks to publish, so a refusal comes at once; the
// authoritative check is still Publish.
func (h *Hub) CheckPublish(path string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.streams[path]; old != nil && !h.opts.AllowTakeover {
		h.stats.publishRefused.Add(1) // RTMP refuses here and never calls Publish: no double count
		return &BusyError{Path: path, Holder: old.Origin, Since: old.Since}
	}
	return nil
}

// Get returns the live stream at path, or nil.
func (h *Hub) Get(path string) *Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams[path]
}

// Streams returns the live streams sorted by path.
func (h *Hub) Streams() []*Stream {
	h.mu.Lock()
	out := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		out = append(out, s)
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Subscribe attaches a reader of kind to the stream at path.
func (h *Hub) Subscribe(path string, kind Kind, who Origin) (*Reader, error) {
	return h.SubscribeWait(context.Background(), path, kind, who, 0)
}

// Close ends every stream; publishers and readers see ErrEnded.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	all := h.streams
	h.streams = map[string]*Stream{}
	waiters := h.waiters
	h.waiters = map[string]*waiter{}
	h.mu.Unlock()
	for _, w := range waiters {
		close(w.ch)
	}
	for _, s := range all {
		if s.end() {
			h.ended(s)
		}
	}
}

func (h *Hub) remove(s *Stream) {
	h.mu.Lock()
	if h.streams[s.Path] == s {
		delete(h.streams, s.Path)
	}
	h.mu.Unlock()
}

// Stream is one live path. Its exported fields are set at publish and never change.
type Stream struct {
	Path   string
	Tracks []*Track
	SDP    []byte // the publisher's SDP for RTP passthrough; nil when the stream did not come as RTP
	Native Kind
	Origin Origin
	Since  time.Time

	h        *Hub
	ringSize int // the hub's RingSize when the stream was published
	hasVideo bool
	done     chan struct{}
	ended    atomic.Bool

	mu      sync.Mutex
	views   [numKinds]*view
	readers int
	players map[*Reader]struct{} // counted readers (ReaderList)

	BytesIn  atomic.Uint64
	FramesIn atomic.Uint64
	Skips    atomic.Uint64 // reader skips to a newer keyframe, over the stream's life

	inProto *atomic.Uint64 // the hub's bytes-in counter of the publisher's protocol

	lastSlowLog atomic.Int64
	clocks      atomic.Pointer[streamClocks] // sender report mappings, made at the first (clock.go)
}

type view struct {
	ring    *ring
	readers int
	src     *Reader // the converter's reader of the native view; nil for the native view
}

// Done is closed when the stream ends.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Readers counts the stream's readers (converters not included).
func (s *Stream) Readers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readers
}

// HasVideo reports whether a track is video.
func (s *Stream) HasVideo() bool { return s.hasVideo }

// Subscribe attaches a reader of kind. A kind other than the native one
// starts the injected converter if none runs yet.
func (s *Stream) Subscribe(kind Kind, who Origin) (*Reader, error) {
	return s.subscribe(kind, who, true)
}

func (s *Stream) subscribe(kind Kind, who Origin, counted bool) (*Reader, error) {
	s.mu.Lock()
	if s.ended.Load() {
		s.mu.Unlock()
		return nil, ErrEnded
	}
	v := s.views[kind]
	if v == nil {
		conv := s.h.opts.Converters[[2]Kind{s.Native, kind}]
		if conv == nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: %s to %s", ErrNoConversion, s.Native, kind)
		}
		v = &view{ring: newRing(ringSize(s.ringSize, kind))}
		src := s.newReader(s.views[s.Native], s.Native, Origin{Proto: "convert", ID: kind.String()})
		s.views[s.Native].readers++
		v.src = src
		s.views[kind] = v
		go s.runConverter(conv, kind, v)
	}
	r := s.newReader(v, kind, who)
	v.readers++
	if counted {
		s.readers++
		s.players[r] = struct{}{}
	}
	r.counted = counted
	s.mu.Unlock()
	if counted {
		s.h.stats.playerJoined(r)
		s.h.readerAdded(r)
	}
	return r, nil
}

// runConverter fills view v until the converter returns: when the stream
// has ended and the converter drained it, or when v lost its last reader
// (its source reader is closed). v's readers then drain v and get ErrEnded,
// and the next reader of kind starts a new converter.
func (s *Stream) runConverter(conv Converter, kind Kind, v *view) {
	conv(s, v.src, &Writer{s: s, r: v.ring})
	early := !v.src.closed.Load() && !s.ended.Load()
	v.src.Close()
	s.mu.Lock()
	if s.views[kind] == v {
		s.views[kind] = nil
	}
	s.mu.Unlock()
	v.ring.end()
	if early {
		s.h.log.Warn("converter stopped while the stream is live; its readers end and the next reader restarts it",
			"path", s.Path, "from", s.Native.String(), "to", kind.String())
	}
}

func (s *Stream) newReader(v *view, kind Kind, who Origin) *Reader {
	r := &Reader{s: s, v: v, r: v.ring, who: who, kind: kind, since: time.Now().UnixNano()}
	r.pos, r.started = v.ring.startPos()
	r.cursor.Store(r.pos)
	if !s.hasVideo {
		r.started = true
	}
	return r
}

// end ends the stream: the native ring ends (its readers drain it, then get
// ErrEnded), converters drain it and end their views. It reports whether
// this call ended it; the caller then tells the observer, outside h.mu.
func (s *Stream) end() bool {
	if !s.ended.CompareAndSwap(false, true) {
		return false
	}
	close(s.done)
	s.mu.Lock()
	native := s.views[s.Native]
	s.mu.Unlock()
	native.ring.end()
	return true
}

// Writer appends frames to one ring of a stream.
type Writer struct {
	s *Stream
	r *ring
}

// Write appends f and wakes waiting readers; it never blocks. A frame of an
// audio-only stream is always a keyframe. f must be filled before Write and
// never changed after, and written once to one stream: readers share it
// without locks (write a new Frame to resend the same bytes).
func (w *Writer) Write(f *Frame) {
	w.Append(f)
	w.r.flush()
}

// Append adds f like Write but leaves waiting readers asleep until Flush or
// the next Write. A writer with several frames at hand (one socket read that
// carried a video frame's packets) appends them all and flushes once: each
// reader then wakes once and sends them with one writev, instead of waking
// per packet. Frames appended and not flushed are still seen by readers that
// are running, so a forgotten Flush only delays, never loses, a frame.
func (w *Writer) Append(f *Frame) {
	end := false
	if !w.s.hasVideo {
		f.Key = true
	} else {
		f.mid, end = w.midFrame(f)
	}
	w.r.append(f)
	if end {
		// The packet that ends a video frame wakes readers even when the
		// writer does not flush yet (the RTSP publisher flushes only when
		// its read buffer is empty, and an RTCP packet behind the frame
		// keeps it from being empty): the frame's first packets were held
		// for this one, so it must not wait for the next frame.
		w.r.flush()
	}
}

// midFrame tells a video RTP packet without the marker bit on a track that
// has shown markers before (some sources never set it: their packets count
// as whole frames, as before), and end, a video packet with the marker.
func (w *Writer) midFrame(f *Frame) (mid, end bool) {
	if len(f.Data) < RTPPrefix+2 || f.Track < 0 || f.Track >= 64 || f.Track >= len(w.s.Tracks) ||
		w.s.Tracks[f.Track] == nil || !w.s.Tracks[f.Track].Video {
		return false, false
	}
	bit := uint64(1) << f.Track
	if f.Data[RTPPrefix+1]&0x80 != 0 {
		w.r.markers |= bit
		return false, true
	}
	return w.r.markers&bit != 0, false
}

// Flush wakes the readers waiting since the last Write or Flush.
func (w *Writer) Flush() { w.r.flush() }

// Publisher is the writing side of a stream.
type Publisher struct {
	Writer
}

// Stream returns the published stream.
func (p *Publisher) Stream() *Stream { return p.s }

// Write appends f to the stream, counts it and wakes waiting readers.
func (p *Publisher) Write(f *Frame) {
	p.Append(f)
	p.r.flush()
}

// Append adds f to the stream and counts it; waiting readers wake at the
// next Flush or Write (see Writer.Append).
func (p *Publisher) Append(f *Frame) {
	p.s.FramesIn.Add(1)
	n := uint64(0)
	if len(f.Data) >= RTPPrefix {
		n = uint64(len(f.Data) - RTPPrefix)
	} else {
		for _, b := range f.AU {
			n += uint64(len(b))
		}
	}
	p.s.BytesIn.Add(n)
	p.s.inProto.Add(n)
	p.Writer.Append(f)
}

// Done is closed when the stream ends for a reason other than Close (a
// takeover, server shutdown): the publisher should disconnect.
func (p *Publisher) Done() <-chan struct{} { return p.s.done }

// Close unpublishes: readers drain what is in the ring and get ErrEnded, and
// the path is free again.
func (p *Publisher) Close() { p.s.Close() }
