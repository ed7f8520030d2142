package rtspclient

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"testing"
)

func frame(ch byte, payload []byte) []byte {
	return append([]byte{'$', ch, byte(len(payload) >> 8), byte(len(payload))}, payload...)
}

func TestParseFrameHeader(t *testing.T) {
	cases := []struct {
		name    string
		in      []byte
		ch      uint8
		size    int
		isFrame bool
	}{
		{"rtp on channel 0", []byte{'$', 0, 0x05, 0xdc}, 0, 1500, true},
		{"rtcp on channel 3", []byte{'$', 3, 0, 28}, 3, 28, true},
		{"largest", []byte{'$', 255, 0xff, 0xff}, 255, 65535, true},
		{"empty payload", []byte{'$', 1, 0, 0}, 1, 0, true},
		{"short", []byte{'$', 1, 0}, 0, 0, false},
		{"rtsp response", []byte("RTSP"), 0, 0, false},
		{"nothing", nil, 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch, n, ok := parseFrameHeader(tc.in)
			if ok != tc.isFrame || ch != tc.ch || n != tc.size {
				t.Fatalf("parseFrameHeader(%q) = %d, %d, %v; want %d, %d, %v", tc.in, ch, n, ok, tc.ch, tc.size, tc.isFrame)
			}
		})
	}
}

// demuxCases are byte streams and what the demuxer must read from them;
// they also seed FuzzDemux.
var demuxCases = []struct {
	name   string
	stream []byte
	want   []string // "F<ch>:<len>", "R<code>", "Q<method>", then the final error kind
	final  string   // "eof", "unexpected", "bad", "err" (any other)
}{
	{"frames", bytes.Join([][]byte{frame(0, []byte("abc")), frame(1, nil)}, nil), []string{"F0:3", "F1:0"}, "eof"},
	{"response then frame", append([]byte("RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Length: 2\r\n\r\nhi"), frame(2, make([]byte, 1400))...), []string{"R200", "F2:1400"}, "eof"},
	{"server request", []byte("GET_PARAMETER rtsp://a/b RTSP/1.0\r\nCSeq: 9\r\n\r\n"), []string{"QGET_PARAMETER"}, "eof"},
	{"frame larger than the buffer", frame(0, make([]byte, 300)), []string{"F0:300"}, "eof"},
	{"cut frame", frame(0, []byte("abcdef"))[:7], nil, "unexpected"},
	{"garbage", []byte{0x00, 0x01, 0x02, 0x03, 0x04}, nil, "bad"},
	{"cut response", []byte("RTSP/1.0 200 OK\r\nCSe"), nil, "err"},
}

func TestDemux(t *testing.T) {
	for _, tc := range demuxCases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDemuxer(bytes.NewReader(tc.stream), 256)
			var got []string
			for {
				kind, ch, p, res, req, err := d.next()
				if err != nil {
					var final string
					switch {
					case err == io.EOF:
						final = "eof"
					case errors.Is(err, io.ErrUnexpectedEOF):
						final = "unexpected"
					case errors.Is(err, errBadMagic):
						final = "bad"
					default:
						final = "err"
					}
					if final != tc.final {
						t.Errorf("final error %v (%s); want %s", err, final, tc.final)
					}
					break
				}
				switch kind {
				case msgFrame:
					got = append(got, "F"+strconv.Itoa(int(ch))+":"+strconv.Itoa(len(p)))
				case msgResponse:
					got = append(got, "R"+strconv.Itoa(int(res.StatusCode)))
				case msgRequest:
					got = append(got, "Q"+string(req.Method))
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("read %v; want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("read %v; want %v", got, tc.want)
				}
			}
		})
	}
}

// FuzzDemux feeds arbitrary server bytes through the demuxer: it must
// never panic, never hand out a payload longer than the frame said, and
// always end with an error once the input is exhausted.
func FuzzDemux(f *testing.F) {
	for _, tc := range demuxCases {
		f.Add(tc.stream)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		d := newDemuxer(bytes.NewReader(stream), 64)
		for i := 0; i <= len(stream); i++ {
			kind, _, p, _, _, err := d.next()
			if err != nil {
				return
			}
			if kind == msgFrame && len(p) > 65535 {
				t.Fatalf("payload of %d bytes", len(p))
			}
		}
		t.Fatalf("no error after %d messages from %d bytes", len(stream)+1, len(stream))
	})
}

// BenchmarkDemuxFrames is the per-packet cost of the read loop's parsing.
func BenchmarkDemuxFrames(b *testing.B) {
	one := frame(0, make([]byte, 1400))
	stream := bytes.Repeat(one, 64)
	r := bytes.NewReader(stream)
	d := newDemuxer(r, frameHeaderSize+65535)
	b.ReportAllocs()
	b.SetBytes(int64(len(one)))
	for b.Loop() {
		if _, _, _, _, _, err := d.next(); err != nil {
			r.Reset(stream)
			d.br.Reset(r)
			d.discard = 0
		}
	}
}
