//go:build linux

package fanout

import (
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/sessions"
	"github.com/berthmedia/berth/internal/testutil"
)

// tcpPairs makes n connected loopback TCP pairs: the server's end, the
// client's end.
func tcpPairs(tb testing.TB, n int) (srv, cli []net.Conn) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	for range n {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			tb.Fatal(err)
		}
		srv, cli = append(srv, s), append(cli, c)
	}
	tb.Cleanup(func() {
		for i := range srv {
			srv[i].Close()
			cli[i].Close()
		}
	})
	return srv, cli
}

// TestPollerCallsReadyOncePerArm: an armed watch reports when its peer
// sends, once, and not again until it is armed again; a peer's close
// reports too, and Stop of an armed watch calls ready in its place.
func TestPollerCallsReadyOncePerArm(t *testing.T) {
	var p Poller
	defer p.Close()
	srv, cli := tcpPairs(t, 2)
	var calls [2]atomic.Int32
	w0, ok := p.Watch(srv[0], func() { calls[0].Add(1) })
	if !ok {
		t.Fatal("Watch of a TCP connection reported false")
	}
	w1, _ := p.Watch(srv[1], func() { calls[1].Add(1) })
	w0.Arm()
	w1.Arm()

	cli[0].Write([]byte("x"))
	testutil.WaitFor(t, 5*time.Second, "ready after the peer wrote", func() bool { return calls[0].Load() == 1 })
	cli[0].Write([]byte("y")) // not armed: no call
	var b [2]byte
	if n, err := io.ReadAtLeast(srv[0], b[:], 2); n != 2 || err != nil {
		t.Fatalf("read %d bytes, %v; want 2 ('xy')", n, err)
	}
	w0.Arm() // nothing buffered: waits for the next byte
	cli[0].Write([]byte("z"))
	testutil.WaitFor(t, 5*time.Second, "ready after the second arm", func() bool { return calls[0].Load() == 2 })

	cli[1].Close() // the peer's close reports like data (EPOLLRDHUP)
	testutil.WaitFor(t, 5*time.Second, "ready after the peer closed", func() bool { return calls[1].Load() == 1 })
	if c := calls[0].Load(); c != 2 {
		t.Fatalf("watch 0 was called %d times; want 2", c)
	}

	w0.Arm()
	w0.Stop() // armed: Stop calls ready in the poller's place
	if c := calls[0].Load(); c != 3 {
		t.Fatalf("Stop of an armed watch: ready called %d times in all; want 3", c)
	}
	w0.Stop()
	w1.Stop() // not armed (ready ran): no call
	if c0, c1 := calls[0].Load(), calls[1].Load(); c0 != 3 || c1 != 1 {
		t.Fatalf("after Stop: calls %d and %d; want 3 and 1", c0, c1)
	}
	// Its owner was reading when the socket was closed (Stop of an idle
	// watch), then arms it: nothing will come, so ready comes at once.
	w1.Arm()
	if c := calls[1].Load(); c != 2 {
		t.Fatalf("Arm after Stop: ready called %d times in all; want 2", c)
	}
	if n := p.Watching(); n != 0 {
		t.Fatalf("%d watches registered after Stop; want 0", n)
	}
}

// TestPollerArmOfAClosedSocketCallsReady: a socket closed before its
// watch is armed cannot be waited for; ready comes at once so its reader
// meets the close.
func TestPollerArmOfAClosedSocketCallsReady(t *testing.T) {
	var p Poller
	defer p.Close()
	srv, _ := tcpPairs(t, 1)
	var calls atomic.Int32
	w, _ := p.Watch(srv[0], func() { calls.Add(1) })
	srv[0].Close()
	w.Arm()
	if c := calls.Load(); c != 1 {
		t.Fatalf("Arm of a closed socket called ready %d times; want 1", c)
	}
	w.Stop()
}

// TestPollerCheckFindsASocketClosedUnderItsWatch: closing an armed
// socket without Stop removes it from epoll silently; Check reports it.
func TestPollerCheckFindsASocketClosedUnderItsWatch(t *testing.T) {
	var p Poller
	defer p.Close()
	srv, _ := tcpPairs(t, 1)
	var calls atomic.Int32
	w, _ := p.Watch(srv[0], func() { calls.Add(1) })
	w.Arm()
	w.Check() // open and quiet: nothing
	if c := calls.Load(); c != 0 {
		t.Fatalf("Check of an open socket called ready %d times; want 0", c)
	}
	srv[0].Close()
	w.Check()
	w.Check()
	if c := calls.Load(); c != 1 {
		t.Fatalf("Check of a closed socket called ready %d times; want 1", c)
	}
	w.Stop()
}

// TestPollerCloseEndsItsGoroutine: Close returns after the epoll goroutine
// has ended, and a closed poller refuses new watches.
// TestPollerHearsAKickAtOnce: kick_session (sessions.Registry.Kick) of a
// connection whose player is parked on the poller wakes the player through
// epoll, not through the sweep, which the test takes out of the way.
func TestPollerHearsAKickAtOnce(t *testing.T) {
	defer func(d time.Duration) { sweepEvery = d }(sweepEvery)
	sweepEvery = time.Hour
	var reg sessions.Registry
	srvs, clis := tcpPairs(t, 1)
	srv, cli := reg.Register(srvs[0], "rtsp"), clis[0]
	var p Poller
	defer p.Close()
	woke := make(chan struct{}, 1)
	w, ok := p.Watch(srv, func() { woke <- struct{}{} })
	if !ok {
		t.Fatal("no watch")
	}
	w.Arm()
	if !reg.Kick(srv.ID()) {
		t.Fatal("Kick found no connection")
	}
	select {
	case <-woke:
	case <-time.After(10 * time.Second):
		t.Fatal("the kicked socket's watch was not woken (the sweep is an hour away)")
	}
	// The player's read meets the end, and the client sees it too.
	if n, err := srv.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("read of the kicked socket: %d, %v; want the end", n, err)
	}
	w.Stop()
	srv.Close()
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := cli.Read(make([]byte, 1)); err == nil {
		t.Error("the client read data from a kicked connection")
	}
}

func TestPollerCloseEndsItsGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	var p Poller
	srv, _ := tcpPairs(t, 1)
	w, ok := p.Watch(srv[0], func() {})
	if !ok {
		t.Fatal("Watch reported false")
	}
	w.Arm()
	w.Stop()
	p.Close()
	testutil.WaitFor(t, 5*time.Second, "the poller's goroutine to end", func() bool { return runtime.NumGoroutine() <= before })
	if _, ok := p.Watch(srv[0], func() {}); ok {
		t.Fatal("a closed poller took a watch")
	}
	var never Poller
	never.Close() // a poller never used closes without starting
}

// TestPollerManyWatchesConcurrently: many sockets armed and written from
// many goroutines each get exactly their own calls.
func TestPollerManyWatchesConcurrently(t *testing.T) {
	const conns, rounds = 50, 20
	var p Poller
	defer p.Close()
	srv, cli := tcpPairs(t, conns)
	var wg sync.WaitGroup
	for i := range conns {
		got := make(chan struct{}, 1)
		w, _ := p.Watch(srv[i], func() { got <- struct{}{} })
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [1]byte
			for range rounds {
				w.Arm()
				cli[i].Write(b[:])
				select {
				case <-got:
				case <-time.After(5 * time.Second):
					t.Errorf("conn %d: no ready within 5 s", i)
					return
				}
				io.ReadFull(srv[i], b[:])
			}
			w.Stop()
		}()
	}
	wg.Wait()
}

// BenchmarkPollerWake is one request of an idle connection through the
// poller: arm, the peer writes a byte, ready starts a goroutine that reads
// it. Compare BenchmarkGoroutineWake, the goroutine that waits in Read.
func BenchmarkPollerWake(b *testing.B) {
	var p Poller
	defer p.Close()
	srv, cli := tcpPairs(b, 1)
	got := make(chan struct{})
	var buf [1]byte
	w, _ := p.Watch(srv[0], func() {
		go func() {
			srv[0].Read(buf[:])
			got <- struct{}{}
		}()
	})
	defer w.Stop()
	b.ReportAllocs()
	for b.Loop() {
		w.Arm()
		cli[0].Write([]byte{1})
		<-got
	}
}

// BenchmarkGoroutineWake is the same request read by a goroutine that
// waits in Read, as a player without the poller does.
func BenchmarkGoroutineWake(b *testing.B) {
	srv, cli := tcpPairs(b, 1)
	got := make(chan struct{})
	var buf [1]byte
	b.ReportAllocs()
	for b.Loop() {
		go func() {
			srv[0].Read(buf[:])
			got <- struct{}{}
		}()
		cli[0].Write([]byte{1})
		<-got
	}
}

// BenchmarkIdleConnMemory reports the bytes an idle connection costs while
// it waits: a goroutine blocked in Read, or a watch armed on the poller.
func BenchmarkIdleConnMemory(b *testing.B) {
	const conns = 300
	measure := func(b *testing.B, wait func(srv []net.Conn) func()) {
		for b.Loop() {
			b.StopTimer()
			srv, cli := tcpPairs(b, conns)
			runtime.GC()
			var m0 runtime.MemStats
			runtime.ReadMemStats(&m0)
			b.StartTimer()
			stop := wait(srv)
			b.StopTimer()
			runtime.GC()
			var m1 runtime.MemStats
			runtime.ReadMemStats(&m1)
			used := int64(m1.HeapAlloc+m1.StackInuse) - int64(m0.HeapAlloc+m0.StackInuse)
			b.ReportMetric(float64(used)/conns, "B/conn")
			stop()
			for i := range srv {
				srv[i].Close()
				cli[i].Close()
			}
			b.StartTimer()
		}
	}
	b.Run("goroutine", func(b *testing.B) {
		measure(b, func(srv []net.Conn) func() {
			var wg sync.WaitGroup
			for _, c := range srv {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var buf [1]byte
					c.Read(buf[:])
				}()
			}
			// Let them all block in Read, as idle players do.
			for runtime.NumGoroutine() < conns {
				runtime.Gosched()
			}
			return func() {
				for _, c := range srv {
					c.SetReadDeadline(time.Unix(1, 0))
				}
				wg.Wait()
			}
		})
	})
	b.Run("poller", func(b *testing.B) {
		var p Poller
		defer p.Close()
		measure(b, func(srv []net.Conn) func() {
			ws := make([]*Watch, len(srv))
			for i, c := range srv {
				ws[i], _ = p.Watch(c, func() {})
				ws[i].Arm()
			}
			return func() {
				for _, w := range ws {
					w.Stop()
				}
			}
		})
	})
}

// BenchmarkTryWrite is one player's batch of 32 buffers written with one
// non-blocking writev, the iovecs borrowed from the pool: 0 allocations.
func BenchmarkTryWrite(b *testing.B) {
	srv, cli := tcpPairs(b, 1)
	go io.Copy(io.Discard, cli[0])
	w, ok := NewWriter(srv[0], 65)
	if !ok {
		b.Fatal("NewWriter reported false for a TCP connection")
	}
	buf := make([]byte, 1400)
	bufs := make([][]byte, 32)
	for i := range bufs {
		bufs[i] = buf
	}
	b.SetBytes(int64(len(buf) * len(bufs)))
	b.ReportAllocs()
	for b.Loop() {
		n, ok := w.TryWrite(bufs)
		if !ok {
			rest := Rest(append([][]byte(nil), bufs...), n)
			srv[0].(*net.TCPConn).SetWriteDeadline(time.Time{})
			nb := net.Buffers(rest)
			nb.WriteTo(srv[0])
		}
	}
}
