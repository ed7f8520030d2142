package pusher

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/rtmp"
	"github.com/berthmedia/berth/internal/rtsp"
)

// Parameter sets of a 320x240 libx264 stream.
var (
	benchSPS = []byte{0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfa, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60}
	benchPPS = []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}
)

// benchTarget is a Berth RTSP and RTMP server in this process: the peer
// the pusher's write path is measured against (its reading and its hub
// share the machine with the pusher, as a target on the same host would).
func benchTarget(b *testing.B) (rtspAddr, rtmpAddr string) {
	log := slog.New(slog.DiscardHandler)
	h := hub.New(hub.Options{Log: log, Converters: codec.Converters(log)})
	lr, err := ports.Listen(ports.Spec{Name: "rtsp", Network: "tcp", Host: "127.0.0.1", Port: 0})
	if err != nil {
		b.Fatal(err)
	}
	lm, err := ports.Listen(ports.Spec{Name: "rtmp", Network: "tcp", Host: "127.0.0.1", Port: 0})
	if err != nil {
		b.Fatal(err)
	}
	rs := &rtsp.Server{Hub: h, Log: log, Instance: "bench", Version: "bench"}
	ms := &rtmp.Server{Hub: h, Log: log, Instance: "bench", Version: "bench"}
	go rs.Serve(lr)
	go ms.Serve(lm)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rs.Shutdown(ctx)
		ms.Shutdown(ctx)
		h.Close()
	})
	return lr.Addr().String(), lm.Addr().String()
}

// benchSource publishes an H.264 stream of kind k in a hub of its own and
// returns it with a 25 fps second of frames (a keyframe first): 1 kB
// access units, or RTP packets of 1 kB.
func benchSource(b *testing.B, k hub.Kind) (*hub.Stream, []*hub.Frame) {
	h := hub.New(hub.Options{})
	b.Cleanup(h.Close)
	pub, err := h.Publish("live/src", hub.Origin{Proto: "bench"}, k, []*hub.Track{codec.H264Track(benchSPS, benchPPS)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var frames []*hub.Frame
	for i := range 25 {
		nal := make([]byte, 1000)
		nal[0] = 0x41
		if i == 0 {
			nal[0] = 0x65
		}
		at := time.Duration(i) * 40 * time.Millisecond
		if k == hub.KindAU {
			frames = append(frames, &hub.Frame{Key: i == 0, AU: [][]byte{nal}, PTS: at, DTS: at})
			continue
		}
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, PayloadType: 96, SequenceNumber: uint16(i),
			Timestamp: uint32(i * 3600), SSRC: 1}, Payload: nal}
		raw, _ := pkt.Marshal()
		frames = append(frames, hub.NewRTPFrame(0, raw, i == 0, time.Now()))
	}
	return pub.Stream(), frames
}

var runs int

// BenchmarkPushWrite: one frame through the pusher's write path to a
// Berth target over loopback (ns/op and allocs/op are per frame).
func BenchmarkPushWrite(b *testing.B) {
	rtspAddr, rtmpAddr := benchTarget(b)
	for _, tc := range []struct {
		name string
		kind hub.Kind
		url  string
	}{
		{"rtsp-tcp", hub.KindRTP, "rtsp://" + rtspAddr + "/live/bench"},
		{"rtmp", hub.KindAU, "rtmp://" + rtmpAddr + "/live/bench"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			st, frames := benchSource(b, tc.kind)
			// A path per run: the target may not have seen the last run's
			// publisher leave yet.
			runs++
			spec := Spec{Schema: tc.url[:4], App: "live", Stream: "src", DstURL: tc.url + strconv.Itoa(runs)}
			if err := spec.Validate(); err != nil {
				b.Fatal(err)
			}
			var t target
			var err error
			if spec.Schema == "rtsp" {
				t, err = dialRTSP(context.Background(), spec, st)
			} else {
				t, err = dialRTMP(context.Background(), spec, st)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer t.close()
			b.ReportAllocs()
			b.SetBytes(1000)
			i := 0
			batch := make([]*hub.Frame, 1)
			for b.Loop() {
				batch[0] = frames[i%len(frames)]
				if err := t.write(batch); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
