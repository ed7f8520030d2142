package fanout

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testutil"
)

// TestRunnerServesEveryWakeOneAtATime: wakes from many goroutines are
// never lost (the last serve runs after the last wake) and never run
// serve on two goroutines at once.
func TestRunnerServesEveryWakeOneAtATime(t *testing.T) {
	var pool Pool
	defer pool.Close()
	var inServe, overlaps atomic.Int32
	var served, woken atomic.Int64
	r := NewRunner(&pool, func() bool {
		if inServe.Add(1) > 1 {
			overlaps.Add(1)
		}
		served.Store(woken.Load()) // everything woken so far is served by this turn
		runtime.Gosched()
		inServe.Add(-1)
		return true
	}, func(v any) { t.Errorf("serve panicked: %v", v) })
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				woken.Add(1)
				r.Wake()
			}
		}()
	}
	wg.Wait()
	testutil.WaitFor(t, 5*time.Second, "a turn after the last wake", func() bool { return served.Load() == woken.Load() })
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("serve ran on two goroutines at once %d times", n)
	}
}

// TestRunnerTurnGivenAway: a serve that returns false keeps the turn from
// the pool until the goroutine it went to calls Run.
func TestRunnerTurnGivenAway(t *testing.T) {
	// A pool without senders: the test takes the queued turns itself, so
	// "no turn was queued" is a plain look at the queue, not a wait.
	var pool Pool
	pool.once.Do(func() { pool.q = make(chan *Runner, 8) })
	turns := 0
	r := NewRunner(&pool, func() bool {
		turns++
		return turns > 1 // the first turn goes to a goroutine of the player's own
	}, func(v any) { t.Errorf("serve panicked: %v", v) })
	r.Start()
	(<-pool.q).Run() // as a sender would: serve gives the turn away
	r.Wake()         // must not queue a turn: the turn is away
	if len(pool.q) != 0 || turns != 1 {
		t.Fatalf("%d turns queued, %d served while the turn was away; want 0 and 1", len(pool.q), turns)
	}
	r.Run() // the goroutine that had the turn goes on, and serves the wake
	if turns != 2 || len(pool.q) != 0 {
		t.Fatalf("%d turns after Run, %d queued; want 2 and 0", turns, len(pool.q))
	}
	r.Wake() // waiting again: the next wake is queued for the senders
	if len(pool.q) != 1 {
		t.Fatalf("%d turns queued after the runner waited again; want 1", len(pool.q))
	}
}

// TestRunnerSurvivesAPanickingServe: a serve that panics is reported to
// crashed and its runner is dead; the pool's senders go on serving others.
func TestRunnerSurvivesAPanickingServe(t *testing.T) {
	var pool Pool
	defer pool.Close()
	crashed := make(chan any, 1)
	bad := NewRunner(&pool, func() bool { panic("broken player") }, func(v any) { crashed <- v })
	bad.Start()
	select {
	case v := <-crashed:
		if v != "broken player" {
			t.Fatalf("crashed got %v", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the panic never reached crashed")
	}
	bad.Wake() // dead: never served again
	served := make(chan struct{}, 16)
	good := NewRunner(&pool, func() bool { served <- struct{}{}; return true }, func(v any) { t.Errorf("good panicked: %v", v) })
	for range runtime.GOMAXPROCS(0) + 1 { // every sender, at least once
		good.Wake()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Fatal("the pool stopped serving after a panic")
		}
	}
}

// TestWriterWritesAllOrTellsTheRest: to a socket that reads, TryWrite
// writes the whole batch in order; to one that stops reading, it reports a
// short write without blocking, and Rest plus a blocking write deliver the
// remainder byte for byte.
func TestWriterWritesAllOrTellsTheRest(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	w, ok := NewWriter(server, 4)
	if !ok {
		t.Skip("no non-blocking writev on this system")
	}

	bufs := [][]byte{[]byte("ab"), nil, []byte("cde"), []byte("f")}
	if n, all := w.TryWrite(bufs); n != 6 || !all {
		t.Fatalf("TryWrite = %d, %v; want 6, true", n, all)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "abcdef" {
		t.Fatalf("read %q, %v; want abcdef", got, err)
	}

	// The client stops reading: fill its window and the server's buffer.
	server.(*net.TCPConn).SetWriteBuffer(4096)
	client.(*net.TCPConn).SetReadBuffer(4096)
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	var sent bytes.Buffer
	var short []byte
	for i := 0; i < 1000 && short == nil; i++ {
		b := append(append([]byte{}, chunk...), byte(i))
		start := time.Now()
		n, all := w.TryWrite([][]byte{b})
		if time.Since(start) > time.Second {
			t.Fatal("TryWrite blocked")
		}
		sent.Write(b[:n])
		if !all {
			short = Rest([][]byte{b}, n)[0]
		}
	}
	if short == nil {
		t.Fatal("64 MB went into a socket nobody reads")
	}
	done := make(chan error, 1)
	go func() { _, err := server.Write(short); done <- err; server.Close() }()
	all, err := io.ReadAll(client)
	if err != nil || <-done != nil {
		t.Fatalf("reading the rest: %v", err)
	}
	sent.Write(short)
	if !bytes.Equal(all, sent.Bytes()) {
		t.Fatalf("received %d bytes, not the %d written", len(all), sent.Len())
	}
}

func TestRest(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "ab|cd|e"}, {1, "b|cd|e"}, {2, "cd|e"}, {3, "d|e"}, {5, ""}} {
		bufs := [][]byte{[]byte("ab"), []byte("cd"), []byte("e")}
		var parts []string
		for _, b := range Rest(bufs, c.n) {
			parts = append(parts, string(b))
		}
		got := ""
		for i, p := range parts {
			if i > 0 {
				got += "|"
			}
			got += p
		}
		if got != c.want {
			t.Errorf("Rest(%d) = %q; want %q", c.n, got, c.want)
		}
	}
}
