package bench

import (
	"slices"
	"testing"
	"time"
)

func TestStallsOverlaps(t *testing.T) {
	t0 := time.Now()
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	s := &Stalls{spans: []stallSpan{{at(10), at(12)}, {at(30), at(34)}}, cpus: 2, begin: t0, end: at(1000)}
	for _, c := range []struct {
		from, to float64
		want     bool
	}{
		{0, 5, false},
		{5, 10, false}, // ends as the stall begins
		{5, 11, true},
		{11, 11.5, true}, // inside
		{9, 40, true},    // spans both
		{12, 30, false},  // between them
		{33, 50, true},
		{34, 50, false},
	} {
		if got := s.Overlaps(at(c.from), at(c.to)); got != c.want {
			t.Errorf("[%v, %v] ms: overlaps %v, want %v", c.from, c.to, got, c.want)
		}
	}
	h := s.Summary()
	if h.Stalls != 2 || h.LongestMs != 4 || h.CPUs != 2 || h.Seconds != 1 {
		t.Errorf("summary %+v", h)
	}
}

func TestWatchStallsStops(t *testing.T) {
	s := WatchStalls()
	s.Stop()
	s.Stop() // a second Stop is harmless
	if h := s.Summary(); h.CPUs < 1 || h.Seconds <= 0 {
		t.Errorf("summary %+v", h)
	}
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{
		"0":         {0},
		"0-1":       {0, 1},
		"0-2,5,7-8": {0, 1, 2, 5, 7, 8},
		"":          nil,
		"x":         nil,
		"3-1":       nil,
	} {
		if got := parseCPUList(in); !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}
