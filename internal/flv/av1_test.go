package flv

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/flv/amf0"
	"github.com/berthmedia/berth/internal/hub"
)

// What ffmpeg 5.1 with SVT-AV1 1.4 writes for testsrc at 320x240 (main
// profile, level 2.0, 8-bit 4:2:0): the sequence header OBU as it stands in
// the bitstream (with obu_size), without it, and the MP4 av1C box's body.
var (
	testAV1SeqSized = []byte{0x0a, 0x0b, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0x02, 0xf8, 0x00, 0x40}
	testAV1Seq      = []byte{0x08, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0x02, 0xf8, 0x00, 0x40}
	testAV1C        = append([]byte{0x81, 0x00, 0x0c, 0x00}, testAV1SeqSized...)
)

func av01(first byte, rest ...byte) []byte { return append([]byte{first, 'a', 'v', '0', '1'}, rest...) }

func TestParseVideoAV1(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want VideoPacket
		err  error
	}{
		{"sequence start", av01(0x90, testAV1C...), VideoPacket{Codec: VideoAV1, Type: PacketConfig, Key: true, Data: testAV1C}, nil},
		// No SI24 composition time: the OBUs follow the FourCC.
		{"coded frames key", av01(0x91, 0x32, 0x01, 0xaa), VideoPacket{Codec: VideoAV1, Type: PacketFrame, Key: true, Data: []byte{0x32, 0x01, 0xaa}}, nil},
		{"coded frames inter", av01(0xa1, 0x32, 0x00), VideoPacket{Codec: VideoAV1, Type: PacketFrame, Data: []byte{0x32, 0x00}}, nil},
		{"coded frames X", av01(0xa3, 0x32, 0x00), VideoPacket{Codec: VideoAV1, Type: PacketFrame, Data: []byte{0x32, 0x00}}, nil},
		{"sequence end", av01(0x92), VideoPacket{Codec: VideoAV1, Type: PacketEndOfSeq, Key: true}, nil},
		{"metadata", av01(0x94, 2, 0, 0), VideoPacket{Codec: VideoAV1, Type: PacketIgnored, Key: true}, nil},
		{"command frame", av01(0xd1, 0), VideoPacket{Codec: VideoAV1, Type: PacketIgnored}, nil},
		{"truncated FourCC", []byte{0x91, 'a', 'v', '0'}, VideoPacket{}, ErrShort},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseVideo(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got.Codec != tc.want.Codec || got.Type != tc.want.Type || got.Key != tc.want.Key ||
				got.CTS != 0 || !bytes.Equal(got.Data, tc.want.Data) {
				t.Errorf("ParseVideo = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

var splitOBUCases = []struct {
	name string
	in   []byte
	want [][]byte
	err  error
}{
	{"delimiter, sequence header, frame", append(append([]byte{0x12, 0x00}, testAV1SeqSized...), 0x32, 0x02, 0xaa, 0xbb),
		[][]byte{testAV1Seq, {0x30, 0xaa, 0xbb}}, nil},
	{"last OBU without obu_size", []byte{0x32, 0x01, 0xaa, 0x30, 0xbb, 0xcc}, [][]byte{{0x30, 0xaa}, {0x30, 0xbb, 0xcc}}, nil},
	{"extension header", []byte{0x36, 0x08, 0x02, 0xaa, 0xbb}, [][]byte{{0x34, 0x08, 0xaa, 0xbb}}, nil},
	{"padding left out", []byte{0x7a, 0x01, 0x00, 0x32, 0x00}, [][]byte{{0x30}}, nil},
	{"two-byte obu_size", append([]byte{0x32, 0xc8, 0x01}, bytes.Repeat([]byte{0xee}, 200)...),
		[][]byte{append([]byte{0x30}, bytes.Repeat([]byte{0xee}, 200)...)}, nil},
	{"empty", nil, nil, nil},
	{"forbidden bit", []byte{0xb2, 0x00}, nil, ErrBadOBU},
	{"obu_size past the end", []byte{0x32, 0x05, 0xaa}, nil, ErrShort},
	{"obu_size truncated", []byte{0x32, 0x80}, nil, ErrShort},
	{"extension header truncated", []byte{0x36}, nil, ErrShort},
}

func TestSplitOBUs(t *testing.T) {
	for _, tc := range splitOBUCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitOBUs(bytes.Clone(tc.in), nil)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("SplitOBUs = % x, %v; want % x", got, err, tc.want)
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("OBU %d = % x, want % x", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestAV1ConfigMatchesFFmpeg(t *testing.T) {
	for _, seq := range [][]byte{testAV1Seq, testAV1SeqSized} {
		if got := av1Config(seq); !bytes.Equal(got, testAV1C) {
			t.Errorf("av1Config(% x) = % x\nwant (ffmpeg's av1C)   % x", seq, got, testAV1C)
		}
	}
}

func TestParseAV1Config(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want []byte
		ok   bool
	}{
		{"ffmpeg's record", testAV1C, testAV1Seq, true},
		{"with a metadata OBU after the sequence header", append(bytes.Clone(testAV1C), 0x2a, 0x01, 0x01), testAV1Seq, true},
		{"no config OBUs: the sequence header comes in-band", []byte{0x81, 0x00, 0x0c, 0x00}, nil, true},
		{"too short", []byte{0x81, 0x00, 0x0c}, nil, false},
		{"wrong marker and version", append([]byte{0x01, 0x00, 0x0c, 0x00}, testAV1SeqSized...), nil, false},
		{"config OBU truncated", testAV1C[:len(testAV1C)-1], nil, false},
		{"sequence header that does not parse", []byte{0x81, 0x00, 0x0c, 0x00, 0x0a, 0x01, 0xff}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.in)
			got, err := ParseAV1Config(in)
			if (err == nil) != tc.ok || !bytes.Equal(got, tc.want) {
				t.Errorf("ParseAV1Config = % x, %v; want % x (ok %v)", got, err, tc.want, tc.ok)
			}
			if !bytes.Equal(in, tc.in) {
				t.Error("ParseAV1Config changed its input")
			}
		})
	}
}

func TestAV1TagRoundTrip(t *testing.T) {
	au := [][]byte{testAV1Seq, {0x30, 0xaa, 0xbb}, {0x34, 0x08, 0xcc}, append([]byte{0x32, 0x01}, 0xdd)}
	f := &hub.Frame{Key: true, AU: au, DTS: 40 * time.Millisecond, PTS: 40 * time.Millisecond}
	tag := buildAV1Tag(f)
	if TagTimestamp(tag) != 40 {
		t.Errorf("timestamp = %d", TagTimestamp(tag))
	}
	body := TagBody(tag)
	want := append(av01(0x91), testAV1SeqSized...)
	want = append(want, 0x32, 0x02, 0xaa, 0xbb, 0x36, 0x08, 0x01, 0xcc, 0x32, 0x01, 0xdd)
	if !bytes.Equal(body, want) {
		t.Fatalf("tag body = % x\nwant       % x", body, want)
	}
	p, err := ParseVideo(bytes.Clone(body))
	if err != nil || p.Codec != VideoAV1 || p.Type != PacketFrame || !p.Key {
		t.Fatalf("ParseVideo = %+v, %v", p, err)
	}
	got, err := SplitOBUs(p.Data, nil)
	if err != nil || len(got) != len(au) {
		t.Fatalf("SplitOBUs = % x, %v", got, err)
	}
	for i, obu := range []([]byte){testAV1Seq, {0x30, 0xaa, 0xbb}, {0x34, 0x08, 0xcc}, {0x30, 0xdd}} {
		if !bytes.Equal(got[i], obu) {
			t.Errorf("OBU %d = % x, want % x", i, got[i], obu)
		}
	}
}

func TestMuxerAV1StartsWithSequenceStartFromTheKeyframe(t *testing.T) {
	m, err := NewMuxer([]*hub.Track{codec.AV1Track(testAV1Seq)})
	if err != nil || m.Video != VideoAV1 {
		t.Fatalf("NewMuxer: %v, video %v", err, m.Video)
	}
	inter := &hub.Frame{AU: [][]byte{{0x30, 1}}}
	if _, ok := m.Start(inter); ok {
		t.Fatal("started on an inter frame without a sequence header")
	}
	key := &hub.Frame{Key: true, AU: [][]byte{testAV1Seq, {0x30, 1}}}
	tags, ok := m.Start(key)
	if !ok || len(tags) != 2 || tags[0].Type != TagScript || tags[1].Type != TagVideo {
		t.Fatalf("Start = %+v, %v", tags, ok)
	}
	if want := av01(0x90, testAV1C...); !bytes.Equal(tags[1].Body, want) {
		t.Errorf("sequence start = % x, want % x", tags[1].Body, want)
	}
	vals, err := amf0.Decode(tags[0].Body)
	if err != nil || len(vals) != 2 {
		t.Fatalf("onMetaData: %v %v", vals, err)
	}
	meta, _ := vals[1].(amf0.Object)
	if meta.Get("width") != 320.0 || meta.Get("height") != 240.0 || meta.Get("videocodecid") != float64(0x61763031) {
		t.Errorf("onMetaData = %+v, want width 320, height 240, videocodecid av01", meta)
	}
	if !bytes.Equal(m.FrameTag(key), buildAV1Tag(key)) {
		t.Error("FrameTag differs from the AV1 tag builder")
	}
}

// FuzzAV1 feeds arbitrary av01 tag bodies and configuration records to the
// AV1 parsers: they never panic, SplitOBUs yields only non-empty OBUs
// without obu_size or temporal delimiters, and the tag built from them
// splits back into the same OBUs.
func FuzzAV1(f *testing.F) {
	for _, tc := range splitOBUCases {
		f.Add(av01(0x91, tc.in...))
	}
	f.Add(av01(0x90, testAV1C...))
	f.Add(av01(0x90, 0x81, 0x00, 0x0c, 0x00, 0x0a, 0x01, 0xff))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseVideo(bytes.Clone(body))
		if err != nil || p.Codec != VideoAV1 {
			return
		}
		switch p.Type {
		case PacketConfig:
			seq, err := ParseAV1Config(p.Data)
			if err != nil || seq == nil {
				return
			}
			var h av1.SequenceHeader
			if h.Unmarshal(seq) != nil {
				t.Fatalf("ParseAV1Config returned a sequence header that does not parse: % x", seq)
			}
			again, err := ParseAV1Config(av1Config(seq))
			if err != nil || !bytes.Equal(again, seq) {
				t.Fatalf("av1Config(% x) parses back to % x, %v", seq, again, err)
			}
		case PacketFrame:
			obus, err := SplitOBUs(p.Data, nil)
			if err != nil {
				return
			}
			for _, obu := range obus {
				if len(obu) == 0 || obu[0]&obuHasSizeField != 0 || (obu[0]>>3)&0x0f == obuTemporalDelimiter {
					t.Fatalf("SplitOBUs returned OBU % x", obu)
				}
			}
			tag := buildAV1Tag(&hub.Frame{Key: p.Key, AU: obus})
			q, err := ParseVideo(TagBody(tag))
			if err != nil {
				t.Fatalf("ParseVideo of a built tag: %v", err)
			}
			again, err := SplitOBUs(q.Data, nil)
			if err != nil || len(again) != len(obus) {
				t.Fatalf("built tag splits into % x, %v; want % x", again, err, obus)
			}
			for i := range obus {
				if !bytes.Equal(again[i], obus[i]) {
					t.Fatalf("OBU %d: % x, want % x", i, again[i], obus[i])
				}
			}
		}
	})
}
