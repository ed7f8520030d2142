package codec

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/sdp"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	psdp "github.com/pion/sdp/v3"

	"github.com/berthmedia/berth/internal/hub"
)

// Parameter sets of a 320x240 libx264 stream, enough for an SDP.
var (
	testSPS = []byte{0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfa, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60}
	testPPS = []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}
)

func TestTrackBuildersDescribeTheCodecInSDP(t *testing.T) {
	asc := []byte{0x11, 0x90} // AAC-LC, 48 kHz, stereo
	aac, err := AACTrack(asc)
	if err != nil {
		t.Fatal(err)
	}
	h265 := testMedia(t, "h265")
	cases := []struct {
		name  string
		track *hub.Track
		video bool
		lines []string // in the SDP
	}{
		{"h264", H264Track(testSPS, testPPS), true, []string{"m=video 0 RTP/AVP 96", "a=rtpmap:96 H264/90000", "packetization-mode=1", "sprop-parameter-sets=Z2QADazZQUH6EAAAAwAQAAADAyDxQplg,aOvjyyLA"}},
		{"h265", H265Track(h265.params[0], h265.params[1], h265.params[2]), true, []string{"a=rtpmap:96 H265/90000", "sprop-vps=", "sprop-sps=", "sprop-pps="}},
		{"aac", aac, false, []string{"m=audio 0 RTP/AVP 97", "a=rtpmap:97 mpeg4-generic/48000/2", "config=1190", "sizelength=13"}},
		{"opus", OpusTrack(2), false, []string{"a=rtpmap:97 opus/48000/2", "sprop-stereo=1"}},
		{"pcma", G711Track(true, 8000, 1), false, []string{"m=audio 0 RTP/AVP 8", "a=rtpmap:8 PCMA/8000"}},
		{"pcmu", G711Track(false, 8000, 1), false, []string{"m=audio 0 RTP/AVP 0", "a=rtpmap:0 PCMU/8000"}},
		{"pcma 16k stereo", G711Track(true, 16000, 2), false, []string{"m=audio 0 RTP/AVP 97", "a=rtpmap:97 PCMA/16000/2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.track.Video != tc.video {
				t.Errorf("Video = %v", tc.track.Video)
			}
			b, err := SDP([]*hub.Track{tc.track})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range append(tc.lines, "a=control:trackID=0") {
				if !bytes.Contains(b, []byte(l)) {
					t.Errorf("SDP lacks %q:\n%s", l, b)
				}
			}
			// gortsplib, as an RTSP client would, reads back the same format.
			var sd sdp.SessionDescription
			if err := sd.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			var sess description.Session
			if err := sess.Unmarshal2((*psdp.SessionDescription)(&sd)); err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			f := sess.Medias[0].Formats[0]
			if f.RTPMap() != tc.track.Format.RTPMap() || f.PayloadType() != tc.track.Format.PayloadType() {
				t.Errorf("read back %s pt %d, built %s pt %d", f.RTPMap(), f.PayloadType(), tc.track.Format.RTPMap(), tc.track.Format.PayloadType())
			}
			if kindOf(f) == kindNone {
				t.Errorf("read-back format %T is not convertible", f)
			}
		})
	}
}

func TestSDPNumbersTracksWithoutChangingThem(t *testing.T) {
	v, a := H264Track(testSPS, testPPS), OpusTrack(2)
	b, err := SDP([]*hub.Track{v, a})
	if err != nil {
		t.Fatal(err)
	}
	if i, j := strings.Index(string(b), "trackID=0"), strings.Index(string(b), "trackID=1"); i < 0 || j < i {
		t.Errorf("controls not trackID=0, trackID=1 in order:\n%s", b)
	}
	if v.Media.Control != "" || a.Media.Control != "" {
		t.Errorf("SDP changed the shared tracks' controls: %q %q", v.Media.Control, a.Media.Control)
	}
	if _, err := SDP(nil); !errors.Is(err, ErrNoTracks) {
		t.Errorf("SDP(nil) = %v, want ErrNoTracks", err)
	}
}

func TestAACTrackRejectsABrokenConfigWithAFix(t *testing.T) {
	_, err := AACTrack([]byte{0xff})
	if err == nil || !strings.Contains(err.Error(), "sequence header") {
		t.Fatalf("err = %v", err)
	}
}

func TestAACConfigReadsGenericAndLATM(t *testing.T) {
	conf := &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelCount: 2, ChannelConfig: 2}
	latm := &format.MPEG4AudioLATM{PayloadTyp: 96, StreamMuxConfig: &mpeg4audio.StreamMuxConfig{
		Programs: []*mpeg4audio.StreamMuxConfigProgram{{Layers: []*mpeg4audio.StreamMuxConfigLayer{{AudioSpecificConfig: conf}}}},
	}}
	for _, tc := range []struct {
		f    format.Format
		want *mpeg4audio.AudioSpecificConfig
	}{
		{AACTrackConfig(conf).Format, conf},
		{latm, conf},
		{&format.MPEG4AudioLATM{}, nil},
		{OpusTrack(2).Format, nil},
	} {
		if got := AACConfig(tc.f); got != tc.want {
			t.Errorf("AACConfig(%T) = %v, want %v", tc.f, got, tc.want)
		}
	}
}
