package codec

import (
	"bytes"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/berthmedia/berth/internal/hub"
)

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// trackFor builds the track an AU publisher of m would announce.
func trackFor(codec string, m *media) *hub.Track {
	switch codec {
	case "h264", "h264b":
		return H264Track(m.params[0], m.params[1])
	case "h265", "h265b":
		return H265Track(m.params[0], m.params[1], m.params[2])
	case "aac":
		return AACTrackConfig(m.asc)
	case "latm": // the same AAC frames as RFC 6416 MP4A-LATM
		return &hub.Track{Format: &format.MPEG4AudioLATM{PayloadTyp: 96, ProfileLevelID: 30, StreamMuxConfig: &mpeg4audio.StreamMuxConfig{
			Programs: []*mpeg4audio.StreamMuxConfigProgram{{Layers: []*mpeg4audio.StreamMuxConfigLayer{{AudioSpecificConfig: m.asc, LatmBufferFullness: 255}}}},
		}}}
	case "opus":
		return OpusTrack(m.channels)
	case "pcma":
		return G711Track(true, 8000, 1)
	}
	panic(codec)
}

// aacFrame is how long an AAC frame of the 48 kHz test stream lasts.
const aacFrame = 1024 * time.Second / 48000

// wrapBase is a stream time at which a clock of rate Hz is 1 s before its
// 32-bit RTP timestamp wraps, so a 2 s stream crosses the wrap.
func wrapBase(rate int64) time.Duration {
	return hub.TicksToDuration(int64(math.MaxUint32)+1-rate, rate)
}

func TestRoundTripAUToRTPToAUPreservesBytesAndTimestamps(t *testing.T) {
	cases := []struct {
		codec   string
		wrap    bool
		bframes bool
	}{
		{codec: "h264"},
		{codec: "h264", wrap: true},
		{codec: "h264b", bframes: true},
		{codec: "h265"},
		{codec: "h265b", bframes: true, wrap: true},
		{codec: "aac"},
		{codec: "aac", wrap: true},
		{codec: "latm"},
		{codec: "opus"},
		{codec: "opus", wrap: true},
		{codec: "pcma"},
		{codec: "pcma", wrap: true},
	}
	for _, tc := range cases {
		name := tc.codec
		if tc.wrap {
			name += "/wrap"
		}
		t.Run(name, func(t *testing.T) {
			m := testMedia(t, strings.Replace(tc.codec, "latm", "aac", 1))
			tr := trackFor(tc.codec, m)
			if tc.bframes && !reordered(m) {
				t.Fatalf("test stream %s has no reordered frames", tc.codec)
			}
			rate := int64(tr.Format.ClockRate())
			base := time.Second
			if tc.wrap {
				base = wrapBase(rate)
			}
			since := time.Unix(1_700_000_000, 0)
			s := &hub.Stream{Path: "live/rt", Tracks: []*hub.Track{tr}, Since: since}
			p, d := newPacketizer(s, testLog(t)), newDepacketizer(s, testLog(t))

			var got []*hub.Frame
			var firstTS, lastTS uint32
			for i, in := range m.aus {
				recv := since.Add(base + in.dts)
				if tc.codec == "aac" || tc.codec == "latm" {
					recv = recv.Add(aacFrame) // an AAC packet leaves when its frame is complete
				}
				f := &hub.Frame{Key: in.key, AU: in.au, PTS: base + in.pts, DTS: base + in.dts, Recv: recv}
				pkts := p.push(f, nil)
				if len(pkts) == 0 {
					t.Fatalf("AU %d: no packets", i)
				}
				for j, pk := range pkts {
					h, ok := ParseRTP(pk.RTP())
					if !ok {
						t.Fatalf("AU %d: packet %d is not RTP", i, j)
					}
					if len(h.Payload) > PayloadMaxSize {
						t.Errorf("AU %d: payload of %d bytes > %d", i, len(h.Payload), PayloadMaxSize)
					}
					if i == 0 && j == 0 {
						firstTS = h.Timestamp
					}
					lastTS = h.Timestamp
					if pk.Key != (in.key && j == 0) {
						t.Errorf("AU %d packet %d: Key = %v", i, j, pk.Key)
					}
					got = d.push(pk, got)
				}
			}
			got = d.flush(got)
			if tc.wrap && lastTS >= firstTS {
				t.Fatalf("RTP timestamps did not wrap: first %d, last %d", firstTS, lastTS)
			}
			if len(got) != len(m.aus) {
				t.Fatalf("got %d AUs back, sent %d", len(got), len(m.aus))
			}
			tick := time.Second/time.Duration(rate) + 1
			// Arrival (at the DTS) anchors the first AU: with B-frames its
			// PTS comes one reorder delay later, known from the SPS.
			shift := time.Duration(0)
			for i, in := range m.aus {
				out := got[i]
				if !equalAU(in.au, out.AU) {
					t.Fatalf("AU %d: bytes differ: sent %d NALUs, got %d", i, len(in.au), len(out.AU))
				}
				if tr.Video && out.Key != in.key {
					t.Errorf("AU %d: Key = %v, sent %v", i, out.Key, in.key)
				}
				if diff := out.PTS - (base + in.pts - shift); diff < -tick || diff > tick {
					t.Errorf("AU %d: PTS %v, want %v", i, out.PTS, base+in.pts-shift)
				}
				if out.DTS > out.PTS {
					t.Errorf("AU %d: DTS %v > PTS %v", i, out.DTS, out.PTS)
				}
				if i > 0 && out.DTS <= got[i-1].DTS {
					t.Errorf("AU %d: DTS %v not after %v", i, out.DTS, got[i-1].DTS)
				}
				if !tc.bframes {
					if diff := out.DTS - (base + in.dts); diff < -tick || diff > tick {
						t.Errorf("AU %d: DTS %v, want %v", i, out.DTS, base+in.dts)
					}
				}
			}
		})
	}
}

func equalAU(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// reordered reports whether some AU is presented before the AU decoded
// ahead of it: the stream has B-frames.
func reordered(m *media) bool {
	for i := 1; i < len(m.aus); i++ {
		if m.aus[i].pts < m.aus[i-1].pts {
			return true
		}
	}
	return false
}
