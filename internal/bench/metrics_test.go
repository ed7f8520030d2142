package bench

import (
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	cases := []struct {
		name, in string
		want     map[string]float64
	}{
		{"plain", "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 42\n", map[string]float64{"go_goroutines": 42}},
		{"exponent", "process_resident_memory_bytes 1.2345e+07\n", map[string]float64{"process_resident_memory_bytes": 12345000}},
		{"labels skipped", "berth_readers{protocol=\"rtsp\"} 3\nprocess_open_fds 17\n", map[string]float64{"process_open_fds": 17}},
		{"timestamp", "go_goroutines 5 1700000000000\n", map[string]float64{"go_goroutines": 5}},
		{"garbage", "nonsense\n\nx y\n", map[string]float64{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseMetrics(strings.NewReader(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestSoakLinesJudgeAfterWarmup(t *testing.T) {
	s := []SoakSample{
		{Elapsed: 60e9, Goroutines: 10, FDs: 10, RSSKiB: 100, HeapKiB: 50},
		{Elapsed: 120e9, Goroutines: 100, FDs: 200, RSSKiB: 1000, HeapKiB: 500},
		{Elapsed: 180e9, Goroutines: 110, FDs: 200, RSSKiB: 900, HeapKiB: 600},
	}
	lines := soakLines(s, 120e9)
	r := SoakResult{Lines: lines}
	if g := r.Line("goroutines"); g.First != 100 || g.Last != 110 || g.GrowthPercent != 10 {
		t.Errorf("goroutines %+v", g)
	}
	if g := r.Line("rss_kib"); g.Max != 1000 || g.GrowthPercent != -10 {
		t.Errorf("rss %+v", g)
	}
	if soakLines(s, 1e12) != nil {
		t.Error("no sample after warm-up should judge nothing")
	}
}
