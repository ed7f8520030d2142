package hls

import "github.com/berthmedia/berth/internal/hub"

// Published starts st's HLS muxers at once and keeps them until the
// stream ends, whoever watches, when [protocol] hls_demand=0 (ZLMediaKit's
// default: HLS is made for every stream, so the first viewer finds a full
// playlist instead of waiting segNum segments). With hls_demand=1
// (Berth's default) it does nothing: the first viewer starts them.
// It is the hub's publish observer, so it must not block.
func (h *Handler) Published(st *hub.Stream) {
	set := h.cfg()
	if set.OnDemand || (!set.Enable || h.TS == nil) && !set.EnableFMP4 {
		return
	}
	log := h.log().With("path", st.Path)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	var c *tsChannel
	var m *llMuxer
	if set.Enable && h.TS != nil {
		c = h.tsChannelLocked(st.Path)
		c.attach(st, h, log.With("proto", ProtoTS))
	}
	if set.EnableFMP4 {
		m = h.llMuxerLocked(st)
	}
	h.mu.Unlock()
	log.Debug("hls: muxers kept while the stream lasts ([protocol] hls_demand=0)")
	go func() {
		<-st.Done()
		h.mu.Lock()
		defer h.mu.Unlock()
		if c != nil {
			h.releaseLocked(&c.linger, c.stopLocked(h))
		}
		if m != nil {
			h.releaseLocked(&m.linger, m.stopLocked(h))
		}
	}()
}
