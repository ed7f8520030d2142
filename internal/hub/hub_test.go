package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testutil"
)

func count(l *testutil.LogBuffer, substr string) int { return strings.Count(l.String(), substr) }

func newTestHub(t *testing.T, opts Options) (*Hub, *testutil.LogBuffer) {
	t.Helper()
	lb := &testutil.LogBuffer{}
	opts.Log = slog.New(slog.NewTextHandler(lb, nil))
	h := New(opts)
	t.Cleanup(h.Close)
	return h, lb
}

var videoTracks = []*Track{{Video: true}, {}}

// frames returns RTP frames from a pattern: 'K' a keyframe, '.' another frame.
func frames(pattern string) []*Frame {
	out := make([]*Frame, len(pattern))
	for i, c := range pattern {
		out[i] = NewRTPFrame(0, []byte{byte(i)}, c == 'K', time.Time{})
	}
	return out
}

func mustPublish(t *testing.T, h *Hub, path string, tracks []*Track) *Publisher {
	t.Helper()
	p, err := h.Publish(path, Origin{Proto: "test", Remote: "pub-" + path}, KindRTP, tracks, nil)
	if err != nil {
		t.Fatalf("publish %s: %v", path, err)
	}
	return p
}

func mustSubscribe(t *testing.T, h *Hub, path string, kind Kind) *Reader {
	t.Helper()
	r, err := h.Subscribe(path, kind, Origin{Proto: "test", Remote: "reader"})
	if err != nil {
		t.Fatalf("subscribe %s: %v", path, err)
	}
	t.Cleanup(r.Close)
	return r
}

// readResult is one Read's outcome, for reads run in a goroutine.
type readResult struct {
	seqs []uint64
	err  error
}

// readAsync runs one Read in a goroutine; the caller waits on the channel
// with a deadline.
func readAsync(r *Reader) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		buf := make([]*Frame, 64)
		n, err := r.Read(buf)
		ch <- readResult{seqsOf(buf[:n]), err}
	}()
	return ch
}

func seqsOf(fs []*Frame) []uint64 {
	out := make([]uint64, len(fs))
	for i, f := range fs {
		out[i] = f.seq
	}
	return out
}

func await[T any](t *testing.T, ch <-chan T, within time.Duration) T {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(within):
		t.Fatalf("Read did not return within %v", within)
		var zero T
		return zero
	}
}

// readNow reads what is already in the ring; it fails the test if Read blocks.
func readNow(t *testing.T, r *Reader) ([]uint64, error) {
	t.Helper()
	res := await(t, readAsync(r), 2*time.Second)
	return res.seqs, res.err
}

func eq(a, b []uint64) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestRingKeepsNewestFramesAcrossWrap(t *testing.T) {
	for _, c := range []struct {
		size, writes int
		wantSize     uint64
	}{
		{size: 1, writes: 3, wantSize: 1},
		{size: 4, writes: 3, wantSize: 4},
		{size: 4, writes: 4, wantSize: 4},
		{size: 5, writes: 21, wantSize: 8}, // rounded up to a power of two
		{size: 8, writes: 1000, wantSize: 8},
	} {
		t.Run(fmt.Sprintf("size=%d/writes=%d", c.size, c.writes), func(t *testing.T) {
			r := newRing(c.size)
			if r.size() != c.wantSize {
				t.Fatalf("size %d, want %d", r.size(), c.wantSize)
			}
			for _, f := range frames(strings.Repeat(".", c.writes)) {
				r.write(f)
			}
			head := uint64(c.writes)
			if r.head.Load() != head {
				t.Fatalf("head %d, want %d", r.head.Load(), head)
			}
			for pos := uint64(0); pos < head+2; pos++ {
				inRing := pos < head && head-pos <= r.size()
				f := r.at(pos)
				if inRing && (f == nil || f.seq != pos) {
					t.Errorf("at(%d) = %v, want the frame written at %d", pos, f, pos)
				}
				if !inRing && f != nil {
					t.Errorf("at(%d) = frame %d, want nil (overwritten or not written)", pos, f.seq)
				}
			}
		})
	}
}

func TestNewReaderStartsOnNewestKeyframeInRing(t *testing.T) {
	for _, c := range []struct {
		name     string
		ring     int
		tracks   []*Track
		before   string   // written before the reader subscribes
		want     []uint64 // what the first Read returns
		after    string   // written after, when the first read must wait
		wantWait []uint64 // what the read returns after `after` is written
	}{
		{name: "GOP cache from the newest keyframe", ring: 16, tracks: videoTracks,
			before: "K..K..", want: []uint64{3, 4, 5}},
		{name: "keyframe is the newest frame", ring: 16, tracks: videoTracks,
			before: "K....K", want: []uint64{5}},
		{name: "no keyframe yet waits, never mid-GOP", ring: 16, tracks: videoTracks,
			before: "...", after: "..K.", wantWait: []uint64{5, 6}},
		{name: "keyframe overwritten waits for the next", ring: 4, tracks: videoTracks,
			before: "K......", after: ".K", wantWait: []uint64{8}},
		{name: "keyframe at the ring's oldest slot", ring: 4, tracks: videoTracks,
			before: "..K...", want: []uint64{2, 3, 4, 5}},
		{name: "empty stream waits for a keyframe", ring: 4, tracks: videoTracks,
			after: ".K", wantWait: []uint64{1}},
		{name: "audio-only starts at once at the newest frame", ring: 16, tracks: []*Track{{}},
			before: "....", want: []uint64{3}},
		{name: "audio-only empty stream starts with the first frame", ring: 16, tracks: []*Track{{}},
			after: "..", wantWait: []uint64{0, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, _ := newTestHub(t, Options{RingSize: c.ring})
			p := mustPublish(t, h, "live/a", c.tracks)
			for _, f := range frames(c.before) {
				p.Write(f)
			}
			r := mustSubscribe(t, h, "live/a", KindRTP)
			ch := readAsync(r)
			if c.want != nil {
				res := await(t, ch, 2*time.Second)
				if res.err != nil || !eq(res.seqs, c.want) {
					t.Fatalf("first Read = %v, %v; want %v", res.seqs, res.err, c.want)
				}
				return
			}
			select {
			case res := <-ch:
				t.Fatalf("Read returned %v, %v before a keyframe; it must wait", res.seqs, res.err)
			case <-time.After(20 * time.Millisecond):
			}
			for _, f := range frames(c.after) {
				p.Write(f)
			}
			res := await(t, ch, 2*time.Second)
			if res.err != nil {
				t.Fatal(res.err)
			}
			// A blocked read may wake on the first frame of `after`; collect the rest.
			got := res.seqs
			for len(got) < len(c.wantWait) {
				more, err := readNow(t, r)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, more...)
			}
			if !eq(got, c.wantWait) {
				t.Fatalf("Read after waiting = %v, want %v", got, c.wantWait)
			}
		})
	}
}

func TestReaderGetsEveryFrameInOrder(t *testing.T) { withWakers(t, testReaderGetsEveryFrameInOrder) }

func testReaderGetsEveryFrameInOrder(t *testing.T) {
	for _, c := range []struct {
		name  string
		batch int
	}{{"batch 1", 1}, {"batch 7", 7}, {"batch 64", 64}} {
		t.Run(c.name, func(t *testing.T) {
			h, _ := newTestHub(t, Options{RingSize: 64})
			p := mustPublish(t, h, "live/a", videoTracks)
			r := mustSubscribe(t, h, "live/a", KindRTP)
			const total = 5000
			done := make(chan error, 1)
			go func() {
				buf := make([]*Frame, c.batch)
				next := uint64(0)
				for {
					n, err := r.Read(buf)
					if errors.Is(err, ErrEnded) && next == total {
						done <- nil
						return
					}
					if err != nil {
						done <- fmt.Errorf("after %d frames: %w", next, err)
						return
					}
					for _, f := range buf[:n] {
						if f.seq != next {
							done <- fmt.Errorf("got frame %d, want %d", f.seq, next)
							return
						}
						next++
					}
				}
			}()
			// Pace the writer by the reader so the ring never overflows: this
			// test is about order and wake-ups, not skipping.
			for i := 0; i < total; i++ {
				for r.Lag() >= 32 {
					runtime.Gosched()
				}
				p.Write(NewRTPFrame(0, []byte{1}, i == 0, time.Time{}))
			}
			p.Close()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("reader did not finish")
			}
		})
	}
}

func TestSlowReader(t *testing.T) {
	for _, c := range []struct {
		name     string
		policy   SlowPolicy
		tracks   []*Track
		overflow string // written after the reader's first read, more than the ring holds
		want     []uint64
		wantErr  error
		wantLog  string
	}{
		{name: "skips to the newest keyframe", policy: SkipToKeyframe, tracks: videoTracks,
			overflow: "..K...K..K.....", want: []uint64{10, 11, 12, 13, 14, 15},
			wantLog: "skipped to the newest keyframe"},
		{name: "waits for a keyframe when none is left in the ring", policy: SkipToKeyframe, tracks: videoTracks,
			overflow: ".K.............", want: nil, wantLog: "skipped to the newest keyframe"},
		{name: "audio-only skips to the newest frame", policy: SkipToKeyframe, tracks: []*Track{{}},
			overflow: "...............", want: []uint64{15}, wantLog: "skipped to the newest keyframe"},
		{name: "close policy ends the reader", policy: CloseSlow, tracks: videoTracks,
			overflow: "..K...K..K.....", wantErr: ErrSlowReader, wantLog: "closed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, lb := newTestHub(t, Options{RingSize: 8, SlowReader: c.policy})
			p := mustPublish(t, h, "live/a", c.tracks)
			p.Write(NewRTPFrame(0, nil, true, time.Time{}))
			r := mustSubscribe(t, h, "live/a", KindRTP)
			if got, err := readNow(t, r); err != nil || !eq(got, []uint64{0}) {
				t.Fatalf("first read %v, %v", got, err)
			}
			for _, f := range frames(c.overflow) {
				p.Write(f)
			}
			ch := readAsync(r)
			if c.want == nil && c.wantErr == nil {
				select {
				case res := <-ch:
					t.Fatalf("Read = %v, %v; want it to wait for a keyframe", res.seqs, res.err)
				case <-time.After(20 * time.Millisecond):
				}
				p.Write(NewRTPFrame(0, nil, true, time.Time{}))
				c.want = []uint64{16}
			}
			res := await(t, ch, 2*time.Second)
			if !errors.Is(res.err, c.wantErr) || !eq(res.seqs, c.want) {
				t.Fatalf("Read = %v, %v; want %v, %v", res.seqs, res.err, c.want, c.wantErr)
			}
			if r.Skips != 1 || p.Stream().Skips.Load() != 1 {
				t.Errorf("Skips reader=%d stream=%d, want 1 and 1", r.Skips, p.Stream().Skips.Load())
			}
			if c.wantErr != nil {
				// The error is sticky: the session must drop the reader.
				if _, err := readNow(t, r); !errors.Is(err, c.wantErr) {
					t.Errorf("second Read err %v, want %v", err, c.wantErr)
				}
			}
			line := lb.String()
			for _, want := range []string{"slow reader fell behind", c.wantLog, "path=live/a", "reader=\"test reader\""} {
				if !strings.Contains(line, want) {
					t.Errorf("log %q lacks %q", line, want)
				}
			}
		})
	}
}

func TestSlowReaderLogIsRateLimited(t *testing.T) {
	h, lb := newTestHub(t, Options{RingSize: 4})
	p := mustPublish(t, h, "live/a", videoTracks)
	p.Write(NewRTPFrame(0, nil, true, time.Time{}))
	var readers []*Reader
	for i := 0; i < 10; i++ {
		readers = append(readers, mustSubscribe(t, h, "live/a", KindRTP))
	}
	for round := 0; round < 3; round++ {
		for _, f := range frames("K.......K") {
			p.Write(f)
		}
		for _, r := range readers {
			if _, err := readNow(t, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := p.Stream().Skips.Load(); got < 10 {
		t.Fatalf("stream skips %d, want at least 10", got)
	}
	if n := count(lb, "slow reader fell behind"); n != 1 {
		t.Fatalf("%d slow-reader log lines in one burst of skips, want 1 (at most one per 5 s):\n%s", n, lb)
	}
}

func TestEndOfStream(t *testing.T) { withWakers(t, testEndOfStream) }

func testEndOfStream(t *testing.T) {
	for _, c := range []struct {
		name string
		end  func(h *Hub, p *Publisher)
		// wantDone: Publisher.Done closes (the publisher must disconnect)
		wantDone bool
	}{
		{name: "publisher closes", end: func(h *Hub, p *Publisher) { p.Close() }, wantDone: true},
		{name: "hub closes", end: func(h *Hub, p *Publisher) { h.Close() }, wantDone: true},
		{name: "another publisher takes over", end: func(h *Hub, p *Publisher) {
			if _, err := h.Publish("live/a", Origin{Proto: "test", Remote: "new"}, KindRTP, videoTracks, nil); err != nil {
				panic(err)
			}
		}, wantDone: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, _ := newTestHub(t, Options{RingSize: 64, AllowTakeover: true})
			p := mustPublish(t, h, "live/a", videoTracks)
			s := p.Stream()
			for _, f := range frames("K.") {
				p.Write(f)
			}
			waiting := mustSubscribe(t, h, "live/a", KindRTP)
			if got, err := readNow(t, waiting); err != nil || !eq(got, []uint64{0, 1}) {
				t.Fatalf("read %v, %v", got, err)
			}
			blocked := readAsync(waiting)
			behind := mustSubscribe(t, h, "live/a", KindRTP)
			for _, f := range frames("...") {
				p.Write(f)
			}
			res := await(t, blocked, time.Second)
			if res.err != nil {
				t.Fatal(res.err)
			}
			blocked = readAsync(waiting) // parks again, or reads what the first read left
			start := time.Now()
			c.end(h, p)
			// A reader with frames left drains them first, then ends.
			var got []uint64
			for {
				seqs, err := readNow(t, behind)
				got = append(got, seqs...)
				if errors.Is(err, ErrEnded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !eq(got, seqRange(0, 5)) {
				t.Errorf("lagging reader drained %v, want 0..4", got)
			}
			// A parked reader ends promptly.
			for {
				res = await(t, blocked, time.Second)
				if res.err != nil {
					break
				}
				blocked = readAsync(waiting)
			}
			if !errors.Is(res.err, ErrEnded) {
				t.Errorf("parked reader got %v, want ErrEnded", res.err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("readers ended after %v, want promptly", d)
			}
			select {
			case <-s.Done():
			default:
				t.Error("Stream.Done not closed")
			}
			if _, err := s.Subscribe(KindRTP, Origin{}); !errors.Is(err, ErrEnded) {
				t.Errorf("Subscribe to an ended stream: %v, want ErrEnded", err)
			}
			if got := h.Get("live/a"); got == s {
				t.Error("ended stream still in the registry")
			}
		})
	}
}

func TestSecondPublisherIsRefused(t *testing.T) {
	h, lb := newTestHub(t, Options{})
	first := Origin{Proto: "rtsp", Remote: "10.0.0.1:5000", ID: "abc"}
	p, err := h.Publish("live/a", first, KindRTP, videoTracks, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Publish("live/a", Origin{Proto: "rtmp", Remote: "10.0.0.2:6000"}, KindAU, nil, nil)
	if !errors.Is(err, ErrPathBusy) {
		t.Fatalf("second publish: %v, want ErrPathBusy", err)
	}
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Holder != first || busy.Path != "live/a" {
		t.Fatalf("second publish error %#v, want a *BusyError naming %v", err, first)
	}
	if !strings.Contains(err.Error(), "rtsp 10.0.0.1:5000 (session abc)") {
		t.Errorf("error %q does not name the holder", err)
	}
	log := lb.String()
	for _, want := range []string{"publish refused", "10.0.0.1:5000", "10.0.0.2:6000", "live/a"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	select {
	case <-p.Done():
		t.Fatal("first publisher ended by a refused one")
	default:
	}
	// Once the first leaves, the path is free.
	p.Close()
	p2, err := h.Publish("live/a", Origin{Proto: "rtmp"}, KindAU, nil, nil)
	if err != nil {
		t.Fatalf("publish after the holder left: %v", err)
	}
	if h.Get("live/a") != p2.Stream() {
		t.Fatal("registry does not hold the new stream")
	}
}

func TestTakeover(t *testing.T) {
	h, lb := newTestHub(t, Options{AllowTakeover: true})
	old := mustPublish(t, h, "live/a", videoTracks)
	r := mustSubscribe(t, h, "live/a", KindRTP)
	blocked := readAsync(r)
	nu, err := h.Publish("live/a", Origin{Proto: "test", Remote: "new"}, KindRTP, videoTracks, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.Done():
	case <-time.After(time.Second):
		t.Fatal("old publisher's Done not closed by a takeover")
	}
	if res := await(t, blocked, time.Second); !errors.Is(res.err, ErrEnded) {
		t.Fatalf("old stream's reader got %v, want ErrEnded", res.err)
	}
	// The old publisher leaving late must not remove the new stream.
	old.Close()
	if h.Get("live/a") != nu.Stream() {
		t.Fatal("old publisher's Close removed the new stream")
	}
	if !strings.Contains(lb.String(), "publisher taken over") {
		t.Errorf("no takeover log line:\n%s", lb)
	}
}

func TestSubscribeErrors(t *testing.T) {
	h, _ := newTestHub(t, Options{})
	mustPublish(t, h, "live/a", videoTracks)
	if _, err := h.Subscribe("live/none", KindRTP, Origin{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown path: %v, want ErrNotFound", err)
	}
	if _, err := h.Subscribe("live/a", KindAU, Origin{}); !errors.Is(err, ErrNoConversion) {
		t.Errorf("kind without a converter: %v, want ErrNoConversion", err)
	}
	if _, err := h.Publish("live/b", Origin{}, numKinds, nil, nil); err == nil {
		t.Error("publish with an unknown kind succeeded")
	}
	h.Close()
	if _, err := h.Publish("live/c", Origin{}, KindRTP, nil, nil); !errors.Is(err, ErrHubClosed) {
		t.Errorf("publish after Close: %v, want ErrHubClosed", err)
	}
}

func TestReaderClose(t *testing.T) {
	h, _ := newTestHub(t, Options{})
	p := mustPublish(t, h, "live/a", videoTracks)
	r := mustSubscribe(t, h, "live/a", KindRTP)
	if n, err := r.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v; want 0, nil at once", n, err)
	}
	blocked := readAsync(r)
	if got := p.Stream().Readers(); got != 1 {
		t.Fatalf("Readers %d, want 1", got)
	}
	r.Close()
	r.Close() // idempotent
	if res := await(t, blocked, time.Second); !errors.Is(res.err, ErrReaderClosed) {
		t.Fatalf("blocked Read after Close: %v, want ErrReaderClosed", res.err)
	}
	p.Write(NewRTPFrame(0, nil, true, time.Time{}))
	if _, err := readNow(t, r); !errors.Is(err, ErrReaderClosed) {
		t.Fatalf("Read after Close with frames waiting: %v, want ErrReaderClosed", err)
	}
	if got := p.Stream().Readers(); got != 0 {
		t.Fatalf("Readers %d after Close, want 0", got)
	}
	if n := p.Stream().views[KindRTP].ring.nparked.Load(); n != 0 {
		t.Fatalf("closed reader still parked (%d)", n)
	}
}

// Encodings are registered once per process, as protocol packages do.
var testEncoding = RegisterEncoding()

func TestEncodedBuildsOnce(t *testing.T) {
	e := testEncoding
	f := NewRTPFrame(0, []byte("payload"), true, time.Time{})
	var builds atomic.Int32
	build := func(f *Frame) []byte {
		builds.Add(1)
		time.Sleep(time.Millisecond) // widen the race window
		return append([]byte("enc:"), f.RTP()...)
	}
	var wg sync.WaitGroup
	results := make([][]byte, 200)
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = f.Encoded(e, build)
		}()
	}
	close(start)
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Fatalf("build ran %d times, want once", n)
	}
	for _, b := range results {
		if string(b) != "enc:payload" || &b[0] != &results[0][0] {
			t.Fatalf("readers did not share one encoding: %q", b)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { f.Encoded(e, build) }); allocs != 0 {
		t.Fatalf("cached Encoded allocates %v", allocs)
	}
}

// auConverter turns each RTP frame into an AU frame; it counts its runs.
type auConverter struct{ running, starts atomic.Int32 }

func (c *auConverter) convert(s *Stream, src *Reader, dst *Writer) {
	c.starts.Add(1)
	c.running.Add(1)
	defer c.running.Add(-1)
	buf := make([]*Frame, 16)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		for _, f := range buf[:n] {
			dst.Write(&Frame{Track: f.Track, Key: f.Key, AU: [][]byte{f.RTP()}})
		}
	}
}

func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConverterLifecycle(t *testing.T) {
	conv := &auConverter{}
	h, _ := newTestHub(t, Options{Converters: map[[2]Kind]Converter{{KindRTP, KindAU}: conv.convert}})
	p := mustPublish(t, h, "live/a", videoTracks)
	for _, f := range frames("K..") {
		p.Write(f)
	}
	if conv.starts.Load() != 0 {
		t.Fatal("converter started without a reader")
	}
	a1 := mustSubscribe(t, h, "live/a", KindAU)
	a2 := mustSubscribe(t, h, "live/a", KindAU)
	rtp := mustSubscribe(t, h, "live/a", KindRTP)
	pollUntil(t, "converter running", func() bool { return conv.running.Load() == 1 })
	if conv.starts.Load() != 1 {
		t.Fatalf("converter started %d times for two readers, want once", conv.starts.Load())
	}
	if got := p.Stream().Readers(); got != 3 {
		t.Fatalf("Readers %d, want 3 (the converter's own reader is not counted)", got)
	}
	// The converted view starts on the GOP cache too.
	for _, r := range []*Reader{a1, a2} {
		var got []*Frame
		for len(got) < 3 {
			res := await(t, readAsyncFrames(r), 2*time.Second)
			if res.err != nil {
				t.Fatal(res.err)
			}
			got = append(got, res.frames...)
		}
		if !got[0].Key || got[0].AU == nil || got[0].AU[0][0] != 0 {
			t.Fatalf("first converted frame %+v, want the keyframe's AU", got[0])
		}
	}
	a1.Close()
	if conv.running.Load() != 1 {
		t.Fatal("converter stopped while a reader remains")
	}
	a2.Close()
	pollUntil(t, "converter stopped after its last reader left", func() bool { return conv.running.Load() == 0 })
	_ = rtp

	// The next reader restarts it, and at the end of the stream the
	// converted readers drain what the converter made, then end.
	a3 := mustSubscribe(t, h, "live/a", KindAU)
	pollUntil(t, "converter restarted", func() bool { return conv.running.Load() == 1 && conv.starts.Load() == 2 })
	for _, f := range frames("....") {
		p.Write(f)
	}
	p.Close()
	var n int
	for {
		res := await(t, readAsyncFrames(a3), 2*time.Second)
		n += len(res.frames)
		if errors.Is(res.err, ErrEnded) {
			break
		}
		if res.err != nil {
			t.Fatal(res.err)
		}
	}
	if n != 7 {
		t.Errorf("converted reader got %d frames before ErrEnded, want 7 (GOP of 3 + 4)", n)
	}
	pollUntil(t, "converter returned at end of stream", func() bool { return conv.running.Load() == 0 })
}

type framesResult struct {
	frames []*Frame
	err    error
}

func readAsyncFrames(r *Reader) <-chan framesResult {
	ch := make(chan framesResult, 1)
	go func() {
		buf := make([]*Frame, 64)
		n, err := r.Read(buf)
		ch <- framesResult{buf[:n], err}
	}()
	return ch
}

func TestAppendWakesAtFlush(t *testing.T) {
	h, _ := newTestHub(t, Options{})
	p := mustPublish(t, h, "live/a", videoTracks)
	r := mustSubscribe(t, h, "live/a", KindRTP)
	blocked := readAsync(r)
	ring := p.Stream().views[KindRTP].ring
	pollUntil(t, "reader parked", func() bool { return ring.nparked.Load() == 1 })
	for _, f := range frames("K..") {
		p.Append(f)
	}
	select {
	case res := <-blocked:
		t.Fatalf("parked reader woke before Flush: %v", res.seqs)
	case <-time.After(20 * time.Millisecond):
	}
	p.Flush()
	res := await(t, blocked, time.Second)
	if res.err != nil || !eq(res.seqs, []uint64{0, 1, 2}) {
		t.Fatalf("after Flush Read = %v, %v; want all three frames in one batch", res.seqs, res.err)
	}
	if got := p.Stream().FramesIn.Load(); got != 3 {
		t.Errorf("FramesIn %d, want 3", got)
	}
}

// Concurrent takeovers must leave exactly one live stream: every publisher
// but the registered one is told to leave (Done closed), none is orphaned.
func TestConcurrentTakeoversLeaveOneLiveStream(t *testing.T) {
	for round := 0; round < 20; round++ {
		h, _ := newTestHub(t, Options{AllowTakeover: true})
		pubs := make([]*Publisher, 16)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range pubs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				p, err := h.Publish("live/a", Origin{Proto: "test", ID: fmt.Sprint(i)}, KindRTP, videoTracks, nil)
				if err != nil {
					t.Error(err)
					return
				}
				pubs[i] = p
			}()
		}
		close(start)
		wg.Wait()
		live := h.Get("live/a")
		for _, p := range pubs {
			ended := false
			select {
			case <-p.Done():
				ended = true
			default:
			}
			if (p.Stream() == live) == ended {
				t.Fatalf("round %d: publisher %s: registered=%v ended=%v; want exactly the registered one live",
					round, p.Stream().Origin.ID, p.Stream() == live, ended)
			}
		}
	}
}

func TestCheckPublish(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		h := New(Options{AllowTakeover: takeover})
		if err := h.CheckPublish("live/a"); err != nil {
			t.Fatalf("free path: %v", err)
		}
		p, err := h.Publish("live/a", Origin{Proto: "rtsp", Remote: "1.2.3.4:5"}, KindRTP, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = h.CheckPublish("live/a")
		if takeover != (err == nil) || (!takeover && !errors.Is(err, ErrPathBusy)) {
			t.Errorf("takeover=%v: CheckPublish on a live path = %v", takeover, err)
		}
		p.Close()
		if err := h.CheckPublish("live/a"); err != nil {
			t.Errorf("after Close: %v", err)
		}
	}
}
