package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testutil"
)

// recorder is an Observer that writes each event as a line.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, a ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, a...))
	r.mu.Unlock()
}

func (r *recorder) StreamPublished(s *Stream) { r.add("published %s", s.Path) }
func (r *recorder) StreamEnded(s *Stream)     { r.add("ended %s", s.Path) }
func (r *recorder) ReaderAdded(rd *Reader) {
	r.add("reader+ %s %s readers=%d", rd.Stream().Path, rd.Who().Proto, rd.Stream().Readers())
}
func (r *recorder) ReaderRemoved(rd *Reader) {
	r.add("reader- %s %s readers=%d bytes=%d", rd.Stream().Path, rd.Who().Proto, rd.Stream().Readers(), rd.Bytes())
}
func (r *recorder) StreamNotFound(path string, who Origin) { r.add("notfound %s %s", path, who.Proto) }

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func TestObserverHearsEveryEventOnce(t *testing.T) {
	rec := &recorder{}
	h, _ := newTestHub(t, Options{Observer: rec})
	if _, err := h.Subscribe("live/a", KindRTP, Origin{Proto: "rtmp"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("subscribe of a missing path: %v, want ErrNotFound", err)
	}
	p := mustPublish(t, h, "live/a", videoTracks)
	r, err := h.Subscribe("live/a", KindRTP, Origin{Proto: "rtsp"})
	if err != nil {
		t.Fatal(err)
	}
	p.Write(NewRTPFrame(0, make([]byte, 100), true, time.Time{}))
	if _, err := readNow(t, r); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r.Close() // twice: one event
	p.Close()
	p.Close()
	want := []string{
		"notfound live/a rtmp",
		"published live/a",
		"reader+ live/a rtsp readers=1",
		"reader- live/a rtsp readers=0 bytes=100",
		"ended live/a",
	}
	if got := rec.list(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

func TestTakeoverAndShutdownEndStreamsForTheObserver(t *testing.T) {
	rec := &recorder{}
	h, _ := newTestHub(t, Options{Observer: rec, AllowTakeover: true})
	mustPublish(t, h, "live/a", videoTracks)
	mustPublish(t, h, "live/a", videoTracks)
	mustPublish(t, h, "live/b", videoTracks)
	h.Close()
	want := []string{"published live/a", "ended live/a", "published live/a", "published live/b", "ended live/a", "ended live/b"}
	got := rec.list()
	// Close ends streams in map order: compare the last two as a set.
	if len(got) != len(want) || fmt.Sprint(got[:4]) != fmt.Sprint(want[:4]) ||
		(fmt.Sprint(got[4:]) != fmt.Sprint(want[4:]) && fmt.Sprint(got[4:]) != fmt.Sprint([]string{want[5], want[4]})) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

func TestSubscribeWaitGetsAStreamPublishedWhileWaiting(t *testing.T) {
	rec := &recorder{}
	h, _ := newTestHub(t, Options{Observer: rec})
	got := make(chan error, 1)
	go func() {
		r, err := h.SubscribeWait(context.Background(), "live/late", KindRTP, Origin{Proto: "rtsp"}, 5*time.Second)
		if err == nil {
			r.Close()
		}
		got <- err
	}()
	// The publisher comes once the observer heard the miss (as a hook server would react).
	testutil.WaitFor(t, 5*time.Second, "StreamNotFound", func() bool { return len(rec.list()) > 0 })
	mustPublish(t, h, "live/late", videoTracks)
	if err := await(t, got, 5*time.Second); err != nil {
		t.Fatalf("waiting player: %v", err)
	}
}

func TestSubscribeWaitEndsWithNotFoundOrContext(t *testing.T) {
	h, _ := newTestHub(t, Options{})
	start := time.Now()
	if _, err := h.SubscribeWait(context.Background(), "live/none", KindRTP, Origin{}, 50*time.Millisecond); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the wait: %v, want ErrNotFound", err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("returned before the wait was over")
	}
	h.mu.Lock()
	left := len(h.waiters)
	h.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d waiter(s) left behind by a wait that timed out: every missing path would leak one", left)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.SubscribeWait(ctx, "live/none", KindRTP, Origin{}, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v, want context.Canceled", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.SubscribeWait(context.Background(), "live/none", KindRTP, Origin{}, time.Minute)
		done <- err
	}()
	testutil.WaitFor(t, 5*time.Second, "the player to wait for live/none", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.waiters["live/none"] != nil
	})
	h.Close()
	if err := await(t, done, 5*time.Second); !errors.Is(err, ErrHubClosed) {
		t.Fatalf("after hub Close: %v, want ErrHubClosed", err)
	}
}

func TestStreamCloseFreesThePathAndTellsThePublisher(t *testing.T) {
	h, _ := newTestHub(t, Options{})
	p := mustPublish(t, h, "live/a", videoTracks)
	r := mustSubscribe(t, h, "live/a", KindRTP)
	p.Stream().Close()
	select {
	case <-p.Done():
	default:
		t.Fatal("publisher's Done is still open after Stream.Close")
	}
	if _, err := readNow(t, r); !errors.Is(err, ErrEnded) {
		t.Fatalf("reader after Close: %v, want ErrEnded", err)
	}
	if h.Get("live/a") != nil {
		t.Fatal("path still registered")
	}
	mustPublish(t, h, "live/a", videoTracks)
}

func TestStatsCountBytesByProtocol(t *testing.T) {
	h, _ := newTestHub(t, Options{})
	p, err := h.Publish("live/a", Origin{Proto: "rtmp"}, KindRTP, videoTracks, nil)
	if err != nil {
		t.Fatal(err)
	}
	r1, _ := h.Subscribe("live/a", KindRTP, Origin{Proto: "rtsp"})
	r2, _ := h.Subscribe("live/a", KindRTP, Origin{Proto: "http-flv"})
	if l := p.Stream().ReaderList(); len(l) != 2 || l[0] != r1 || l[1] != r2 {
		t.Fatalf("ReaderList = %v, want the two readers oldest first", l)
	}
	p.Write(NewRTPFrame(0, make([]byte, 1000), true, time.Time{}))
	readNow(t, r1)
	readNow(t, r2)
	r2.Close()
	p.Write(NewRTPFrame(0, make([]byte, 500), false, time.Time{}))
	readNow(t, r1)
	p.Close()
	if _, err := h.Publish("live/b", Origin{Proto: "rtmp"}, KindRTP, videoTracks, nil); err != nil {
		t.Fatal(err)
	}
	st := h.Stats()
	if st.BytesIn["rtmp"] != 1500 || st.BytesOut["rtsp"] != 1500 || st.BytesOut["http-flv"] != 1000 {
		t.Fatalf("bytes in %v out %v, want rtmp 1500 in, rtsp 1500 and http-flv 1000 out", st.BytesIn, st.BytesOut)
	}
	if st.Published != 2 || st.Ended != 1 {
		t.Fatalf("published %d ended %d, want 2 and 1", st.Published, st.Ended)
	}
}

func TestSetRingSizeAppliesToNewStreams(t *testing.T) {
	h, _ := newTestHub(t, Options{RingSize: 64})
	a := mustPublish(t, h, "live/a", videoTracks)
	h.SetRingSize(128)
	b := mustPublish(t, h, "live/b", videoTracks)
	if n := a.r.size(); n != 64 {
		t.Fatalf("old stream's ring: %d, want 64", n)
	}
	if n := b.r.size(); n != 128 {
		t.Fatalf("new stream's ring: %d, want 128", n)
	}
}
