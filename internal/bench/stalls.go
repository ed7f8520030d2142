package bench

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Stalls watches, while a measurement runs, for the times the machine
// itself did not run a thread that was ready: one thread per CPU (pinned
// to it on Linux) sleeps 500 µs over and over, and a wake-up that comes
// more than 1 ms late is a stall of that CPU (the hypervisor serving its
// other guests, the kernel's interrupts and threads). The sleepers cost
// almost nothing, so they run during the measurement, and a delay of the
// measurement can be checked against them: a delay percentile cannot be
// lower than the machine lets it be.
type Stalls struct {
	mu    sync.Mutex
	spans []stallSpan
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	cpus  int
	begin time.Time
	end   time.Time
}

type stallSpan struct{ from, to time.Time }

const (
	stallNap       = 500 * time.Microsecond
	stallThreshold = time.Millisecond // lateness that counts as a stall
)

// WatchStalls starts the sleepers; Stop ends them.
func WatchStalls() *Stalls {
	cpus := machineCPUs()
	if len(cpus) == 0 {
		for c := range runtime.NumCPU() {
			cpus = append(cpus, c)
		}
	}
	s := &Stalls{stop: make(chan struct{}), cpus: len(cpus), begin: time.Now()}
	for _, cpu := range cpus {
		s.wg.Add(1)
		go s.sleeper(cpu)
	}
	return s
}

// parseCPUList reads the kernel's CPU list format: "0-3,5,7-8".
func parseCPUList(s string) []int {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil
		}
		b := a
		if ok {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 4096 {
				return nil
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out
}

func (s *Stalls) sleeper(cpu int) {
	defer s.wg.Done()
	runtime.LockOSThread() // the thread ends with the goroutine: it may be pinned
	pinThread(cpu)
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		t0 := time.Now()
		napThread(stallNap)
		if late := time.Since(t0) - stallNap; late > stallThreshold {
			s.mu.Lock()
			s.spans = append(s.spans, stallSpan{t0.Add(stallNap), t0.Add(stallNap + late)})
			s.mu.Unlock()
		}
	}
}

// Stop ends the watch; it may be called more than once.
func (s *Stalls) Stop() {
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.end = time.Now()
	})
}

// Overlaps reports whether a stall touched [from, to].
func (s *Stalls) Overlaps(from, to time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range s.spans {
		if sp.from.Before(to) && sp.to.After(from) {
			return true
		}
	}
	return false
}

// Summary is what the watch saw.
func (s *Stalls) Summary() *StallReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &StallReport{CPUs: s.cpus, Seconds: s.end.Sub(s.begin).Seconds(), Stalls: len(s.spans)}
	for _, sp := range s.spans {
		h.LongestMs = max(h.LongestMs, float64(sp.to.Sub(sp.from))/1e6)
	}
	return h
}

// StallReport is the machine's stalls during a measurement, and how many of
// its slowest samples they explain.
type StallReport struct {
	CPUs      int     `json:"cpus"`
	Seconds   float64 `json:"seconds"`
	Stalls    int     `json:"stalls"` // wake-ups more than 1 ms late, all CPUs together
	LongestMs float64 `json:"longest_stall_ms"`
	// Slow is how many samples took longer than SlowMs, and InStall how
	// many of those spanned a stall.
	SlowMs  float64 `json:"slow_ms"`
	Slow    int     `json:"slow"`
	InStall int     `json:"slow_in_stall"`
}

func (h *StallReport) String() string {
	return fmt.Sprintf("machine: in %.0f s, threads sleeping on its %d CPUs woke more than 1 ms late %d times (longest %.2f ms); %d of the %d samples slower than %.1f ms spanned such a stall",
		h.Seconds, h.CPUs, h.Stalls, h.LongestMs, h.InStall, h.Slow, h.SlowMs)
}
