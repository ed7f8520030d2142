package bench

import (
	"time"

	"golang.org/x/sys/unix"
)

// pinThread binds the calling OS thread to cpu; a failure leaves it free.
func pinThread(cpu int) {
	var set unix.CPUSet
	set.Set(cpu)
	_ = unix.SchedSetaffinity(0, &set)
}

// napThread sleeps in the kernel, on this thread, not on a Go timer.
func napThread(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	_ = unix.Nanosleep(&ts, nil)
}
