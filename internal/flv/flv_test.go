package flv

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80}
	testPPS = []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
)

func TestAVCConfigRoundTrip(t *testing.T) {
	sps, pps, ls, err := ParseAVCConfig(avcConfig(testSPS, testPPS))
	if err != nil || !bytes.Equal(sps, testSPS) || !bytes.Equal(pps, testPPS) || ls != 4 {
		t.Fatalf("got % x, % x, %d, %v", sps, pps, ls, err)
	}
}

func TestTagLayout(t *testing.T) {
	f := &hub.Frame{Key: true, AU: [][]byte{{0x65, 1, 2}}, DTS: 40 * time.Millisecond, PTS: 80 * time.Millisecond}
	tag := buildAVCTag(f)
	want := []byte{9, 0, 0, 12, 0, 0, 40, 0, 0, 0, 0, // header: video, 12 bytes, ts 40
		0x17, 1, 0, 0, 40, // keyframe AVC NALU, cts 40
		0, 0, 0, 3, 0x65, 1, 2,
		0, 0, 0, 23}
	if !bytes.Equal(tag, want) {
		t.Errorf("tag = % x\nwant  % x", tag, want)
	}
	if TagTimestamp(tag) != 40 || !bytes.Equal(TagBody(tag), want[11:23]) {
		t.Error("TagTimestamp/TagBody disagree with the layout")
	}
	p, err := ParseVideo(TagBody(tag))
	if err != nil || !p.Key || p.CTS != 40 || p.Type != PacketFrame || p.Codec != VideoH264 {
		t.Errorf("ParseVideo = %+v, %v", p, err)
	}
}

func TestTimestampPast24Bits(t *testing.T) {
	f := &hub.Frame{AU: [][]byte{{1}}, DTS: 5 * time.Hour}
	tag := buildAACTag(f)
	if got := TagTimestamp(tag); got != uint32(5*time.Hour/time.Millisecond) {
		t.Errorf("timestamp = %d", got)
	}
}

var videoCases = []struct {
	name string
	in   []byte
	want VideoPacket
	err  error
}{
	{"avc config", []byte{0x17, 0, 0, 0, 0, 1, 2}, VideoPacket{Codec: VideoH264, Type: PacketConfig, Key: true, Data: []byte{1, 2}}, nil},
	{"avc inter frame negative cts", []byte{0x27, 1, 0xff, 0xff, 0xd8, 9}, VideoPacket{Codec: VideoH264, Type: PacketFrame, CTS: -40, Data: []byte{9}}, nil},
	{"hevc legacy id 12", []byte{0x1c, 1, 0, 0, 0, 9}, VideoPacket{Codec: VideoH265, Type: PacketFrame, Key: true, Data: []byte{9}}, nil},
	{"enhanced hvc1 coded frames X", []byte{0x93, 'h', 'v', 'c', '1', 9}, VideoPacket{Codec: VideoH265, Type: PacketFrame, Key: true, Data: []byte{9}}, nil},
	{"enhanced hvc1 sequence start", []byte{0x90, 'h', 'v', 'c', '1', 1}, VideoPacket{Codec: VideoH265, Type: PacketConfig, Key: true, Data: []byte{1}}, nil},
	{"vp6 refused", []byte{0x14, 0}, VideoPacket{}, ErrUnsupported},
	{"truncated", []byte{0x17, 1}, VideoPacket{}, ErrShort},
	{"empty", nil, VideoPacket{}, ErrShort},
}

func TestParseVideo(t *testing.T) {
	for _, tc := range videoCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseVideo(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && (got.Codec != tc.want.Codec || got.Type != tc.want.Type || got.Key != tc.want.Key ||
				got.CTS != tc.want.CTS || !bytes.Equal(got.Data, tc.want.Data)) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMuxerHeadersAndInBandParams(t *testing.T) {
	// A track without parameter sets (an RTSP source without sprop): the
	// muxer waits for a keyframe that carries them.
	tr := codec.H264Track(nil, nil)
	aac := codec.AACTrackConfig(&mpeg4audio.AudioSpecificConfig{Type: 2, SampleRate: 48000, ChannelCount: 2})
	m, err := NewMuxer([]*hub.Track{tr, aac})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Start(&hub.Frame{Track: 1, AU: [][]byte{{1}}}); ok {
		t.Fatal("started before the video parameters were known")
	}
	tags, ok := m.Start(&hub.Frame{Track: 0, Key: true, AU: [][]byte{testSPS, testPPS, {0x65}}, DTS: time.Second})
	if !ok || len(tags) != 3 {
		t.Fatalf("Start = %d tags, %v", len(tags), ok)
	}
	if tags[0].TS != 0 || tags[1].TS != 0 || tags[1].Type != TagVideo || tags[2].Type != TagAudio {
		t.Errorf("tags = %+v", tags)
	}
	if !bytes.Contains(tags[0].Body, []byte("width")) {
		t.Error("onMetaData lacks width")
	}
	sps, pps, _, err := ParseAVCConfig(tags[1].Body[5:])
	if err != nil || !bytes.Equal(sps, testSPS) || !bytes.Equal(pps, testPPS) {
		t.Errorf("sequence header params: %v", err)
	}
}

func FuzzParseVideo(f *testing.F) {
	for _, tc := range videoCases {
		f.Add(tc.in)
	}
	f.Add(append([]byte{0x17, 0, 0, 0, 0}, avcConfig(testSPS, testPPS)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseVideo(b)
		if err != nil {
			return
		}
		switch p.Type {
		case PacketConfig:
			if p.Codec == VideoH265 {
				ParseHEVCConfig(p.Data)
			} else {
				ParseAVCConfig(p.Data)
			}
		case PacketFrame:
			for _, ls := range []int{1, 2, 3, 4} {
				SplitNALUs(p.Data, ls, nil)
			}
		}
	})
}

func FuzzParseAudio(f *testing.F) {
	f.Add([]byte{0xaf, 0, 0x11, 0x90})
	f.Add([]byte{0xaf, 1, 0x21})
	f.Add([]byte{0x72, 1, 2})
	f.Add([]byte{0x90, 'O', 'p', 'u', 's', 'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseAudio(b)
		if err == nil && p.Codec == AudioAAC && p.Type == PacketConfig {
			var c mpeg4audio.AudioSpecificConfig
			c.Unmarshal(p.Data)
		}
	})
}

// FuzzReader feeds arbitrary FLV byte streams to the tag reader, and what
// it reads back to the tag body parsers.
func FuzzReader(f *testing.F) {
	var stream []byte
	stream = append(stream, Header(true, true)...)
	stream = AppendTag(stream, TagVideo, 0, append([]byte{0x17, 0, 0, 0, 0}, avcConfig(testSPS, testPPS)...))
	stream = append(stream, buildAVCTag(&hub.Frame{Key: true, AU: [][]byte{{0x65, 1}}})...)
	f.Add(stream)
	f.Add([]byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00\x09\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		for i := 0; i < 100; i++ {
			tag, err := r.ReadTag()
			if err != nil {
				return
			}
			switch tag.Type {
			case TagVideo:
				ParseVideo(tag.Body)
			case TagAudio:
				ParseAudio(tag.Body)
			}
		}
	})
}

// FuzzHEVCConfig checks that building a record from any parameter sets and
// parsing it back never panics.
func FuzzHEVCConfig(f *testing.F) {
	f.Add([]byte{0x40, 1, 0xc, 1}, []byte{0x42, 1, 1, 1, 0x60, 0, 0, 3, 0, 0x90, 0, 0, 3, 0, 0, 3, 0, 0x5d, 0xa0, 2, 0x80, 0x80, 0x2d, 0x16}, []byte{0x44, 1, 0xc1})
	f.Fuzz(func(t *testing.T, vps, sps, pps []byte) {
		ParseHEVCConfig(hevcConfig(vps, sps, pps))
	})
}
