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
