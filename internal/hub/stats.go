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

// counters hold what Stats reports. Byte counters are one atomic per
// protocol that publishers and readers hold a pointer to, so a count is a
// plain atomic add (per frame in, per batch out) and snapshots only grow.
type counters struct {
	published, ended, publishRefused, notFound, skips, drops atomic.Uint64

	in, out sync.Map // proto -> *atomic.Uint64
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
	h.stats.out.Range(func(k, v any) bool { st.BytesOut[k.(string)] = v.(*atomic.Uint64).Load(); return true })
	return st
}
