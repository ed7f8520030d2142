package rtspclient

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/berthmedia/berth/internal/testutil"
)

// camSDP is the scripted camera's description: H.264 and PCMA.
const camSDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n" +
	"a=rtpmap:96 H264/90000\r\na=control:trackID=0\r\nm=audio 0 RTP/AVP 8\r\na=control:trackID=1\r\n"

// multicastCamera is a scripted camera that answers SETUP with a multicast
// group and ports, the audio's 2 above the video's (it sends nothing
// itself; the test does, as it needs). With samePorts every media gets the
// same ports.
func multicastCamera(t *testing.T, group string, port int, samePorts ...bool) string {
	return fakeServer(t, func(req *base.Request) *base.Response {
		switch req.Method {
		case base.Describe:
			return &base.Response{StatusCode: base.StatusOK, Header: base.Header{"Content-Type": {"application/sdp"}}, Body: []byte(camSDP)}
		case base.Setup:
			if !strings.Contains(req.Header["Transport"][0], "multicast") || strings.Contains(req.Header["Transport"][0], "client_port") {
				return &base.Response{StatusCode: base.StatusUnsupportedTransport}
			}
			p := port
			if strings.HasSuffix(req.URL.String(), "trackID=1") && len(samePorts) == 0 {
				p += 2
			}
			tr := "RTP/AVP;multicast;destination=" + group + ";ttl=1;port=" + strconv.Itoa(p) + "-" + strconv.Itoa(p+1)
			return &base.Response{StatusCode: base.StatusOK, Header: base.Header{"Session": {"cam1;timeout=60"}, "Transport": {tr}}}
		}
		return &base.Response{StatusCode: base.StatusOK}
	})
}

func playMulticast(t *testing.T, addr string, readTimeout time.Duration, onRTP, onRTCP func(int, []byte)) *Client {
	t.Helper()
	c, err := Dial(context.Background(), "rtsp://"+addr+"/cam", Options{Transport: Multicast, Timeout: 5 * time.Second, ReadTimeout: readTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	desc, _, err := c.Describe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc); err != nil {
		t.Fatal(err)
	}
	c.OnPacket, c.OnRTCP = onRTP, onRTCP
	if _, err := c.Play(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMulticastSilenceNamesTheGroupAndTheFix: a camera that answers SETUP
// with a group nobody sends to ends the session after ReadTimeout with an
// error naming the group, ports and interface, the likely causes and
// rtp_type=0. Keep-alive answers on the connection do not count as media.
func TestMulticastSilenceNamesTheGroupAndTheFix(t *testing.T) {
	if !testutil.InNetNS(t) {
		return
	}
	c := playMulticast(t, multicastCamera(t, "239.255.7.7", 47000), time.Second, nil, nil)
	if got := c.Multicast(); len(got) != 2 || got[0] != "239.255.7.7 ports 47000-47001 on lo" || got[1] != "239.255.7.7 ports 47002-47003 on lo" {
		t.Errorf("Multicast() = %q", got)
	}
	err := c.Wait()
	for _, want := range []string{"no multicast packet arrived on group 239.255.7.7 port 47000-47001, 239.255.7.7 port 47002-47003 (joined on lo)",
		"no multicast route", "IGMP snooping", "firewall", "rtp_type=0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Wait = %v; want it to say %q", err, want)
		}
	}
}

// TestMulticastReadsOnlyTheCamera: on the group, a stranger's RTP and BYE
// (another address) and another receiver's report (the camera's address,
// another SSRC) are dropped; the camera's RTP and sender reports pass.
func TestMulticastReadsOnlyTheCamera(t *testing.T) {
	if !testutil.InNetNS(t) {
		return
	}
	testutil.IP(t, "route", "add", "224.0.0.0/4", "dev", "lo")
	const group, port = "239.255.7.8", 47010
	var camRTP, camSR, foreign atomic.Int32
	c := playMulticast(t, multicastCamera(t, group, port), 5*time.Second,
		func(_ int, pkt []byte) {
			if binary.BigEndian.Uint32(pkt[8:]) == 0xCA {
				camRTP.Add(1)
			} else {
				foreign.Add(1)
			}
		},
		func(_ int, pkt []byte) {
			if pkt[1] == 200 && binary.BigEndian.Uint32(pkt[4:]) == 0xCA {
				camSR.Add(1)
			} else {
				foreign.Add(1)
			}
		})
	cam := udpFrom(t, "127.0.0.1")
	stranger := udpFrom(t, "127.0.0.2")
	rtpTo := &net.UDPAddr{IP: net.ParseIP(group), Port: port}
	rtcpTo := &net.UDPAddr{IP: net.ParseIP(group), Port: port + 1}
	rtcp := func(pt byte, ssrc uint32) []byte {
		b := []byte{0x80, pt, 0, 1, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[4:], ssrc)
		return b
	}
	rtpOf := func(seq uint16, ssrc uint32) []byte {
		b := rtpPacket(96, seq, uint32(seq)*3000, 20)
		binary.BigEndian.PutUint32(b[8:], ssrc)
		return b
	}
	seq := uint16(0)
	testutil.WaitFor(t, 5*time.Second, "the camera's RTP and sender report", func() bool {
		seq++
		stranger.WriteTo(rtpOf(seq, 0xBAD), rtpTo)
		stranger.WriteTo(rtcp(203, 0xBAD), rtcpTo)
		cam.WriteTo(rtcp(201, 0xEE), rtcpTo) // a receiver on the camera's host
		cam.WriteTo(rtpOf(seq, 0xCA), rtpTo)
		cam.WriteTo(rtcp(200, 0xCA), rtcpTo)
		return camRTP.Load() >= 5 && camSR.Load() >= 1
	})
	if n := foreign.Load(); n != 0 {
		t.Errorf("%d packets of others on the group reached the callbacks", n)
	}
	if c.Err() != nil {
		t.Errorf("the session ended: %v", c.Err())
	}
}

func udpFrom(t *testing.T, ip string) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// TestMulticastPortHeldWithoutReuseSaysWhy: a program on this host that
// holds the group's port without SO_REUSEADDR (gst-rtsp-server does) makes
// the bind fail with the cause and the fix.
func TestMulticastPortHeldWithoutReuseSaysWhy(t *testing.T) {
	// On the wildcard, as gst-rtsp-server binds (Go sets SO_REUSEADDR
	// itself only on a multicast address).
	holder, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	port := holder.LocalAddr().(*net.UDPAddr).Port
	g, err := listenGroup(netip.MustParseAddr("239.255.7.9"), port, nil, 1)
	if err == nil {
		g.leave()
		t.Fatal("bound a port held without SO_REUSEADDR")
	}
	if !strings.Contains(err.Error(), "holds the port without SO_REUSEADDR") || !strings.Contains(err.Error(), "rtp_type=0") {
		t.Errorf("err = %v; want the cause and the fix", err)
	}
}

// TestMulticastMediasOnOnePortAreRefused: a camera that answers every
// media's SETUP with the same group and port is refused at SETUP: the
// packets of its medias could not be told apart.
func TestMulticastMediasOnOnePortAreRefused(t *testing.T) {
	if !testutil.InNetNS(t) {
		return
	}
	c, err := Dial(context.Background(), "rtsp://"+multicastCamera(t, "239.255.7.10", 47020, true)+"/cam", Options{Transport: Multicast, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe()
	if err != nil {
		t.Fatal(err)
	}
	err = c.SetupAll(desc)
	if !errors.Is(err, ErrNotMulticast) || !strings.Contains(err.Error(), "media 1 on the group and port of media 0") {
		t.Fatalf("SetupAll = %v; want ErrNotMulticast naming both medias", err)
	}
}
