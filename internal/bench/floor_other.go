//go:build !linux

package bench

import "errors"

// threadCPU needs RUSAGE_THREAD, which only Linux has.
func threadCPU() (float64, error) {
	return 0, errors.New("the floor measures one thread's CPU time, which needs Linux (RUSAGE_THREAD)")
}
