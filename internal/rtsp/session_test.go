package rtsp_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
	"github.com/berthmedia/berth/internal/logging"
	"github.com/berthmedia/berth/internal/rtsp"
	"github.com/berthmedia/berth/internal/rtspclient"
	"github.com/berthmedia/berth/internal/testutil"
)

// rawSession drives one RTSP connection by hand, for what rtspclient does
// not expose: PAUSE, GET_PARAMETER/SET_PARAMETER, a chosen Session header,
// the reply's Transport. A goroutine reads responses and interleaved frames
// apart (in order, so every frame sent before a response is counted by the
// time the response is seen); UDP set-ups get a client port pair each,
// read by their own goroutines.
type rawSession struct {
	t      *testing.T
	nc     net.Conn
	cseq   int
	id     string
	res    chan *base.Response
	closed chan struct{} // closed when the server ends the connection
	rtp    atomic.Int64  // RTP packets received (interleaved even channels, UDP RTP ports)
	wg     sync.WaitGroup
	udp    []*net.UDPConn
}

func dialRaw(t *testing.T, addr string) *rawSession {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &rawSession{t: t, nc: nc, res: make(chan *base.Response, 16), closed: make(chan struct{})}
	r.wg.Add(1)
	go r.readLoop()
	t.Cleanup(func() {
		nc.Close()
		for _, u := range r.udp {
			u.Close()
		}
		r.wg.Wait()
	})
	return r
}

func (r *rawSession) readLoop() {
	defer r.wg.Done()
	defer close(r.closed)
	br := bufio.NewReader(r.nc)
	for {
		b, err := br.Peek(1)
		if err != nil {
			return
		}
		if b[0] == '$' {
			var hdr [4]byte
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return
			}
			if _, err := br.Discard(int(hdr[2])<<8 | int(hdr[3])); err != nil {
				return
			}
			if hdr[1]%2 == 0 {
				r.rtp.Add(1)
			}
			continue
		}
		var res base.Response
		if err := res.Unmarshal(br); err != nil {
			return
		}
		r.res <- &res
	}
}

// do sends a request and returns its response. It sends the session id the
// server gave unless h names a Session of its own, and keeps the first id
// the server gives.
func (r *rawSession) do(method base.Method, url string, h base.Header, body []byte) *base.Response {
	r.t.Helper()
	if err := r.write(method, url, h, body); err != nil {
		r.t.Fatalf("%s %s: %v", method, url, err)
	}
	select {
	case res := <-r.res:
		if got := res.Header["CSeq"]; len(got) != 1 || got[0] != strconv.Itoa(r.cseq) {
			r.t.Fatalf("%s %s: response CSeq %v, want %d", method, url, got, r.cseq)
		}
		if r.id == "" && res.StatusCode == base.StatusOK {
			var sh headers.Session
			if sh.Unmarshal(res.Header["Session"]) == nil {
				r.id = sh.Session
			}
		}
		return res
	case <-r.closed:
		r.t.Fatalf("%s %s: the server closed the connection", method, url)
	case <-time.After(5 * time.Second):
		r.t.Fatalf("%s %s: no response within 5 s", method, url)
	}
	return nil
}

// write sends a request with the next CSeq.
func (r *rawSession) write(method base.Method, url string, h base.Header, body []byte) error {
	u, err := base.ParseURL(url)
	if err != nil {
		return err
	}
	r.cseq++
	hdr := base.Header{"CSeq": base.HeaderValue{strconv.Itoa(r.cseq)}}
	for k, v := range h {
		hdr[k] = v
	}
	if _, ok := hdr["Session"]; !ok && r.id != "" {
		hdr["Session"] = base.HeaderValue{r.id}
	}
	req := base.Request{Method: method, URL: u, Header: hdr, Body: body}
	b, err := req.Marshal()
	if err != nil {
		return err
	}
	r.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = r.nc.Write(b)
	return err
}

// send sends a request to a session the server may end meanwhile: it
// takes the answer, if any, and returns once the server closed instead.
func (r *rawSession) send(method base.Method, url string) {
	r.t.Helper()
	if r.write(method, url, nil, nil) != nil {
		return
	}
	select {
	case <-r.res:
	case <-r.closed:
	case <-time.After(5 * time.Second):
		r.t.Errorf("%s %s: neither an answer nor a close within 5 s", method, url)
	}
}

// expect sends a request and fails the test unless the answer is code.
func (r *rawSession) expect(code base.StatusCode, method base.Method, url string, h base.Header, body []byte) *base.Response {
	r.t.Helper()
	res := r.do(method, url, h, body)
	if res.StatusCode != code {
		r.t.Fatalf("%s %s: got %d %s, want %d", method, url, res.StatusCode, res.StatusMessage, code)
	}
	return res
}

func (r *rawSession) setupTCP(url string, channel int, record bool) *base.Response {
	r.t.Helper()
	tr := "RTP/AVP/TCP;unicast;interleaved=" + strconv.Itoa(channel) + "-" + strconv.Itoa(channel+1)
	if record {
		tr += ";mode=record"
	}
	return r.expect(base.StatusOK, base.Setup, url, base.Header{"Transport": base.HeaderValue{tr}}, nil)
}

// setupUDP binds a client port pair, sets it up and returns the server's
// reply Transport.
func (r *rawSession) setupUDP(url string, record bool) headers.Transport {
	r.t.Helper()
	var pair [2]*net.UDPConn
	for i := range pair {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			r.t.Fatal(err)
		}
		pair[i] = u
		r.udp = append(r.udp, u)
		r.wg.Add(1)
		go func(countRTP bool) {
			defer r.wg.Done()
			buf := make([]byte, 65536)
			for {
				if _, err := u.Read(buf); err != nil {
					return
				}
				if countRTP {
					r.rtp.Add(1)
				}
			}
		}(i == 0)
	}
	tr := "RTP/AVP;unicast;client_port=" + strconv.Itoa(pair[0].LocalAddr().(*net.UDPAddr).Port) + "-" +
		strconv.Itoa(pair[1].LocalAddr().(*net.UDPAddr).Port)
	if record {
		tr += ";mode=record"
	}
	res := r.expect(base.StatusOK, base.Setup, url, base.Header{"Transport": base.HeaderValue{tr}}, nil)
	var th headers.Transport
	if err := th.Unmarshal(res.Header["Transport"]); err != nil {
		r.t.Fatalf("SETUP %s: reply Transport %v: %v", url, res.Header["Transport"], err)
	}
	return th
}

func (r *rawSession) isClosed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

func (r *rawSession) local() string { return r.nc.LocalAddr().String() }

// publishDirect puts a stream of the given tracks in the hub without RTSP,
// for tests about the play side that need no media.
func publishDirect(t *testing.T, ts *testServer, path string, tracks ...format.Format) {
	t.Helper()
	var ht []*hub.Track
	for _, f := range tracks {
		_, video := f.(*format.H264)
		ht = append(ht, &hub.Track{Format: f, Video: video})
	}
	pub, err := ts.hub.Publish(path, hub.Origin{Proto: "test"}, hub.KindRTP, ht, []byte(simpleSDP))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
}

const pcmaSDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=pcma\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=control:streamid=0\r\n"

// syntheticPublisher publishes G.711 A-law (8 kHz, 20 ms packets) with
// Berth's client over TCP (ANNOUNCE, SETUP, RECORD), its RTP timestamps
// following the wall clock, until the test ends. Audio-only, so every
// packet is a start for a new reader.
func syntheticPublisher(t *testing.T, ts *testServer, path string) (ssrc uint32) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := rtspclient.Dial(ctx, ts.url(path), rtspclient.Options{Transport: rtspclient.TCP, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := c.Announce([]byte(pcmaSDP))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc); err != nil {
		t.Fatal(err)
	}
	if err := c.Record(); err != nil {
		t.Fatal(err)
	}
	ssrc = 0x5eed1234
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond) // the media's pace, not a wait for a condition
		defer tick.Stop()
		start := time.Now()
		payload := make([]byte, 160)
		for i := range payload {
			payload[i] = 0xd5 // A-law silence
		}
		for seq := uint16(0); ; seq++ {
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: seq, SSRC: ssrc,
				Timestamp: 1000 + uint32(time.Since(start).Seconds()*8000)}, Payload: payload}
			b, _ := pkt.Marshal()
			if c.WritePacket(0, b) != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-c.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		c.Close()
	})
	return ssrc
}

// TestKeepAliveRequestsHoldASessionPastTheTimeout: with keepAliveSecond=1,
// players that send GET_PARAMETER or SET_PARAMETER every 200 ms (a UDP
// player has no other sign of life without RTCP) live through three
// timeouts, while a silent player is ended with the timeout log line (RFC
// 2326 10.8, 12.37). A publisher's sign of life is its media: one that
// sends keep-alives but no packets is ended like a silent one, and its
// path is freed.
func TestKeepAliveRequestsHoldASessionPastTheTimeout(t *testing.T) {
	ts := startServer(t, func(s *rtsp.Server, _ *hub.Options) { s.KeepAlive = time.Second })
	publishDirect(t, ts, "live/ka", &format.H264{PayloadTyp: 96, PacketizationMode: 1})
	var serverRTCP int // the last udpPlayer's RTCP port on the server
	udpPlayer := func() *rawSession {
		r := dialRaw(t, ts.addr)
		th := r.setupUDP(ts.url("live/ka")+"/trackID=0", false)
		serverRTCP = th.ServerPorts[1]
		r.expect(base.StatusOK, base.Play, ts.url("live/ka"), nil, nil)
		return r
	}
	publisher := func(path string) *rawSession {
		r := dialRaw(t, ts.addr)
		r.expect(base.StatusOK, base.Announce, ts.url(path), base.Header{"Content-Type": base.HeaderValue{"application/sdp"}}, []byte(simpleSDP))
		r.setupTCP(ts.url(path)+"/streamid=0", 0, true)
		r.expect(base.StatusOK, base.Record, ts.url(path), nil, nil)
		return r
	}
	request := func(m base.Method) func(r *rawSession) {
		return func(r *rawSession) { r.expect(base.StatusOK, m, ts.url("live/ka"), nil, nil) }
	}
	alive := []struct {
		name string
		r    *rawSession
		keep func(r *rawSession)
	}{
		{"UDP player with GET_PARAMETER", udpPlayer(), request(base.GetParameter)},
		{"UDP player with SET_PARAMETER", udpPlayer(), request(base.SetParameter)},
		{"UDP player with RTCP receiver reports", udpPlayer(), receiverReports(t, serverRTCP)},
	}
	medialess := publisher("live/ka-pub")
	silent := map[string]*rawSession{"silent UDP player": udpPlayer(), "silent TCP publisher": publisher("live/silent-pub"),
		"TCP publisher with GET_PARAMETER but no media": medialess}

	start := time.Now()
	tick := time.NewTicker(200 * time.Millisecond) // the keep-alive period under test
	defer tick.Stop()
	for {
		allSilentEnded := true
		for _, r := range silent {
			allSilentEnded = allSilentEnded && r.isClosed()
		}
		if allSilentEnded && time.Since(start) >= 3*time.Second {
			break
		}
		if time.Since(start) > 10*time.Second {
			for name, r := range silent {
				if !r.isClosed() {
					t.Errorf("%s still open 10 s into a 1 s keep-alive", name)
				}
			}
			t.FailNow()
		}
		for _, a := range alive {
			if a.r.isClosed() {
				t.Fatalf("%s: closed %s after start though it sent keep-alives", a.name, time.Since(start).Round(time.Millisecond))
			}
			a.keep(a.r)
		}
		if !medialess.isClosed() {
			medialess.send(base.GetParameter, ts.url("live/ka-pub"))
		}
		<-tick.C
	}
	for _, a := range alive {
		if line := ts.log.Line("session timed out", "remote="+a.r.local()); line != "" {
			t.Errorf("%s: timed out though it sent keep-alives: %s", a.name, line)
		}
	}
	for _, r := range silent {
		ts.log.WaitLine(t, "session timed out", "keepAliveSecond=1", "remote="+r.local())
	}
	testutil.WaitFor(t, 5*time.Second, "the media-less publishers' streams to leave the registry", func() bool {
		return ts.hub.Get("live/silent-pub") == nil && ts.hub.Get("live/ka-pub") == nil
	})
}

// receiverReports keeps a UDP player alive the way most players do: an
// RTCP receiver report (RFC 3550 6.4.2, no report blocks) from its RTCP
// port to the server's.
func receiverReports(t *testing.T, serverRTCP int) func(r *rawSession) {
	rr := []byte{0x80, 201, 0, 1, 0, 0, 0x12, 0x34}
	return func(r *rawSession) {
		if _, err := r.udp[1].WriteToUDP(rr, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: serverRTCP}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPauseStopsPacketsAndPlayResumes: PAUSE of a playing session answers
// 200 and no RTP follows, over TCP and UDP; PLAY again resumes the flow.
// PAUSE of a session that is set up but not playing is 200 (RFC 7826
// appendix B: Ready stays Ready); before any SETUP it is 455.
func TestPauseStopsPacketsAndPlayResumes(t *testing.T) {
	ts := startServer(t)
	syntheticPublisher(t, ts, "live/p")
	st := waitPublished(t, ts, "live/p")
	url := ts.url("live/p")
	// waitFrames waits for the publisher to push n more packets (50/s): a
	// window in which a playing reader would get about as many.
	waitFrames := func(n uint64, what string) {
		from := st.FramesIn.Load()
		testutil.WaitFor(t, 10*time.Second, what, func() bool { return st.FramesIn.Load() >= from+n })
	}
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			r := dialRaw(t, ts.addr)
			if transport == "tcp" {
				r.setupTCP(url+"/trackID=0", 0, false)
			} else {
				r.setupUDP(url+"/trackID=0", false)
			}
			r.expect(base.StatusOK, base.Pause, url, nil, nil) // ready-to-play: nothing to pause
			r.expect(base.StatusOK, base.Play, url, nil, nil)
			testutil.WaitFor(t, 5*time.Second, "RTP packets while playing", func() bool { return r.rtp.Load() >= 10 })

			r.expect(base.StatusOK, base.Pause, url, nil, nil)
			atPause := r.rtp.Load()
			// UDP packets sent before the reply may still be on their way
			// to the counter: let them land, then watch a quiet window.
			waitFrames(10, "the publisher to go on after PAUSE")
			settled := r.rtp.Load()
			waitFrames(50, "a second of media while paused")
			if got := r.rtp.Load(); got != settled {
				t.Errorf("%d RTP packets arrived in a second while paused", got-settled)
			}
			if transport == "tcp" && settled != atPause {
				// Over TCP the server stops its media writer before it answers.
				t.Errorf("%d RTP packets arrived after the PAUSE reply", settled-atPause)
			}
			ts.log.WaitLine(t, "play ended", "path=live/p", `reason="stopped by the client"`)

			r.expect(base.StatusOK, base.Play, url, nil, nil)
			testutil.WaitFor(t, 5*time.Second, "RTP packets again after PLAY", func() bool { return r.rtp.Load() >= settled+10 })
			if r.isClosed() {
				t.Errorf("the connection closed after PAUSE/PLAY")
			}
			if transport == "udp" {
				// Each PLAY must not add a reader of the track's RTCP
				// socket: they would pile up until TEARDOWN. On Linux the
				// poller reads it and the player is event-driven: a UDP
				// player holds no goroutine of its own.
				for range 3 {
					r.expect(base.StatusOK, base.Pause, url, nil, nil)
					n := r.rtp.Load()
					r.expect(base.StatusOK, base.Play, url, nil, nil)
					testutil.WaitFor(t, 5*time.Second, "RTP packets after PLAY", func() bool { return r.rtp.Load() > n })
				}
				readers, loops, want := goroutinesIn("rtsp.(*conn).readUDP("), goroutinesIn("rtsp.(*player).loop("), 1
				if runtime.GOOS == "linux" {
					want = 0
				}
				if readers != want || loops != want {
					t.Errorf("after 4 PAUSE/PLAY cycles %d goroutines read the player's RTCP socket and %d run its loop, want %d each", readers, loops, want)
				}
			}
		})
	}
	t.Run("before SETUP", func(t *testing.T) {
		r := dialRaw(t, ts.addr)
		r.expect(base.StatusMethodNotValidInThisState, base.Pause, url, nil, nil)
		ts.log.WaitLine(t, "PAUSE outside play; answered 455", "method=PAUSE", "status=455", "remote="+r.local())
	})
}

// TestWrongSessionIs454AndASecondStreamIs459: a request naming a session
// the connection does not hold is 454 (RFC 2326 11.3.10), including the id
// of a session already torn down; a SETUP that adds another stream to a
// session is 459 (11.3.11); each is logged, and neither harms the session.
func TestWrongSessionIs454AndASecondStreamIs459(t *testing.T) {
	ts := startServer(t)
	h264 := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	publishDirect(t, ts, "live/a", h264)
	publishDirect(t, ts, "live/b", h264)
	r := dialRaw(t, ts.addr)
	r.setupTCP(ts.url("live/a")+"/trackID=0", 0, false)
	id := r.id
	if id == "" {
		t.Fatal("SETUP gave no session id")
	}

	r.expect(base.StatusAggregateOperationNotAllowed, base.Setup, ts.url("live/b")+"/trackID=0",
		base.Header{"Transport": base.HeaderValue{"RTP/AVP/TCP;unicast;interleaved=2-3"}}, nil)
	ts.log.WaitLine(t, "SETUP of a second stream in one session; answered 459", "status=459", "path=live/b", "session_path=live/a")

	wrong := base.Header{"Session": base.HeaderValue{"0badc0ffee"}}
	r.expect(base.StatusSessionNotFound, base.Play, ts.url("live/a"), wrong, nil)
	ts.log.WaitLine(t, "request names an unknown session; answered 454", "method=PLAY", "status=454", "session=0badc0ffee")
	r.expect(base.StatusSessionNotFound, base.Setup, ts.url("live/a")+"/trackID=0",
		base.Header{"Session": wrong["Session"], "Transport": base.HeaderValue{"RTP/AVP/TCP;unicast;interleaved=0-1"}}, nil)
	ts.log.WaitLine(t, "SETUP names an unknown session; answered 454", "status=454", "session=0badc0ffee")

	// The refusals left the session as it was: it plays.
	r.expect(base.StatusOK, base.Play, ts.url("live/a"), nil, nil)
	r.expect(base.StatusOK, base.Teardown, ts.url("live/a"), nil, nil)
	r.expect(base.StatusSessionNotFound, base.Play, ts.url("live/a"), base.Header{"Session": base.HeaderValue{id}}, nil)
	ts.log.WaitLine(t, "request names an unknown session; answered 454", "session="+id)
	r.expect(base.StatusOK, base.Options, ts.url("live/a"), base.Header{"Session": nil}, nil)
}

// TestReadersGetRTCPSenderReports: while a publisher pushes, a reader over
// TCP interleaved and one over UDP each get RTCP sender reports (RFC 3550
// 6.4.1) for the track: the publisher's SSRC, and between two reports the
// RTP clock advances as the NTP clock does, at the track's 8 kHz.
func TestReadersGetRTCPSenderReports(t *testing.T) {
	ts := startServer(t)
	ssrc := syntheticPublisher(t, ts, "live/sr")
	waitPublished(t, ts, "live/sr")
	for _, tr := range []rtspclient.Transport{rtspclient.TCP, rtspclient.UDP} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel() // the reports come 5 s apart: wait for both readers at once
			c := dialPlayer(t, ts, "live/sr", tr)
			var mu sync.Mutex
			var reports []rtcp.SenderReport
			var bad []string
			c.OnRTCP = func(track int, pkt []byte) {
				pkts, err := rtcp.Unmarshal(pkt)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					bad = append(bad, err.Error())
					return
				}
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok && track == 0 {
						reports = append(reports, *sr)
					}
				}
			}
			if _, err := c.Play(); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 15*time.Second, "two sender reports over "+tr.String(), func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(reports) >= 2
			})
			mu.Lock()
			defer mu.Unlock()
			if len(bad) > 0 {
				t.Errorf("RTCP that does not parse: %v", bad)
			}
			a, b := reports[0], reports[len(reports)-1]
			for _, sr := range []rtcp.SenderReport{a, b} {
				if sr.SSRC != ssrc {
					t.Errorf("sender report SSRC %#x, want the publisher's %#x", sr.SSRC, ssrc)
				}
			}
			dRTP := int32(b.RTPTime - a.RTPTime)
			dNTP := ntpSeconds(b.NTPTime) - ntpSeconds(a.NTPTime)
			if dRTP <= 0 || dNTP <= 0 {
				t.Fatalf("RTP time %d -> %d, NTP %s apart: want both increasing", a.RTPTime, b.RTPTime, secs(dNTP))
			}
			if d := float64(dRTP)/8000 - dNTP; d > 0.25 || d < -0.25 {
				t.Errorf("RTP time advanced %s at 8 kHz while NTP time advanced %s", secs(float64(dRTP)/8000), secs(dNTP))
			}
			if b.PacketCount <= a.PacketCount || b.OctetCount <= a.OctetCount {
				t.Errorf("sender counts did not grow: %d/%d packets, %d/%d octets", a.PacketCount, b.PacketCount, a.OctetCount, b.OctetCount)
			}
		})
	}
}

// goroutinesIn counts the goroutines whose stack holds fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), fn)
		}
		buf = make([]byte, 2*len(buf))
	}
}

func ntpSeconds(v uint64) float64 { return float64(v>>32) + float64(v&0xffffffff)/(1<<32) }

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// TestTraceLogsEveryRequestAndResponseHead: at log level trace each request
// head and the head of its response are logged with the connection's
// remote address, errors included; at info neither is.
func TestTraceLogsEveryRequestAndResponseHead(t *testing.T) {
	ts := startServer(t) // logs at trace
	r := dialRaw(t, ts.addr)
	r.expect(base.StatusOK, base.Options, ts.url(""), nil, nil)
	r.expect(base.StatusNotFound, base.Describe, ts.url("live/none"), nil, nil)
	remote := "remote=" + r.local()
	ts.log.WaitLine(t, "level=TRACE", "msg=request", remote, `head="OPTIONS rtsp://`+ts.addr+"/ RTSP/1.0", "CSeq: 1")
	ts.log.WaitLine(t, "level=TRACE", "msg=response", remote, `head="RTSP/1.0 200 OK`, "CSeq: 1", "Public: ")
	ts.log.WaitLine(t, "level=TRACE", "msg=request", remote, `head="DESCRIBE rtsp://`+ts.addr+"/live/none RTSP/1.0", "CSeq: 2")
	ts.log.WaitLine(t, "level=TRACE", "msg=response", remote, `head="RTSP/1.0 404 Not Found`, "CSeq: 2")

	info := &testutil.LogBuffer{}
	quiet := startServer(t, func(s *rtsp.Server, _ *hub.Options) { s.Log = logging.New(info, slog.LevelInfo) })
	q := dialRaw(t, quiet.addr)
	q.expect(base.StatusOK, base.Options, quiet.url(""), nil, nil)
	info.WaitLine(t, "connection accepted", "remote="+q.local())
	if line := info.Line("msg=request"); line != "" {
		t.Errorf("request head logged at info: %s", line)
	}
	if line := info.Line("msg=response"); line != "" {
		t.Errorf("response head logged at info: %s", line)
	}
}

// TestUDPServerPortsComeFromTheConfiguredRange: the server_port pair of a
// UDP SETUP reply, to play and to record, is an even/odd pair (RFC 3550
// 11) inside [rtsp] rtp_port_range, bound by the server, one per track.
func TestUDPServerPortsComeFromTheConfiguredRange(t *testing.T) {
	// A range of 20 ports where the kernel just found a free one, so tests
	// of other packages running meanwhile hardly ever hold all of it.
	probe, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	lo := probe.LocalAddr().(*net.UDPAddr).Port &^ 1
	probe.Close()
	if lo > 65500 {
		lo = 65500
	}
	rng := config.PortRange{Lo: lo, Hi: lo + 19}
	ts := startServer(t, func(s *rtsp.Server, _ *hub.Options) { s.UDPRange = rng })
	publishDirect(t, ts, "live/r", &format.H264{PayloadTyp: 96, PacketizationMode: 1}, &format.G711{PayloadTyp: 8, MULaw: false, SampleRate: 8000, ChannelCount: 1})

	check := func(what string, th headers.Transport, seen map[int]bool) {
		t.Helper()
		if th.ServerPorts == nil {
			t.Fatalf("%s: reply has no server_port", what)
		}
		rtpPort, rtcpPort := th.ServerPorts[0], th.ServerPorts[1]
		if rtpPort < rng.Lo || rtcpPort > rng.Hi || rtpPort%2 != 0 || rtcpPort != rtpPort+1 {
			t.Errorf("%s: server_port=%d-%d, want an even/odd pair within rtp_port_range %d-%d", what, rtpPort, rtcpPort, rng.Lo, rng.Hi)
		}
		if seen[rtpPort] {
			t.Errorf("%s: server_port %d given twice", what, rtpPort)
		}
		seen[rtpPort] = true
		for _, p := range th.ServerPorts {
			if u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}); err == nil {
				u.Close()
				t.Errorf("%s: server port %d is not bound by the server", what, p)
			}
		}
	}
	seen := map[int]bool{}
	player := dialRaw(t, ts.addr)
	check("play track 0", player.setupUDP(ts.url("live/r")+"/trackID=0", false), seen)
	check("play track 1", player.setupUDP(ts.url("live/r")+"/trackID=1", false), seen)

	pub := dialRaw(t, ts.addr)
	pub.expect(base.StatusOK, base.Announce, ts.url("live/r-pub"), base.Header{"Content-Type": base.HeaderValue{"application/sdp"}}, []byte(simpleSDP))
	check("record", pub.setupUDP(ts.url("live/r-pub")+"/streamid=0", true), seen)
}
