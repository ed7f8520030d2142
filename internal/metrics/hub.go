package metrics

import "github.com/berthmedia/berth/internal/hub"

// HubSource is what FromHub reads of a hub; *hub.Hub has it.
type HubSource interface {
	Streams() []*hub.Stream
	Stats() hub.Stats
}

// FromHub snapshots h for Sources.Hub: the live streams by the publisher's
// protocol, their players by protocol (from each stream's ReaderList, so
// converters are not counted) and the hub's cumulative counters.
func FromHub(h HubSource) func() HubSnapshot {
	return func() HubSnapshot {
		// Stats first: a stream that is counted live below has its bytes
		// in the counters by then (they only grow), never the other way.
		st := h.Stats()
		snap := HubSnapshot{
			Streams: map[string]int{}, Readers: map[string]int{},
			BytesIn: st.BytesIn, BytesOut: st.BytesOut,
			Published: st.Published, Ended: st.Ended, PublishRefused: st.PublishRefused, NotFound: st.NotFound,
			Skips: st.Skips, Drops: st.Drops,
		}
		for _, s := range h.Streams() {
			snap.Streams[s.Origin.Proto]++
			for _, r := range s.ReaderList() {
				snap.Readers[r.Who().Proto]++
			}
		}
		return snap
	}
}
