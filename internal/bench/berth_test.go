package bench

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/rtspclient"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testutil"
)

// startBerth runs a Berth server on ephemeral 127.0.0.1 ports, its
// default configuration changed by mods.
func startBerth(t *testing.T, mods ...func(*config.Config)) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.General.ListenIP = "127.0.0.1"
	for _, m := range mods {
		m(cfg)
	}
	logs := &testutil.LogBuffer{}
	srv := server.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	srv.Ephemeral = true
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return srv
}

// countingPublisher publishes the synthetic stream to url, a frame at a
// time on demand, counting exactly what it sent.
type countingPublisher struct {
	c       *rtspclient.Client
	s       *synth
	packets int
	bytes   int
	pace    time.Duration // between frames
}

func newCountingPublisher(t *testing.T, url string, tr rtspclient.Transport) *countingPublisher {
	t.Helper()
	c, err := rtspclient.Dial(context.Background(), url, rtspclient.Options{Transport: tr, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	desc, err := c.Announce([]byte(synthSDP))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc); err != nil {
		t.Fatal(err)
	}
	if err := c.Record(); err != nil {
		t.Fatal(err)
	}
	return &countingPublisher{c: c, s: newSynth(1e6, 42), pace: 10 * time.Millisecond}
}

// frames sends n frames (the first of a GOP is a keyframe) one per pace
// (4x real time by default; converting readers need real time).
func (p *countingPublisher) frames(t *testing.T, n int) {
	for range n {
		err := p.s.nextFrame(func(pkt []byte) error {
			stamp(pkt)
			p.packets++
			p.bytes += len(pkt)
			return p.c.WritePacket(0, pkt)
		})
		if err != nil {
			t.Error(err)
			return
		}
		time.Sleep(p.pace) // pacing the publisher, not waiting for a condition
	}
}

// TestPlayCountsEveryPacketAgainstBerth proves bench's counts: readers that
// are all up before the first packet must each receive exactly what the
// publisher sent, bytes and packets, with no loss.
func TestPlayCountsEveryPacketAgainstBerth(t *testing.T) {
	for _, tr := range []rtspclient.Transport{rtspclient.TCP, rtspclient.UDP} {
		t.Run(tr.String(), func(t *testing.T) {
			srv := startBerth(t)
			url := "rtsp://" + srv.Addr("rtsp") + "/live/bench"
			pub := newCountingPublisher(t, url, tr)

			const readers, frames = 4, 50 // two GOPs
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var started, sent atomic.Bool
			sentPackets := make(chan int, 1)
			var want atomic.Uint64
			cfg := PlayConfig{
				URL: url, N: readers, Duration: time.Minute, Transport: tr, TickEvery: 50 * time.Millisecond,
				PID: os.Getpid(),
				OnTick: func(tk Tick) {
					if tk.Up == readers && !started.Swap(true) {
						go func() {
							pub.frames(t, frames)
							want.Store(uint64(pub.packets * readers))
							sent.Store(true)
							sentPackets <- pub.packets
						}()
					}
					if sent.Load() && tk.Packets >= want.Load() || tk.Failed > 0 {
						cancel()
					}
				},
			}
			s, err := Play(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			select {
			case n = <-sentPackets:
			default:
				t.Fatalf("the publisher never started: %+v", s)
			}
			if s.ReadersOK != readers || s.ReadersFailed != 0 {
				t.Fatalf("readers ok %d, failed %d (%v); want %d, 0", s.ReadersOK, s.ReadersFailed, s.Errors, readers)
			}
			if s.Packets != uint64(n*readers) || s.Bytes != uint64(pub.bytes*readers) {
				t.Fatalf("bench counted %d packets, %d bytes; the publisher sent %d packets, %d bytes to each of %d readers (want %d, %d)",
					s.Packets, s.Bytes, n, pub.bytes, readers, n*readers, pub.bytes*readers)
			}
			if s.Lost != 0 || s.Reordered != 0 {
				t.Fatalf("lost %d, reordered %d; want 0", s.Lost, s.Reordered)
			}
			if s.FirstVideoSeen != readers || s.FirstVideoIsKey != readers || s.FirstKeyframe.Count != readers {
				t.Fatalf("first video seen %d, a keyframe %d, keyframe times %d; want %d each", s.FirstVideoSeen, s.FirstVideoIsKey, s.FirstKeyframe.Count, readers)
			}
			if s.Server == nil || s.Server.RSSEndKiB <= 0 {
				t.Fatalf("server figures missing with -pid: %+v", s.Server)
			}
		})
	}
}

// TestPlayCountsLoss: a publisher that skips sequence numbers makes bench
// report exactly that many lost packets.
func TestPlayCountsLoss(t *testing.T) {
	srv := startBerth(t)
	url := "rtsp://" + srv.Addr("rtsp") + "/live/lossy"
	pub := newCountingPublisher(t, url, rtspclient.TCP)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var started atomic.Bool
	done := make(chan struct{})
	const skipped = 3
	s, err := Play(ctx, PlayConfig{
		URL: url, N: 2, Duration: time.Minute, TickEvery: 50 * time.Millisecond,
		OnTick: func(tk Tick) {
			if tk.Up == 2 && !started.Swap(true) {
				go func() {
					defer close(done)
					pub.frames(t, 2)
					pub.s.seq += skipped // the network "loses" three packets
					pub.frames(t, 2)
				}()
			}
			select {
			case <-done:
				if tk.Packets >= uint64(pub.packets*2) {
					cancel()
				}
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Lost != 2*skipped || s.Reordered != 0 {
		t.Fatalf("lost %d, reordered %d; want %d, 0", s.Lost, s.Reordered, 2*skipped)
	}
}

func TestPlayReportsFailedReaders(t *testing.T) {
	srv := startBerth(t)
	s, err := Play(context.Background(), PlayConfig{
		URL: "rtsp://" + srv.Addr("rtsp") + "/live/nobody", N: 3, Duration: 300 * time.Millisecond, TickEvery: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.ReadersOK != 0 || s.ReadersFailed != 3 || len(s.Errors) == 0 {
		t.Fatalf("ok %d, failed %d, errors %v; want 0, 3 and the 404", s.ReadersOK, s.ReadersFailed, s.Errors)
	}
}

func TestLatencyAgainstBerth(t *testing.T) {
	srv := startBerth(t)
	url := "rtsp://" + srv.Addr("rtsp") + "/live/lat"
	res, err := Latency(context.Background(), LatencyConfig{PushURL: url, ReadURL: url, Duration: 1500 * time.Millisecond, Warmup: 200 * time.Millisecond, Rate: 2e6, Stalls: true})
	if err != nil {
		t.Fatal(err)
	}
	// 1.5 s at 25 fps of ~10 fragments each: well over 100 samples.
	if res.Delay.Count < 100 || res.Delay.P50 <= 0 || res.Delay.P50 > 100 {
		t.Fatalf("delay %v; want > 100 samples with a p50 between 0 and 100 ms", res.Delay)
	}
	// A frame's last packet carries a stamp: one sample per frame.
	if f := res.FrameDelay; f == nil || f.Count < 25 || f.Count > 60 {
		t.Fatalf("frame delay %v; want about 37 frames", f)
	}
	if m := res.Machine; m == nil || m.CPUs < 1 || m.Seconds < 1 || m.InStall > m.Slow {
		t.Fatalf("machine %+v; want the stalls watched over the run", m)
	}
	t.Log(res)
}

// TestPushSynthetic: the synthetic stream goes out over RTSP and over RTMP,
// one stream per publisher, at real-time speed.
func TestPushSynthetic(t *testing.T) {
	srv := startBerth(t)
	for _, url := range []string{"rtsp://" + srv.Addr("rtsp") + "/live/push", "rtmp://" + srv.Addr("rtmp") + "/live/push-rtmp"} {
		t.Run(url[:4], func(t *testing.T) {
			s, err := Push(context.Background(), PushConfig{URL: url, N: 2, Rate: 1e6, Duration: 1200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if s.Failed != 0 || s.Packets == 0 || len(s.URLs) != 2 || s.URLs[1] != url+"_1" {
				t.Fatalf("push summary %+v", s)
			}
			// Real-time: 2 publishers x 1 Mb/s x ~1.2 s is about 300 KB; far more means no pacing.
			if s.Bytes > 600_000 {
				t.Fatalf("sent %d bytes in 1.2 s at 2 x 1 Mb/s: not real-time", s.Bytes)
			}
		})
	}
}

// TestPlayCountsFramesOverRTMPAndFLV: readers over RTMP and HTTP-FLV of an
// RTSP publisher each count exactly the video frames sent, and start on a
// keyframe.
func TestPlayCountsFramesOverRTMPAndFLV(t *testing.T) {
	srv := startBerth(t)
	// A path per case: the previous case's publisher may still be leaving
	// (its TEARDOWN races the next ANNOUNCE, which would get 406).
	for _, tc := range []struct{ name, listener, url string }{
		{"rtmp", "rtmp", "rtmp://" + srv.Addr("rtmp") + "/live/conv-rtmp"},
		{"http-flv", "http", "http://" + srv.Addr("http") + "/live/conv-flv.live.flv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if srv.Addr(tc.listener) == "" {
				t.Skipf("%s is not served", tc.listener)
			}
			rtspURL := "rtsp://" + srv.Addr("rtsp") + "/live/conv-" + map[string]string{"rtmp": "rtmp", "http-flv": "flv"}[tc.name]
			pub := newCountingPublisher(t, rtspURL, rtspclient.TCP)
			pub.pace = time.Second / synthFPS // the RTP->frame conversion follows the clock
			defer pub.c.Close()
			const readers, frames = 3, 50
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var started, sent atomic.Bool
			s, err := Play(ctx, PlayConfig{
				URL: tc.url, N: readers, Duration: time.Minute, TickEvery: 50 * time.Millisecond,
				OnTick: func(tk Tick) {
					if tk.Up == readers && !started.Swap(true) {
						go func() {
							pub.frames(t, frames)
							sent.Store(true)
						}()
					}
					if sent.Load() && tk.VideoFrames >= readers*frames || tk.Failed > 0 {
						cancel()
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if s.ReadersOK != readers {
				t.Fatalf("readers ok %d of %d: %v", s.ReadersOK, readers, s.Errors)
			}
			if s.VideoFrames != readers*frames {
				t.Fatalf("readers got %d video frames in all; the publisher sent %d to each of %d (want %d)", s.VideoFrames, frames, readers, readers*frames)
			}
			if s.FirstVideoIsKey != readers {
				t.Fatalf("first video frame a keyframe for %d of %d readers", s.FirstVideoIsKey, readers)
			}
		})
	}
}

// TestLatencyOverWHEP: the synthetic stream pushed over RTSP is read back
// by a pion WHEP player, which counts each frame's delay.
func TestLatencyOverWHEP(t *testing.T) {
	srv := startBerth(t)
	if srv.WebRTC() == nil {
		t.Skip("WebRTC is not served")
	}
	res, err := Latency(context.Background(), LatencyConfig{PushURL: "rtsp://" + srv.Addr("rtsp") + "/live/latw",
		ReadURL:  "http://" + srv.Addr("http") + "/index/api/whep?app=live&stream=latw",
		Duration: 1500 * time.Millisecond, Warmup: 200 * time.Millisecond, Rate: 2e6})
	if err != nil {
		t.Fatal(err)
	}
	// 1.5 s at 25 fps: a sample per frame.
	if res.Unit != "frame" || res.Delay.Count < 20 || res.Delay.P50 <= 0 || res.Delay.P50 > 100 {
		t.Fatalf("%v; want over 20 frames with a p50 between 0 and 100 ms", res)
	}
	t.Log(res)
}
