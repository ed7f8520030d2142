package hub

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// goroutinesSettle fails the test unless the goroutine count returns to
// base: every reader, converter and wake-up the hub started has ended.
func goroutinesSettle(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// withWakers runs a test twice: with the writer waking parked readers
// itself, and with every wake-up handed to the ring's waker goroutine.
func withWakers(t *testing.T, test func(t *testing.T)) {
	for _, c := range []struct {
		name string
		max  int32
	}{{"inline", 1 << 30}, {"waker goroutine", 0}} {
		t.Run(c.name, func(t *testing.T) {
			defer func(old int32) { inlineWakeMax = old }(inlineWakeMax)
			inlineWakeMax = c.max
			test(t)
		})
	}
}

func TestNoGoroutineLeaks(t *testing.T) { withWakers(t, testNoGoroutineLeaks) }

func TestRandomConcurrency(t *testing.T) { withWakers(t, testRandomConcurrency) }

func testNoGoroutineLeaks(t *testing.T) {
	base := runtime.NumGoroutine()
	conv := &auConverter{}
	h, _ := newTestHub(t, Options{RingSize: 16, AllowTakeover: true,
		Converters: map[[2]Kind]Converter{{KindRTP, KindAU}: conv.convert}})
	var wg sync.WaitGroup
	readUntilError := func(r *Reader) {
		defer wg.Done()
		defer r.Close()
		buf := make([]*Frame, 8)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}
	var pubs []*Publisher
	for i := 0; i < 4; i++ {
		path := fmt.Sprintf("live/%d", i)
		p := mustPublish(t, h, path, videoTracks)
		pubs = append(pubs, p)
		for j := 0; j < 5; j++ {
			kind := Kind(j % 2)
			r, err := h.Subscribe(path, kind, Origin{})
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go readUntilError(r)
		}
		for _, f := range frames("K..K..") {
			p.Write(f)
		}
	}
	pubs[0].Close()                                                                     // publisher leaves
	if _, err := h.Publish("live/1", Origin{}, KindRTP, videoTracks, nil); err != nil { // takeover
		t.Fatal(err)
	}
	h.Close() // shutdown ends the rest
	wg.Wait()
	goroutinesSettle(t, base)
}

// testRandomConcurrency runs random publish, takeover, subscribe, read and
// close interleavings on a few paths under the race detector, and checks
// that every reader sees its ring's frames in order (gaps only where it
// skipped), that everything ends after Hub.Close, and that no goroutine leaks.
func testRandomConcurrency(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	base := runtime.NumGoroutine()
	conv := &auConverter{}
	h, _ := newTestHub(t, Options{RingSize: 32, AllowTakeover: seed%2 == 0,
		SlowReader: SlowPolicy(seed / 2 % 2),
		Converters: map[[2]Kind]Converter{{KindRTP, KindAU}: conv.convert}})
	paths := []string{"live/a", "live/b", "live/c"}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	stop := make(chan struct{})

	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				tracks := videoTracks
				if rng.IntN(4) == 0 {
					tracks = []*Track{{}}
				}
				p, err := h.Publish(paths[rng.IntN(len(paths))], Origin{Proto: "pub", ID: fmt.Sprint(w)}, KindRTP, tracks, nil)
				if errors.Is(err, ErrPathBusy) {
					runtime.Gosched()
					continue
				}
				if errors.Is(err, ErrHubClosed) {
					return
				}
				if err != nil {
					fail(err)
					return
				}
				for n := rng.IntN(200); n > 0; n-- {
					p.Write(NewRTPFrame(0, []byte{1}, rng.IntN(10) == 0, time.Time{}))
					if rng.IntN(20) == 0 {
						runtime.Gosched()
					}
				}
				p.Close()
			}
		}(w)
	}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(100+w)))
			buf := make([]*Frame, 16)
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := h.Subscribe(paths[rng.IntN(len(paths))], Kind(rng.IntN(2)), Origin{Proto: "reader"})
				if err != nil {
					if errors.Is(err, ErrNotFound) || errors.Is(err, ErrEnded) {
						runtime.Gosched()
						continue
					}
					fail(err)
					return
				}
				if rng.IntN(10) == 0 {
					go r.Close() // close from another goroutine, racing Read
				}
				var next uint64
				var skips uint64
				first := true
				for reads := rng.IntN(50); ; reads-- {
					if reads == 0 {
						r.Close()
					}
					n, err := r.Read(buf[:1+rng.IntN(len(buf))])
					if err != nil {
						if !errors.Is(err, ErrEnded) && !errors.Is(err, ErrReaderClosed) && !errors.Is(err, ErrSlowReader) {
							fail(err)
						}
						break
					}
					for _, f := range buf[:n] {
						if !first && f.seq != next && r.Skips == skips {
							fail(fmt.Errorf("reader got frame %d, want %d (no skip)", f.seq, next))
						}
						if !first && f.seq < next {
							fail(fmt.Errorf("reader went back from %d to %d", next, f.seq))
						}
						first = false
						next = f.seq + 1
						skips = r.Skips
					}
				}
				r.Close()
			}
		}(w)
	}

	time.Sleep(500 * time.Millisecond) // the length of the random run, not a wait for a condition
	h.Close()
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("publishers or readers stuck after Hub.Close:\n%s", buf[:runtime.Stack(buf, true)])
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	goroutinesSettle(t, base)
}
