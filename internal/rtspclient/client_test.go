package rtspclient

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/berthmedia/berth/internal/testutil"
)

// testSDP is what ffmpeg announces for H.264 + AAC.
const testSDP = "v=0\r\n" +
	"o=- 0 0 IN IP4 127.0.0.1\r\n" +
	"s=test\r\n" +
	"c=IN IP4 127.0.0.1\r\n" +
	"t=0 0\r\n" +
	"m=video 0 RTP/AVP 96\r\n" +
	"a=rtpmap:96 H264/90000\r\n" +
	"a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QAH6zZQFAFuwEQAAADABAAAAMDIPGDGWA=,aOvjyyLA; profile-level-id=64001F\r\n" +
	"a=control:streamid=0\r\n" +
	"m=audio 0 RTP/AVP 97\r\n" +
	"a=rtpmap:97 MPEG4-GENERIC/48000/2\r\n" +
	"a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=1190\r\n" +
	"a=control:streamid=1\r\n"

// peerServer is gortsplib's server with the relay handler of its example:
// one publisher, any number of readers. A library peer over real sockets.
type peerServer struct {
	srv       *gortsplib.Server
	addr      string
	mu        sync.RWMutex
	stream    *gortsplib.ServerStream
	publisher *gortsplib.ServerSession
}

func (h *peerServer) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stream != nil && ctx.Session == h.publisher {
		h.stream.Close()
		h.stream = nil
	}
}

func (h *peerServer) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, h.stream, nil
}

func (h *peerServer) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stream = &gortsplib.ServerStream{Server: h.srv, Desc: ctx.Description}
	if err := h.stream.Initialize(); err != nil {
		return nil, err
	}
	h.publisher = ctx.Session
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (h *peerServer) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, h.stream, nil
}

func (h *peerServer) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (h *peerServer) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	ctx.Session.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		h.mu.RLock()
		st := h.stream
		h.mu.RUnlock()
		if st != nil {
			st.WritePacketRTP(m, pkt)
		}
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// startPeer runs gortsplib's server on 127.0.0.1 with an ephemeral TCP port
// and an ephemeral even/odd UDP pair bound before it starts.
func startPeer(t *testing.T) *peerServer {
	t.Helper()
	rtpC, rtcpC, err := listenPair(net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	h := &peerServer{}
	var tcpL net.Listener
	h.srv = &gortsplib.Server{
		Handler:        h,
		RTSPAddress:    "127.0.0.1:0",
		UDPRTPAddress:  rtpC.LocalAddr().String(),
		UDPRTCPAddress: rtcpC.LocalAddr().String(),
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			tcpL = l
			return l, err
		},
		ListenPacket: func(network, address string) (net.PacketConn, error) {
			if address == rtpC.LocalAddr().String() {
				return rtpC, nil
			}
			return rtcpC, nil
		},
	}
	if err := h.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.srv.Close)
	h.addr = tcpL.Addr().String()
	return h
}

// rtpPacket is a minimal RTP packet with seq and a payload of n bytes.
func rtpPacket(pt uint8, seq uint16, ts uint32, n int) []byte {
	b := make([]byte, 12+n)
	b[0] = 0x80
	b[1] = pt
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], 0x1234)
	b[12] = 1 // a non-IDR slice NAL header, so H.264 decoders in the path accept it
	return b
}

// seqChecker records what a reader received on one track.
type seqChecker struct {
	mu      sync.Mutex
	n       int
	bytes   int
	last    uint16
	ooo     int
	started bool
}

func (s *seqChecker) add(pkt []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := binary.BigEndian.Uint16(pkt[2:])
	if s.started && seq != s.last+1 {
		s.ooo++
	}
	s.started, s.last = true, seq
	s.n++
	s.bytes += len(pkt)
}

func (s *seqChecker) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func TestPublishAndPlay(t *testing.T) {
	for _, tc := range []struct{ pub, play Transport }{{TCP, TCP}, {UDP, UDP}, {TCP, UDP}, {UDP, TCP}} {
		t.Run("publish "+tc.pub.String()+" play "+tc.play.String(), func(t *testing.T) {
			peer := startPeer(t)
			url := "rtsp://" + peer.addr + "/live/s"
			ctx := context.Background()

			pub, err := Dial(ctx, url, Options{Transport: tc.pub, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			desc, err := pub.Announce([]byte(testSDP))
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.SetupAll(desc); err != nil {
				t.Fatal(err)
			}
			if err := pub.Record(); err != nil {
				t.Fatal(err)
			}

			rd, err := Dial(ctx, url, Options{Transport: tc.play, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			if _, err := rd.Options(); err != nil {
				t.Fatal(err)
			}
			rdesc, raw, err := rd.Describe()
			if err != nil {
				t.Fatal(err)
			}
			if len(rdesc.Medias) != 2 || len(raw) == 0 {
				t.Fatalf("DESCRIBE gave %d medias (%d SDP bytes); want 2", len(rdesc.Medias), len(raw))
			}
			if err := rd.SetupAll(rdesc); err != nil {
				t.Fatal(err)
			}
			var tracks [2]seqChecker
			var rtcp atomic.Int32
			rd.OnPacket = func(tr int, pkt []byte) { tracks[tr].add(pkt) }
			rd.OnRTCP = func(int, []byte) { rtcp.Add(1) }
			if _, err := rd.Play(); err != nil {
				t.Fatal(err)
			}

			const n = 300
			for i := range n {
				if err := pub.WritePacket(0, rtpPacket(96, uint16(1000+i), uint32(i*3600), 1000)); err != nil {
					t.Fatal(err)
				}
				if i%3 == 0 {
					if err := pub.WritePacket(1, rtpPacket(97, uint16(i/3), uint32(i*1024), 200)); err != nil {
						t.Fatal(err)
					}
				}
				if i%20 == 0 { // pace a little so UDP buffers never overflow on a busy machine
					time.Sleep(time.Millisecond)
				}
			}
			testutil.WaitFor(t, 5*time.Second, "every video and audio packet", func() bool {
				return tracks[0].count() == n && tracks[1].count() == n/3
			})
			if tracks[0].ooo != 0 || tracks[1].ooo != 0 {
				t.Fatalf("out-of-order or lost packets: video %d, audio %d", tracks[0].ooo, tracks[1].ooo)
			}
			if tracks[0].bytes != n*1012 {
				t.Fatalf("video bytes %d; want %d", tracks[0].bytes, n*1012)
			}

			// The publisher leaving ends the reader with io.EOF.
			pub.Close()
			done := make(chan error, 1)
			go func() { done <- rd.Wait() }()
			select {
			case err := <-done:
				if !errors.Is(err, io.EOF) {
					t.Fatalf("reader ended with %v; want io.EOF", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("reader did not end within 5 s of the publisher leaving")
			}
		})
	}
}

func TestCloseEndsWaitWithErrClosed(t *testing.T) {
	peer := startPeer(t)
	url := "rtsp://" + peer.addr + "/live/s"
	pub, err := Dial(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	desc, err := pub.Announce([]byte(testSDP))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.SetupAll(desc); err != nil {
		t.Fatal(err)
	}
	if err := pub.Record(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rd, err := Dial(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := rd.Describe()
	if err != nil {
		t.Fatal(err)
	}
	if err := rd.SetupAll(d); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Play(); err != nil {
		t.Fatal(err)
	}
	cancel() // cancelling Dial's context closes the client
	if err := rd.Wait(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after cancel = %v; want ErrClosed", err)
	}
}

func TestDescribeUnknownStreamIs404(t *testing.T) {
	peer := startPeer(t)
	c, err := Dial(context.Background(), "rtsp://"+peer.addr+"/nobody/here", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = c.Describe()
	var se *StatusError
	if !errors.As(err, &se) || se.Code != base.StatusNotFound || se.Method != base.Describe {
		t.Fatalf("Describe = %v; want a *StatusError 404 for DESCRIBE", err)
	}
}

// fakeServer answers each request with reply(req); a test-sized RTSP peer
// for what gortsplib's server does not do (challenges we choose, headers).
func fakeServer(t *testing.T, reply func(req *base.Request) *base.Response) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					var req base.Request
					if err := req.Unmarshal(br); err != nil {
						return
					}
					res := reply(&req)
					if res.Header == nil {
						res.Header = base.Header{}
					}
					res.Header["CSeq"] = req.Header["CSeq"]
					b, _ := res.Marshal()
					conn.Write(b)
				}
			}()
		}
	}()
	return l.Addr().String()
}

func TestDigestChallengeIsAnswered(t *testing.T) {
	const realm, nonce = "berth", "0123456789abcdef"
	var authed, challenged atomic.Int32
	addr := fakeServer(t, func(req *base.Request) *base.Response {
		if req.Header["Authorization"] == nil {
			challenged.Add(1)
			return &base.Response{StatusCode: base.StatusUnauthorized, Header: base.Header{
				"WWW-Authenticate": auth.GenerateWWWAuthenticate([]auth.VerifyMethod{auth.VerifyMethodDigestMD5}, realm, nonce),
			}}
		}
		if err := auth.Verify(req, "alice", "s3cret", []auth.VerifyMethod{auth.VerifyMethodDigestMD5}, realm, nonce); err != nil {
			return &base.Response{StatusCode: base.StatusUnauthorized}
		}
		authed.Add(1)
		return &base.Response{StatusCode: base.StatusOK, Header: base.Header{
			"Content-Type": base.HeaderValue{"application/sdp"},
			"Server":       base.HeaderValue{"fake/1.0"},
		}, Body: []byte(testSDP)}
	})

	c, err := Dial(context.Background(), "rtsp://alice:s3cret@"+addr+"/live/s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe()
	if err != nil {
		t.Fatalf("Describe with a Digest challenge: %v", err)
	}
	if len(desc.Medias) != 2 || challenged.Load() != 1 || authed.Load() != 1 {
		t.Fatalf("medias %d, challenges %d, authorized %d; want 2, 1, 1", len(desc.Medias), challenged.Load(), authed.Load())
	}
	if got := c.ServerHeader(); got != "fake/1.0" {
		t.Fatalf("ServerHeader = %q; want fake/1.0", got)
	}
	// Later requests carry credentials without a new challenge.
	if _, err := c.Options(); err != nil {
		t.Fatal(err)
	}
	if challenged.Load() != 1 {
		t.Fatalf("challenged %d times; want once", challenged.Load())
	}
}

func TestWrongPasswordIs401(t *testing.T) {
	addr := fakeServer(t, func(req *base.Request) *base.Response {
		if err := auth.Verify(req, "alice", "right", nil, "berth", "n1"); err != nil {
			return &base.Response{StatusCode: base.StatusUnauthorized, Header: base.Header{
				"WWW-Authenticate": auth.GenerateWWWAuthenticate(nil, "berth", "n1"),
			}}
		}
		return &base.Response{StatusCode: base.StatusOK}
	})
	c, err := Dial(context.Background(), "rtsp://alice:wrong@"+addr+"/live/s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = c.Describe()
	var se *StatusError
	if !errors.As(err, &se) || se.Code != base.StatusUnauthorized {
		t.Fatalf("Describe with a wrong password = %v; want StatusError 401", err)
	}
}

func TestUnansweredRequestTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	c, err := Dial(context.Background(), "rtsp://"+l.Addr().String()+"/x", Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Options()
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("Options to a silent server = %v after %s; want a timeout error soon", err, time.Since(start))
	}
}

func TestReceiverReportLayout(t *testing.T) {
	rr := receiverReport([4]byte{1, 2, 3, 4}, 0xdeadbeef, 70000)
	if rr[0] != 0x81 || rr[1] != 201 || binary.BigEndian.Uint16(rr[2:]) != 7 {
		t.Fatalf("header %x", rr[:4])
	}
	if binary.BigEndian.Uint32(rr[8:]) != 0xdeadbeef || binary.BigEndian.Uint32(rr[16:]) != 70000 {
		t.Fatalf("report block %x", rr[8:])
	}
	_ = strconv.Itoa
}
