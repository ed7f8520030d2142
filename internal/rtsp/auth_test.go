package rtsp

import "testing"

func TestSplitControl(t *testing.T) {
	for _, tc := range []struct{ raw, query, control string }{
		{"", "", ""},
		{"token=1", "token=1", ""},
		{"token=1/streamid=0", "token=1", "streamid=0"},
		{"token=1/trackID=2", "token=1", "trackID=2"},
		{"a=1&b=2/track1", "a=1&b=2", "track1"},
		{"next=/live/a", "next=/live/a", ""},
		{"u=http://x/y/trackID=3", "u=http://x/y", "trackID=3"},
	} {
		q, ctl := splitControl(tc.raw)
		if q != tc.query || ctl != tc.control {
			t.Errorf("splitControl(%q) = %q, %q; want %q, %q", tc.raw, q, ctl, tc.query, tc.control)
		}
	}
}
