package codec

import (
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/pion/rtp"

	"github.com/berthmedia/berth/internal/hub"
)

// readUntil reads r until done says the frames suffice, failing the test
// after a deadline instead of hanging.
func readUntil(t *testing.T, r *hub.Reader, done func([]*hub.Frame) bool) []*hub.Frame {
	t.Helper()
	timer := time.AfterFunc(10*time.Second, r.Close)
	defer timer.Stop()
	var got []*hub.Frame
	buf := make([]*hub.Frame, 64)
	for !done(got) {
		n, err := r.Read(buf)
		if err != nil {
			if errors.Is(err, hub.ErrReaderClosed) {
				t.Fatalf("timed out after %d frames", len(got))
			}
			t.Fatalf("read after %d frames: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	return got
}

type timedFrame struct {
	f     *hub.Frame
	order int
}

// byRecv interleaves the frames of several tracks in arrival order.
func byRecv(fs []timedFrame) []*hub.Frame {
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].f.Recv.Before(fs[j].f.Recv) })
	out := make([]*hub.Frame, len(fs))
	for i := range fs {
		out[i] = fs[i].f
	}
	return out
}

// TestConverterRTPToAUAlignsTracksAcrossWrap publishes video + AAC as an
// RTSP publisher would (random, unrelated RTP timestamp origins; the video
// clock wraps mid-stream; packets arrive at their decoding time with a few
// ms of jitter) and reads access units: audio and video line up as they were
// captured, with and without B-frames.
func TestConverterRTPToAUAlignsTracksAcrossWrap(t *testing.T) {
	for _, codec := range []string{"h264", "h264b", "h265b"} {
		t.Run(codec, func(t *testing.T) { testRTPToAUAlignment(t, codec) })
	}
}

func testRTPToAUAlignment(t *testing.T, codec string) {
	mv, ma := testMedia(t, codec), testMedia(t, "aac")
	tracks := []*hub.Track{trackFor(codec, mv), AACTrackConfig(ma.asc)}
	h := hub.New(hub.Options{Converters: Converters(testLog(t)), Log: testLog(t)})
	defer h.Close()
	pub, err := h.Publish("live/rtp", hub.Origin{Proto: "rtsp"}, hub.KindRTP, tracks, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.Subscribe("live/rtp", hub.KindAU, hub.Origin{Proto: "rtmp"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	// The packets of an RTSP publisher: RTP timestamps from our packetizer
	// with per-track origins, arrival = media time + jitter.
	p := newPacketizer(&hub.Stream{Path: "gen", Tracks: tracks}, testLog(t))
	start := time.Now().Add(300 * time.Millisecond)
	jitter := func(i int) time.Duration { return time.Duration((i*7919)%5-2) * time.Millisecond }
	var all []timedFrame
	vbase, abase := wrapBase(90000), 4321*time.Second
	for i, au := range mv.aus {
		for _, pk := range p.push(&hub.Frame{Track: 0, Key: au.key, AU: au.au, PTS: vbase + au.pts}, nil) {
			pk.Recv = start.Add(au.dts + jitter(i))
			all = append(all, timedFrame{f: pk})
		}
	}
	for i, au := range ma.aus {
		for _, pk := range p.push(&hub.Frame{Track: 1, AU: au.au, PTS: abase + au.pts}, nil) {
			pk.Recv = start.Add(au.pts + aacFrame + jitter(i+1)) // sent once the frame is complete
			all = append(all, timedFrame{f: pk})
		}
	}
	for _, f := range byRecv(all) {
		pub.Write(f)
	}

	count := func(fs []*hub.Frame, track int) int {
		n := 0
		for _, f := range fs {
			if f.Track == track {
				n++
			}
		}
		return n
	}
	got := readUntil(t, r, func(fs []*hub.Frame) bool {
		return count(fs, 0) == len(mv.aus) && count(fs, 1) >= len(ma.aus)-1
	})
	var v, a []*hub.Frame
	for _, f := range got {
		if f.Track == 0 {
			v = append(v, f)
		} else {
			a = append(a, f)
		}
	}
	if !v[0].Key || len(v[0].AU) < len(mv.params)+1 {
		t.Fatalf("first video AU: Key %v, %d NALUs; want a keyframe with parameter sets", v[0].Key, len(v[0].AU))
	}
	for i, f := range v {
		if !equalAU(f.AU, mv.aus[i].au) {
			t.Fatalf("video AU %d: bytes differ", i)
		}
		if want := v[0].PTS + mv.aus[i].pts - mv.aus[0].pts; absDur(f.PTS-want) > 20*time.Microsecond {
			t.Errorf("video AU %d: PTS %v, want %v (across the RTP timestamp wrap)", i, f.PTS, want)
		}
	}
	// Audio and video line up as they were captured: the first audio AU
	// (media time 0) sits where video media time 0 is, within jitter.
	for i, f := range a {
		want := v[0].PTS - mv.aus[0].pts + ma.aus[i].pts
		if d := absDur(f.PTS - want); d > 5*time.Millisecond {
			t.Fatalf("audio AU %d: PTS %v, want %v: tracks misaligned by %v", i, f.PTS, want, d)
		}
		if i > 0 && f.PTS <= a[i-1].PTS {
			t.Fatalf("audio AU %d: PTS %v not after %v", i, f.PTS, a[i-1].PTS)
		}
		if !equalAU(f.AU, ma.aus[i].au) {
			t.Fatalf("audio AU %d: bytes differ", i)
		}
	}
	if v[0].PTS < 0 || v[0].PTS > time.Second {
		t.Errorf("first PTS %v: want the time since the stream's start", v[0].PTS)
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// TestConverterAUToRTPPacketizesEachTrack publishes H.264 + AAC access units
// as an RTMP publisher would and reads RTP as an RTSP reader, decoding with
// gortsplib's own decoders.
func TestConverterAUToRTPPacketizesEachTrack(t *testing.T) {
	mv, ma := testMedia(t, "h264"), testMedia(t, "aac")
	tracks := []*hub.Track{H264Track(mv.params[0], mv.params[1]), AACTrackConfig(ma.asc)}
	h := hub.New(hub.Options{Converters: Converters(testLog(t)), Log: testLog(t)})
	defer h.Close()
	pub, err := h.Publish("live/au", hub.Origin{Proto: "rtmp"}, hub.KindAU, tracks, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.Subscribe("live/au", hub.KindRTP, hub.Origin{Proto: "rtsp"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	vbase := wrapBase(90000) // RTP timestamps wrap mid-stream
	start := time.Now()
	var all []timedFrame
	want := make([][][]byte, len(mv.aus))
	for i, au := range mv.aus {
		// The keyframe AUs of an RTMP publisher lack SPS/PPS (they came in
		// the sequence header): the converter must add them back in front.
		var nalus [][]byte
		for _, n := range au.au {
			if typ := n[0] & 0x1f; typ != 7 && typ != 8 {
				nalus = append(nalus, n)
			}
		}
		want[i] = nalus
		if au.key {
			want[i] = append([][]byte{mv.params[0], mv.params[1]}, nalus...)
		}
		all = append(all, timedFrame{f: &hub.Frame{Track: 0, Key: au.key, AU: nalus, PTS: vbase + au.pts, DTS: vbase + au.dts, Recv: start.Add(au.dts)}})
	}
	for _, au := range ma.aus {
		all = append(all, timedFrame{f: &hub.Frame{Track: 1, AU: au.au, PTS: vbase + au.pts, DTS: vbase + au.pts, Recv: start.Add(au.pts)}})
	}
	for _, f := range byRecv(all) {
		pub.Write(f)
	}

	vdec, _ := tracks[0].Format.(*format.H264).CreateDecoder()
	adec, _ := tracks[1].Format.(*format.MPEG4Audio).CreateDecoder()
	var vOut [][][]byte
	var aOut [][]byte
	var ssrc [2]uint32
	var seq [2]uint16
	var seen [2]bool
	done := 0
	readUntil(t, r, func(fs []*hub.Frame) bool {
		for ; done < len(fs); done++ {
			f := fs[done]
			if f.Data[0] != '$' || int(f.Data[1]) != 2*f.Track || int(f.Data[2])<<8|int(f.Data[3]) != len(f.RTP()) {
				t.Fatalf("frame %d: interleaved header % x", done, f.Data[:4])
			}
			var pkt rtp.Packet
			if err := pkt.Unmarshal(f.RTP()); err != nil {
				t.Fatalf("frame %d: %v", done, err)
			}
			tr := f.Track
			if pkt.PayloadType != tracks[tr].Format.PayloadType() {
				t.Fatalf("track %d: payload type %d, want %d", tr, pkt.PayloadType, tracks[tr].Format.PayloadType())
			}
			if seen[tr] && (pkt.SSRC != ssrc[tr] || pkt.SequenceNumber != seq[tr]+1) {
				t.Fatalf("track %d: SSRC %x seq %d after SSRC %x seq %d", tr, pkt.SSRC, pkt.SequenceNumber, ssrc[tr], seq[tr])
			}
			seen[tr], ssrc[tr], seq[tr] = true, pkt.SSRC, pkt.SequenceNumber
			if tr == 0 {
				au, err := vdec.Decode(&pkt)
				if errors.Is(err, rtph264.ErrMorePacketsNeeded) {
					continue
				}
				if err != nil {
					t.Fatalf("video packet %d: %v", done, err)
				}
				in := mv.aus[len(vOut)]
				if want := uint32(hub.DurationToTicks(vbase+in.pts, 90000)); pkt.Timestamp != want {
					t.Fatalf("video AU %d: RTP timestamp %d, want %d", len(vOut), pkt.Timestamp, want)
				}
				vOut = append(vOut, au)
			} else {
				aus, err := adec.Decode(&pkt)
				if errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded) {
					continue
				}
				if err != nil {
					t.Fatalf("audio packet %d: %v", done, err)
				}
				in := ma.aus[len(aOut)]
				if want := uint32(hub.DurationToTicks(vbase+in.pts, 48000)); pkt.Timestamp != want {
					t.Fatalf("audio AU %d: RTP timestamp %d, want %d", len(aOut), pkt.Timestamp, want)
				}
				aOut = append(aOut, aus...)
			}
		}
		return len(vOut) == len(mv.aus) && len(aOut) == len(ma.aus)
	})
	if ssrc[0] == ssrc[1] {
		t.Errorf("both tracks have SSRC %x", ssrc[0])
	}
	for i, au := range vOut {
		if !equalAU(au, want[i]) {
			t.Fatalf("video AU %d: %d NALUs differ from the expected %d (keyframes must carry SPS/PPS again)", i, len(au), len(want[i]))
		}
	}
	for i, au := range aOut {
		if !equalAU([][]byte{au}, ma.aus[i].au) {
			t.Fatalf("audio AU %d differs", i)
		}
	}
}
