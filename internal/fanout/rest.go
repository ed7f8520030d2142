package fanout

// Rest drops the first n bytes of bufs, which a TryWrite wrote: what is
// left for the blocking write. It shortens bufs in place.
func Rest(bufs [][]byte, n int) [][]byte {
	for n > 0 && len(bufs) > 0 {
		if n < len(bufs[0]) {
			bufs[0] = bufs[0][n:]
			break
		}
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	return bufs
}
