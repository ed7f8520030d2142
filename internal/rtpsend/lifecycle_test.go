package rtpsend

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// feed writes the source's frames over and over (times going on) until
// the test ends: a live stream.
func feed(t *testing.T, p *hub.Publisher, s *source) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		span := s.frames[len(s.frames)-1].DTS + 40*time.Millisecond
		for loop := time.Duration(0); ; loop += span {
			for _, f := range s.frames {
				select {
				case <-done:
					return
				default:
				}
				p.Write(&hub.Frame{Track: f.Track, Key: f.Key, AU: f.AU, PTS: f.PTS + loop, DTS: f.DTS + loop, Recv: time.Now()})
				time.Sleep(time.Millisecond) // pacing the source, about 20x real time
			}
		}
	}()
	t.Cleanup(func() { close(done); wg.Wait() })
}

// TestSenderStopsWhenItsPeerGoesAway: a TCP receiver that closes its
// connection and a UDP port that answers ICMP port unreachable each stop
// their sender at once, with a warn line naming the peer and the cause,
// OnStopped with ZLMediaKit's error code, and the reader released.
func TestSenderStopsWhenItsPeerGoesAway(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	src := load(t, testmedia.H264AAC)
	for _, tc := range []struct {
		name  string
		udp   bool
		codes []int
		cause string
	}{
		// Closed with data unread, the socket resets the connection.
		{"TCP peer closes", false, []int{1, 4}, "connection"},
		{"UDP port unreachable", true, []int{3}, "port unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, h, logs, st := newManager(t)
			p := publish(t, h, "live/cam", src)
			defer p.Close()
			var port int
			var peer net.Conn
			if tc.udp {
				// A port that was just bound and closed: nothing listens there.
				c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				port = c.LocalAddr().(*net.UDPAddr).Port
				c.Close()
			} else {
				l, err := net.Listen("tcp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				port = l.Addr().(*net.TCPAddr).Port
				accepted := make(chan net.Conn, 1)
				go func() {
					if c, err := l.Accept(); err == nil {
						accepted <- c
					}
				}()
				defer func() {
					if peer != nil {
						peer.Close()
					}
				}()
				defer func() {
					select {
					case c := <-accepted:
						c.Close()
					default:
					}
				}()
				if _, err := m.Start(context.Background(), Options{Path: "live/cam", SSRC: testSSRC, Host: "127.0.0.1", Port: port}); err != nil {
					t.Fatal(err)
				}
				peer = <-accepted
				feed(t, p, src)
				buf := make([]byte, 4096)
				if _, err := peer.Read(buf); err != nil { // the sending has begun
					t.Fatal(err)
				}
				peer.Close()
			}
			if tc.udp {
				if _, err := m.Start(context.Background(), Options{Path: "live/cam", SSRC: testSSRC, Host: "127.0.0.1", Port: port, UDP: true}); err != nil {
					t.Fatal(err)
				}
				feed(t, p, src)
			}
			ev := st.wait(t, 10*time.Second)
			var pe *PeerError
			if !errors.As(ev.err, &pe) || !slices.Contains(tc.codes, Code(ev.err)) || !strings.Contains(ev.err.Error(), tc.cause) {
				t.Errorf("stopped with %v (code %d), want a PeerError saying %q, code %v", ev.err, Code(ev.err), tc.cause, tc.codes)
			}
			line := logs.WaitLine(t, "level=WARN", "RTP sending stopped", "127.0.0.1:"+itoa(port))
			if !strings.Contains(line, tc.cause) {
				t.Errorf("the stop line does not give the cause %q: %s", tc.cause, line)
			}
			testutil.WaitFor(t, 5*time.Second, "the sender's reader to be released", func() bool { return h.Get("live/cam").Readers() == 0 })
			if n := len(m.List("")); n != 0 {
				t.Errorf("List has %d senders after the stop", n)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestPassiveSenderSendsToThePeerThatConnects: startSendRtpPassive listens,
// the peer connects and gets RFC 4571 framed RTP of this SSRC; a passive
// sender nobody connects to stops after its wait, with the hook's timeout code.
func TestPassiveSenderSendsToThePeerThatConnects(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	src := load(t, testmedia.H264AAC)
	m, h, logs, st := newManager(t)
	p := publish(t, h, "live/cam", src)
	defer p.Close()
	feed(t, p, src)
	port, err := m.Start(context.Background(), Options{Path: "live/cam", SSRC: 7, Passive: true, PT: 98})
	if err != nil {
		t.Fatal(err)
	}
	logs.WaitLine(t, "waiting for its peer", "local_port="+itoa(port))
	c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var pkts [][]byte
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	readFramed(c, func(p []byte) {
		if len(pkts) < 200 {
			pkts = append(pkts, append([]byte(nil), p...))
		} else {
			c.Close()
		}
	})
	if len(pkts) < 200 {
		t.Fatalf("got %d packets from the passive sender", len(pkts))
	}
	h0, _ := codec.ParseRTP(pkts[0])
	if h0.SSRC != 7 || h0.PayloadType != 98 {
		t.Errorf("ssrc %d pt %d, want 7 and 98", h0.SSRC, h0.PayloadType)
	}
	if ps := h0.Payload; len(ps) < 4 || ps[3] != 0xBA {
		t.Errorf("the first packet does not begin with a PS pack header: % x", ps[:min(len(ps), 8)])
	}
	if ev := st.wait(t, 10*time.Second); Code(ev.err) != 1 && Code(ev.err) != 4 {
		t.Errorf("the closed peer stopped it with %v (code %d)", ev.err, Code(ev.err))
	}

	// Nobody connects.
	port, err = m.Start(context.Background(), Options{Path: "live/cam", SSRC: 8, Passive: true, Wait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ev := st.wait(t, 5*time.Second)
	if !errors.Is(ev.err, ErrPeerTimedOut) || Code(ev.err) != 2 || ev.info.LocalPort != port {
		t.Errorf("stopped with %v (code %d, port %d), want the wait's timeout (2) on port %d", ev.err, Code(ev.err), ev.info.LocalPort, port)
	}
	if testutil.ListensHere(t, port) {
		t.Errorf("port %d still listens after the wait", port)
	}
}

// TestStopAndReplace: stopSendRtp of one SSRC stops only that sender and
// fires no hook; a second start with the same SSRC replaces the first;
// Stop with no SSRC stops them all.
func TestStopAndReplace(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	src := load(t, testmedia.H264AAC)
	m, h, _, st := newManager(t)
	p := publish(t, h, "live/cam", src)
	defer p.Close()
	a, b := udpReceiver(t), udpReceiver(t)
	for _, o := range []Options{
		{Path: "live/cam", SSRC: 1, Host: "127.0.0.1", Port: a.port, UDP: true},
		{Path: "live/cam", SSRC: 2, Host: "127.0.0.1", Port: b.port, UDP: true},
		{Path: "live/cam", SSRC: 2, Host: "127.0.0.1", Port: a.port, UDP: true}, // replaces the one before
	} {
		if _, err := m.Start(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	list := m.List("live/cam")
	if len(list) != 2 || list[0].SSRC != 1 || list[1].SSRC != 2 || !strings.HasSuffix(list[1].Peer, ":"+itoa(a.port)) {
		t.Fatalf("List: %+v, want SSRC 1 and 2, both to port %d", list, a.port)
	}
	testutil.WaitFor(t, 5*time.Second, "two readers", func() bool { return h.Get("live/cam").Readers() == 2 })
	one := uint32(1)
	if n := m.Stop("live/cam", &one); n != 1 {
		t.Errorf("Stop(ssrc 1) = %d, want 1", n)
	}
	if n := m.Stop("live/cam", nil); n != 1 {
		t.Errorf("Stop(all) = %d, want 1", n)
	}
	if n := m.Stop("live/cam", nil); n != 0 {
		t.Errorf("Stop(all) again = %d, want 0", n)
	}
	testutil.WaitFor(t, 5*time.Second, "no reader", func() bool { return h.Get("live/cam").Readers() == 0 })
	select {
	case ev := <-st.ch:
		t.Errorf("a stop by the API fired OnStopped: %v", ev.err)
	default:
	}
}

// TestStartRefusals: a missing stream, a stream without a track PS
// carries, and a receiver that refuses the TCP connection are errors of
// the call, each naming what to do.
func TestStartRefusals(t *testing.T) {
	m, h, _, _ := newManager(t)
	if _, err := m.Start(context.Background(), Options{Path: "live/none", Host: "127.0.0.1", Port: 9, UDP: true}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing stream: %v", err)
	}
	opus := codec.OpusTrack(2)
	if _, err := h.Publish("live/opus", hub.Origin{Proto: "test"}, hub.KindAU, []*hub.Track{opus}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(context.Background(), Options{Path: "live/opus", Host: "127.0.0.1", Port: 9, UDP: true}); !errors.Is(err, ErrNoTracks) || !strings.Contains(err.Error(), "Opus") {
		t.Errorf("Opus only: %v", err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	_, err = m.Start(context.Background(), Options{Path: "live/opus", ES: true, Host: "127.0.0.1", Port: port})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:"+itoa(port)) || !strings.Contains(err.Error(), "is_udp=1") {
		t.Errorf("refused TCP connect: %v", err)
	}
}

// TestESSendsOneTrackAsRTP: raw ES sending (use_ps=0) relays the stream's
// RTP view of its video track (H.264 per RFC 6184) with this SSRC and
// payload type and sequence numbers of its own; only_audio sends the audio.
func TestESSendsOneTrackAsRTP(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	src := load(t, testmedia.H264AAC)
	for _, onlyAudio := range []bool{false, true} {
		m, h, _, _ := newManager(t)
		p := publish(t, h, "live/cam", src)
		r := udpReceiver(t)
		if _, err := m.Start(context.Background(), Options{Path: "live/cam", SSRC: 5, Host: "127.0.0.1", Port: r.port, UDP: true, ES: true, PT: 100, OnlyAudio: onlyAudio}); err != nil {
			t.Fatal(err)
		}
		feed(t, p, src)
		testutil.WaitFor(t, 10*time.Second, "300 packets", func() bool { return len(r.packets()) >= 300 })
		pkts := r.packets()[:300]
		var nalTypes = map[byte]bool{}
		aac := 0
		for i, pkt := range pkts {
			h, ok := codec.ParseRTP(pkt)
			if !ok || h.SSRC != 5 || h.PayloadType != 100 {
				t.Fatalf("packet %d: %+v", i, h)
			}
			if i > 0 {
				prev, _ := codec.ParseRTP(pkts[i-1])
				if h.Seq != prev.Seq+1 {
					t.Fatalf("packet %d: sequence %d after %d", i, h.Seq, prev.Seq)
				}
			}
			nalTypes[h.Payload[0]&0x1f] = true
			if len(h.Payload) > 2 && h.Payload[0] == 0 && h.Payload[1] == 16 {
				aac++ // RFC 3640 AAC-hbr: 16 bits of AU headers, one AU
			}
		}
		if !onlyAudio && !(nalTypes[28] || nalTypes[24] || nalTypes[5]) {
			t.Errorf("no H.264 RTP payload (FU-A, STAP-A or an IDR) among NAL types %v", nalTypes)
		}
		if onlyAudio && aac != len(pkts) {
			t.Errorf("only_audio: %d of %d packets are RFC 3640 AAC", aac, len(pkts))
		}
		p.Close()
	}
}
