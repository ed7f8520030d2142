package hub

import (
	"context"
	"sort"
	"time"
)

// Observer hears a hub's events: web hooks, metrics, recording and the
// cluster learn what happens through it, so the hub never calls out over the
// network itself. Calls run outside the hub's locks, on the goroutine that
// caused the event (a publisher, a reader, an API call); an implementation
// must not block (it queues slow work elsewhere).
type Observer interface {
	StreamPublished(s *Stream)              // registered; its tracks are known
	StreamEnded(s *Stream)                  // unregistered: the publisher left, Close, a takeover, shutdown
	ReaderAdded(r *Reader)                  // a player (a counted reader) subscribed
	ReaderRemoved(r *Reader)                // it closed: r.Bytes() is final and s.Readers() excludes it
	StreamNotFound(path string, who Origin) // a player asked for a path with no stream (before any wait)
}

// Observers tells every one of its observers each event, in order: the
// composition root wires hooks, metrics, HLS and the like to one hub.
type Observers []Observer

func (os Observers) StreamPublished(s *Stream) {
	for _, o := range os {
		o.StreamPublished(s)
	}
}

func (os Observers) StreamEnded(s *Stream) {
	for _, o := range os {
		o.StreamEnded(s)
	}
}

func (os Observers) ReaderAdded(r *Reader) {
	for _, o := range os {
		o.ReaderAdded(r)
	}
}

func (os Observers) ReaderRemoved(r *Reader) {
	for _, o := range os {
		o.ReaderRemoved(r)
	}
}

func (os Observers) StreamNotFound(path string, who Origin) {
	for _, o := range os {
		o.StreamNotFound(path, who)
	}
}

// OnPublish is an Observer of publishes only.
type OnPublish func(s *Stream)

func (f OnPublish) StreamPublished(s *Stream)   { f(s) }
func (OnPublish) StreamEnded(*Stream)           {}
func (OnPublish) ReaderAdded(*Reader)           {}
func (OnPublish) ReaderRemoved(*Reader)         {}
func (OnPublish) StreamNotFound(string, Origin) {}

func (h *Hub) published(s *Stream) {
	h.stats.published.Add(1)
	if o := h.opts.Observer; o != nil {
		o.StreamPublished(s)
	}
}

// ended counts a stream's totals into the hub's and tells the observer.
// Exactly one caller gets true from s.end(), so this runs once per stream.
func (h *Hub) ended(s *Stream) {
	h.stats.ended.Add(1)
	if o := h.opts.Observer; o != nil {
		o.StreamEnded(s)
	}
}

func (h *Hub) readerAdded(r *Reader) {
	if o := h.opts.Observer; o != nil {
		o.ReaderAdded(r)
	}
}

func (h *Hub) readerRemoved(r *Reader) {
	if o := h.opts.Observer; o != nil {
		o.ReaderRemoved(r)
	}
}

// SubscribeWait is Subscribe for a player that may come before its stream
// (ZLMediaKit's maxStreamWaitMS): on a miss it tells the observer once
// (StreamNotFound, so a web hook can start a pull or ask a device to push),
// then waits up to wait for the path to be published. ErrNotFound after
// that; ctx's error if ctx ends first. wait <= 0 does not wait.
func (h *Hub) SubscribeWait(ctx context.Context, path string, kind Kind, who Origin, wait time.Duration) (*Reader, error) {
	var deadline <-chan time.Time
	told := false
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			if deadline == nil {
				return nil, ErrNotFound // as before SubscribeWait: a closed hub has no streams
			}
			return nil, ErrHubClosed
		}
		s := h.streams[path]
		var w *waiter
		if s == nil && wait > 0 {
			w = h.waiters[path]
			if w == nil {
				w = &waiter{ch: make(chan struct{})}
				h.waiters[path] = w
			}
			w.n++
		}
		h.mu.Unlock()
		if s != nil {
			r, err := s.Subscribe(kind, who)
			if err == ErrEnded && wait > 0 && deadline != nil {
				continue // it ended between the lookup and the subscribe; a new one may come
			}
			return r, err
		}
		if !told {
			told = true
			h.stats.notFound.Add(1)
			if o := h.opts.Observer; o != nil {
				o.StreamNotFound(path, who)
				// An observer may publish the path before it returns (the
				// playback of a recording does): look once more, so the
				// reader gets it even without a wait.
				if s := h.Get(path); s != nil && wait <= 0 {
					return s.Subscribe(kind, who)
				}
			}
		}
		if wait <= 0 {
			return nil, ErrNotFound
		}
		if deadline == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-w.ch:
			continue // published (Publish removed the waiter) or the hub closed
		case <-deadline:
			h.leave(path, w)
			return nil, ErrNotFound
		case <-ctx.Done():
			h.leave(path, w)
			return nil, ctx.Err()
		}
	}
}

// waiter is the channel the players of a missing path wait on, and how
// many wait: the last one to give up removes it, so paths that are never
// published (a typo, a scanner) leave nothing behind.
type waiter struct {
	ch chan struct{}
	n  int
}

func (h *Hub) leave(path string, w *waiter) {
	h.mu.Lock()
	w.n--
	if w.n == 0 && h.waiters[path] == w {
		delete(h.waiters, path)
	}
	h.mu.Unlock()
}

// SetRingSize sets the ring size of streams published from now on (a
// live stream keeps its rings; hot reload).
func (h *Hub) SetRingSize(n int) {
	if n > 0 {
		h.ringSize.Store(int64(n))
	}
}

// Close ends the stream as if its publisher had left: readers drain what is
// in the ring and get ErrEnded, the path is free again, and the publisher's
// Done channel closes so its protocol session disconnects (the API's
// close_streams).
func (s *Stream) Close() {
	s.h.remove(s)
	if s.end() {
		s.h.ended(s)
	}
}

// Ended reports whether the stream has ended.
func (s *Stream) Ended() bool { return s.ended.Load() }

// ReaderList returns the stream's players (counted readers), oldest first.
func (s *Stream) ReaderList() []*Reader {
	s.mu.Lock()
	out := make([]*Reader, 0, len(s.players))
	for r := range s.players {
		out = append(out, r)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].since < out[j].since })
	return out
}

// Who returns who the reader is.
func (r *Reader) Who() Origin { return r.who }

// Since returns when the reader subscribed.
func (r *Reader) Since() time.Time { return time.Unix(0, r.since) }

// Bytes is the payload bytes of the frames handed to the reader so far
// (RTP payloads with their headers, or access units); 0 for a converter.
func (r *Reader) Bytes() uint64 { return r.bytes.Load() }

func payloadBytes(fs []*Frame) uint64 {
	var n uint64
	for _, f := range fs {
		if len(f.Data) >= RTPPrefix {
			n += uint64(len(f.Data) - RTPPrefix)
			continue
		}
		for _, b := range f.AU {
			n += uint64(len(b))
		}
	}
	return n
}
