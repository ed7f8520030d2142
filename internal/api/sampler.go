package api

import (
	"math"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/berthmedia/berth/internal/cputime"
	"github.com/berthmedia/berth/internal/hub"
)

// The sampler looks at every stream's byte counter and at the process's
// CPU time and scheduler latency once a second, so bytesSpeed and the
// threads' load are rates over the last seconds, not averages over a life.
// It runs only while the API is used: it starts with the first call that
// needs it and stops after idleAfter without one, so a server nobody asks
// pays nothing and no goroutine outlives its use.
const (
	sampleEvery  = time.Second
	speedSamples = 5 // bytesSpeed is the rate over the last ~5 s
	idleAfter    = 2 * time.Minute
)

// processStart approximates when the process started, for the averages
// given before the sampler's first interval.
var processStart = time.Now()

type sampler struct {
	mu      sync.Mutex
	running bool
	lastUse time.Time
	streams map[*hub.Stream]*speedRing

	prevAt    time.Time
	prevCPU   time.Duration
	prevSched []uint64 // /sched/latencies:seconds bucket counts at prevAt
	load      int      // percent of GOMAXPROCS CPUs, over the last interval
	delayMS   int      // mean scheduling latency over the last interval
	haveLoad  bool
}

type speedSample struct {
	at    time.Time
	bytes uint64
}

type speedRing struct {
	s    [speedSamples]speedSample
	n    int // samples held
	next int
}

func (r *speedRing) push(v speedSample) {
	r.s[r.next] = v
	r.next = (r.next + 1) % speedSamples
	r.n = min(r.n+1, speedSamples)
}

func (r *speedRing) oldest() speedSample {
	if r.n < speedSamples {
		return r.s[0]
	}
	return r.s[r.next]
}

// use marks a call and starts the sampling goroutine if it is not running.
func (sm *sampler) use(h *hub.Hub) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.lastUse = time.Now()
	if sm.running {
		return
	}
	sm.running = true
	sm.sampleLocked(h, sm.lastUse)
	go sm.run(h)
}

func (sm *sampler) run(h *hub.Hub) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for now := range t.C {
		sm.mu.Lock()
		if now.Sub(sm.lastUse) > idleAfter {
			sm.running = false
			sm.streams = nil
			sm.haveLoad = false
			sm.prevSched = nil
			sm.mu.Unlock()
			return
		}
		sm.sampleLocked(h, now)
		sm.mu.Unlock()
	}
}

func (sm *sampler) sampleLocked(h *hub.Hub, now time.Time) {
	if h != nil {
		live := h.Streams()
		seen := make(map[*hub.Stream]bool, len(live))
		if sm.streams == nil {
			sm.streams = map[*hub.Stream]*speedRing{}
		}
		for _, s := range live {
			seen[s] = true
			r := sm.streams[s]
			if r == nil {
				r = &speedRing{}
				sm.streams[s] = r
			}
			r.push(speedSample{now, s.BytesIn.Load()})
		}
		for s := range sm.streams {
			if !seen[s] {
				delete(sm.streams, s)
			}
		}
	}
	cpu := cputime.Process()
	sched := schedLatencies()
	if !sm.prevAt.IsZero() && sm.prevSched != nil {
		wall := now.Sub(sm.prevAt)
		if wall > 0 {
			sm.load = cpuPercent(cpu-sm.prevCPU, wall)
			sm.delayMS = meanLatencyMS(sched, sm.prevSched)
			sm.haveLoad = true
		}
	}
	sm.prevAt, sm.prevCPU, sm.prevSched = now, cpu, sched.Counts
}

// bytesSpeed is s's input rate in bytes per second over the last samples;
// before a stream has a second of samples, its average since publish.
func (sm *sampler) bytesSpeed(s *hub.Stream, now time.Time) uint64 {
	bytes := s.BytesIn.Load()
	sm.mu.Lock()
	r := sm.streams[s]
	var from speedSample
	if r != nil && r.n > 0 {
		from = r.oldest()
	}
	sm.mu.Unlock()
	if from.at.IsZero() || now.Sub(from.at) < 500*time.Millisecond {
		from = speedSample{at: s.Since}
	}
	dt := now.Sub(from.at).Seconds()
	if dt <= 0 || bytes < from.bytes {
		return 0
	}
	return uint64(float64(bytes-from.bytes) / dt)
}

// threadsLoad is the process's CPU use (percent of GOMAXPROCS CPUs) and
// mean scheduling latency (ms) over the last interval; before the first
// interval, over the process's life.
func (sm *sampler) threadsLoad() (load, delayMS int) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.haveLoad {
		return sm.load, sm.delayMS
	}
	return cpuPercent(cputime.Process(), time.Since(processStart)), meanLatencyMS(schedLatencies(), nil)
}

func cpuPercent(cpu, wall time.Duration) int {
	if wall <= 0 {
		return 0
	}
	p := 100 * cpu.Seconds() / (wall.Seconds() * float64(runtime.GOMAXPROCS(0)))
	return int(math.Round(math.Min(math.Max(p, 0), 100)))
}

// schedLatencies reads the runtime's histogram of how long goroutines
// waited, runnable, before they ran: the closest thing Go has to
// ZLMediaKit's delay of a task posted to a poller thread.
func schedLatencies() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return &metrics.Float64Histogram{}
	}
	h := s[0].Value.Float64Histogram()
	// The runtime may reuse the histogram's memory on the next Read.
	return &metrics.Float64Histogram{Counts: append([]uint64(nil), h.Counts...), Buckets: h.Buckets}
}

// meanLatencyMS is the mean of the waits counted in now but not in prev
// (nil: all of now), each taken at its bucket's middle.
func meanLatencyMS(now *metrics.Float64Histogram, prev []uint64) int {
	var n, sum float64
	for i, c := range now.Counts {
		if prev != nil && i < len(prev) {
			c -= prev[i]
		}
		if c == 0 || i+1 >= len(now.Buckets) {
			continue
		}
		lo, hi := now.Buckets[i], now.Buckets[i+1]
		mid := (lo + hi) / 2
		switch {
		case math.IsInf(lo, -1):
			mid = hi
		case math.IsInf(hi, 1):
			mid = lo
		}
		n += float64(c)
		sum += float64(c) * mid
	}
	if n == 0 {
		return 0
	}
	return int(math.Round(sum / n * 1000))
}
