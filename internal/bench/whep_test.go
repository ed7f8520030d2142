package bench

import "testing"

func TestIsWHEP(t *testing.T) {
	for _, c := range []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:8080/index/api/whep?app=live&stream=s", true},
		{"https://h/whep/live/s", true},
		{"http://h/live/s.live.flv", false},
		{"http://h/live/s.live.flv?x=whep", false},
		{"rtsp://h/whep", false},
	} {
		if got := isWHEP(c.url); got != c.want {
			t.Errorf("isWHEP(%q) = %v, want %v", c.url, got, c.want)
		}
	}
}
