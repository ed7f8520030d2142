package pusher

import (
	"bufio"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/pion/rtp"

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

// stuckRTSPTarget answers ANNOUNCE, SETUP and RECORD with 200 over a real
// socket, then never reads again: a target whose network or process hung
// while media flowed.
func stuckRTSPTarget(t *testing.T) (addr string, recording <-chan struct{}) {
	l, err := ports.Listen(ports.Spec{Name: "stuck", Network: "tcp", Host: "127.0.0.1", Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	rec := make(chan struct{})
	var conn net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		conn = c
		c.(*net.TCPConn).SetReadBuffer(4096) // fill up soon once it stops reading
		br := bufio.NewReader(c)
		for {
			var req base.Request
			if err := req.Unmarshal(br); err != nil {
				return
			}
			res := base.Response{StatusCode: base.StatusOK, Header: base.Header{"CSeq": req.Header["CSeq"], "Session": base.HeaderValue{"1"}}}
			if req.Method == base.Setup {
				res.Header["Transport"] = req.Header["Transport"]
			}
			b, _ := res.Marshal()
			c.Write(b)
			if req.Method == base.Record {
				close(rec)
				return // and read no more
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		if conn != nil {
			conn.Close()
		}
	})
	return l.Addr().String(), rec
}

// TestDeleteWhileTheTargetStoppedReading: a target that stops reading
// while the pusher writes blocks its write; a delete still returns after
// about a second, not after the one-minute write timeout, and the stream's
// publisher never waits for the pusher.
func TestDeleteWhileTheTargetStoppedReading(t *testing.T) {
	addr, recording := stuckRTSPTarget(t)
	h := hub.New(hub.Options{})
	defer h.Close()
	track := codec.H264Track(benchSPS, benchPPS)
	pub, err := h.Publish("live/s", hub.Origin{Proto: "test"}, hub.KindRTP, []*hub.Track{track}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{Hub: h}
	key, err := m.Add(Spec{Schema: "rtsp", App: "live", Stream: "s", DstURL: "rtsp://" + addr + "/live/x", Timeout: time.Minute, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-recording:
	case <-time.After(5 * time.Second):
		t.Fatal("the pusher did not reach RECORD")
	}
	// The publisher writes 1.4 kB packets as fast as it can, far more than
	// the socket buffers hold, until the test ends; a write that blocked it
	// would show as a publisher that stops counting frames.
	stop := make(chan struct{})
	published := make(chan int)
	go func() {
		n := 0
		payload := make([]byte, 1400)
		payload[0] = 0x65
		for {
			select {
			case <-stop:
				published <- n
				return
			default:
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, PayloadType: 96, SequenceNumber: uint16(n), Timestamp: uint32(n * 90), SSRC: 1}, Payload: payload}
			raw, _ := pkt.Marshal()
			pub.Write(hub.NewRTPFrame(0, raw, true, time.Now()))
			n++
		}
	}()
	// Blocked: the bytes the pusher took stop growing while packets keep coming.
	var last uint64
	var since time.Time
	testutil.WaitFor(t, 20*time.Second, "the pusher's write to block on the stuck target", func() bool {
		b := m.List()[0].SessionBytes
		if b != last || b < 1<<20 {
			last, since = b, time.Now()
			return false
		}
		return time.Since(since) >= 500*time.Millisecond
	})
	start := time.Now()
	m.Del(key)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Del took %v with a write blocked on a target that stopped reading (write timeout one minute)", d)
	}
	close(stop)
	if n := <-published; n < 10000 {
		t.Errorf("the publisher wrote only %d packets while the pusher was stuck", n)
	}
}
