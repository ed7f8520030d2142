package srtclient

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	gosrt "github.com/datarhei/gosrt"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		raw  string
		want Options
		err  string
	}{
		{raw: "srt://127.0.0.1:9000?streamid=#!::r=live/s,m=request",
			want: Options{Addr: "127.0.0.1:9000", StreamID: "#!::r=live/s,m=request"}},
		{raw: "SRT://cam.local:9000/?streamid=%23!%3A%3Ar%3Dlive%2Fs%2Cm%3Dpublish&latency=200000&passphrase=0123456789&pbkeylen=32",
			want: Options{Addr: "cam.local:9000", StreamID: "#!::r=live/s,m=publish", Latency: 200 * time.Millisecond,
				Passphrase: "0123456789", PBKeyLen: 32}},
		{raw: "srt://[::1]:9000?streamid=live/s&mode=caller", want: Options{Addr: "[::1]:9000", StreamID: "live/s"}},
		{raw: "srt://h:9000", want: Options{Addr: "h:9000"}},
		{raw: "srt://h:9000/live?streamid=a/b", want: Options{Addr: "h:9000", StreamID: "a/b"}},
		{raw: "rtmp://h:9000", err: "does not start with srt://"},
		{raw: "srt://h?streamid=x", err: "needs a host and a port"},
		{raw: "srt://h:0", err: "not a port number"},
		{raw: "srt://h:9000?passphrase=short", err: "10 to 79"},
		{raw: "srt://h:9000?pbkeylen=8", err: "16, 24 or 32"},
		{raw: "srt://h:9000?latency=1s", err: "microseconds"},
		{raw: "srt://h:9000?mode=listener", err: "caller"},
	}
	for _, c := range cases {
		t.Run(c.raw, func(t *testing.T) {
			got, err := ParseURL(c.raw)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrBadURL) {
					t.Fatalf("err %v, want ErrBadURL containing %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestRedactHidesThePassphrase(t *testing.T) {
	for raw, want := range map[string]string{
		"srt://h:1?streamid=#!::r=a/b&passphrase=0123456789": "srt://h:1?streamid=#!::r=a/b&passphrase=***",
		"srt://h:1?PassPhrase=0123456789&latency=1":          "srt://h:1?PassPhrase=***&latency=1",
		"srt://h:1": "srt://h:1",
	} {
		if got := Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestExplainDial(t *testing.T) {
	cases := []struct {
		msg  string
		code uint32
		want error
	}{
		{msg: "connection rejected: REJECT (vi)", code: 1010},
		{msg: "connection rejected: REJECT (1bv)", code: 1407},
		{msg: "connection timeout. server didn't respond", want: ErrNoAnswer},
	}
	for _, c := range cases {
		err := explainDial(errors.New(c.msg))
		var rej *RejectedError
		switch {
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%q: %v, want %v", c.msg, err, c.want)
		case c.want == nil && (!errors.As(err, &rej) || rej.Code != c.code):
			t.Errorf("%q: %v, want a rejection with code %d", c.msg, err, c.code)
		}
	}
}

// A listener that rejects: Dial returns the code in words.
func TestDialNamesTheRejection(t *testing.T) {
	ln, err := gosrt.Listen("srt", "127.0.0.1:0", gosrt.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			req, err := ln.Accept2()
			if err != nil {
				return
			}
			req.Reject(gosrt.REJX_UNAUTHORIZED)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = Dial(ctx, Options{Addr: ln.Addr().String(), StreamID: "#!::r=live/s,m=request"}, 3*time.Second)
	var rej *RejectedError
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), "u=USER,pass=PASSWORD") {
		t.Fatalf("Dial: %v, want the rejection with its fix", err)
	}
}

// A context that ends abandons the dial at once.
func TestDialEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(ctx, Options{Addr: "127.0.0.1:9"}, 3*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial: %v, want context.Canceled", err)
	}
}

type recorder struct{ writes [][]byte }

func (r *recorder) Write(b []byte) (int, error) {
	r.writes = append(r.writes, append([]byte(nil), b...))
	return len(b), nil
}

func TestPacketizerSendsWholePayloads(t *testing.T) {
	var r recorder
	p := &Packetizer{W: &r}
	in := bytes.Repeat([]byte{1}, 3*188)
	for i := 0; i < 5; i++ { // 15 TS packets: 7 + 7 + 1
		if err := p.Write(in); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, w := range r.writes {
		sizes = append(sizes, len(w))
	}
	if len(sizes) != 3 || sizes[0] != PayloadSize || sizes[1] != PayloadSize || sizes[2] != 188 || p.Sent != 15*188 {
		t.Fatalf("writes of %v bytes (sent %d), want 1316, 1316, 188", sizes, p.Sent)
	}
}

func BenchmarkPacketizer(b *testing.B) {
	p := &Packetizer{W: discard{}}
	frame := make([]byte, 20*188)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.Write(frame)
		p.Flush()
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// FuzzParseURL: any URL (the API hands them in) parses or is refused with
// ErrBadURL, and a parsed one has an address with a port.
func FuzzParseURL(f *testing.F) {
	f.Add("srt://127.0.0.1:9000?streamid=#!::r=live/s,m=request")
	f.Add("srt://[::1]:9000?passphrase=0123456789&latency=120000")
	f.Add("srt://h:1?streamid=%zz&&=&mode=")
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := ParseURL(raw)
		if err != nil {
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("error %v is not ErrBadURL", err)
			}
			return
		}
		if o.Addr == "" {
			t.Fatal("parsed with no address")
		}
		if o.Passphrase != "" && !strings.Contains(Redact(raw), "=***") {
			t.Fatalf("Redact(%q) shows the passphrase", raw)
		}
	})
}
