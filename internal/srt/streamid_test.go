package srt

import (
	"errors"
	"strings"
	"testing"
)

var streamIDCases = []struct {
	name string
	in   string
	want StreamID
	err  string // substring of the error; "" = no error
}{
	{name: "access control publish", in: "#!::r=live/s,m=publish", want: StreamID{App: "live", Stream: "s", Mode: Publish}},
	{name: "access control request", in: "#!::r=live/s,m=request", want: StreamID{App: "live", Stream: "s"}},
	{name: "mode defaults to request", in: "#!::r=live/s", want: StreamID{App: "live", Stream: "s"}},
	{name: "ZLMediaKit's vhost form", in: "#!::h=__defaultVhost__,r=live/s,m=publish",
		want: StreamID{Vhost: "__defaultVhost__", App: "live", Stream: "s", Mode: Publish}},
	{name: "user and extra keys become params", in: "#!::r=live/s,m=request,u=alice,pass=pw,token=a b",
		want: StreamID{App: "live", Stream: "s", User: "alice", Pass: "pw", Params: "token=a+b"}},
	{name: "deeper path keeps its slashes", in: "#!::r=live/a/b,m=publish", want: StreamID{App: "live", Stream: "a/b", Mode: Publish}},
	{name: "key order does not matter", in: "#!::m=publish,r=/live/s/", want: StreamID{App: "live", Stream: "s", Mode: Publish}},
	{name: "plain path plays", in: "live/s", want: StreamID{App: "live", Stream: "s"}},
	{name: "plain path with query", in: "live/s?m=publish&user=bob&pass=x&k=v",
		want: StreamID{App: "live", Stream: "s", Mode: Publish, User: "bob", Pass: "x", Params: "k=v"}},
	{name: "MediaMTX publish", in: "publish:live/s", want: StreamID{App: "live", Stream: "s", Mode: Publish}},
	{name: "MediaMTX read", in: "read:live/s", want: StreamID{App: "live", Stream: "s"}},
	{name: "empty", in: "", err: "needs an app and a stream"},
	{name: "no resource", in: "#!::m=publish", err: "no r= resource"},
	{name: "stream missing", in: "#!::r=live,m=publish", err: "needs an app and a stream"},
	{name: "bidirectional", in: "#!::r=live/s,m=bidirectional", err: "m=bidirectional"},
	{name: "not key=value", in: "#!::r=live/s,publish", err: "not key=value"},
	{name: "dot dot", in: "#!::r=live/../etc,m=publish", err: "cannot hold"},
	{name: "too long", in: "#!::r=live/" + strings.Repeat("x", 600), err: "bytes"},
}

func TestParseStreamID(t *testing.T) {
	for _, c := range streamIDCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseStreamID(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrStreamID) {
					t.Fatalf("ParseStreamID(%q) = %+v, %v; want an ErrStreamID containing %q", c.in, got, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStreamID(%q): %v", c.in, err)
			}
			if got != c.want {
				t.Fatalf("ParseStreamID(%q) = %+v, want %+v", c.in, got, c.want)
			}
		})
	}
}

// FuzzParseStreamID: the stream id comes from any caller's handshake.
// Whatever it is, the parser returns without panicking, and a path it
// accepts is one the hub can hold.
func FuzzParseStreamID(f *testing.F) {
	for _, c := range streamIDCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseStreamID(in)
		if err != nil {
			return
		}
		if s.App == "" || s.Stream == "" || strings.Contains(s.Path(), "..") || strings.Contains(s.App, "/") {
			t.Fatalf("ParseStreamID(%q) accepted a bad path %q", in, s.Path())
		}
	})
}
