package hub

import (
	"errors"
	"sync/atomic"
	"testing"
)

// TestTryReadParksAndReadyWakes: an event-driven reader never blocks.
// TryRead returns what there is, or parks and returns 0; ready then runs
// once per park when a frame comes, when the stream ends and on Close,
// and the next TryRead finds the frames, then the end.
func TestTryReadParksAndReadyWakes(t *testing.T) {
	for _, end := range []string{"publisher leaves", "reader closed"} {
		t.Run(end, func(t *testing.T) {
			h, _ := newTestHub(t, Options{})
			p := mustPublish(t, h, "live/try", videoTracks)
			r := mustSubscribe(t, h, "live/try", KindRTP)
			var readies atomic.Int32
			r.SetReady(func() { readies.Add(1) })
			buf := make([]*Frame, 8)

			if n, err := r.TryRead(buf); n != 0 || err != nil {
				t.Fatalf("TryRead of an empty stream = %d, %v; want 0, nil", n, err)
			}
			fs := frames("K..")
			for _, f := range fs {
				p.Write(f)
			}
			if got := readies.Load(); got != 1 {
				t.Fatalf("ready ran %d times after frames reached a parked reader; want 1", got)
			}
			n, err := r.TryRead(buf)
			if n != 3 || err != nil || buf[0] != fs[0] || buf[2] != fs[2] {
				t.Fatalf("TryRead after ready = %d, %v; want the 3 frames written", n, err)
			}
			if n, err := r.TryRead(buf); n != 0 || err != nil {
				t.Fatalf("TryRead when caught up = %d, %v; want 0, nil (parked)", n, err)
			}
			want := ErrEnded
			if end == "publisher leaves" {
				p.Close()
			} else {
				r.Close()
				want = ErrReaderClosed
			}
			if got := readies.Load(); got != 2 {
				t.Fatalf("ready ran %d times in all after the end; want 2", got)
			}
			if _, err := r.TryRead(buf); !errors.Is(err, want) {
				t.Fatalf("TryRead after the end: %v; want %v", err, want)
			}
		})
	}
}
