package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/berthmedia/berth/internal/rtspclient"
)

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {5, 16 * time.Second}, {6, 20 * time.Second}, {1000, 20 * time.Second}} {
		if got := Backoff(c.n, time.Second, 20*time.Second); got != c.want {
			t.Errorf("Backoff(%d) = %s, want %s", c.n, got, c.want)
		}
	}
}

func TestRedactHidesOnlyThePassword(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://admin:secret@10.0.0.5:554/s1":                   "rtsp://admin:***@10.0.0.5:554/s1",
		"rtsp://admin@10.0.0.5/s1":                              "rtsp://admin@10.0.0.5/s1",
		"rtmp://host/live/a?token=x":                            "rtmp://host/live/a?token=x",
		"not a url\x7f":                                         "not a url\x7f",
		"srt://h:9000?streamid=#!::r=a/b&passphrase=0123456789": "srt://h:9000?streamid=#!::r=a/b&passphrase=***",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateRefusesWhatCannotBePulled(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		want error
	}{
		{Spec{Path: "live/a", URL: "rtsp://h/s"}, nil},
		{Spec{Path: "live/a", URL: "rtmp://h/app/s"}, nil},
		{Spec{Path: "live/a", URL: "http://h/app/s.live.flv"}, nil},
		{Spec{Path: "live/a", URL: "https://h/app/s/hls.m3u8"}, nil},
		{Spec{Path: "live", URL: "rtsp://h/s"}, ErrBadURL},
		{Spec{Path: "live/a", URL: "http://h/app/s.mp4"}, ErrBadURL},
		{Spec{Path: "live/a", URL: "srt://h:9000?streamid=#!::r=live/a,m=request"}, nil},
		{Spec{Path: "live/a", URL: "srt://h?streamid=live/a"}, ErrBadURL},
		{Spec{Path: "live/a", URL: "rtsps://h/s"}, nil},
		{Spec{Path: "live/a", URL: "rtsps://h/s", Transport: UDP}, ErrBadRTPType},
		{Spec{Path: "live/a", URL: "rtsp://h/s", Transport: Multicast}, nil},
		{Spec{Path: "live/a", URL: "rtsps://h/s", Transport: Multicast}, ErrBadRTPType},
		{Spec{Path: "live/a", URL: "rtsp://h/s", Transport: 7}, ErrBadRTPType},
	} {
		err := validate(&c.spec)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("validate(%+v) = %v, want %v", c.spec, err, c.want)
		}
	}
}

func TestRTMPTargetSplitsAppAndStream(t *testing.T) {
	addr, app, tc, name, err := rtmpTarget("rtmp://10.0.0.9/live/cam/1?token=a")
	if err != nil || addr != "10.0.0.9:1935" || app != "live" || tc != "rtmp://10.0.0.9/live" || name != "cam/1?token=a" {
		t.Errorf("rtmpTarget: %q %q %q %q %v", addr, app, tc, name, err)
	}
	if _, _, _, _, err := rtmpTarget("rtmp://10.0.0.9/live"); !errors.Is(err, ErrBadURL) {
		t.Errorf("rtmpTarget without a stream: %v", err)
	}
}

func TestExplainNamesTheCause(t *testing.T) {
	const cam = "rtsp://admin:pw@10.0.0.5/s1"
	for _, c := range []struct {
		err  error
		want string
	}{
		{&rtspclient.StatusError{Method: base.Describe, Code: base.StatusUnauthorized}, "401: the camera refused user admin"},
		{&rtspclient.StatusError{Method: base.Describe, Code: base.StatusNotFound}, "404: the source has no stream"},
		{&rtspclient.StatusError{Method: base.Setup, Code: base.StatusUnsupportedTransport}, "try the other rtp_type"},
		{fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: syscall.EHOSTUNREACH}), "no route to host"},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "connection refused"},
		{fmt.Errorf("read: %w", io.EOF), "the source closed the connection"},
		{fmt.Errorf("%w: no audio or video", errNoTracks), "SDP has no playable track"},
		{&net.DNSError{Name: "cam.invalid", Err: "no such host"}, "cam.invalid does not resolve"},
		{context.DeadlineExceeded, "timed out"},
		{&httpStatusError{Code: 404}, "404: the source has no stream"},
		{errSourceBye, "RTCP BYE"},
		{fmt.Errorf("%w: %w", errMulticastRefused, &rtspclient.StatusError{Method: base.Setup, Code: base.StatusUnsupportedTransport}),
			"461: the camera refuses multicast (it has none, or it is off in its settings); pull over TCP (rtp_type=0)"},
		{fmt.Errorf("rtsp SETUP x: %w: it answered unicast", rtspclient.ErrNotMulticast), "not usable: rtsp SETUP x"},
	} {
		if got := Explain(c.err, cam); !strings.Contains(got, c.want) {
			t.Errorf("Explain(%v) = %q, want it to say %q", c.err, got, c.want)
		}
	}
	if got := Explain(&rtspclient.StatusError{Code: base.StatusUnauthorized}, "rtsp://10.0.0.5/s1"); !strings.Contains(got, "put user:password@") {
		t.Errorf("a 401 without credentials: %q", got)
	}
}

func TestInfoSummary(t *testing.T) {
	for _, c := range []struct {
		in   Info
		want string
	}{
		{Info{State: StateLive}, "live"},
		{Info{State: StateRetrying, Retries: 3, Cause: "no route to host"}, "retrying 3 (no route to host)"},
		{Info{State: StateStopped, Cause: "deleted"}, "stopped: deleted"},
		{Info{State: StateIdle}, "idle"},
	} {
		if got := c.in.Summary(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.in, got, c.want)
		}
	}
}
