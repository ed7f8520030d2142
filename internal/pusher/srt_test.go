package pusher

import (
	"strings"
	"sync"
	"testing"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/mpegts"
	"github.com/berthmedia/berth/internal/testutil"
)

// srtTarget is a gosrt listener on 127.0.0.1:0 that takes publishers (or
// rejects them with reject, when set) and records what arrives.
type srtTarget struct {
	ln      gosrt.Listener
	mu      sync.Mutex
	ids     []string
	packets int
	bad     string // the first payload that is not whole TS packets
}

func startSRTTarget(t *testing.T, reject gosrt.RejectionReason) *srtTarget {
	t.Helper()
	ln, err := gosrt.Listen("srt", "127.0.0.1:0", gosrt.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	st := &srtTarget{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			req, err := ln.Accept2()
			if err != nil {
				return
			}
			st.mu.Lock()
			st.ids = append(st.ids, req.StreamId())
			st.mu.Unlock()
			if reject != 0 {
				req.Reject(reject)
				continue
			}
			conn, err := req.Accept()
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				buf := make([]byte, 1500)
				for {
					n, err := conn.Read(buf)
					if err != nil {
						return
					}
					st.mu.Lock()
					st.packets++
					if st.bad == "" && (n > 1316 || n%188 != 0 || buf[0] != 0x47) {
						st.bad = string(buf[:min(n, 8)])
					}
					st.mu.Unlock()
				}
			}()
		}
	}()
	return st
}

// srtSource publishes H.264 at live/s, a keyframe every 5 frames, until
// the test ends.
func srtSource(t *testing.T) *hub.Hub {
	t.Helper()
	h := hub.New(hub.Options{Converters: codec.Converters(nil)})
	pub, err := h.Publish("live/s", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{codec.H264Track(benchSPS, benchPPS)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done; h.Close() })
	go func() {
		defer close(done)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			nal := make([]byte, 3000)
			nal[0] = 0x41
			if i%5 == 0 {
				nal[0] = 0x65
			}
			at := time.Duration(i) * 40 * time.Millisecond
			pub.Write(&hub.Frame{Key: i%5 == 0, AU: [][]byte{benchSPS, benchPPS, nal}, PTS: at, DTS: at, Recv: time.Now()})
		}
	}()
	return h
}

// An SRT pusher calls with the URL's stream id and sends the stream's
// shared TS in whole TS packets of at most 1316 bytes, counted as a reader.
func TestSRTPushSendsWholeTSPackets(t *testing.T) {
	target := startSRTTarget(t, 0)
	h := srtSource(t)
	ms := &mpegts.Muxers{}
	defer ms.Close()
	m := &Manager{Hub: h, TS: ms.Open}
	defer m.Close()
	dst := "srt://" + target.ln.Addr().String() + "?streamid=#!::r=live/x,m=publish&passphrase="
	if _, err := m.Add(Spec{Schema: "srt", App: "live", Stream: "s", DstURL: dst, Retries: -1}); err == nil {
		t.Fatal("an empty passphrase= was accepted")
	}
	dst = "srt://" + target.ln.Addr().String() + "?streamid=#!::r=live/x,m=publish"
	if _, err := m.Add(Spec{Schema: "srt", App: "live", Stream: "s", DstURL: dst, Retries: -1}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "TS at the target", func() bool {
		target.mu.Lock()
		defer target.mu.Unlock()
		return target.packets >= 50
	})
	target.mu.Lock()
	ids, bad := target.ids, target.bad
	target.mu.Unlock()
	if len(ids) == 0 || ids[0] != "#!::r=live/x,m=publish" {
		t.Errorf("stream ids %q, want #!::r=live/x,m=publish", ids)
	}
	if bad != "" {
		t.Errorf("a payload that is not whole TS packets: % x", bad)
	}
	in := m.List()[0]
	if in.State != StateLive || in.Bytes == 0 {
		t.Errorf("pusher %s with %d bytes, want live with bytes counted", in.Status(), in.Bytes)
	}
	if n := h.Get("live/s").Readers(); n != 1 {
		t.Errorf("%d readers of the stream, want the pusher", n)
	}
}

// A target that rejects the publish is retried with SRT's reason in words.
func TestSRTPushNamesTheRejection(t *testing.T) {
	target := startSRTTarget(t, gosrt.REJX_CONFLICT)
	h := srtSource(t)
	ms := &mpegts.Muxers{}
	defer ms.Close()
	m := &Manager{Hub: h, TS: ms.Open}
	defer m.Close()
	dst := "srt://" + target.ln.Addr().String() + "?streamid=#!::r=live/x,m=publish"
	if _, err := m.Add(Spec{Schema: "srt", App: "live", Stream: "s", DstURL: dst, Retries: -1, Timeout: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	var in Info
	testutil.WaitFor(t, 10*time.Second, "the pusher to retry", func() bool {
		in = m.List()[0]
		return in.State == StateRetrying
	})
	if !strings.Contains(in.Cause, "REJX_CONFLICT") {
		t.Errorf("cause %q, want the SRT rejection named", in.Cause)
	}
}
