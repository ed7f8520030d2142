package httpstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// clientFrame is a frame as a page sends it: masked, with the header
// flags given (FIN and opcode in b0).
func clientFrame(b0 byte, payload []byte) []byte {
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xFFFF:
		f = binary.BigEndian.AppendUint16(append(f, 0x80|126), uint16(n))
	default:
		f = binary.BigEndian.AppendUint64(append(f, 0x80|127), uint64(n))
	}
	mask := []byte{0x12, 0x34, 0x56, 0x78}
	f = append(f, mask...)
	for i, c := range payload {
		f = append(f, c^mask[i%4])
	}
	return f
}

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// TestWSReader: what a page sends is answered as RFC 6455 asks, whether it
// comes whole or a byte at a time: the latest ping gets its pong, data is
// discarded however long, a close is echoed and ends the play, and a
// protocol error ends it with 1002.
func TestWSReader(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70000)
	for _, c := range []struct {
		name    string
		in      []byte
		ctl     []byte // the control frame to send, nil for none
		end     error  // errWSClosed, errProtocol (any other error), or nil
		protoOK bool
	}{
		{"ping", clientFrame(0x89, []byte("hi")), wsControl(wsPong, []byte("hi")), nil, true},
		{"two pings: the latest pong", append(clientFrame(0x89, []byte("1")), clientFrame(0x89, []byte("2"))...), wsControl(wsPong, []byte("2")), nil, true},
		{"pong and text ignored", append(clientFrame(0x8A, nil), clientFrame(0x81, []byte("hello"))...), nil, nil, true},
		{"a long binary frame, then a ping", append(clientFrame(0x82, big), clientFrame(0x89, []byte("p"))...), wsControl(wsPong, []byte("p")), nil, true},
		{"a fragmented message, then a ping", append(append(clientFrame(0x02, []byte("ab")), clientFrame(0x80, []byte("cd"))...), clientFrame(0x89, nil)...), wsControl(wsPong, nil), nil, true},
		{"close with a code", clientFrame(0x88, closePayload(1001, "bye")), wsCloseFrame(1001, ""), errWSClosed, true},
		{"close without a code", clientFrame(0x88, nil), wsCloseFrame(1000, ""), errWSClosed, true},
		{"nothing read after a close", append(clientFrame(0x88, nil), clientFrame(0x89, []byte("late"))...), wsCloseFrame(1000, ""), errWSClosed, true},
		{"unmasked", []byte{0x89, 0x00}, nil, nil, false},
		{"reserved bits", clientFrame(0xC2, []byte("z")), nil, nil, false},
		{"unknown opcode", clientFrame(0x83, nil), nil, nil, false},
		{"fragmented ping", clientFrame(0x09, nil), nil, nil, false},
		{"long ping", clientFrame(0x89, bytes.Repeat([]byte("p"), 126)), nil, nil, false},
		{"close of one byte", clientFrame(0x88, []byte{3}), nil, nil, false},
	} {
		for _, split := range []string{"whole", "byte at a time"} {
			t.Run(c.name+"/"+split, func(t *testing.T) {
				var r wsReader
				var out wsReply
				if split == "whole" {
					r.feed(c.in, &out)
				} else {
					for i := range c.in {
						r.feed(c.in[i:i+1], &out)
					}
				}
				if !c.protoOK {
					if out.end == nil || errors.Is(out.end, errWSClosed) || !strings.Contains(out.end.Error(), "1002") ||
						len(out.ctl) < 4 || out.ctl[0] != 0x88 || binary.BigEndian.Uint16(out.ctl[2:]) != 1002 {
						t.Fatalf("got ctl %x end %v, want a 1002 close", out.ctl, out.end)
					}
					return
				}
				if !bytes.Equal(out.ctl, c.ctl) || !errors.Is(out.end, c.end) && out.end != c.end {
					t.Fatalf("got ctl %x end %v, want ctl %x end %v", out.ctl, out.end, c.ctl, c.end)
				}
				if r.skip != 0 || len(r.held) != 0 {
					t.Fatalf("left skip %d held %d after whole frames", r.skip, len(r.held))
				}
			})
		}
	}
}

// TestWSAccept: RFC 6455's own example key, and requests left to gorilla.
func TestWSAccept(t *testing.T) {
	req := func(mod func(h http.Header)) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/live/s.live.flv", nil)
		r.Header.Set("Connection", "keep-alive, Upgrade")
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Sec-WebSocket-Version", "13")
		r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		r.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
		if mod != nil {
			mod(r.Header)
		}
		return r
	}
	if got, ok := wsAccept(req(nil)); !ok || got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept %q %v, want RFC 6455's s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", got, ok)
	}
	for name, mod := range map[string]func(http.Header){
		"version 8":   func(h http.Header) { h.Set("Sec-WebSocket-Version", "8") },
		"bad key":     func(h http.Header) { h.Set("Sec-WebSocket-Key", "short") },
		"no upgrade":  func(h http.Header) { h.Del("Upgrade") },
		"no conn hdr": func(h http.Header) { h.Set("Connection", "keep-alive") },
	} {
		if _, ok := wsAccept(req(mod)); ok {
			t.Errorf("%s: accepted, want it left to gorilla", name)
		}
	}
}

// FuzzWSReader: any bytes from a page, split anywhere, parse without a
// panic, hold at most one control frame, and parse the same whole or split.
func FuzzWSReader(f *testing.F) {
	f.Add(clientFrame(0x89, []byte("hi")), 1)
	f.Add(append(clientFrame(0x82, bytes.Repeat([]byte("x"), 300)), clientFrame(0x88, closePayload(1000, ""))...), 7)
	f.Add([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, 3)
	f.Fuzz(func(t *testing.T, in []byte, at int) {
		var whole, split wsReader
		var a, b wsReply
		whole.feed(in, &a)
		if at < 0 {
			at = -at
		}
		at %= len(in) + 1
		split.feed(in[:at], &b)
		split.feed(in[at:], &b)
		if len(whole.held) > 6+8+125 || len(split.held) > 6+8+125 {
			t.Fatalf("held %d and %d bytes", len(whole.held), len(split.held))
		}
		if !bytes.Equal(a.ctl, b.ctl) || (a.end == nil) != (b.end == nil) {
			t.Fatalf("whole: ctl %x end %v; split at %d: ctl %x end %v", a.ctl, a.end, at, b.ctl, b.end)
		}
	})
}
