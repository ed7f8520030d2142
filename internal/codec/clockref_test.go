package codec

import (
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/hub"
)

// srStream is an RTSP publisher's H.264 + AAC packets whose audio arrives
// skew later than it was captured, and the sender reports that say how the
// two were captured.
type srStream struct {
	mv, ma  *media
	tracks  []*hub.Track
	packets []*hub.Frame // in arrival order
	refs    [2]hub.ClockRef
}

func newSRStream(t *testing.T, skew time.Duration) *srStream {
	mv, ma := testMedia(t, "h264"), testMedia(t, "aac")
	st := &srStream{mv: mv, ma: ma, tracks: []*hub.Track{trackFor("h264", mv), AACTrackConfig(ma.asc)}}
	p := newPacketizer(&hub.Stream{Path: "gen", Tracks: st.tracks}, testLog(t))
	start := time.Now().Add(300 * time.Millisecond)
	// The sender's wall clock is a minute off the server's: reports place
	// tracks relative to each other, not to the server's clock.
	senderStart := start.Add(-time.Minute)
	jitter := func(i int) time.Duration { return time.Duration((i*7919)%5-2) * time.Millisecond }
	var all []timedFrame
	vbase, abase := wrapBase(90000), 4321*time.Second
	for i, au := range mv.aus {
		for j, pk := range p.push(&hub.Frame{Track: 0, Key: au.key, AU: au.au, PTS: vbase + au.pts}, nil) {
			pk.Recv = start.Add(au.dts + jitter(i))
			if i == 0 && j == 0 {
				h, _ := ParseRTP(pk.RTP())
				st.refs[0] = hub.ClockRef{NTP: senderStart.Add(au.pts), RTPTime: h.Timestamp, ClockRate: 90000}
			}
			all = append(all, timedFrame{f: pk})
		}
	}
	for i, au := range ma.aus {
		for j, pk := range p.push(&hub.Frame{Track: 1, AU: au.au, PTS: abase + au.pts}, nil) {
			pk.Recv = start.Add(au.pts + aacFrame + skew + jitter(i+1))
			if i == 0 && j == 0 {
				h, _ := ParseRTP(pk.RTP())
				st.refs[1] = hub.ClockRef{NTP: senderStart.Add(au.pts), RTPTime: h.Timestamp, ClockRate: 48000}
			}
			all = append(all, timedFrame{f: pk})
		}
	}
	st.packets = byRecv(all)
	return st
}

// audioOffset is how far the first audio AU sits from where its capture
// time puts it relative to the first video AU.
func (st *srStream) audioOffset(got []*hub.Frame) time.Duration {
	var v0, a0 *hub.Frame
	for _, f := range got {
		if f.Track == 0 && v0 == nil {
			v0 = f
		}
		if f.Track == 1 && a0 == nil {
			a0 = f
		}
	}
	return a0.PTS - (v0.PTS - st.mv.aus[0].pts + st.ma.aus[0].pts)
}

func countTrack(fs []*hub.Frame, track int) int {
	n := 0
	for _, f := range fs {
		if f.Track == track {
			n++
		}
	}
	return n
}

// checkAligned asserts that every AU from AU index from on sits where the
// sender captured it, relative to the first video AU, within tol; and that
// each track's DTS never goes back.
func (st *srStream) checkAligned(t *testing.T, got []*hub.Frame, fromVideo, fromAudio int, tol time.Duration) {
	t.Helper()
	var v, a []*hub.Frame
	for _, f := range got {
		if f.Track == 0 {
			v = append(v, f)
		} else {
			a = append(a, f)
		}
	}
	for _, fs := range [][]*hub.Frame{v, a} {
		for i := 1; i < len(fs); i++ {
			if fs[i].DTS < fs[i-1].DTS {
				t.Fatalf("track %d AU %d: DTS went back from %v to %v", fs[i].Track, i, fs[i-1].DTS, fs[i].DTS)
			}
		}
	}
	// Video media time 0 on the output clock, from the first video AU
	// checked.
	zero := v[fromVideo].PTS - st.mv.aus[fromVideo].pts
	for i := fromAudio; i < len(a); i++ {
		want := zero + st.ma.aus[i].pts
		if d := absDur(a[i].PTS - want); d > tol {
			t.Fatalf("audio AU %d: PTS %v, want %v: tracks misaligned by %v", i, a[i].PTS, want, a[i].PTS-want)
		}
	}
}

// TestSenderReportsAlignTracksWhoseArrivalIsSkewed: audio arrives 200 ms
// after video of the same capture time (a sender that buffers audio, a
// congested path), which arrival-based alignment takes at face value; the
// publisher's sender reports say they were captured together, and the
// access units come out aligned to the tick.
func TestSenderReportsAlignTracksWhoseArrivalIsSkewed(t *testing.T) {
	for _, tc := range []struct {
		name string
		refs bool
		tol  time.Duration
		want time.Duration // audio misalignment without reports
	}{
		{"with sender reports", true, 2 * time.Millisecond, 0},
		{"without, arrival decides", false, 0, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newSRStream(t, 200*time.Millisecond)
			h := hub.New(hub.Options{Converters: Converters(testLog(t)), Log: testLog(t)})
			defer h.Close()
			pub, err := h.Publish("live/sr", hub.Origin{Proto: "rtsp"}, hub.KindRTP, st.tracks, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.refs {
				for i, ref := range st.refs {
					pub.Stream().SetClockRef(i, ref)
				}
			}
			r, err := h.Subscribe("live/sr", hub.KindAU, hub.Origin{Proto: "rtmp"})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for _, f := range st.packets {
				pub.Write(f)
			}
			got := readUntil(t, r, func(fs []*hub.Frame) bool {
				return countTrack(fs, 0) == len(st.mv.aus) && countTrack(fs, 1) >= len(st.ma.aus)-1
			})
			if tc.refs {
				st.checkAligned(t, got, 0, 0, tc.tol)
				return
			}
			// The control: arrival alone puts audio 200 ms late.
			if off := st.audioOffset(got); absDur(off-tc.want) > 10*time.Millisecond {
				t.Errorf("without reports audio sits %v from video, want about %v (arrival)", off, tc.want)
			}
		})
	}
}

// TestSenderReportsArrivingLateMoveTracksForwardOnly: the reports come
// after the converter has placed (and sent) frames by arrival; from then on
// the tracks are aligned by the reports, and no track's timestamps go back.
func TestSenderReportsArrivingLateMoveTracksForwardOnly(t *testing.T) {
	st := newSRStream(t, 200*time.Millisecond)
	h := hub.New(hub.Options{Converters: Converters(testLog(t)), Log: testLog(t)})
	defer h.Close()
	pub, err := h.Publish("live/late", hub.Origin{Proto: "rtsp"}, hub.KindRTP, st.tracks, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.Subscribe("live/late", hub.KindAU, hub.Origin{Proto: "rtmp"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	half := len(st.packets) * 3 / 5
	for _, f := range st.packets[:half] {
		pub.Write(f)
	}
	// Wait until frames of both tracks went out, placed by arrival.
	got := readUntil(t, r, func(fs []*hub.Frame) bool { return countTrack(fs, 0) > 0 && countTrack(fs, 1) > 0 })
	if off := st.audioOffset(got); absDur(off-200*time.Millisecond) > 10*time.Millisecond {
		t.Fatalf("before the reports audio sits %v from video, want about 200ms (arrival)", off)
	}
	for i, ref := range st.refs {
		pub.Stream().SetClockRef(i, ref)
	}
	sentV, sentA := countTrack(got, 0), countTrack(got, 1)
	for _, f := range st.packets[half:] {
		pub.Write(f)
	}
	got = append(got, readUntil(t, r, func(fs []*hub.Frame) bool {
		return sentV+countTrack(fs, 0) == len(st.mv.aus) && sentA+countTrack(fs, 1) >= len(st.ma.aus)-1
	})...)
	// Frames the converter had in hand when the reports came are still
	// placed by arrival; the last ones are placed by the reports.
	st.checkAligned(t, got, countTrack(got, 0)-10, countTrack(got, 1)-20, 2*time.Millisecond)
}
