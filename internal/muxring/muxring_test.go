package muxring

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testutil"
)

// echo is a toy format: a chunk per frame, holding the frame's first
// byte, Key where the frame is; its header is "E" from the first keyframe.
type echo struct {
	ring      int
	stopDelay time.Duration
	panicAt   byte // a frame starting with this byte panics the engine (0: none)

	mu     sync.Mutex
	firsts []bool
}

func (e *echo) Options() Options {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Options{Name: "echo", StopDelay: e.stopDelay, RingSize: e.ring}
}

func (e *echo) NewEngine(s *hub.Stream, rd *hub.Reader, out *Ring, _ *slog.Logger, first bool) (Engine, error) {
	e.mu.Lock()
	e.firsts = append(e.firsts, first)
	e.mu.Unlock()
	return &echoEngine{rd: rd, out: out, panicAt: e.panicAt}, nil
}

type echoEngine struct {
	rd      *hub.Reader
	out     *Ring
	panicAt byte
	started bool
}

func (e *echoEngine) Mux() error {
	frames := make([]*hub.Frame, 16)
	for {
		n, err := e.rd.Read(frames)
		if err != nil {
			return err
		}
		for _, f := range frames[:n] {
			if e.panicAt != 0 && f.AU[0][0] == e.panicAt {
				panic("a frame it did not expect")
			}
			if !e.started && !f.Key {
				continue
			}
			if !e.started {
				e.out.SetHeader([]byte("E"), "echo")
				e.started = true
			}
			e.out.Publish(&Chunk{Key: f.Key, DTS: f.DTS, Data: f.AU[0], Made: time.Now()})
		}
	}
}

func publish(t *testing.T) (*hub.Publisher, *hub.Stream) {
	t.Helper()
	h := hub.New(hub.Options{})
	t.Cleanup(h.Close)
	pub, err := h.Publish("live/e", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.H264Track(nil, nil)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, pub.Stream()
}

// write publishes frames from..to-1, a keyframe every 5.
func write(pub *hub.Publisher, from, to int) {
	for i := from; i < to; i++ {
		d := time.Duration(i) * 40 * time.Millisecond
		pub.Write(&hub.Frame{Key: i%5 == 0, AU: [][]byte{{byte(i)}}, PTS: d, DTS: d})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

// readN reads n chunks and returns their first bytes.
func readN(t *testing.T, c *Cursor, n int) []byte {
	t.Helper()
	var got []byte
	for len(got) < n {
		chunks, err := c.Next(ctx(t), make([]*Chunk, 0, n-len(got)))
		if err != nil {
			t.Fatalf("after %d chunks: %v", len(got), err)
		}
		for _, ch := range chunks {
			got = append(got, ch.Data[0])
		}
	}
	return got
}

func TestCursorStartsAtTheNewestKeyChunk(t *testing.T) {
	pub, s := publish(t)
	ms := &Muxers{}
	f := &echo{}
	first, err := ms.Open(s, f)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if h, _, err := first.Ready(short); err == nil {
		t.Fatalf("Ready before a keyframe: %q", h)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	write(pub, 1, 13) // 1..4 are before the first keyframe: no chunks
	if got := readN(t, first, 8); string(got) != "\x05\x06\x07\x08\x09\x0a\x0b\x0c" {
		t.Errorf("first reader: % x, want 05..0c", got)
	}
	late, err := ms.Open(s, f)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if h, codecs, err := late.Ready(ctx(t)); string(h) != "E" || codecs != "echo" || err != nil {
		t.Errorf("Ready: %q %q %v", h, codecs, err)
	}
	if got := readN(t, late, 3); string(got) != "\x0a\x0b\x0c" {
		t.Errorf("late reader: % x, want 0a 0b 0c (from the newest keyframe)", got)
	}
	if late.Lag() != 0 || ms.Started() != 1 || ms.Running() != 1 || ms.Get(s) != late.Ring() {
		t.Errorf("lag %d, started %d, running %d", late.Lag(), ms.Started(), ms.Running())
	}
}

func TestReadersDrainThenGetTheEnd(t *testing.T) {
	pub, s := publish(t)
	ms := &Muxers{}
	c, _ := ms.Open(s, &echo{})
	defer c.Close()
	write(pub, 0, 4)
	pub.Close()
	var got int
	for {
		chunks, err := c.Next(ctx(t), make([]*Chunk, 0, 8))
		got += len(chunks)
		if err != nil {
			if !errors.Is(err, hub.ErrEnded) || got != 4 {
				t.Errorf("%d chunks then %v, want 4 then hub.ErrEnded", got, err)
			}
			break
		}
	}
	testutil.WaitFor(t, 5*time.Second, "the ended muxer to be forgotten", func() bool { return ms.Running() == 0 })
}

func TestStopDelay(t *testing.T) {
	for _, c := range []struct {
		name     string
		delay    time.Duration
		reused   bool
		wantNext error
	}{
		{"no delay stops at once", 0, false, ErrStopped},
		{"within the delay the muxer is reused", time.Hour, true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, s := publish(t)
			ms := &Muxers{}
			f := &echo{stopDelay: c.delay}
			a, _ := ms.Open(s, f)
			a.Close()
			a.Close() // twice is once
			if c.wantNext != nil {
				if _, err := a.Next(ctx(t), make([]*Chunk, 0, 1)); !errors.Is(err, c.wantNext) {
					t.Errorf("cursor of a stopped muxer: %v, want %v", err, c.wantNext)
				}
			}
			b, _ := ms.Open(s, f)
			defer b.Close()
			if reused := b.Ring() == a.Ring(); reused != c.reused || (ms.Started() == 1) != c.reused {
				t.Errorf("reused %v (started %d), want %v", reused, ms.Started(), c.reused)
			}
			if want := []bool{true, false}; !c.reused && (len(f.firsts) != 2 || f.firsts[0] != want[0] || f.firsts[1] != want[1]) {
				t.Errorf("first muxer of the stream: %v, want %v", f.firsts, want)
			}
		})
	}
}

func TestSlowReaderIsDropped(t *testing.T) {
	pub, s := publish(t)
	ms := &Muxers{}
	f := &echo{ring: 8}
	fast, _ := ms.Open(s, f)
	slow, _ := ms.Open(s, f)
	defer fast.Close()
	defer slow.Close()
	write(pub, 0, 1)
	readN(t, slow, 1)
	readN(t, fast, 1)
	for i := 1; i < 20; i += 4 {
		write(pub, i, i+4)
		readN(t, fast, 4)
	}
	if _, err := slow.Next(ctx(t), make([]*Chunk, 0, 1)); !errors.Is(err, ErrSlowReader) {
		t.Errorf("slow reader: %v, want ErrSlowReader", err)
	}
}

func TestCloseStopsEveryMuxerAndRefusesNew(t *testing.T) {
	_, s := publish(t)
	ms := &Muxers{}
	c, _ := ms.Open(s, &echo{})
	defer c.Close()
	ms.Close()
	if _, err := c.Next(ctx(t), make([]*Chunk, 0, 1)); !errors.Is(err, ErrStopped) {
		t.Errorf("cursor after Close: %v, want ErrStopped", err)
	}
	if _, err := ms.Open(s, &echo{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close: %v, want ErrClosed", err)
	}
}

// TestEnginePanicEndsOnlyItsMuxer: a panicking engine ends its muxer with
// an error its readers get; the next Open starts a new one.
func TestEnginePanicEndsOnlyItsMuxer(t *testing.T) {
	pub, s := publish(t)
	ms := &Muxers{}
	c, _ := ms.Open(s, &echo{panicAt: 0xee})
	defer c.Close()
	write(pub, 0, 2)
	pub.Write(&hub.Frame{AU: [][]byte{{0xee}}, DTS: time.Second, PTS: time.Second})
	readN(t, c, 2)
	_, err := c.Next(ctx(t), make([]*Chunk, 0, 1))
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("after the panic: %v, want the panic as the muxer's error", err)
	}
	testutil.WaitFor(t, 5*time.Second, "the failed muxer to be forgotten", func() bool { return ms.Running() == 0 })
	again, err := ms.Open(s, &echo{})
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
}

// TestEventDrivenCursor: a cursor with SetReady is woken by each chunk and
// by the end, TryNext never waits, and Close stops the wake-ups.
func TestEventDrivenCursor(t *testing.T) {
	pub, s := publish(t)
	ms := &Muxers{}
	c, _ := ms.Open(s, &echo{})
	woken := make(chan struct{}, 64)
	c.SetReady(func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	})
	src := c.Bytes(8)
	if bufs, err := src.Next(nil); len(bufs) != 0 || err != nil {
		t.Fatalf("Next before any chunk: %d buffers, %v", len(bufs), err)
	}
	write(pub, 0, 3)
	var got []byte
	for len(got) < 3 {
		select {
		case <-woken:
		case <-time.After(5 * time.Second):
			t.Fatalf("not woken; got % x", got)
		}
		bufs, err := src.Next(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bufs {
			got = append(got, b[0])
		}
	}
	if string(got) != "\x00\x01\x02" {
		t.Errorf("got % x, want 00 01 02", got)
	}
	pub.Close()
	testutil.WaitFor(t, 5*time.Second, "the end through TryNext", func() bool {
		_, err := src.Next(nil)
		return errors.Is(err, hub.ErrEnded)
	})
	c.Close()
	if r := c.Ring(); func() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.ready) }() != 0 {
		t.Error("Close left the cursor's wake-up on the ring")
	}
}
