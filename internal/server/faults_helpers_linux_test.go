package server_test

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/rtspclient"
	"github.com/berthmedia/berth/internal/server"
	"github.com/berthmedia/berth/internal/testutil"
)

// faultServer is Berth on every IPv4 address (ports picked by the kernel),
// so that peers in the test's network namespaces reach it over their links.
func faultServer(t *testing.T, mod func(c *config.Config)) (*server.Server, *testutil.LogBuffer) {
	t.Helper()
	cfg := config.Default()
	cfg.General.ListenIP = "0.0.0.0"
	// No fault test needs SRT or WebRTC; gosrt binds its port again after
	// Berth's check (docs/srt.md), a gap another parallel test's ephemeral
	// UDP port can fall into on 0.0.0.0.
	cfg.SRT.Port, cfg.RTC.Port = 0, 0
	if mod != nil {
		mod(cfg)
	}
	return startServer(t, cfg, slog.LevelDebug)
}

// listenerPort is the port of one of srv's listeners.
func listenerPort(t *testing.T, srv *server.Server, name string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(srv.Addr(name))
	if err != nil {
		t.Fatalf("%s listener: %q: %v", name, srv.Addr(name), err)
	}
	return port
}

// seqReader is Berth's own RTSP client playing a stream over TCP and
// counting each track's packets and sequence-number gaps (lost packets).
type seqReader struct {
	c      *rtspclient.Client
	mu     sync.Mutex
	tracks []seqCount
	video  int
}

type seqCount struct {
	started       bool
	last          uint16
	packets, gaps int
}

// playSeq plays url; dial runs the dial (inside a namespace, or as is).
// onPacket, if set, runs for each packet before it is counted (a reader
// that stops reading blocks in it).
func playSeq(t *testing.T, url string, dial func(func() error) error, onPacket func()) *seqReader {
	t.Helper()
	if dial == nil {
		dial = func(f func() error) error { return f() }
	}
	r := &seqReader{video: -1}
	if err := dial(func() (err error) {
		r.c, err = rtspclient.Dial(context.Background(), url, rtspclient.Options{Transport: rtspclient.TCP, Timeout: 10 * time.Second, ReadTimeout: 20 * time.Second})
		return err
	}); err != nil {
		t.Fatalf("play %s: %v", url, err)
	}
	t.Cleanup(func() { r.c.Close() })
	desc, _, err := r.c.Describe()
	if err != nil {
		t.Fatalf("DESCRIBE %s: %v", url, err)
	}
	if err := r.c.SetupAll(desc); err != nil {
		t.Fatalf("SETUP %s: %v", url, err)
	}
	r.tracks = make([]seqCount, len(desc.Medias))
	for i, m := range desc.Medias {
		if cd := m.Formats[0].Codec(); (cd == codec.H264 || cd == codec.H265) && r.video < 0 {
			r.video = i
		}
	}
	r.c.OnPacket = func(tr int, pkt []byte) {
		if onPacket != nil {
			onPacket()
		}
		h, ok := codec.ParseRTP(pkt)
		if !ok || tr >= len(r.tracks) {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		s := &r.tracks[tr]
		s.packets++
		if s.started {
			if d := int16(h.Seq - s.last); d > 1 {
				s.gaps += int(d - 1)
			} else if d < 1 {
				s.gaps++ // a step back or a repeat: not what TCP delivers
			}
		}
		s.started, s.last = true, h.Seq
	}
	if _, err := r.c.Play(); err != nil {
		t.Fatalf("PLAY %s: %v", url, err)
	}
	return r
}

// counts returns the packets and gaps over every track.
func (r *seqReader) counts() (packets, gaps int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.tracks {
		packets += s.packets
		gaps += s.gaps
	}
	return
}

// lasts returns each track's last sequence number (and whether it has one).
func (r *seqReader) lasts() []seqCount {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seqCount(nil), r.tracks...)
}

// reached reports whether r has got, on every track, at least up to the
// sequence numbers of want.
func (r *seqReader) reached(want []seqCount) bool {
	got := r.lasts()
	for i, w := range want {
		if w.started && (!got[i].started || int16(got[i].last-w.last) < 0) {
			return false
		}
	}
	return true
}

func (r *seqReader) String() string {
	p, g := r.counts()
	return strconv.Itoa(p) + " packets, " + strconv.Itoa(g) + " lost"
}
