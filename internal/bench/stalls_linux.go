package bench

import (
	"os"
	"strings"
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

// machineCPUs lists the machine's online CPUs, not only the ones this
// process may run on (taskset narrows runtime.NumCPU): a stall of the CPU
// the server is pinned to delays the measurement too.
func machineCPUs() []int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil
	}
	return parseCPUList(strings.TrimSpace(string(b)))
}
