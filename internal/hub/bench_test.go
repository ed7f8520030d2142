package hub

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The fan-out benchmarks measure what one packet costs per reader: one
// publisher writes b.N RTP frames in bursts (a burst is what arrives from the
// publisher's socket at once: 1 packet, or a video frame's worth), and every
// reader must have consumed a burst before the next is written, so no reader
// is ever skipped and every reader handles every packet. ns/pkt/reader and
// allocs/pkt/reader divide the whole run (publisher, wake-ups, readers) by
// packets × readers; the goal is 0 allocs/pkt/reader.
//
//	go test -run '^$' -bench Fanout -benchtime 20000x ./internal/hub/

// sink is what a reader does with a batch.
type sink int

const (
	sinkNone    sink = iota // count only: the hub's own cost
	sinkDiscard             // net.Buffers written to a writer that discards
	sinkTCP                 // net.Buffers written to a loopback TCP socket (writev)
)

func (s sink) String() string {
	return [...]string{"none", "discard", "tcp"}[s]
}

// discardWriter is an io.Writer without WriteTo/ReadFrom tricks, like a
// protocol writer that does not know what it writes to.
type discardWriter struct{ n int64 }

func (d *discardWriter) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }

// batchWriter is the reader loop a protocol session runs: gather a batch's
// bytes into one net.Buffers and write it with one call (one writev on a
// socket). bufs and nb live in the session (heap), so a write allocates
// nothing: net.Buffers.WriteTo consumes nb, so it is re-sliced from bufs each
// time rather than made anew.
type batchWriter struct {
	w    io.Writer
	bufs [][]byte
	nb   net.Buffers
}

func (bw *batchWriter) write(fs []*Frame) error {
	bw.bufs = bw.bufs[:0]
	for _, f := range fs {
		bw.bufs = append(bw.bufs, f.Data)
	}
	bw.nb = bw.bufs
	_, err := bw.nb.WriteTo(bw.w)
	return err
}

func BenchmarkFanout(b *testing.B) {
	for _, c := range []struct {
		readers, burst int
		sink           sink
	}{
		{1, 1, sinkNone}, {100, 1, sinkNone}, {1000, 1, sinkNone},
		{1, 16, sinkNone}, {100, 16, sinkNone}, {1000, 16, sinkNone},
		{1000, 16, sinkDiscard},
		{1, 16, sinkTCP}, {100, 16, sinkTCP},
	} {
		for _, flush := range []bool{false, true} {
			if flush && c.burst == 1 {
				continue
			}
			wake := "frame"
			if flush {
				wake = "burst"
			}
			for _, waker := range []string{"inline", "goroutine"} {
				if waker == "goroutine" && c.readers <= int(inlineWakeMax) {
					continue // the same as inline: small lists are always woken inline
				}
				b.Run(fmt.Sprintf("readers=%d/burst=%d/wake=%s/waker=%s/sink=%s", c.readers, c.burst, wake, waker, c.sink), func(b *testing.B) {
					defer func(old int32) { inlineWakeMax = old }(inlineWakeMax)
					if waker == "inline" {
						inlineWakeMax = 1 << 30
					}
					benchFanout(b, c.readers, c.burst, flush, c.sink)
				})
			}
		}
	}
}

// benchFanout: with flush, the publisher appends a burst and wakes readers
// once (Append+Flush); without, every Write wakes them.
func benchFanout(b *testing.B, readers, burst int, flush bool, sk sink) {
	const ringSize = 1024
	h := New(Options{RingSize: ringSize})
	defer h.Close()
	pub, err := h.Publish("live/bench", Origin{Proto: "bench"}, KindRTP, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	// Frames are recycled from a pool twice the ring: a reader is never more
	// than a burst behind, so it never sees a frame being refilled.
	pool := make([]*Frame, 2*ringSize)
	for i := range pool {
		pool[i] = NewRTPFrame(0, make([]byte, 1200), true, time.Time{})
	}

	var pending atomic.Int64
	burstDone := make(chan struct{}, 1)
	var wg sync.WaitGroup
	var conns []net.Conn
	var ln net.Listener
	if sk == sinkTCP {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
	}
	for i := 0; i < readers; i++ {
		r, err := h.Subscribe("live/bench", KindRTP, Origin{Proto: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		bw := &batchWriter{w: &discardWriter{}, bufs: make([][]byte, 0, 64)}
		if sk == sinkTCP {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			s, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c, s)
			bw.w = c
			go io.Copy(io.Discard, s)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			batch := make([]*Frame, 64)
			for {
				n, err := r.Read(batch)
				if err != nil {
					return
				}
				if sk != sinkNone {
					if err := bw.write(batch[:n]); err != nil {
						b.Error(err)
						return
					}
				}
				if (batch[n-1].seq+1)%uint64(burst) == 0 && pending.Add(-1) == 0 {
					burstDone <- struct{}{}
				}
			}
		}()
	}

	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	n := (b.N + burst - 1) / burst * burst
	var writing time.Duration // the publisher's own time: appends and wake-ups
	for i := 0; i < n; i += burst {
		pending.Store(int64(readers))
		t0 := time.Now()
		for j := 0; j < burst; j++ {
			if flush {
				pub.Append(pool[(i+j)%len(pool)])
			} else {
				pub.Write(pool[(i+j)%len(pool)])
			}
		}
		if flush {
			pub.Flush()
		}
		writing += time.Since(t0)
		<-burstDone
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(writing.Nanoseconds())/float64(n), "writer-ns/pkt")
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	per := float64(n) * float64(readers)
	b.ReportMetric(float64(elapsed.Nanoseconds())/per, "ns/pkt/reader")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/per, "allocs/pkt/reader")
	pub.Close()
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
}

// BenchmarkBuffersWriteTo proves the batch write path: net.Buffers.WriteTo
// to a loopback *net.TCPConn (writev) with bufs and nb kept in the session.
func BenchmarkBuffersWriteTo(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	go io.Copy(io.Discard, s)
	frames := make([]*Frame, 16)
	for i := range frames {
		frames[i] = NewRTPFrame(0, make([]byte, 1200), true, time.Time{})
	}
	for _, v := range []struct {
		name string
		w    io.Writer
	}{{"tcp", c}, {"discard", &discardWriter{}}} {
		b.Run(v.name, func(b *testing.B) {
			bw := &batchWriter{w: v.w, bufs: make([][]byte, 0, 64)}
			b.ReportAllocs()
			for b.Loop() {
				if err := bw.write(frames); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The naive form, for comparison: a net.Buffers made per write in a
	// local variable. WriteTo has a pointer receiver and the value escapes
	// through the io.Writer interface, so it costs one allocation per write.
	b.Run("tcp-local-buffers", func(b *testing.B) {
		bufs := make([][]byte, 0, 64)
		b.ReportAllocs()
		for b.Loop() {
			bufs = bufs[:0]
			for _, f := range frames {
				bufs = append(bufs, f.Data)
			}
			nb := net.Buffers(bufs)
			if _, err := nb.WriteTo(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIdleReaderMemory measures what an idle reader costs: the hub's
// Reader (heap) and, separately, the goroutine parked in Read (stack), for
// 10,000 readers of one stream.
func BenchmarkIdleReaderMemory(b *testing.B) {
	const readers = 10000
	for b.Loop() {
		h := New(Options{})
		p, err := h.Publish("live/idle", Origin{}, KindRTP, videoTracks, nil)
		if err != nil {
			b.Fatal(err)
		}
		p.Write(NewRTPFrame(0, make([]byte, 100), true, time.Time{}))
		rs := make([]*Reader, readers)
		runtime.GC()
		var m0, m1, m2 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for i := range rs {
			rs[i], err = h.Subscribe("live/idle", KindRTP, Origin{Proto: "bench"})
			if err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		var wg sync.WaitGroup
		for _, r := range rs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]*Frame, 16)
				for {
					if _, err := r.Read(buf); err != nil {
						return
					}
				}
			}()
		}
		ring := p.Stream().views[KindRTP].ring
		for ring.nparked.Load() < readers {
			runtime.Gosched()
		}
		runtime.GC()
		runtime.ReadMemStats(&m2)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/readers, "heapB/reader")
		b.ReportMetric(float64((m2.HeapAlloc+m2.StackInuse)-(m1.HeapAlloc+m1.StackInuse))/readers, "parkedB/reader")
		p.Close()
		wg.Wait()
	}
}
