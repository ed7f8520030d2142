package rtpsend

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/ports"
	"github.com/berthmedia/berth/internal/rtpproxy" // tests only: Berth's own PS demuxer reads what was sent
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

const testSSRC = 100000001 // a GB28181-style decimal SSRC

func newManager(t testing.TB) (*Manager, *hub.Hub, *testutil.LogBuffer, *stopped) {
	t.Helper()
	logs := &testutil.LogBuffer{}
	log := logging.New(logs, logging.LevelTrace)
	h := hub.New(hub.Options{Log: log, Converters: codec.Converters(log)})
	st := newStopped()
	m := &Manager{Hub: h, Log: log, Host: "127.0.0.1", OnStopped: st.fn}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		h.Close()
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	return m, h, logs, st
}

// checkRTP checks the packets of one sender: its SSRC and payload type,
// sequence numbers without a gap, at most maxPayload bytes of payload,
// one timestamp per frame with the marker on its last packet. It returns
// the payloads joined: the program stream.
func checkRTP(t *testing.T, pkts [][]byte, ssrc uint32, pt uint8) []byte {
	t.Helper()
	var out []byte
	var prev codec.RTPHeader
	for i, p := range pkts {
		h, ok := codec.ParseRTP(p)
		if !ok {
			t.Fatalf("packet %d is not RTP: % x", i, p[:min(len(p), 16)])
		}
		if h.SSRC != ssrc || h.PayloadType != pt {
			t.Fatalf("packet %d: ssrc %d pt %d, want %d and %d", i, h.SSRC, h.PayloadType, ssrc, pt)
		}
		if len(h.Payload) > maxPayload {
			t.Errorf("packet %d carries %d bytes, more than %d", i, len(h.Payload), maxPayload)
		}
		if i > 0 {
			if h.Seq != prev.Seq+1 {
				t.Fatalf("packet %d: sequence %d after %d", i, h.Seq, prev.Seq)
			}
			if !prev.Marker && h.Timestamp != prev.Timestamp {
				t.Errorf("packet %d: a new timestamp without a marker on the frame before", i)
			}
		}
		prev = h
		out = append(out, h.Payload...)
	}
	if len(pkts) > 0 && !prev.Marker {
		t.Errorf("the last packet has no marker")
	}
	return out
}

// demux replays the packets into Berth's RTP proxy (its PS demuxer) over
// TCP (RFC 4571: nothing lost on the way) and returns the access units it
// publishes, by track.
func demux(t *testing.T, pkts [][]byte, ssrc uint32, tracks int) [][]*hub.Frame {
	t.Helper()
	// The reader subscribes as the proxy publishes, before its first frame.
	sub := &subscriber{readers: make(chan *hub.Reader, 1)}
	h := hub.New(hub.Options{Observer: sub})
	defer h.Close()
	srv := &rtpproxy.Server{Hub: h}
	l, err := ports.Listen(ports.Spec{Name: "test", Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTCP(l)
	defer srv.Shutdown(context.Background())
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range pkts {
		if _, err := c.Write(append([]byte{byte(len(p) >> 8), byte(len(p))}, p...)); err != nil {
			t.Fatal(err)
		}
	}
	// Closing the connection ends the stream once the proxy has read it all.
	c.Close()
	var rd *hub.Reader
	select {
	case rd = <-sub.readers:
	case <-time.After(10 * time.Second):
		t.Fatalf("the RTP proxy published nothing from %d packets", len(pkts))
	}
	defer rd.Close()
	if rd.Stream().Path != rtpproxy.StreamPath(ssrc) {
		t.Errorf("the proxy published %s, want %s", rd.Stream().Path, rtpproxy.StreamPath(ssrc))
	}
	out := make([][]*hub.Frame, tracks)
	frames := make([]*hub.Frame, 64)
	for {
		n, err := rd.Read(frames)
		if err != nil {
			return out
		}
		for _, f := range frames[:n] {
			if f.Track < tracks {
				out[f.Track] = append(out[f.Track], f)
			}
		}
	}
}

// subscriber subscribes to every stream as it is published.
type subscriber struct{ readers chan *hub.Reader }

func (o *subscriber) StreamPublished(s *hub.Stream) {
	if rd, err := s.SubscribeUncounted(hub.KindAU, hub.Origin{Proto: "test"}); err == nil {
		o.readers <- rd
	}
}
func (o *subscriber) StreamEnded(*hub.Stream)                  {}
func (o *subscriber) ReaderAdded(*hub.Reader)                  {}
func (o *subscriber) ReaderRemoved(*hub.Reader)                {}
func (o *subscriber) StreamNotFound(path string, _ hub.Origin) {}

// sameAUs compares what was sent with what came back, from the first
// frame that came back: bytes, key flags and the time between frames.
func sameAUs(t *testing.T, what string, sent, got []*hub.Frame) {
	t.Helper()
	if len(got) == 0 {
		t.Fatalf("%s: no access unit came back of %d sent", what, len(sent))
	}
	start := slices.IndexFunc(sent, func(f *hub.Frame) bool { return equalAU(f.AU, got[0].AU) })
	if start < 0 {
		t.Fatalf("%s: the first access unit back (%d bytes) is none of those sent", what, len(bytes.Join(got[0].AU, nil)))
	}
	// The demuxer starts at the first keyframe and the audio from it on,
	// and holds the last frame until it knows that it ended.
	if start > 2 || len(got) < len(sent)-start-1 {
		t.Fatalf("%s: %d access units sent, %d back from #%d", what, len(sent), len(got), start)
	}
	for i, g := range got {
		if start+i >= len(sent) {
			t.Fatalf("%s: %d access units back, more than sent after #%d", what, len(got), start)
		}
		s := sent[start+i]
		if !equalAU(s.AU, g.AU) {
			t.Fatalf("%s: access unit #%d differs: %d NAL units/%d bytes sent, %d/%d back", what, start+i,
				len(s.AU), len(bytes.Join(s.AU, nil)), len(g.AU), len(bytes.Join(g.AU, nil)))
		}
		if d, want := g.PTS-got[0].PTS, s.PTS-sent[start].PTS; (d - want).Abs() > time.Millisecond {
			t.Fatalf("%s: access unit #%d at %s from the first, sent at %s", what, start+i, d, want)
		}
	}
}

func equalAU(a, b [][]byte) bool {
	return bytes.Equal(bytes.Join(a, []byte{0, 0, 0, 1}), bytes.Join(b, []byte{0, 0, 0, 1}))
}

// ffprobeCodecs has ffprobe read a program stream file and name its codecs.
func ffprobeCodecs(t *testing.T, ps []byte) []string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "sent.ps")
	if err := os.WriteFile(f, ps, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-f", "mpeg", "-show_entries", "stream=codec_name",
		"-of", "csv=p=0", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe -f mpeg: %v\n%s", err, out)
	}
	codecs := strings.Fields(string(out))
	slices.Sort(codecs)
	return codecs
}

// TestSendPSDemuxesToTheSameAccessUnits is the round trip: a stream sent
// as PS over UDP and over TCP (RFC 4571) to a plain socket arrives as RTP
// with this SSRC and payload type, gapless, MTU-sized, a marker per frame;
// Berth's own PS demuxer gets the same access units from it, and ffprobe
// (-f mpeg) finds the codecs.
func TestSendPSDemuxesToTheSameAccessUnits(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	for _, tc := range []struct {
		name   string
		kind   testmedia.Kind
		udp    bool
		codecs []string
	}{
		{"H.264 and AAC over UDP", testmedia.H264AAC, true, []string{"aac", "h264"}},
		{"H.265 and AAC over TCP", testmedia.H265AAC, false, []string{"aac", "hevc"}},
		// ffmpeg's PS demuxer does not know GB28181's stream type 0x90
		// and takes the A-law stream for MPEG audio: Berth's demuxer is
		// the check of the audio there.
		{"H.264 and G.711 A-law over TCP", testmedia.H264PCMA, false, []string{"h264", "mp2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := load(t, tc.kind)
			m, h, logs, st := newManager(t)
			var r *receiver
			if tc.udp {
				r = udpReceiver(t)
			} else {
				r = tcpReceiver(t)
			}
			p := publish(t, h, "live/cam", src)
			port, err := m.Start(context.Background(), Options{Path: "live/cam", SSRC: testSSRC, Host: "127.0.0.1", Port: r.port, UDP: tc.udp, PT: 96})
			if err != nil {
				t.Fatal(err)
			}
			if port == 0 {
				t.Error("Start returned local port 0")
			}
			logs.WaitLine(t, "RTP sending started", "live/cam")
			if n := h.Get("live/cam").Readers(); n != 1 {
				t.Errorf("the stream has %d readers while sending, want 1 (the sender)", n)
			}
			src.play(p)
			p.Close()
			ev := st.wait(t, 10*time.Second)
			if !errors.Is(ev.err, ErrStreamEnded) || Code(ev.err) != 6 {
				t.Errorf("stopped with %v (code %d), want the stream's end (6)", ev.err, Code(ev.err))
			}
			if tc.udp {
				testutil.WaitFor(t, 5*time.Second, "every packet sent to arrive", func() bool { return uint64(len(r.packets())) >= ev.info.Packets })
			} else {
				<-r.done
			}
			pkts := r.packets()
			if uint64(len(pkts)) != ev.info.Packets {
				t.Errorf("received %d packets, the sender counted %d", len(pkts), ev.info.Packets)
			}
			stream := checkRTP(t, pkts, testSSRC, 96)
			if got := ffprobeCodecs(t, stream); !slices.Equal(got, tc.codecs) {
				t.Errorf("ffprobe -f mpeg finds %v, want %v", got, tc.codecs)
			}
			back := demux(t, pkts, testSSRC, 2)
			sameAUs(t, "video", src.track(0), back[0])
			sameAUs(t, "audio", src.track(1), back[1])
		})
	}
}
