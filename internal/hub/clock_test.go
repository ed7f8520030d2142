package hub

import (
	"sync"
	"testing"
	"time"
)

func TestClockRefMapsWallTimeToRTPAcrossWrap(t *testing.T) {
	ntp := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		ref  ClockRef
		at   time.Duration // after ref.NTP
		want uint32
	}{
		{"same instant", ClockRef{NTP: ntp, RTPTime: 1000, ClockRate: 90000}, 0, 1000},
		{"one second of video", ClockRef{NTP: ntp, RTPTime: 1000, ClockRate: 90000}, time.Second, 91000},
		{"before the ref", ClockRef{NTP: ntp, RTPTime: 1000, ClockRate: 48000}, -time.Second, 1000 - 48000 + 1<<32},
		{"wraps forward", ClockRef{NTP: ntp, RTPTime: 1<<32 - 45000, ClockRate: 90000}, time.Second, 45000},
		{"wraps backward", ClockRef{NTP: ntp, RTPTime: 50, ClockRate: 90000}, -time.Millisecond, 1<<32 - 90 + 50},
		{"rounds to the nearest tick", ClockRef{NTP: ntp, RTPTime: 0, ClockRate: 8000}, 187500 * time.Nanosecond, 2},
		{"a day later", ClockRef{NTP: ntp, RTPTime: 7, ClockRate: 90000}, 24 * time.Hour, uint32((24*3600*90000 + 7) % (1 << 32))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.ref.RTPAt(ntp.Add(c.at))
			if got != c.want {
				t.Fatalf("RTPAt(+%v) = %d, want %d", c.at, got, c.want)
			}
			if c.at > -time.Hour && c.at < time.Hour { // NTPAt takes timestamps within 2^31 ticks
				back := c.ref.NTPAt(got).Sub(ntp)
				tick := time.Second / time.Duration(c.ref.ClockRate)
				if d := back - c.at; d > tick || d < -tick {
					t.Fatalf("NTPAt(%d) = +%v, want +%v within a tick", got, back, c.at)
				}
			}
		})
	}
}

func TestTicksAndDurationsConvertWithoutOverflow(t *testing.T) {
	cases := []struct {
		d     time.Duration
		rate  int64
		ticks int64
	}{
		{0, 90000, 0},
		{time.Second, 90000, 90000},
		{-time.Second, 48000, -48000},
		{1000 * time.Hour, 90000, 1000 * 3600 * 90000},
		{126 * 365 * 24 * time.Hour, 90000, 126 * 365 * 24 * 3600 * 90000}, // NTP's 1900 epoch to now
	}
	for _, c := range cases {
		if got := DurationToTicks(c.d, c.rate); got != c.ticks {
			t.Errorf("DurationToTicks(%v, %d) = %d, want %d", c.d, c.rate, got, c.ticks)
		}
		if got := TicksToDuration(c.ticks, c.rate); got != c.d {
			t.Errorf("TicksToDuration(%d, %d) = %v, want %v", c.ticks, c.rate, got, c.d)
		}
	}
	if TicksToDuration(5, 0) != 0 {
		t.Error("TicksToDuration with rate 0 is not 0")
	}
}

// A sender whose wall clock is far off the server's (a camera sending NTP
// from its boot) still gets reports that keep its tracks aligned: the
// offset of its first report applies to every track.
func TestStreamRTPTimeAtUsesTheSendersClockOffset(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	pub, err := h.Publish("live/c", Origin{Proto: "rtsp"}, KindRTP, []*Track{{Video: true}, {}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := pub.Stream()
	if _, ok := s.RTPTimeAt(0, time.Now()); ok {
		t.Fatal("RTPTimeAt without a ref said ok")
	}
	boot := time.Date(1900, 1, 1, 0, 10, 0, 0, time.UTC) // the camera's "now"
	recv := time.Now()
	s.SetClockRef(0, ClockRef{NTP: boot, RTPTime: 90000, ClockRate: 90000, Recv: recv})
	s.SetClockRef(1, ClockRef{NTP: boot.Add(2 * time.Second), RTPTime: 5, ClockRate: 48000, Recv: recv.Add(2*time.Second + 3*time.Millisecond)})
	s.SetClockRef(7, ClockRef{NTP: boot, RTPTime: 1, ClockRate: 1}) // no such track: ignored
	s.SetClockRef(1, ClockRef{NTP: boot, RTPTime: 1, ClockRate: 0}) // no clock: ignored

	at := recv.Add(3 * time.Second)
	v, ok := s.RTPTimeAt(0, at)
	if !ok || v != 90000+3*90000 {
		t.Errorf("video RTPTimeAt(+3s) = %d %v, want %d", v, ok, 90000+3*90000)
	}
	// The audio ref's own arrival was 3 ms late; the stream's offset, not
	// the arrival, places it.
	a, ok := s.RTPTimeAt(1, at)
	if !ok || a != 5+48000 {
		t.Errorf("audio RTPTimeAt(+3s) = %d %v, want %d", a, ok, 5+48000)
	}
	if ref, ok := s.ClockRef(1); !ok || ref.RTPTime != 5 {
		t.Errorf("ClockRef(1) = %+v %v, want the latest valid ref", ref, ok)
	}
	if _, ok := s.ClockRef(-1); ok {
		t.Error("ClockRef(-1) said ok")
	}
}

func TestClockRefsAreSafeForConcurrentReaders(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	pub, err := h.Publish("live/r", Origin{Proto: "rtsp"}, KindRTP, []*Track{{Video: true}, {}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := pub.Stream()
	var wg sync.WaitGroup
	base := time.Now()
	for w := 0; w < 2; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				s.SetClockRef(w, ClockRef{NTP: base.Add(time.Duration(i) * time.Millisecond), RTPTime: uint32(i * 90), ClockRate: 90000})
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if ref, ok := s.ClockRef(w); ok && ref.ClockRate != 90000 {
					t.Errorf("torn ref %+v", ref)
					return
				}
				s.RTPTimeAt(w, time.Now())
			}
		}()
	}
	wg.Wait()
}
