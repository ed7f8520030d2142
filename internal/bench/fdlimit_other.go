//go:build !unix

package bench

// fdLimit is unknown here: no check.
func fdLimit() (soft, hard uint64) { return 0, 0 }
