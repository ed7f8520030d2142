package rtmp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func readAll(b []byte) ([]*Message, error) {
	cr := NewChunkReader(bufio.NewReader(bytes.NewReader(b)))
	var out []*Message
	for {
		m, err := cr.ReadMessage()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, m)
	}
}

var chunkCases = []struct {
	name    string
	in      []byte
	want    []Message
	wantErr error
}{
	{
		name: "type 0 then continuation at 128 bytes",
		in:   AppendMessage(nil, 6, msgVideo, 1, 1000, bytes.Repeat([]byte{7}, 300), 128),
		want: []Message{{CSID: 6, Type: msgVideo, StreamID: 1, Timestamp: 1000, Body: bytes.Repeat([]byte{7}, 300)}},
	},
	{
		name: "extended timestamp on every chunk",
		in:   AppendMessage(nil, 4, msgAudio, 1, 0x01000000, bytes.Repeat([]byte{1}, 200), 128),
		want: []Message{{CSID: 4, Type: msgAudio, StreamID: 1, Timestamp: 0x01000000, Body: bytes.Repeat([]byte{1}, 200)}},
	},
	{
		name: "type 1 and 2 headers add deltas (spec example 1)",
		in: append(append(
			AppendMessage(nil, 3, msgAudio, 1, 1000, []byte{1, 2}, 128),
			0x40|3, 0, 0, 20, 0, 0, 2, msgAudio, 3, 4),
			0x80|3, 0, 0, 20, 5, 6, 0xc0|3, 7, 8),
		want: []Message{
			{CSID: 3, Type: msgAudio, StreamID: 1, Timestamp: 1000, Body: []byte{1, 2}},
			{CSID: 3, Type: msgAudio, StreamID: 1, Timestamp: 1020, Body: []byte{3, 4}},
			{CSID: 3, Type: msgAudio, StreamID: 1, Timestamp: 1040, Body: []byte{5, 6}},
			{CSID: 3, Type: msgAudio, StreamID: 1, Timestamp: 1060, Body: []byte{7, 8}},
		},
	},
	{
		name: "two-byte and three-byte chunk stream ids",
		in:   append(AppendMessage(nil, 100, msgVideo, 1, 0, []byte{1}, 128), AppendMessage(nil, 1000, msgVideo, 1, 0, []byte{2}, 128)...),
		want: []Message{{CSID: 100, Type: msgVideo, StreamID: 1, Body: []byte{1}}, {CSID: 1000, Type: msgVideo, StreamID: 1, Body: []byte{2}}},
	},
	{
		name: "set chunk size applies to what follows",
		in: append(AppendMessage(nil, 2, msgSetChunkSize, 0, 0, binary.BigEndian.AppendUint32(nil, 4096), 128),
			AppendMessage(nil, 6, msgVideo, 1, 0, bytes.Repeat([]byte{3}, 1000), 4096)...),
		want: []Message{
			{CSID: 2, Type: msgSetChunkSize, Body: []byte{0, 0, 0x10, 0}},
			{CSID: 6, Type: msgVideo, StreamID: 1, Body: bytes.Repeat([]byte{3}, 1000)},
		},
	},
	{
		name:    "chunk size 0",
		in:      AppendMessage(nil, 2, msgSetChunkSize, 0, 0, []byte{0, 0, 0, 0}, 128),
		wantErr: ErrChunkSize,
	},
	{
		name:    "chunk size 2^31",
		in:      AppendMessage(nil, 2, msgSetChunkSize, 0, 0, []byte{0x80, 0, 0, 0}, 128),
		wantErr: ErrChunkSize,
	},
	{
		name:    "message of 16 MB",
		in:      []byte{6, 0, 0, 0, 0xff, 0xff, 0xff, msgVideo, 1, 0, 0, 0, 1, 2, 3},
		wantErr: ErrMessageTooLarge,
	},
	{
		name:    "type 3 on a fresh chunk stream",
		in:      []byte{0xc0 | 9, 1, 2, 3},
		wantErr: ErrNoPrevHeader,
	},
}

func TestChunkReader(t *testing.T) {
	for _, tc := range chunkCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d messages, want %d", len(got), len(tc.want))
			}
			for i, m := range got {
				w := tc.want[i]
				if m.CSID != w.CSID || m.Type != w.Type || m.StreamID != w.StreamID || m.Timestamp != w.Timestamp || !bytes.Equal(m.Body, w.Body) {
					t.Errorf("message %d = %+v, want %+v", i, *m, w)
				}
			}
		})
	}
}

func TestMessageSizeMatchesAppend(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 129, 60000, 60001, 200000} {
		for _, ts := range []uint32{0, 0xFFFFFF} {
			for _, csid := range []uint32{6, 100, 1000} {
				if got, want := MessageSize(csid, ts, n, 128), len(AppendMessage(nil, csid, 9, 1, ts, make([]byte, n), 128)); got != want {
					t.Errorf("MessageSize(%d, %d, %d) = %d, want %d", csid, ts, n, got, want)
				}
			}
		}
	}
}

func FuzzChunkReader(f *testing.F) {
	for _, tc := range chunkCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cr := NewChunkReader(bufio.NewReader(bytes.NewReader(b)))
		for i := 0; i < 1000; i++ {
			m, err := cr.ReadMessage()
			if err != nil {
				return
			}
			if len(m.Body) > DefaultMaxMessage {
				t.Fatalf("message of %d bytes passed the limit", len(m.Body))
			}
		}
	})
}

func TestHandshakeRejectsNonRTMP(t *testing.T) {
	in := append([]byte{'G'}, make([]byte, handshakeSize)...)
	var out bytes.Buffer
	_, err := serverHandshake(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(in), &out})
	if !errors.Is(err, ErrHandshake) {
		t.Errorf("err = %v, want ErrHandshake", err)
	}
}
