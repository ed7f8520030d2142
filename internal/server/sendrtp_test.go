package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/testmedia"
	"github.com/berthmedia/berth/internal/testutil"
)

// TestSendRtpToAnotherBerth is the GB28181 cascade between two Berths: A
// has an RTMP push, B opens an RTP port (openRtpServer, UDP and TCP); A's
// startSendRtp sends the stream there as PS over UDP, then over TCP, and
// ffprobe reads it from B over RTSP each time. The sender is one of A's
// readers and listed by listRtpSender; stopSendRtp ends it without the
// hook; when B closes its port, A's UDP sender stops by itself and
// on_send_rtp_stopped says so in ZLMediaKit's body.
func TestSendRtpToAnotherBerth(t *testing.T) {
	testmedia.RequireFFmpeg(t)
	hooks := newHookRecorder(t, nil)
	a, logsA := startHooked(t, hooks.url, func(c *config.Config) { c.API.Secret = "s3cret" }, "on_send_rtp_stopped")
	b, _ := start(t)
	push(t, a, testmedia.H264AAC, "rtmp://"+a.Addr("rtmp")+"/live/cam", "live/cam")

	res := api(t, b, "openRtpServer", "stream_id", "cascade", "port", "0", "tcp_mode", "1")
	if res["code"] != 0.0 {
		t.Fatalf("openRtpServer: %v", res)
	}
	port := strconv.Itoa(int(res["port"].(float64)))
	rtspB := "rtsp://" + b.Addr("rtsp") + "/rtp/cascade"
	send := []string{"vhost", "__defaultVhost__", "app", "live", "stream", "cam", "ssrc", "100000001",
		"dst_url", "127.0.0.1", "dst_port", port, "use_ps", "1"}

	for _, udp := range []string{"0", "1"} {
		res = api(t, a, "startSendRtp", append(send, "is_udp", udp)...)
		if res["code"] != 0.0 || res["local_port"] == 0.0 {
			t.Fatalf("startSendRtp is_udp=%s: %v", udp, res)
		}
		testutil.WaitFor(t, 10*time.Second, "rtp/cascade on B", func() bool {
			st := b.Hub.Get("rtp/cascade")
			return st != nil && st.FramesIn.Load() > 50
		})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=codec_name",
			"-of", "csv=p=0", rtspB).Output()
		cancel()
		if got := strings.Join(strings.Fields(string(out)), ","); err != nil || (got != "h264,aac" && got != "aac,h264") {
			t.Errorf("is_udp=%s: ffprobe %s: %q, %v; want h264 and aac", udp, rtspB, got, err)
		}
		media := list(api(t, a, "getMediaList", "schema", "rtsp", "app", "live", "stream", "cam"))
		if len(media) != 1 || media[0]["totalReaderCount"].(float64) < 1 {
			t.Errorf("is_udp=%s: getMediaList on A does not count the sender as a reader: %v", udp, media)
		}
		senders := list(api(t, a, "listRtpSender", "app", "live", "stream", "cam"))
		wantTransport := map[string]string{"1": "udp", "0": "tcp"}[udp]
		if len(senders) != 1 || senders[0]["ssrc"] != "100000001" || senders[0]["transport"] != wantTransport {
			t.Errorf("listRtpSender: %v", senders)
		}
		if udp == "0" {
			if res := api(t, a, "stopSendRtp", "vhost", "__defaultVhost__", "app", "live", "stream", "cam", "ssrc", "100000001"); res["code"] != 0.0 {
				t.Errorf("stopSendRtp: %v", res)
			}
			if res := api(t, a, "stopSendRtp", "app", "live", "stream", "cam"); res["code"] != -1.0 {
				t.Errorf("stopSendRtp with no sender left: %v, want code -1", res)
			}
			// The TCP connection closes, and B's stream ends with it.
			testutil.WaitFor(t, 10*time.Second, "B's stream to end", func() bool { return b.Hub.Get("rtp/cascade") == nil })
		}
	}
	if got := hooks.of("on_send_rtp_stopped", nil); len(got) != 0 {
		t.Errorf("stopSendRtp fired on_send_rtp_stopped: %v", got)
	}

	// Passive: A listens on a port of [rtp_proxy] port_range and sends to
	// whoever connects there, RFC 4571 framed.
	res = api(t, a, "startSendRtpPassive", "app", "live", "stream", "cam", "ssrc", "2", "pt", "97")
	lp, _ := res["local_port"].(float64)
	if res["code"] != 0.0 || lp < 31000 || lp > 31999 {
		t.Fatalf("startSendRtpPassive: %v, want a local_port in [rtp_proxy] port_range 31000-31999", res)
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(int(lp)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var frame [2 + 12 + 4]byte
	if _, err := io.ReadFull(c, frame[:]); err != nil {
		t.Fatalf("reading the passive sender: %v", err)
	}
	c.Close()
	if ssrc, pt := binary.BigEndian.Uint32(frame[10:]), frame[3]&0x7f; ssrc != 2 || pt != 97 || !bytes.Equal(frame[14:], []byte{0, 0, 1, 0xBA}) {
		t.Errorf("the passive sender's first frame: % x, want RTP of SSRC 2, PT 97 carrying a PS pack", frame)
	}
	hooks.wait(t, "on_send_rtp_stopped", map[string]any{"ssrc": "2"}) // the peer closed

	// B closes the port: its host answers A's next datagrams with ICMP
	// port unreachable, and A's UDP sender stops.
	if res := api(t, b, "closeRtpServer", "stream_id", "cascade"); res["hit"] != 1.0 {
		t.Fatalf("closeRtpServer: %v", res)
	}
	body := hooks.wait(t, "on_send_rtp_stopped", map[string]any{"app": "live", "stream": "cam", "ssrc": "100000001"})
	if body["vhost"] != "__defaultVhost__" || body["originType"] != 1.0 || body["err"] != 3.0 || !strings.Contains(body["msg"].(string), "127.0.0.1:"+port) {
		t.Errorf("on_send_rtp_stopped body: %v", body)
	}
	logsA.WaitLine(t, "level=WARN", "RTP sending stopped", "peer=127.0.0.1:"+port)
	testutil.WaitFor(t, 5*time.Second, "A's stream to have no reader", func() bool { return a.Hub.Get("live/cam").Readers() == 0 })
}

// TestSendRtpRefusals: the calls' errors in ZLMediaKit's codes, each
// saying what to fix.
func TestSendRtpRefusals(t *testing.T) {
	srv, _ := start(t)
	for _, tc := range []struct {
		call string
		kv   []string
		code float64
		msg  string
	}{
		{"startSendRtp", []string{"app", "live", "stream", "cam"}, -300, "ssrc, dst_url, dst_port, is_udp"},
		{"startSendRtp", []string{"app", "live", "stream", "none", "ssrc", "1", "dst_url", "127.0.0.1", "dst_port", "9", "is_udp", "1"}, -500, "can not find"},
		{"startSendRtp", []string{"app", "live", "stream", "cam", "ssrc", "x1", "dst_url", "127.0.0.1", "dst_port", "9", "is_udp", "1"}, -300, "decimal"},
		{"startSendRtp", []string{"app", "live", "stream", "cam", "ssrc", "1", "dst_url", "127.0.0.1", "dst_port", "0", "is_udp", "1"}, -300, "dst_port"},
		{"startSendRtp", []string{"app", "live", "stream", "cam", "ssrc", "1", "dst_url", "127.0.0.1", "dst_port", "9", "is_udp", "1", "type", "2"}, -300, "type=2"},
		{"startSendRtpPassive", []string{"app", "live", "stream", "cam"}, -300, "ssrc"},
		{"stopSendRtp", []string{"app", "live", "stream", "none"}, -500, "can not find"},
	} {
		res := api(t, srv, tc.call, tc.kv...)
		if res["code"] != tc.code || !strings.Contains(res["msg"].(string), tc.msg) {
			t.Errorf("%s %v: %v, want code %v and %q", tc.call, tc.kv, res, tc.code, tc.msg)
		}
	}
}
