package codec

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/berthmedia/berth/internal/hub"
)

func stripParams(au [][]byte) [][]byte {
	var out [][]byte
	for _, n := range au {
		if typ := n[0] & 0x1f; typ != 7 && typ != 8 {
			out = append(out, n)
		}
	}
	return out
}

// TestDepacketizerPutsParameterSetsInEveryKeyframe: whatever the SDP said
// and wherever the publisher sent SPS/PPS, every keyframe AU a reader gets
// starts with the current ones.
func TestDepacketizerPutsParameterSetsInEveryKeyframe(t *testing.T) {
	m := testMedia(t, "h264")
	sps, pps := m.params[0], m.params[1]
	oldSPS := append(bytes.Clone(sps[:len(sps)-1]), sps[len(sps)-1]^1) // a stale SPS from the SDP
	cases := []struct {
		name        string
		sdpSPS      []byte
		sdpPPS      []byte
		inbandFirst bool // the first keyframe carries SPS/PPS in-band
		inbandAll   bool
	}{
		{name: "SDP only", sdpSPS: sps, sdpPPS: pps},
		{name: "in-band once, none in SDP", inbandFirst: true},
		{name: "in-band in every keyframe", inbandAll: true},
		{name: "in-band replaces a stale SDP", sdpSPS: oldSPS, sdpPPS: pps, inbandFirst: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := []*hub.Track{H264Track(nil, nil)}
			p := newPacketizer(&hub.Stream{Tracks: src}, testLog(t))
			d := newDepacketizer(&hub.Stream{Path: "live/params", Tracks: []*hub.Track{H264Track(tc.sdpSPS, tc.sdpPPS)}, Since: time.Unix(0, 0)}, testLog(t))
			var got []*hub.Frame
			keys := 0
			for _, in := range m.aus {
				au := stripParams(in.au)
				if in.key {
					if (keys == 0 && tc.inbandFirst) || tc.inbandAll {
						au = append([][]byte{sps, pps}, au...)
					}
					keys++
				}
				for _, pk := range p.push(&hub.Frame{Key: in.key, AU: au, PTS: in.pts}, nil) {
					pk.Recv = time.Unix(1, 0).Add(in.dts)
					got = d.push(pk, got)
				}
			}
			got = d.flush(got)
			if keys < 2 {
				t.Fatal("test stream has fewer than 2 keyframes")
			}
			n := 0
			for i, f := range got {
				if !f.Key {
					continue
				}
				n++
				if len(f.AU) < 3 || !bytes.Equal(f.AU[0], sps) || !bytes.Equal(f.AU[1], pps) {
					t.Errorf("keyframe AU %d does not start with the current SPS and PPS (%d NALUs)", i, len(f.AU))
				}
			}
			if n != keys {
				t.Errorf("%d keyframes out, %d in", n, keys)
			}
		})
	}
}

func TestTimelineConversionsAndWrap(t *testing.T) {
	for _, rate := range []int64{8000, 44100, 48000, 90000} {
		for _, ticks := range []int64{0, 1, 1023, 1024, rate - 1, rate, 1 << 33, -1, -rate - 7} {
			if got := hub.DurationToTicks(hub.TicksToDuration(ticks, rate), rate); got != ticks {
				t.Errorf("rate %d: %d ticks -> %v -> %d ticks", rate, ticks, hub.TicksToDuration(ticks, rate), got)
			}
		}
	}
	cases := []struct {
		name string
		ts   []uint32
		want []int64
	}{
		{"forward", []uint32{1000, 4000, 7000}, []int64{0, 3000, 6000}},
		{"wrap", []uint32{0xffff_f000, 0x0000_0800, 0x0000_1000}, []int64{0, 0x1800, 0x2000}},
		{"B-frames go back", []uint32{9000, 18000, 12000, 15000}, []int64{0, 9000, 3000, 6000}},
		{"backwards across wrap", []uint32{0x0000_0100, 0xffff_ff00}, []int64{0, -0x200}},
	}
	for _, tc := range cases {
		var c trackClock
		for i, ts := range tc.ts {
			if got := c.unwrap(&rtp.Packet{Header: rtp.Header{Timestamp: ts}}); got != tc.want[i] {
				t.Errorf("%s: packet %d: %d, want %d", tc.name, i, got, tc.want[i])
			}
		}
	}
}

// TestTrackClockSettlesOnTheMedianArrival: one early or late packet does
// not move a track; a track settles once it has watched settleWindow.
func TestTrackClockSettlesOnTheMedianArrival(t *testing.T) {
	c := trackClock{rate: 1000}
	// Media at 0, 100, ..., 600 ms arriving 1 s later, but for a burst
	// (the first two late by 80 and 40 ms) and one packet 30 ms early.
	jitter := []time.Duration{80, 40, 0, 0, -30, 0, 0}
	for i, j := range jitter {
		if c.ready() && i > 0 && i <= 5 {
			t.Fatalf("ready after %d samples spanning %d ms", i, c.last-c.first)
		}
		dec := int64(i * 100)
		c.sample(dec, time.Second+time.Duration(dec)*time.Millisecond+j*time.Millisecond)
	}
	if !c.ready() {
		t.Fatal("not ready after 600 ms of samples")
	}
	c.settle()
	if c.offset != 1000 {
		t.Errorf("offset %d ms, want 1000", c.offset)
	}
	c.sample(0, 0) // after settling, samples change nothing
	if c.offset != 1000 {
		t.Errorf("offset moved to %d after settling", c.offset)
	}
}
