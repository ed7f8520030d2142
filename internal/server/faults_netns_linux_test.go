package server_test

import (
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/netfault"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
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
	pub := ns.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1", "-i", testmedia.File(t, testmedia.H264AAC),
		"-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+link.Host+":"+port+"/live/stall")
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	waitPublished(t, srv, "live/stall")
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

// TestFaultHalfOpenReaderIsFreed: an RTSP/TCP reader whose link goes dead
// without a FIN (the peer vanished: nothing comes back, not even an RST)
// is noticed by the write timeout (its unacknowledged data fills the
// socket) and its session is freed; the other reader loses nothing.
func TestFaultHalfOpenReaderIsFreed(t *testing.T) {
	netfault.Require(t)
	testmedia.RequireFFmpeg(t)
	t.Parallel()
	srv, logs := faultServer(t, nil)
	port := listenerPort(t, srv, "rtsp")
	push(t, srv, testmedia.H264CBR, "rtsp://127.0.0.1:"+port+"/live/halfread", "live/halfread")
	ns := netfault.NewNS(t)
	link := netfault.NewLink(t, ns)
	gone := playSeq(t, "rtsp://"+link.Host+":"+port+"/live/halfread", ns.Do, nil)
	clean := playSeq(t, "rtsp://127.0.0.1:"+port+"/live/halfread", nil, nil)
	testutil.WaitFor(t, 10*time.Second, "the reader behind the link to play", func() bool { p, _ := gone.counts(); return p > 100 })
	sessions := srv.Sessions.Len()
	link.Block()
	cut := time.Now()
	testutil.WaitFor(t, 25*time.Second, "the half-open reader to be dropped", func() bool { return logs.Line("slow reader dropped", "live/halfread") != "" })
	testutil.WaitFor(t, 5*time.Second, "the half-open reader's session to be freed", func() bool {
		return srv.Hub.Get("live/halfread").Readers() == 1 && srv.Sessions.Len() == sessions-1
	})
	took := time.Since(cut)
	if _, g := clean.counts(); g != 0 {
		t.Errorf("the other reader: %s; want 0 lost", clean)
	}
	t.Logf("a reader whose peer vanished without FIN was freed %s after the link went dead", took.Round(time.Millisecond))
}

// TestFaultHalfOpenPublisherIsFreed: an RTSP/TCP publisher whose link goes
// dead without a FIN is ended after [rtsp] keepAliveSecond (3 s here)
// without media; its readers are told (RTCP BYE and a close) and the path
// can be published again at once.
func TestFaultHalfOpenPublisherIsFreed(t *testing.T) {
	netfault.Require(t)
	testmedia.RequireFFmpeg(t)
	t.Parallel()
	srv, logs := faultServer(t, func(c *config.Config) { c.RTSP.KeepAliveSecond = 3 })
	port := listenerPort(t, srv, "rtsp")
	ns := netfault.NewNS(t)
	link := netfault.NewLink(t, ns)
	pub := ns.Command("ffmpeg", "-hide_banner", "-v", "error", "-re", "-stream_loop", "-1", "-i", testmedia.File(t, testmedia.H264AAC),
		"-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+link.Host+":"+port+"/live/halfpub")
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	waitPublished(t, srv, "live/halfpub")
	reader := playSeq(t, "rtsp://127.0.0.1:"+port+"/live/halfpub", nil, nil)
	testutil.WaitFor(t, 10*time.Second, "the reader's first packets", func() bool { p, _ := reader.counts(); return p > 20 })

	link.Block()
	cut := time.Now()
	select {
	case <-reader.c.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the reader of a half-open publisher was not closed in 15 s")
	}
	took := time.Since(cut)
	if srv.Hub.Get("live/halfpub") != nil {
		t.Error("the stream is still there after its publisher was ended")
	}
	push(t, srv, testmedia.H264AAC, "rtsp://127.0.0.1:"+port+"/live/halfpub", "live/halfpub")
	if _, g := reader.counts(); g != 0 {
		t.Errorf("the reader: %s; want 0 lost", reader)
	}
	t.Logf("a publisher whose peer vanished without FIN was ended and its reader closed %s after the link went dead (keepAliveSecond=3); %s",
		took.Round(time.Millisecond), logs.Line("publish ended", "live/halfpub"))
}
