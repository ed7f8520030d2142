package server_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/netfault"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
	"github.com/gorilla/websocket"
)

// The network-fault tests: peers in network namespaces the test makes,
// reaching Berth (in the root namespace, on every IPv4 address) over links
// that delay, lose or block packets (internal/netfault: this kernel has no
// sch_netem, so the link is a TUN pair with the impairment in between).
// They run in parallel with each other; each is bounded to seconds.

// TestFaultLossyReaderPlaysOnDelayed: an RTSP/TCP reader behind 200 ms of
// delay and 2% loss (Berth to reader, netem's "delay 200ms loss 2%" on
// Berth's side of the link) loses no RTP packet: TCP repairs the loss, the
// reader is only late; it reaches the sequence numbers the clean readers
// had, and the clean readers lose nothing.
func TestFaultLossyReaderPlaysOnDelayed(t *testing.T) {
	netfault.Require(t)
	testmedia.RequireFFmpeg(t)
	t.Parallel()
	srv, _ := faultServer(t, nil)
	port := listenerPort(t, srv, "rtsp")
	push(t, srv, testmedia.H264AAC, "rtsp://127.0.0.1:"+port+"/live/lossy", "live/lossy")
	ns := netfault.NewNS(t)
	link := netfault.NewLink(t, ns)
	link.Down.Set(200*time.Millisecond, 0.02)

	lossy := playSeq(t, "rtsp://"+link.Host+":"+port+"/live/lossy", ns.Do, nil)
	clean := []*seqReader{playSeq(t, "rtsp://127.0.0.1:"+port+"/live/lossy", nil, nil), playSeq(t, "rtsp://127.0.0.1:"+port+"/live/lossy", nil, nil)}
	begun := time.Now()
	testutil.WaitFor(t, 30*time.Second, "5 s of play with at least 4 packets lost on the link", func() bool {
		return time.Since(begun) >= 5*time.Second && link.Down.Dropped.Load() >= 4
	})
	target := clean[0].lasts()
	reachedAt := time.Now()
	testutil.WaitFor(t, 15*time.Second, "the lossy reader to reach the clean reader's sequence numbers", func() bool { return lossy.reached(target) })
	behind := time.Since(reachedAt)
	for i, r := range append([]*seqReader{lossy}, clean...) {
		if p, g := r.counts(); g != 0 || p == 0 {
			t.Errorf("reader %d (0 = the lossy one): %s; want packets and 0 lost", i, r)
		}
	}
	t.Logf("lossy reader: %s, %s behind the clean readers at the end; the link dropped %d of %d packets to it",
		lossy, behind.Round(time.Millisecond), link.Down.Dropped.Load(), link.Down.Dropped.Load()+link.Down.Passed.Load())
}

// TestFaultPublisherStallResumes: an RTSP/TCP publisher whose link passes
// nothing for 5 s (both ways, no FIN) is not dropped: Berth ends a
// publisher only after [rtsp] keepAliveSecond (15 s) without media. When
// the link comes back, TCP retransmits what was held, the stream resumes
// for its readers on the same sessions, and they lose no packet.
func TestFaultPublisherStallResumes(t *testing.T) {
	netfault.Require(t)
	testmedia.RequireFFmpeg(t)
	t.Parallel()
	srv, logs := faultServer(t, nil)
	port := listenerPort(t, srv, "rtsp")
	ns := netfault.NewNS(t)
	link := netfault.NewLink(t, ns)
	pushVia(t, ns.Command, srv, testmedia.H264AAC, "rtsp://"+link.Host+":"+port+"/live/stall", "live/stall")
	stream := srv.Hub.Get("live/stall")
	readers := []*seqReader{playSeq(t, "rtsp://127.0.0.1:"+port+"/live/stall", nil, nil), playSeq(t, "rtsp://127.0.0.1:"+port+"/live/stall", nil, nil)}
	testutil.WaitFor(t, 10*time.Second, "the readers' first packets", func() bool { p, _ := readers[1].counts(); return p > 20 })

	link.Block()
	<-time.After(5 * time.Second) // the stall itself, not a wait for a condition
	before, _ := readers[0].counts()
	link.Unblock()
	unblocked := time.Now()
	testutil.WaitFor(t, 15*time.Second, "the stream to resume after the stall", func() bool { p, _ := readers[0].counts(); return p > before+50 })
	resumed := time.Since(unblocked)
	testutil.WaitFor(t, 10*time.Second, "the second reader to resume too", func() bool { p, _ := readers[1].counts(); return p > before+50 })

	if srv.Hub.Get("live/stall") != stream {
		t.Error("the stream was ended and published again; want the same publish to go on")
	}
	for i, r := range readers {
		select {
		case <-r.c.Done():
			t.Errorf("reader %d was closed: %v", i, r.c.Err())
		default:
		}
		if _, g := r.counts(); g != 0 {
			t.Errorf("reader %d: %s; want 0 lost", i, r)
		}
	}
	if line := logs.Line("rtsp publish ended"); line != "" {
		t.Errorf("the publisher was ended: %s", line)
	}
	t.Logf("after a 5 s stall the readers got packets again %s after the link came back (TCP's retransmission backoff); %s, %s",
		resumed.Round(time.Millisecond), readers[0], readers[1])
}

// TestFaultStoppedReaderIsDropped: an RTSP/TCP reader that stops reading
// (its socket buffers fill) is dropped after Berth's write timeout (10 s
// without the socket taking a byte) with a warning; the readers beside it
// lose nothing.
func TestFaultStoppedReaderIsDropped(t *testing.T) {
	netfault.Require(t)
	testmedia.RequireFFmpeg(t)
	t.Parallel()
	srv, logs := faultServer(t, nil)
	port := listenerPort(t, srv, "rtsp")
	push(t, srv, testmedia.H264CBR, "rtsp://127.0.0.1:"+port+"/live/stopped", "live/stopped")
	ns := netfault.NewNS(t)
	link := netfault.NewLink(t, ns)
	stuck := make(chan struct{})
	var once bool
	stopped := playSeq(t, "rtsp://"+link.Host+":"+port+"/live/stopped", ns.Do, func() {
		if !once { // the first packet is read; then the reader stops reading for good
			once = true
			return
		}
		<-stuck
	})
	t.Cleanup(func() { close(stuck) }) // before the client's Close, which waits for its read loop
	clean := []*seqReader{playSeq(t, "rtsp://127.0.0.1:"+port+"/live/stopped", nil, nil), playSeq(t, "rtsp://127.0.0.1:"+port+"/live/stopped", nil, nil)}
	begun := time.Now()
	var line string
	testutil.WaitFor(t, 25*time.Second, "the stopped reader to be dropped", func() bool { line = logs.Line("slow reader dropped", "live/stopped"); return line != "" })
	took := time.Since(begun)
	testutil.WaitFor(t, 5*time.Second, "the dropped reader to leave the stream", func() bool { return srv.Hub.Get("live/stopped").Readers() == len(clean) })
	before, _ := clean[0].counts()
	testutil.WaitFor(t, 10*time.Second, "the clean readers to go on", func() bool { p, _ := clean[0].counts(); return p > before+100 })
	for i, r := range clean {
		if _, g := r.counts(); g != 0 {
			t.Errorf("clean reader %d: %s; want 0 lost", i, r)
		}
	}
	t.Logf("the reader that stopped reading (%s) was dropped %s after it stopped: %s", stopped, took.Round(time.Millisecond), line)
}

// TestFaultHalfOpenReaderIsFreed: readers whose link goes dead without a
// FIN (the peer vanished: nothing comes back, not even an RST), over RTSP,
// HTTP-FLV, WS-FLV and HTTP-fMP4, each from a namespace of its own, are
// noticed by the write timeout (their unacknowledged data fills the
// socket), each with a warning naming its address, and their sessions
// are freed; the clean reader loses nothing.
func TestFaultHalfOpenReaderIsFreed(t *testing.T) {
	netfault.Require(t)
	testmedia.RequireFFmpeg(t)
	t.Parallel()
	srv, logs := faultServer(t, nil)
	port, httpPort := listenerPort(t, srv, "rtsp"), listenerPort(t, srv, "http")
	push(t, srv, testmedia.H264CBR, "rtsp://127.0.0.1:"+port+"/live/halfread", "live/halfread")
	clean := playSeq(t, "rtsp://127.0.0.1:"+port+"/live/halfread", nil, nil)
	var links []*netfault.Link
	var got []*atomic.Int64
	for _, kind := range []string{"rtsp", "http-flv", "ws-flv", "http-fmp4"} {
		ns := netfault.NewNS(t)
		link := netfault.NewLink(t, ns)
		links = append(links, link)
		n := &atomic.Int64{}
		got = append(got, n)
		base := link.Host + ":" + httpPort + "/live/halfread"
		switch kind {
		case "rtsp":
			playSeq(t, "rtsp://"+link.Host+":"+port+"/live/halfread", ns.Do, func() { n.Add(1) })
		case "ws-flv":
			d := websocket.Dialer{NetDialContext: nsDialer(ns), HandshakeTimeout: 10 * time.Second}
			c, _, err := d.Dial("ws://"+base+".live.flv", nil)
			if err != nil {
				t.Fatalf("ws-flv from %s: %v", ns.Name, err)
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				for {
					_, b, err := c.ReadMessage()
					if err != nil {
						return
					}
					n.Add(int64(len(b)))
				}
			}()
		default:
			suffix := ".live.flv"
			if kind == "http-fmp4" {
				suffix = ".live.mp4"
			}
			hc := &http.Client{Transport: &http.Transport{DialContext: nsDialer(ns)}}
			res, err := hc.Get("http://" + base + suffix)
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("%s from %s: %v %v", kind, ns.Name, res, err)
			}
			t.Cleanup(func() { res.Body.Close() })
			go func() {
				buf := make([]byte, 32<<10)
				for {
					k, err := res.Body.Read(buf)
					n.Add(int64(k))
					if err != nil {
						return
					}
				}
			}()
		}
	}
	testutil.WaitFor(t, 10*time.Second, "every reader behind a link to play", func() bool {
		for _, n := range got {
			if n.Load() == 0 {
				return false
			}
		}
		return srv.Hub.Get("live/halfread").Readers() == 1+len(links)
	})
	sessions := srv.Sessions.Len()
	for _, l := range links {
		l.Block()
	}
	cut := time.Now()
	testutil.WaitFor(t, 25*time.Second, "the half-open readers to be dropped and their sessions freed", func() bool {
		return srv.Hub.Get("live/halfread").Readers() == 1 && srv.Sessions.Len() == sessions-len(links)
	})
	took := time.Since(cut)
	for _, l := range links {
		if line := logs.Line("level=WARN", "remote="+l.Peer+":"); line == "" {
			t.Errorf("no warning names the dropped reader at %s", l.Peer)
		}
	}
	if _, g := clean.counts(); g != 0 {
		t.Errorf("the clean reader: %s; want 0 lost", clean)
	}
	t.Logf("%d readers (RTSP, HTTP-FLV, WS-FLV, HTTP-fMP4) whose peers vanished without FIN were freed within %s of the links going dead",
		len(links), took.Round(time.Millisecond))
}

// nsDialer dials from inside ns.
func nsDialer(ns *netfault.NS) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = ns.Do(func() error {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// TestFaultHalfOpenPublisherIsFreed: an RTSP/TCP or RTMP publisher whose
// link goes dead without a FIN is ended after its protocol's
// keepAliveSecond (3 s here) without media; its readers are told (RTCP BYE
// and a close) and the path can be published again at once.
func TestFaultHalfOpenPublisherIsFreed(t *testing.T) {
	netfault.Require(t)
	testmedia.RequireFFmpeg(t)
	t.Parallel()
	srv, logs := faultServer(t, func(c *config.Config) { c.RTSP.KeepAliveSecond, c.RTMP.KeepAliveSecond = 3, 3 })
	rtspPort := listenerPort(t, srv, "rtsp")
	for _, proto := range []string{"rtsp", "rtmp"} {
		t.Run(proto, func(t *testing.T) {
			path := "live/halfpub_" + proto
			ns := netfault.NewNS(t)
			link := netfault.NewLink(t, ns)
			pushVia(t, ns.Command, srv, testmedia.H264AAC, proto+"://"+link.Host+":"+listenerPort(t, srv, proto)+"/"+path, path)
			reader := playSeq(t, "rtsp://127.0.0.1:"+rtspPort+"/"+path, nil, nil)
			testutil.WaitFor(t, 10*time.Second, "the reader's first packets", func() bool { p, _ := reader.counts(); return p > 20 })

			link.Block()
			cut := time.Now()
			select {
			case <-reader.c.Done():
			case <-time.After(15 * time.Second):
				t.Fatalf("the reader of a half-open %s publisher was not closed in 15 s", proto)
			}
			took := time.Since(cut)
			if srv.Hub.Get(path) != nil {
				t.Error("the stream is still there after its publisher was ended")
			}
			push(t, srv, testmedia.H264AAC, "rtsp://127.0.0.1:"+rtspPort+"/"+path, path)
			if _, g := reader.counts(); g != 0 {
				t.Errorf("the reader: %s; want 0 lost", reader)
			}
			t.Logf("a %s publisher whose peer vanished without FIN was ended and its reader closed %s after the link went dead (keepAliveSecond=3); %s",
				proto, took.Round(time.Millisecond), logs.Line("publish ended", path))
		})
	}
}
