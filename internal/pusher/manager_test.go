package pusher

import (
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/testutil"
)

// silentTarget accepts TCP connections and never answers: a target that
// hangs mid-handshake. It reports how many connections it took.
type silentTarget struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startSilent(t *testing.T) *silentTarget {
	l, err := ports.Listen(ports.Spec{Name: "silent", Network: "tcp", Host: "127.0.0.1", Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	s := &silentTarget{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	return s
}

func (s *silentTarget) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// liveSource is a hub with an H.264 stream at live/s.
func liveSource(t *testing.T) *hub.Hub {
	h := hub.New(hub.Options{Converters: codec.Converters(nil)})
	if _, err := h.Publish("live/s", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.H264Track(benchSPS, benchPPS)}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// waitGoroutines waits for the goroutine count to come back to base: the
// pushers and their connections' loops have all returned.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeleteDuringAHungHandshakeReturnsAtOnce: a target that accepts and
// never answers holds a pusher in its handshake for timeout_sec; a delete
// does not wait for that, and leaves no goroutine behind.
func TestDeleteDuringAHungHandshakeReturnsAtOnce(t *testing.T) {
	for _, schema := range []string{"rtsp", "rtmp"} {
		t.Run(schema, func(t *testing.T) {
			base := runtime.NumGoroutine()
			target := startSilent(t)
			m := &Manager{Hub: liveSource(t)}
			key, err := m.Add(Spec{Schema: schema, App: "live", Stream: "s", DstURL: schema + "://" + target.l.Addr().String() + "/live/x", Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 5*time.Second, "the pusher to connect", func() bool { return target.accepted() > 0 })
			if st := m.List()[0].State; st != StateConnecting {
				t.Errorf("state %v while the target is silent, want connecting", st)
			}
			start := time.Now()
			if !m.Del(key) {
				t.Fatal("Del found no pusher")
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Del took %v during a handshake with a one-minute timeout", d)
			}
			if m.Del(key) {
				t.Error("a second Del found the pusher again")
			}
			target.l.Close()
			waitGoroutines(t, base+1) // +1: the silent target's accept loop may still be returning
		})
	}
}

// TestSilentTargetIsRetriedWithTheTimeoutAsCause: timeout_sec bounds the
// handshake, and the retry says the target did not answer.
func TestSilentTargetIsRetriedWithTheTimeoutAsCause(t *testing.T) {
	for _, schema := range []string{"rtsp", "rtmp"} {
		t.Run(schema, func(t *testing.T) {
			target := startSilent(t)
			logs := &testutil.LogBuffer{}
			m := &Manager{Hub: liveSource(t), Log: logging.New(logs, logging.LevelTrace)}
			defer m.Close()
			defer func() {
				if t.Failed() {
					t.Logf("log:\n%s", logs.String())
				}
			}()
			if _, err := m.Add(Spec{Schema: schema, App: "live", Stream: "s", DstURL: schema + "://" + target.l.Addr().String() + "/live/x", Timeout: 300 * time.Millisecond, Retries: -1}); err != nil {
				t.Fatal(err)
			}
			var in Info
			testutil.WaitFor(t, 5*time.Second, "a retry", func() bool {
				in = m.List()[0]
				return in.State == StateRetrying
			})
			if !strings.Contains(in.Status(), "retrying 1: the target did not answer in time") {
				t.Errorf("status %q", in.Status())
			}
		})
	}
}

// TestAddIsIdempotentAndCloseRefusesMore: the same request gives the same
// key and one pusher; after Close, Add is refused.
func TestAddIsIdempotentAndCloseRefusesMore(t *testing.T) {
	m := &Manager{Hub: hub.New(hub.Options{})}
	spec := Spec{Schema: "rtmp", App: "live", Stream: "s", DstURL: "rtmp://127.0.0.1:1/live/s"}
	k1, err1 := m.Add(spec)
	k2, err2 := m.Add(spec)
	if err1 != nil || err2 != nil || k1 != k2 || len(m.List()) != 1 {
		t.Fatalf("keys %q %q, errors %v %v, %d pushers", k1, k2, err1, err2, len(m.List()))
	}
	testutil.WaitFor(t, 5*time.Second, "the pusher to wait for its stream", func() bool {
		return m.List()[0].State == StateWaiting
	})
	m.Close()
	if _, err := m.Add(spec); err != ErrClosed {
		t.Errorf("Add after Close: %v, want ErrClosed", err)
	}
}
