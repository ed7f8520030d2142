package proxy

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/codec"
	"github.com/berthmedia/berth/internal/hub"
)

func testProxy(t testing.TB) *Proxy {
	m := &Manager{Hub: hub.New(hub.Options{})}
	t.Cleanup(m.Hub.Close)
	return newProxy(m, Key("pull/t"), Spec{Path: "pull/t", URL: "rtsp://h/s", Timeout: time.Second})
}

func rtpPacket(seq uint16, ts, ssrc uint32, marker bool) []byte {
	b := make([]byte, 12, 16)
	b[0] = 0x80
	b[1] = 96
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	return append(b, 0x65, 1, 2, 3) // an H.264 IDR slice: a reader may start at any of them
}

// TestResumedRTPRunsOn: a second session's packets keep the first's SSRC,
// their sequence numbers follow on, and their timestamps continue forward
// by the wall-clock gap, so a reader sees one stream.
func TestResumedRTPRunsOn(t *testing.T) {
	p := testProxy(t)
	tracks := []*hub.Track{codec.H264Track(nil, nil)}
	if _, err := p.out.begin(hub.KindRTP, tracks, nil); err != nil {
		t.Fatal(err)
	}
	st := p.m.Hub.Get("pull/t")
	r, err := st.Subscribe(hub.KindRTP, hub.Origin{Proto: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i := range 3 {
		p.out.writeRTP(0, rtpPacket(uint16(65534+i), uint32(1000+3600*i), 0xaaaa, true), t0.Add(time.Duration(i)*40*time.Millisecond))
	}
	p.out.newSession()
	if _, err := p.out.begin(hub.KindRTP, []*hub.Track{codec.H264Track(nil, nil)}, nil); err != nil {
		t.Fatal(err)
	}
	if p.m.Hub.Get("pull/t") != st {
		t.Fatal("a session with the same tracks replaced the stream")
	}
	t1 := t0.Add(80*time.Millisecond + time.Second) // the source was away 1 s
	for i := range 2 {
		p.out.writeRTP(0, rtpPacket(uint16(7+i), uint32(500+3600*i), 0xbbbb, true), t1.Add(time.Duration(i)*40*time.Millisecond))
	}
	frames := make([]*hub.Frame, 16)
	n, err := r.Read(frames)
	if err != nil || n != 5 {
		t.Fatalf("read %d frames, %v; want 5", n, err)
	}
	var lastSeq uint16
	var lastTS uint32
	for i, f := range frames[:n] {
		h, _ := codec.ParseRTP(f.RTP())
		if h.SSRC != 0xaaaa {
			t.Errorf("frame %d: SSRC %x, want the first session's aaaa", i, h.SSRC)
		}
		if i > 0 && h.Seq != lastSeq+1 {
			t.Errorf("frame %d: seq %d after %d", i, h.Seq, lastSeq)
		}
		if i > 0 && int32(h.Timestamp-lastTS) <= 0 {
			t.Errorf("frame %d: timestamp %d does not move on from %d", i, h.Timestamp, lastTS)
		}
		lastSeq, lastTS = h.Seq, h.Timestamp
	}
	h3, _ := codec.ParseRTP(frames[3].RTP())
	h2, _ := codec.ParseRTP(frames[2].RTP())
	if gap := h3.Timestamp - h2.Timestamp; gap != 90000 {
		t.Errorf("the 1 s gap became %d ticks, want 90000", gap)
	}
}

// TestChangedTracksStartANewStream: a session whose codecs differ ends the
// old stream and publishes a new one.
func TestChangedTracksStartANewStream(t *testing.T) {
	p := testProxy(t)
	if _, err := p.out.begin(hub.KindRTP, []*hub.Track{codec.H264Track(nil, nil)}, nil); err != nil {
		t.Fatal(err)
	}
	st := p.m.Hub.Get("pull/t")
	p.out.newSession()
	if _, err := p.out.begin(hub.KindRTP, []*hub.Track{codec.H265Track(nil, nil, nil)}, nil); err != nil {
		t.Fatal(err)
	}
	if !st.Ended() || p.m.Hub.Get("pull/t") == st || p.m.Hub.Get("pull/t") == nil {
		t.Errorf("a session with other codecs did not start a new stream")
	}
}

// TestResumedAccessUnitsRunOn: access-unit times of a second session,
// which start from its source's zero, continue after the first's.
func TestResumedAccessUnitsRunOn(t *testing.T) {
	p := testProxy(t)
	tracks := []*hub.Track{codec.OpusTrack(2)}
	if _, err := p.out.begin(hub.KindAU, tracks, nil); err != nil {
		t.Fatal(err)
	}
	r, err := p.m.Hub.Get("pull/t").Subscribe(hub.KindAU, hub.Origin{Proto: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i := range 3 {
		d := time.Duration(5000+20*i) * time.Millisecond // the source starts at 5 s
		p.out.writeAU(0, &hub.Frame{AU: [][]byte{{1}}, PTS: d, DTS: d}, t0.Add(time.Duration(i)*20*time.Millisecond))
	}
	p.out.newSession()
	p.out.begin(hub.KindAU, []*hub.Track{codec.OpusTrack(2)}, nil)
	for i := range 2 {
		d := time.Duration(20*i) * time.Millisecond
		p.out.writeAU(0, &hub.Frame{AU: [][]byte{{1}}, PTS: d, DTS: d}, t0.Add(540*time.Millisecond+time.Duration(i)*20*time.Millisecond))
	}
	frames := make([]*hub.Frame, 8)
	n, _ := r.Read(frames)
	want := []time.Duration{0, 20, 40, 540, 560}
	if n != len(want) {
		t.Fatalf("read %d frames, want %d", n, len(want))
	}
	for i, f := range frames[:n] {
		if f.DTS != want[i]*time.Millisecond || f.PTS != f.DTS {
			t.Errorf("frame %d: DTS %s PTS %s, want %s", i, f.DTS, f.PTS, want[i]*time.Millisecond)
		}
	}
}

// TestGraceEndsTheStream: a stream whose source stays away past the grace
// time ends; one that comes back in time keeps it.
func TestGraceEndsTheStream(t *testing.T) {
	p := testProxy(t)
	p.out.begin(hub.KindAU, []*hub.Track{codec.OpusTrack(2)}, nil)
	st := p.m.Hub.Get("pull/t")
	p.out.armGrace(time.Hour, p.m.log())
	p.out.newSession()
	p.out.begin(hub.KindAU, []*hub.Track{codec.OpusTrack(2)}, nil) // back in time: stops the timer
	p.out.mu.Lock()
	stopped := p.out.grace == nil
	p.out.mu.Unlock()
	if !stopped || st.Ended() {
		t.Fatalf("a resumed stream kept its grace timer (%v) or ended (%v)", !stopped, st.Ended())
	}
	p.out.armGrace(time.Millisecond, p.m.log())
	select {
	case <-st.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end after the grace time")
	}
}

func BenchmarkWriteRTP(b *testing.B) {
	p := testProxy(b)
	p.out.begin(hub.KindRTP, []*hub.Track{codec.H264Track(nil, nil)}, nil)
	pkt := rtpPacket(1, 1000, 0xaaaa, false)
	pkt = append(pkt, make([]byte, 1200)...)
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		p.out.writeRTP(0, pkt, now)
	}
}

// srPacket is an RTCP sender report (RFC 3550 section 6.4.1) saying that
// RTP time ts is sender time at.
func srPacket(ssrc uint32, at time.Time, ts uint32) []byte {
	b := make([]byte, 28)
	b[0], b[1] = 0x80, 200
	binary.BigEndian.PutUint16(b[2:], 6)
	binary.BigEndian.PutUint32(b[4:], ssrc)
	secs := uint64(at.Unix() + 2208988800)
	frac := uint64(at.Nanosecond()) << 32 / 1e9
	binary.BigEndian.PutUint64(b[8:], secs<<32|frac)
	binary.BigEndian.PutUint32(b[16:], ts)
	return b
}

// TestResumedRTPPlacedBySenderReports: a resumed session whose reports
// say its first frame was sent 500 ms ago (a GOP cache) keeps the tracks'
// distance from each other as the reports give it, and the session moves
// up so its first track starts the wall-clock gap after the last packet.
func TestResumedRTPPlacedBySenderReports(t *testing.T) {
	p := testProxy(t)
	tracks := func() []*hub.Track { return []*hub.Track{codec.H264Track(nil, nil), codec.OpusTrack(2)} }
	p.out.begin(hub.KindRTP, tracks(), nil)
	t0 := time.Now()
	p.out.writeRTCP(0, srPacket(1, t0, 90000), t0)
	p.out.writeRTCP(1, srPacket(2, t0, 48000), t0)
	p.out.writeRTP(0, rtpPacket(1, 90000, 1, true), t0)
	p.out.writeRTP(1, rtpPacket(1, 48000, 2, true), t0)

	p.out.newSession()
	p.out.begin(hub.KindRTP, tracks(), nil)
	t1 := t0.Add(2 * time.Second) // back 2 s later, with media from 500 ms ago
	p.out.writeRTCP(0, srPacket(3, t1.Add(-500*time.Millisecond), 1000), t1)
	p.out.writeRTCP(1, srPacket(4, t1.Add(-500*time.Millisecond), 7000), t1)
	p.out.writeRTP(0, rtpPacket(9, 1000, 3, true), t1)
	p.out.writeRTP(1, rtpPacket(9, 7000+480, 4, true), t1) // 10 ms after the video, by the reports
	v, a := p.out.rtp[0], p.out.rtp[1]
	if got := v.lastTS - 90000; got != 2*90000 {
		t.Errorf("video moved %d ticks, want the 2 s gap (180000)", got)
	}
	if got := a.lastTS - 48000; got != 2*48000+480 {
		t.Errorf("audio moved %d ticks, want the video's 2 s plus its own 10 ms (96480)", got)
	}
	if v.aligned || a.aligned {
		t.Errorf("a session moved off the reports' line still passes reports on")
	}
}
