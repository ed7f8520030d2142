package rtspclient

import (
	"strings"
	"testing"
)

// sdpCases are DESCRIBE bodies as cameras send them; they also seed
// FuzzParseSDP.
var sdpCases = []struct {
	name       string
	sdp        string
	medias     int      // in the description
	unreadable []string // UnreadableMedia.String() of each left out
	err        string   // "" = parses
}{
	{"every media reads", "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\nm=audio 0 RTP/AVP 0\n",
		2, nil, ""},
	{"audio with a dynamic payload type and no rtpmap", "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\nm=audio 0 RTP/AVP 97\na=control:track2\n",
		1, []string{"media 2 audio payload type 97 (its SDP does not parse: clock rate not found)"}, ""},
	{"a bad packetization-mode on the second video", "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\nm=audio 0 RTP/AVP 8\nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=x\nm=video 0 RTP/AVP 98\na=rtpmap:98 H265/90000\n",
		2, []string{"media 2 video H264/90000 (its SDP does not parse: invalid packetization-mode (x))"}, ""},
	{"no media reads", "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\nm=audio 0 RTP/AVP 97\n",
		0, nil, "the server's SDP is not usable: media 1 is invalid: clock rate not found"},
	{"no media at all", "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\n", 0, nil, "no media streams"},
	{"not SDP", "hello", 0, nil, "the server's SDP does not parse"},
}

func TestParseSDPLeavesOutUnreadableMedias(t *testing.T) {
	for _, c := range sdpCases {
		t.Run(c.name, func(t *testing.T) {
			_, d, bad, err := parseSDP([]byte(strings.ReplaceAll(c.sdp, "\n", "\r\n")))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v; want one with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Medias) != c.medias {
				t.Errorf("%d medias; want %d", len(d.Medias), c.medias)
			}
			var got []string
			for _, u := range bad {
				got = append(got, u.String())
			}
			if strings.Join(got, "|") != strings.Join(c.unreadable, "|") {
				t.Errorf("unreadable %q; want %q", got, c.unreadable)
			}
		})
	}
}

func FuzzParseSDP(f *testing.F) {
	for _, c := range sdpCases {
		f.Add([]byte(c.sdp))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ssd, d, bad, err := parseSDP(b)
		if err != nil {
			return
		}
		if len(d.Medias)+len(bad) != len(ssd.MediaDescriptions) {
			t.Fatalf("%d medias read and %d left out of %d", len(d.Medias), len(bad), len(ssd.MediaDescriptions))
		}
		for i := 1; i < len(bad); i++ {
			if bad[i].Index <= bad[i-1].Index {
				t.Fatalf("unreadable medias out of order: %v", bad)
			}
		}
	})
}
