package rtsp

import (
	"testing"
	"time"
)

var nptCases = []struct {
	in   string
	at   time.Duration
	seek bool
	bad  bool
}{
	{"npt=3-", 3 * time.Second, true, false},
	{"npt=3.500-", 3500 * time.Millisecond, true, false},
	{"npt=0.000-", 0, true, false},
	{"npt=0:01:02.5-10", 62500 * time.Millisecond, true, false},
	{"npt=now-", 0, false, false},
	{"npt=-5", 0, false, false},
	{"npt=3-;time=19970123T143720Z", 3 * time.Second, true, false},
	{"clock=19961108T142300Z-", 0, false, true},
	{"npt=3", 0, false, true},
	{"npt=-1-", 0, false, false}, // no start: the play goes on where it is
	{"npt=1e3-", 0, false, true},
	{"npt=NaN-", 0, false, true},
	{"npt=99999999999-", 0, false, true},
	{"npt=1:2:3:4-", 0, false, true},
}

func TestParseNPTStart(t *testing.T) {
	for _, c := range nptCases {
		at, seek, err := parseNPTStart(c.in)
		if (err != nil) != c.bad || at != c.at || seek != c.seek {
			t.Errorf("parseNPTStart(%q) = %v, %v, %v; want %v, %v, bad=%v", c.in, at, seek, err, c.at, c.seek, c.bad)
		}
	}
}

func TestParseScale(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		bad  bool
	}{{"2", 2, false}, {" 0.5 ", 0.5, false}, {"0", 0, true}, {"-1", 0, true}, {"x", 0, true}, {"+Inf", 0, true}} {
		got, err := parseScale(c.in)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("parseScale(%q) = %v, %v", c.in, got, err)
		}
	}
}

// FuzzParseNPTStart: a Range header from a client never panics and never
// gives a negative start.
func FuzzParseNPTStart(f *testing.F) {
	for _, c := range nptCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, v string) {
		at, seek, err := parseNPTStart(v)
		if at < 0 || (err != nil && seek) {
			t.Fatalf("parseNPTStart(%q) = %v, %v, %v", v, at, seek, err)
		}
	})
}
