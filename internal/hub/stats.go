package hub

import (
	"sync"
	"sync/atomic"
)

// Stats are a hub's cumulative counters, for metrics: they only grow.
type Stats struct {
	BytesIn  map[string]uint64 // by the publisher's Origin.Proto ("rtsp", "rtmp", "rtp", ...)
	BytesOut map[string]uint64 // by the player's Origin.Proto ("rtsp", "rtmp", "http-flv", ...)

	Published, Ended uint64 // streams
	PublishRefused   uint64 // a publish to a busy path
	NotFound         uint64 // a play of a missing path
	Skips, Drops     uint64 // slow readers skipped to a keyframe / closed by the close policy
}

// counters hold what Stats reports. Bytes in are one atomic per protocol
// that publishers hold a pointer to (a publisher adds per frame, and
// publishers are few). Bytes out are each player's own atomic, added per
// batch with no other cache line touched: a thousand players on two cores
// sharing one counter made the fan-out benchmark without a socket 1.6x
// slower. A snapshot adds up the live players and those that left under
// mu, which a player also takes to move its bytes from one to the other,
// so totals only grow.
type counters struct {
	published, ended, publishRefused, notFound, skips, drops atomic.Uint64

	in sync.Map // proto -> *atomic.Uint64

	mu        sync.Mutex // a leaf lock: nothing else is taken under it
	players   map[*Reader]struct{}
	closedOut map[string]uint64
}

// playerJoined runs after subscribe released the stream's lock, so a Close
// from another goroutine may come first: it sets closed before playerLeft
// takes mu, and a closed reader is never added.
func (c *counters) playerJoined(r *Reader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.closed.Load() {
		return
	}
	if c.players == nil {
		c.players = map[*Reader]struct{}{}
		c.closedOut = map[string]uint64{}
	}
	c.players[r] = struct{}{}
}

func (c *counters) playerLeft(r *Reader) {
	c.mu.Lock()
	if _, ok := c.players[r]; ok {
		delete(c.players, r)
		c.closedOut[r.who.Proto] += r.bytes.Load()
	}
	c.mu.Unlock()
}

func protoCounter(m *sync.Map, proto string) *atomic.Uint64 {
	if c, ok := m.Load(proto); ok {
		return c.(*atomic.Uint64)
	}
	c, _ := m.LoadOrStore(proto, new(atomic.Uint64))
	return c.(*atomic.Uint64)
}

// Stats returns the hub's counters now.
func (h *Hub) Stats() Stats {
	st := Stats{
		BytesIn: map[string]uint64{}, BytesOut: map[string]uint64{},
		Published: h.stats.published.Load(), Ended: h.stats.ended.Load(),
		PublishRefused: h.stats.publishRefused.Load(), NotFound: h.stats.notFound.Load(),
		Skips: h.stats.skips.Load(), Drops: h.stats.drops.Load(),
	}
	h.stats.in.Range(func(k, v any) bool { st.BytesIn[k.(string)] = v.(*atomic.Uint64).Load(); return true })
	h.stats.mu.Lock()
	for k, v := range h.stats.closedOut {
		st.BytesOut[k] += v
	}
	for r := range h.stats.players {
		st.BytesOut[r.who.Proto] += r.bytes.Load()
	}
	h.stats.mu.Unlock()
	return st
}
