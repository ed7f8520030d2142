package muxring

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
)

// Muxers holds the live muxers of one format, one per stream, started on
// demand by Open and stopped StopDelay after the last Cursor closes. A
// format's registry (fmp4.Muxers, mpegts.Muxers) holds one and passes
// itself as the Format. The zero value works.
type Muxers struct {
	mu      sync.Mutex
	live    map[*hub.Stream]*Ring
	seen    map[*hub.Stream]struct{} // streams that had a muxer: what is left out is said once per stream
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
func (ms *Muxers) Get(s *hub.Stream) *Ring {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.live[s]
}

// Open returns a cursor on f's muxer of s, starting the muxer if none
// runs. The muxer reads s's access-unit view through an uncounted hub
// reader: it is not a player, the cursors' owners are (see docs/muxers.md).
func (ms *Muxers) Open(s *hub.Stream, f Format) (*Cursor, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.closed {
		return nil, ErrClosed
	}
	r := ms.live[s]
	if r == nil {
		var err error
		if r, err = ms.startLocked(s, f); err != nil {
			return nil, err
		}
	}
	r.readers++
	if r.stopTimer != nil {
		r.stopTimer.Stop()
		r.stopTimer = nil
	}
	c := &Cursor{r: r, ms: ms}
	r.mu.Lock()
	c.next = r.startLocked()
	r.mu.Unlock()
	return c, nil
}

func (ms *Muxers) startLocked(s *hub.Stream, f Format) (*Ring, error) {
	opts := f.Options()
	rd, err := s.SubscribeUncounted(hub.KindAU, hub.Origin{Proto: opts.Name, ID: "muxer"})
	if err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = logging.Discard()
	}
	r := NewRing(opts.RingSize)
	r.stream, r.rd, r.format, r.name = s, rd, f, opts.Name
	r.log = log.With("path", s.Path)
	r.engine, err = f.NewEngine(s, rd, r, r.log, ms.firstMuxerLocked(s))
	if err != nil {
		rd.Close()
		return nil, err
	}
	if ms.live == nil {
		ms.live = map[*hub.Stream]*Ring{}
	}
	ms.live[s] = r
	ms.started.Add(1)
	go ms.run(r)
	return r, nil
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

// run is a muxer's goroutine: the engine muxes until its reader fails,
// then the ring ends with the reason and the registry forgets it.
func (ms *Muxers) run(r *Ring) {
	err := mux(r)
	r.rd.Close()
	switch {
	case err == nil, errors.Is(err, hub.ErrReaderClosed):
		err = ErrStopped
	case !errors.Is(err, hub.ErrEnded):
		r.log.Warn(r.name+" muxer failed; its players are dropped and the next one restarts it", "err", err)
	}
	r.end(err)
	ms.mu.Lock()
	if ms.live[r.stream] == r {
		delete(ms.live, r.stream)
	}
	ms.mu.Unlock()
}

// mux runs the engine; a panic (a parser fed bytes it did not expect)
// becomes the muxer's error.
func mux(r *Ring) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s muxer of %s panicked: %v", r.name, r.stream.Path, p)
		}
	}()
	return r.engine.Mux()
}

// release is a cursor's Close: the last one starts the stop delay.
func (ms *Muxers) release(r *Ring) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	r.readers--
	if r.readers > 0 {
		return
	}
	delay := r.format.Options().StopDelay
	if delay <= 0 {
		ms.stopLocked(r)
		return
	}
	var tm *time.Timer
	tm = time.AfterFunc(delay, func() {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		if r.readers == 0 && r.stopTimer == tm {
			r.stopTimer = nil
			ms.stopLocked(r)
		}
	})
	r.stopTimer = tm
}

// stopLocked ends r's hub reader; its goroutine then ends the muxer. A
// muxer that already ended with its stream is left alone.
func (ms *Muxers) stopLocked(r *Ring) {
	if ms.live[r.stream] != r {
		return
	}
	delete(ms.live, r.stream)
	r.log.Info(r.name + " muxer stopped: no reader left")
	r.rd.Close()
}

// Close stops every muxer (their cursors drain and get ErrStopped) and
// refuses new ones. The composition root calls it when shutdown starts.
func (ms *Muxers) Close() {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.closed = true
	for _, r := range ms.live {
		if r.stopTimer != nil {
			r.stopTimer.Stop()
		}
		r.rd.Close()
	}
	clear(ms.live)
}
