package hub

// SubscribeUncounted attaches a reader that is not a player: a shared muxer
// (fMP4, later MPEG-TS and HLS) that many players read through. Like a
// converter's reader it is left out of Readers, so getMediaList and the
// reader hooks count the players, not the machinery between them and the
// stream; the muxer's players each take a counted reader of their own (see
// docs/muxers.md).
func (s *Stream) SubscribeUncounted(kind Kind, who Origin) (*Reader, error) {
	return s.subscribe(kind, who, false)
}

// AddBytes counts n bytes sent to the player of r when they did not come
// through r's Read: an fMP4 player's registration never reads, its
// fragments come from the shared muxer, and the handler counts what it
// wrote here, so Bytes, the stream's bytes out and Stats.BytesOut of the
// player's protocol stay honest. For a converter's or muxer's own reader
// (uncounted) it does nothing.
func (r *Reader) AddBytes(n uint64) {
	if r.counted {
		r.bytes.Add(n)
	}
}
