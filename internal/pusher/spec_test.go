package pusher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/berthmedia/berth/internal/rtspclient"
)

func TestKeyIsZLMediaKitsAndPerDestination(t *testing.T) {
	a := Spec{Schema: "rtmp", App: "live", Stream: "cam", DstURL: "rtmp://cdn/live/cam"}
	// echo -n rtmp://cdn/live/cam | md5sum
	if got, want := a.Key(), "rtmp/__defaultVhost__/live/cam/59c3cdb47bf3a5a8b6194b9e20f974a7"; got != want {
		t.Errorf("key %q, want %q", got, want)
	}
	if a.Key() != a.Key() {
		t.Error("key is not stable")
	}
	b := a
	b.DstURL = "rtmp://cdn2/live/cam"
	if a.Key() == b.Key() {
		t.Error("two destinations of one stream share a key")
	}
	c := a
	c.Vhost = "v1"
	if !strings.HasPrefix(c.Key(), "rtmp/v1/live/cam/") {
		t.Errorf("vhost not in key: %q", c.Key())
	}
}

// validateCases are the table of Validate and the seeds of FuzzValidate.
var validateCases = []struct {
	name string
	spec Spec
	bad  string // "" = valid; else a word the message must hold
}{
	{"rtsp tcp", Spec{Schema: "rtsp", App: "live", Stream: "s", DstURL: "rtsp://h:554/live/s"}, ""},
	{"rtsp udp", Spec{Schema: "rtsp", App: "live", Stream: "s", DstURL: "rtsp://u:p@h/x", RTPType: 1}, ""},
	{"rtmp", Spec{Schema: "rtmp", App: "live", Stream: "s", DstURL: "rtmp://h/live/s?token=1", Retries: 3}, ""},
	{"rtmp deep name", Spec{Schema: "rtmp", App: "live", Stream: "s", DstURL: "rtmp://h:1936/app/a/b"}, ""},
	{"srt", Spec{Schema: "srt", App: "live", Stream: "s", DstURL: "srt://h:9000?streamid=#!::r=live/s,m=publish&latency=200000"}, ""},
	{"srt no port", Spec{Schema: "srt", App: "live", Stream: "s", DstURL: "srt://h?streamid=live/s"}, "port"},
	{"srt short passphrase", Spec{Schema: "srt", App: "live", Stream: "s", DstURL: "srt://h:1?passphrase=abc"}, "10 to 79"},
	{"bad schema", Spec{Schema: "webrtc", App: "live", Stream: "s", DstURL: "webrtc://h:1/x"}, "schema"},
	{"scheme mismatch", Spec{Schema: "rtsp", App: "live", Stream: "s", DstURL: "rtmp://h/live/s"}, "rtsp://"},
	{"tls", Spec{Schema: "rtmp", App: "live", Stream: "s", DstURL: "rtmps://h/live/s"}, "not supported"},
	{"no host", Spec{Schema: "rtsp", App: "live", Stream: "s", DstURL: "rtsp:///x"}, "host"},
	{"rtmp no stream", Spec{Schema: "rtmp", App: "live", Stream: "s", DstURL: "rtmp://h/live"}, "app and a stream"},
	{"rtmp trailing slash", Spec{Schema: "rtmp", App: "live", Stream: "s", DstURL: "rtmp://h/live/"}, "app and a stream"},
	{"no app", Spec{Schema: "rtsp", Stream: "s", DstURL: "rtsp://h/x"}, "app"},
	{"slash in app", Spec{Schema: "rtsp", App: "a/b", Stream: "s", DstURL: "rtsp://h/x"}, "app"},
	{"multicast", Spec{Schema: "rtsp", App: "live", Stream: "s", DstURL: "rtsp://h/x", RTPType: 2}, "rtp_type"},
	{"retries", Spec{Schema: "rtsp", App: "live", Stream: "s", DstURL: "rtsp://h/x", Retries: -2}, "retry_count"},
	{"unparsable", Spec{Schema: "rtsp", App: "live", Stream: "s", DstURL: "rtsp://h:port/x"}, "does not parse"},
}

func TestValidate(t *testing.T) {
	for _, tc := range validateCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			err := s.Validate()
			switch {
			case tc.bad == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.bad == "" && s.Timeout != 10*time.Second:
				t.Errorf("default timeout %v, want 10s", s.Timeout)
			case tc.bad != "" && (err == nil || !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), tc.bad)):
				t.Errorf("got %v, want ErrBadSpec naming %q", err, tc.bad)
			}
		})
	}
}

// FuzzValidate: whatever an API caller sends, Validate and the URL split
// never panic, and a valid RTMP URL always splits into app and name.
func FuzzValidate(f *testing.F) {
	for _, tc := range validateCases {
		f.Add(tc.spec.Schema, tc.spec.App, tc.spec.Stream, tc.spec.DstURL, tc.spec.RTPType)
	}
	f.Fuzz(func(t *testing.T, schema, app, stream, dst string, rtpType int) {
		s := Spec{Schema: schema, App: app, Stream: stream, DstURL: dst, RTPType: rtpType}
		if s.Validate() == nil {
			_ = s.Key()
			if s.Schema != "rtsp" && s.Schema != "rtmp" && s.Schema != "srt" {
				t.Fatalf("schema %q accepted", s.Schema)
			}
		}
		_ = Redact(dst)
	})
}

func TestSplitRTMP(t *testing.T) {
	for _, tc := range []struct{ url, app, name string }{
		{"rtmp://h/live/cam", "live", "cam"},
		{"rtmp://h:1935/live/cam?k=v&a=b", "live", "cam?k=v&a=b"},
		{"rtmp://h/app/a/b", "app", "a/b"},
	} {
		s := Spec{Schema: "rtmp", App: "a", Stream: "s", DstURL: tc.url}
		if err := s.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		u, _ := url.Parse(tc.url)
		app, name, err := splitRTMP(u)
		if err != nil || app != tc.app || name != tc.name {
			t.Errorf("%s: %q %q %v, want %q %q", tc.url, app, name, err, tc.app, tc.name)
		}
	}
}

func TestBackoffDoublesToACeiling(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := Backoff(1000); got != 30*time.Second {
		t.Errorf("Backoff(1000) = %v", got)
	}
}

func TestCauseInPlainWords(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "connection refused"},
		{fmt.Errorf("rtsp x: reading: %w", syscall.ECONNRESET), "reset the connection"},
		{fmt.Errorf("rtsp x: the server closed the connection: %w", io.EOF), "closed the connection"},
		{&net.DNSError{Name: "nohost.invalid", Err: "no such host"}, "does not resolve (nohost.invalid)"},
		{fmt.Errorf("x: %w", os.ErrDeadlineExceeded), "did not answer in time"},
		{&net.OpError{Op: "write", Net: "tcp", Err: os.ErrDeadlineExceeded}, "stopped taking data"},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, "did not answer in time"},
		{context.DeadlineExceeded, "did not answer in time"},
		{&rtspclient.StatusError{Method: base.Announce, Code: 406, Reason: "Not Acceptable"}, "rtsp target refused ANNOUNCE: 406 Not Acceptable"},
		{&RefusedError{Proto: "rtmp", Step: "publish", Reason: "NetStream.Publish.BadName: already published"}, "rtmp target refused publish: NetStream.Publish.BadName: already published"},
		{errors.New("something else"), "something else"},
	} {
		if got := Cause(tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("Cause(%v) = %q, want it to say %q", tc.err, got, tc.want)
		}
	}
	if Cause(nil) != "" {
		t.Error("Cause(nil) is not empty")
	}
}

func TestStatusWords(t *testing.T) {
	for _, tc := range []struct {
		in   Info
		want string
	}{
		{Info{State: StateLive}, "live"},
		{Info{State: StateWaiting}, "waiting for the stream"},
		{Info{State: StateConnecting}, "connecting"},
		{Info{State: StateRetrying, Attempt: 3, Cause: "connection refused"}, "retrying 3: connection refused"},
		{Info{State: StateStopped, Cause: "connection refused"}, "stopped: connection refused"},
		{Info{State: StateStopped}, "stopped"},
	} {
		if got := tc.in.Status(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactHidesThePassword(t *testing.T) {
	if got := Redact("rtmp://u:secret@h/live/s"); strings.Contains(got, "secret") || !strings.Contains(got, "u:") {
		t.Errorf("Redact: %q", got)
	}
	if got := Redact("rtsp://h/x"); got != "rtsp://h/x" {
		t.Errorf("Redact changed a URL without credentials: %q", got)
	}
}
