package server_test

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// gstMulticastCamera is an RTSP camera that is not Berth and sends only
// multicast: gst-rtsp-server with H.264 and G.711 A-law, each on its own
// ports of one group (an address pool, TTL 1), at /mcast (UDP_MCAST only:
// a unicast SETUP gets 461), and H.264 at /tcp serving
// only TCP (a multicast SETUP gets 461). It prints its port.
const gstMulticastCamera = `import sys, gi
gi.require_version('Gst', '1.0'); gi.require_version('GstRtsp', '1.0'); gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtsp, GstRtspServer, GLib
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address('0.0.0.0')
server.set_service('0')
launch = ('( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=25/1 ! '
          'x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! rtph264pay name=pay0 pt=96 config-interval=-1 )')
mcast = GstRtspServer.RTSPMediaFactory()
mcast.set_launch(launch[:-1] + 'audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8 )')
mcast.set_shared(True)
pool = GstRtspServer.RTSPAddressPool()
pool.add_range(sys.argv[1], sys.argv[1], int(sys.argv[2]), int(sys.argv[2]) + 9, 1)
mcast.set_address_pool(pool)
mcast.set_protocols(GstRtsp.RTSPLowerTrans.UDP_MCAST)
server.get_mount_points().add_factory('/mcast', mcast)
tcp = GstRtspServer.RTSPMediaFactory()
tcp.set_launch(launch)
tcp.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
server.get_mount_points().add_factory('/tcp', tcp)
server.attach(None)
print(server.get_bound_port(), flush=True)
GLib.MainLoop().run()
`

// The camera's pool, and the link between its network namespace and the
// test's: nothing else lives in either.
const (
	mcastGroup = "239.255.42.7"
	mcastPorts = 46000
	camIP      = "10.99.0.1"
	berthIP    = "10.99.0.2"
)

// startGstMulticastCamera runs gstMulticastCamera in a network namespace of
// its own, as a camera on another host: a veth pair links it (camIP, with
// the multicast route on its end) to the test's namespace (berthIP, no
// multicast route, so Berth must join on the interface that reaches the
// camera). It returns the camera's RTSP address and its process id (for
// camRoute). On one host the camera
// could not share its multicast ports with Berth: gst-rtsp-server binds
// them without SO_REUSEADDR.
func startGstMulticastCamera(t *testing.T) (addr, pid string) {
	t.Helper()
	cmd, p := startGstScript(t, gstMulticastCamera, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}, mcastGroup, strconv.Itoa(mcastPorts))
	pid = strconv.Itoa(cmd.Process.Pid)
	testutil.IP(t, "link", "add", "berth0", "type", "veth", "peer", "name", "cam0", "netns", pid)
	testutil.IP(t, "addr", "add", berthIP+"/24", "dev", "berth0")
	testutil.IP(t, "link", "set", "berth0", "up")
	in := "nsenter -t " + pid + " -n ip "
	camSide := in + "addr add " + camIP + "/24 dev cam0 && " + in + "link set cam0 up && " + in + "link set lo up && " +
		in + "route add 224.0.0.0/4 dev cam0"
	if out, err := exec.Command("sh", "-c", camSide).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", camSide, err, out)
	}
	return net.JoinHostPort(camIP, p), pid
}

// camRoute points the camera's multicast route at dev: "lo" keeps its
// packets at home (as a missing route or a filtering switch would), "cam0"
// sends them to Berth again. The RTSP connection is untouched.
func camRoute(t *testing.T, pid, dev string) {
	if out, err := exec.Command("nsenter", "-t", pid, "-n", "ip", "route", "replace", "224.0.0.0/4", "dev", dev).CombinedOutput(); err != nil {
		t.Errorf("ip route replace 224.0.0.0/4 dev %s in the camera's namespace: %v: %s", dev, err, out)
	}
}

// TestPullFromMulticastCamera: a camera that sends only multicast
// (gst-rtsp-server, group 239.255.42.7, TTL 1) is pulled with rtp_type=2:
// Berth joins the group the camera names on the interface that routes to
// it, the stream plays back over RTSP and RTMP (ffprobe reads H.264 with
// frames, and G.711 over RTSP), a second pull of the camera shares the group's ports, receiver
// reports reach the group's RTCP port, and deleting a pull leaves the group. The same camera's TCP-only path answers a
// multicast SETUP with 461, and the cause says to pull over TCP.
func TestPullFromMulticastCamera(t *testing.T) {
	if !testutil.InNetNS(t) {
		return
	}
	testmedia.RequireFFmpeg(t)
	cam, _ := startGstMulticastCamera(t)
	srv, logs := startPuller(t, nil)
	key := addProxy(t, srv, "cam/mc", "rtsp://"+cam+"/mcast", "rtp_type", "2")
	waitLive(t, srv, "cam/mc")
	line := logs.WaitLine(t, "joined the camera's multicast groups", "cam/mc")
	g := regexp.QuoteMeta(mcastGroup)
	m := regexp.MustCompile(g + ` ports (\d+)-(\d+) on berth0; ` + g + ` ports \d+-\d+ on berth0"`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("the join line does not name %s twice (video and audio) and berth0, the link to the camera: %s", mcastGroup, line)
	}
	t.Logf("%s", line)
	if users := igmpUsers(t, mcastGroup); users != 4 {
		t.Errorf("/proc/net/igmp lists %d members of %s on berth0 while the pull runs; want Berth's RTP and RTCP sockets of each track", users, mcastGroup)
	}
	u := urls(srv, "cam/mc")
	if got, err := probe(u["rtsp"]); err != nil || got != "h264,pcm_alaw" {
		t.Errorf("ffprobe over RTSP: %q, %v; want h264,pcm_alaw", got, err)
	}
	for _, proto := range []string{"rtsp", "rtmp"} {
		n := videoFrames(t, u[proto])
		t.Logf("ffprobe over %s: %d H.264 frames in 2 s", proto, n)
		if n < 10 {
			t.Errorf("over %s ffprobe counted %d H.264 frames of the multicast pull; want some", proto, n)
		}
	}
	// A second pull of the same camera shares the group's ports
	// (SO_REUSEADDR): both get every packet; deleting it leaves the first
	// one playing.
	second := addProxy(t, srv, "cam/mc2", "rtsp://"+cam+"/mcast", "rtp_type", "2")
	waitLive(t, srv, "cam/mc2")
	if users := igmpUsers(t, mcastGroup); users != 8 {
		t.Errorf("/proc/net/igmp lists %d members of %s with two pulls; want 8", users, mcastGroup)
	}
	api(t, srv, "delStreamProxy", "key", second)
	testutil.WaitFor(t, 5*time.Second, "the second pull to leave the group", func() bool { return igmpUsers(t, mcastGroup) == 4 })
	first := srv.Hub.Get("cam/mc")
	was := first.FramesIn.Load()
	testutil.WaitFor(t, 5*time.Second, "the first pull to go on receiving", func() bool { return first.FramesIn.Load() > was+25 })

	rtcpPort, _ := strconv.Atoi(m[2])
	waitReceiverReport(t, mcastGroup, rtcpPort)

	api(t, srv, "delStreamProxy", "key", key)
	testutil.WaitFor(t, 5*time.Second, "the deleted pull to leave "+mcastGroup, func() bool { return igmpUsers(t, mcastGroup) == 0 })

	bad := addProxy(t, srv, "cam/refused", "rtsp://"+cam+"/tcp", "rtp_type", "2", "retry_count", "0")
	testutil.WaitFor(t, 15*time.Second, "the pull refused multicast to stop", func() bool {
		d, _ := api(t, srv, "getProxyInfo", "key", bad)["data"].(map[string]any)
		return d != nil && d["state"] == "stopped"
	})
	d, _ := api(t, srv, "getProxyInfo", "key", bad)["data"].(map[string]any)
	if cause, _ := d["cause"].(string); !strings.Contains(cause, "461: the camera refuses multicast") || !strings.Contains(cause, "rtp_type=0") {
		t.Errorf("the cause of a 461 to multicast: %q", cause)
	}
}

// igmpUsers is how many sockets of this namespace are members of group on
// berth0 (/proc/net/igmp lists each group as little-endian hex with its users).
func igmpUsers(t *testing.T, group string) int {
	b, err := os.ReadFile("/proc/net/igmp")
	if err != nil {
		t.Fatal(err)
	}
	hex := strconv.FormatUint(uint64(binary.LittleEndian.Uint32(net.ParseIP(group).To4())), 16)
	hex = strings.ToUpper(strings.Repeat("0", 8-len(hex)) + hex)
	dev := ""
	for _, ln := range strings.Split(string(b), "\n") {
		f := strings.Fields(ln)
		switch {
		case len(f) < 2:
		case !strings.HasPrefix(ln, "\t"):
			dev = f[1] // "1	lo        :     1      V3"
		case dev == "berth0" && f[0] == hex:
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// videoFrames counts the H.264 frames ffprobe reads from url in 2 s.
func videoFrames(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-read_intervals", "%+2", "-select_streams", "v",
		"-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", url).CombinedOutput()
	s := strings.TrimSpace(string(out))
	codec, n, ok := strings.Cut(s, ",")
	if err != nil || !ok || codec != "h264" {
		t.Errorf("ffprobe %s: %q, %v", url, s, err)
		return 0
	}
	frames, _ := strconv.Atoi(n)
	return frames
}

// waitReceiverReport listens on the group's RTCP port beside Berth and the
// camera (SO_REUSEADDR) until an RTCP receiver report arrives (RFC 3550
// section 6.4.2: packet type 201).
func waitReceiverReport(t *testing.T, group string, port int) {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) })
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort(group, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ifi, err := net.InterfaceByName("berth0")
	if err != nil {
		t.Fatal(err)
	}
	mreq := &syscall.IPMreqn{Ifindex: int32(ifi.Index)}
	copy(mreq.Multiaddr[:], net.ParseIP(group).To4())
	rc, _ := pc.(*net.UDPConn).SyscallConn()
	rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptIPMreqn(int(fd), syscall.IPPROTO_IP, syscall.IP_ADD_MEMBERSHIP, mreq)
	})
	if err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(12 * time.Second)) // Berth reports every 5 s
	buf := make([]byte, 1500)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Errorf("no RTCP receiver report on %s:%d: %v", group, port, err)
			return
		}
		if n >= 8 && buf[1] == 201 {
			return
		}
	}
}

// TestMulticastPullNamesSilenceAndResumes: the camera's multicast stops
// reaching Berth while its RTSP connection stays up (its route points
// elsewhere, as a missing route or a filtering switch would do): the pull
// fails after timeout_sec with "the camera stopped sending", its retries join
// again and fail with the likely causes and rtp_type=0, and when the
// packets come back the next retry is live.
func TestMulticastPullNamesSilenceAndResumes(t *testing.T) {
	if !testutil.InNetNS(t) {
		return
	}
	cam, pid := startGstMulticastCamera(t)
	srv, logs := startPuller(t, nil)
	key := addProxy(t, srv, "cam/mc", "rtsp://"+cam+"/mcast", "rtp_type", "2", "timeout_sec", "2")
	waitLive(t, srv, "cam/mc")
	camRoute(t, pid, "lo")
	t.Log(logs.WaitLine(t, "pull failed; retrying", "nothing received for 2s on multicast group "+mcastGroup, "(joined on berth0): the camera stopped sending"))
	var line string
	testutil.WaitFor(t, 15*time.Second, "a retry to fail with no multicast packet at all", func() bool {
		line = logs.Line("pull failed; retrying", "no multicast packet arrived on group "+mcastGroup, "joined on berth0",
			"no multicast route", "IGMP snooping", "firewall", "rtp_type=0")
		return line != ""
	})
	t.Log(line)
	camRoute(t, pid, "cam0")
	before := srv.Hub.Get("cam/mc")
	var frames uint64
	if before != nil {
		frames = before.FramesIn.Load()
	}
	testutil.WaitFor(t, 20*time.Second, "the pull to be live again", func() bool {
		d, _ := api(t, srv, "getProxyInfo", "key", key)["data"].(map[string]any)
		st := srv.Hub.Get("cam/mc")
		return d != nil && d["state"] == "live" && st != nil && (st != before || st.FramesIn.Load() > frames+50)
	})
}
