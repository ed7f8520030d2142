package server_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// gstRTSPServer is an RTSP server that is not Berth: gst-rtsp-server
// serving a live H.264 test pattern at /test behind Digest authentication.
// It prints its port. Each client gets a pipeline of its own (not shared):
// a shared media that fails once for a second client (503 to a UDP PLAY
// while the first pull, over TCP, holds it; seen once in CI) answers every
// later DESCRIBE with 503 until its last client leaves, so a retry could
// never recover; an own media per client makes a retry mean something.
const gstRTSPServer = `import sys, gi
gi.require_version('Gst', '1.0'); gi.require_version('GstRtsp', '1.0'); gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtsp, GstRtspServer, GLib
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service('0')
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch('( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=25/1 ! '
                   'x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! rtph264pay name=pay0 pt=96 config-interval=-1 )')
factory.set_shared(False)
auth = GstRtspServer.RTSPAuth()
auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
token = GstRtspServer.RTSPToken()
token.set_string('media.factory.role', 'user')
auth.add_digest(sys.argv[1], sys.argv[2], token)
server.set_auth(auth)
perms = GstRtspServer.RTSPPermissions()
perms.add_permission_for_role('user', 'media.factory.access', True)
perms.add_permission_for_role('user', 'media.factory.construct', True)
factory.set_permissions(perms)
server.get_mount_points().add_factory('/test', factory)
server.attach(None)
print(server.get_bound_port(), flush=True)
GLib.MainLoop().run()
`

// gstPython is Debian's python3, which python3-gi belongs to (a python3
// earlier in PATH, pyenv's say, lacks it).
const gstPython = "/usr/bin/python3"

// requireGstRTSPServer skips (CI unset) or fails (CI set) without
// gst-rtsp-server's Python bindings and x264enc.
func requireGstRTSPServer(t *testing.T) {
	t.Helper()
	check := `import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0')
from gi.repository import Gst, GstRtspServer; Gst.init(None)
assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('rtph264pay')`
	if out, err := exec.Command(gstPython, "-c", check).CombinedOutput(); err != nil {
		testutil.Missing(t, "gst-rtsp-server with x264enc is missing (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "+
			"gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly; .ci/run installs them): "+strings.TrimSpace(string(out)))
	}
}

// startGstRTSPServer runs gst-rtsp-server with one Digest user and
// returns its address.
func startGstRTSPServer(t *testing.T, user, pass string) string {
	t.Helper()
	_, port := startGstScript(t, gstRTSPServer, nil, user, pass)
	return "127.0.0.1:" + port
}

// startGstScript runs a gst-rtsp-server script (one that prints its port)
// with args and attr, and returns the process and the port; the process is
// killed at the test's end.
func startGstScript(t *testing.T, script string, attr *syscall.SysProcAttr, args ...string) (*exec.Cmd, string) {
	t.Helper()
	requireGstRTSPServer(t)
	file := filepath.Join(t.TempDir(), "rtsp_server.py")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gstPython, append([]string{file}, args...)...)
	cmd.SysProcAttr = attr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		port <- strings.TrimSpace(line)
	}()
	select {
	case p := <-port:
		if p == "" {
			t.Fatalf("gst-rtsp-server did not start: %s", stderr.String())
		}
		return cmd, p
	case <-time.After(15 * time.Second):
		t.Fatalf("gst-rtsp-server did not print its port in 15 s: %s", stderr.String())
	}
	return nil, ""
}

// TestPullFromGstRTSPServerWithDigest: an RTSP server that is not Berth
// (gst-rtsp-server, Digest only) is pulled over TCP and UDP with the URL's
// credentials; each pull plays over RTSP, RTMP, HTTP-FLV and HLS. A wrong
// password stops a pull with retry_count=0, the cause naming the user.
func TestPullFromGstRTSPServerWithDigest(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	cam := startGstRTSPServer(t, "admin", "s3cret")
	srv, logs := startPuller(t, nil)
	for _, path := range []string{"cam/tcp", "cam/udp"} {
		// One after the other, so that a slow x264enc start (two at once
		// on a loaded machine) cannot be mistaken for a failure.
		rtpType := map[string]string{"cam/tcp": "0", "cam/udp": "1"}[path]
		addProxy(t, srv, path, "rtsp://admin:s3cret@"+cam+"/test", "rtp_type", rtpType)
		waitLive(t, srv, path)
		u := urls(srv, path)
		u["hls"] = "http://" + srv.Addr("http") + "/" + path + "/hls.m3u8"
		for proto, url := range u {
			got, err := probe(url)
			if proto == "hls" && got == "h264,h264" {
				got = "h264" // ffprobe lists an HLS stream under its program too
			}
			if err != nil || got != "h264" {
				t.Errorf("%s over %s: ffprobe got %q, %v; want h264", path, proto, got, err)
			}
		}
	}
	key := addProxy(t, srv, "cam/bad", "rtsp://admin:wrong@"+cam+"/test", "retry_count", "0")
	testutil.WaitFor(t, 15*time.Second, "the pull with a wrong password to stop", func() bool {
		d, _ := api(t, srv, "getProxyInfo", "key", key)["data"].(map[string]any)
		return d != nil && d["state"] == "stopped"
	})
	d, _ := api(t, srv, "getProxyInfo", "key", key)["data"].(map[string]any)
	if cause, _ := d["cause"].(string); !strings.Contains(cause, "401: the camera refused user admin") {
		t.Errorf("the cause of a wrong password: %q", cause)
	}
	if line := logs.Line("pull stopped", "cam/bad"); strings.Contains(line, "wrong@") || !strings.Contains(line, "admin:***@") {
		t.Errorf("the log line names the password or not the user: %s", line)
	}
}
