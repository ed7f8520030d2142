package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"
)

// The floor is what fan-out costs with no server at all: one thread that
// writes the same bytes at the same rate to the same number of loopback TCP
// sockets with writev, in the batches a server would flush per wake-up.
// Its CPU per GB is the least any server can spend; a server's figure is
// reported as a multiple of it.

// FloorConfig is `berth bench floor`.
type FloorConfig struct {
	N           int           // sockets
	BytesPerSec float64       // per socket
	Duration    time.Duration // default 10 s
	PacketSize  int           // bytes per packet; default 1400 (an RTP packet from a camera)
	// Interval is the time between flushes; default 40 ms, one writev per
	// socket per frame of a 25 fps stream: a server that forwards each
	// frame as it arrives cannot make fewer calls without adding delay.
	Interval time.Duration
}

// FloorResult is what the floor measured.
type FloorResult struct {
	N               int     `json:"sockets"`
	Seconds         float64 `json:"seconds"`
	Bytes           uint64  `json:"bytes"`
	Mbps            float64 `json:"mbps"`
	CPUSeconds      float64 `json:"writer_cpu_seconds"`
	CPUPercent      float64 `json:"writer_cpu_percent"`
	CPUSecondsPerGB float64 `json:"cpu_seconds_per_gb"`
	Writes          uint64  `json:"writev_calls"`
	Interval        string  `json:"interval"`
}

func (r FloorResult) String() string {
	return fmt.Sprintf("floor: %d sockets, %.1f Mb/s in total for %.1f s (%d writev calls, one per socket every %s): writer %.2f CPU-s (%.1f%% of a core), %.3f CPU-s per GB",
		r.N, r.Mbps, r.Seconds, r.Writes, r.Interval, r.CPUSeconds, r.CPUPercent, r.CPUSecondsPerGB)
}

// Floor runs the floor. The readers run in this process too, but only the
// writer thread's CPU (RUSAGE_THREAD) is counted.
func Floor(ctx context.Context, cfg FloorConfig) (FloorResult, error) {
	if cfg.N <= 0 || cfg.BytesPerSec <= 0 {
		return FloorResult{}, fmt.Errorf("floor: need -n >= 1 and a rate > 0 (got %d, %.0f B/s)", cfg.N, cfg.BytesPerSec)
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.PacketSize <= 0 {
		cfg.PacketSize = 1400
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 40 * time.Millisecond
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return FloorResult{}, fmt.Errorf("floor: %w", err)
	}
	defer l.Close()

	// Connect N readers; keep the accepted ends to write to.
	writers := make([]*net.TCPConn, 0, cfg.N)
	var readers sync.WaitGroup
	defer readers.Wait()
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
		for _, w := range writers {
			w.Close()
		}
	}()
	for range cfg.N {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return FloorResult{}, fmt.Errorf("floor: connecting socket %d: %w", len(clients)+1, err)
		}
		clients = append(clients, c)
		s, err := l.Accept()
		if err != nil {
			return FloorResult{}, fmt.Errorf("floor: %w", err)
		}
		writers = append(writers, s.(*net.TCPConn))
		readers.Add(1)
		go func() {
			defer readers.Done()
			io.Copy(io.Discard, c)
		}()
	}

	pkt := make([]byte, cfg.PacketSize)
	type out struct {
		res FloorResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		// One locked thread does every write, so its rusage is the cost.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cpu0, err := threadCPU()
		if err != nil {
			done <- out{err: fmt.Errorf("floor: %w", err)}
			return
		}
		start := time.Now()
		end := start.Add(cfg.Duration)
		tick := time.NewTicker(cfg.Interval)
		defer tick.Stop()
		var sentPerSocket int // bytes
		var total, calls uint64
		bufs := make(net.Buffers, 0, 1024)
		for time.Now().Before(end) && ctx.Err() == nil {
			now := <-tick.C
			// Owe by elapsed time, not by ticks: a late tick must not lower the rate.
			owed := int(now.Sub(start).Seconds()*cfg.BytesPerSec) - sentPerSocket
			n := owed / cfg.PacketSize
			if n == 0 {
				continue
			}
			sentPerSocket += n * cfg.PacketSize
			for _, w := range writers {
				b := bufs[:0]
				for range n {
					b = append(b, pkt)
				}
				m, err := b.WriteTo(w) // writev
				if err != nil {
					done <- out{err: fmt.Errorf("floor: writing: %w", err)}
					return
				}
				total += uint64(m)
				calls++
			}
		}
		cpu1, _ := threadCPU()
		el := time.Since(start).Seconds()
		cpu := cpu1 - cpu0
		r := FloorResult{N: cfg.N, Seconds: el, Bytes: total, Mbps: float64(total) * 8 / 1e6 / el,
			CPUSeconds: cpu, CPUPercent: cpu * 100 / el, Writes: calls, Interval: cfg.Interval.String()}
		if total > 0 {
			r.CPUSecondsPerGB = cpu / (float64(total) / 1e9)
		}
		done <- out{res: r}
	}()
	o := <-done
	return o.res, o.err
}
