package config

import (
	"strings"
	"testing"
)

func TestProxySectionReadsPullsAndKeys(t *testing.T) {
	c := Default()
	ini := "[proxy]\non_demand=1\nretry_count=5\nrtp_type=1\ngrace_ms=3000\n" +
		"live/cam1=rtsp://admin:pw@10.0.0.5/stream1\nlive/cam2 = rtmp://10.0.0.6/live/b\nlive/cam1=rtsp://10.0.0.7/s\n"
	if err := c.Parse(strings.NewReader(ini), "t.ini"); err != nil {
		t.Fatal(err)
	}
	p := c.Proxy
	if !p.OnDemand || p.RetryCount != 5 || p.RTPType != 1 || p.GraceMS != 3000 || p.TimeoutSec != 10 {
		t.Errorf("keys: %+v", p)
	}
	want := []Pull{{"live/cam1", "rtsp://10.0.0.7/s"}, {"live/cam2", "rtmp://10.0.0.6/live/b"}}
	if len(p.Pulls) != 2 || p.Pulls[0] != want[0] || p.Pulls[1] != want[1] {
		t.Errorf("pulls: %+v, want %+v (a repeated path takes the last URL)", p.Pulls, want)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	if n := c.Clone(); &n.Proxy.Pulls[0] == &c.Proxy.Pulls[0] {
		t.Errorf("Clone shares the pulls")
	}
}

func TestProxyPullLineErrorsSayTheForm(t *testing.T) {
	for ini, want := range map[string]string{
		"[proxy]\nlive/=rtsp://h/s\n": "app/stream=URL",
		"[proxy]\nlive/a=10.0.0.5\n":  "the value is the source URL",
		"[proxy]\nrtp_type=3\n":       "out of range",
		"[proxy]\nretry_count=-2\n":   "out of range",
		"[proxy]\ntimeout_sec=abc\n":  "not a number",
	} {
		err := Default().Parse(strings.NewReader(ini), "t.ini")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want it to say %q", ini, err, want)
		}
	}
}
