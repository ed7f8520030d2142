package config

import (
	"strings"
	"testing"
)

func TestClusterOriginKeys(t *testing.T) {
	c := Default()
	if c.Origin.TimeoutSec != 15 || c.Origin.RetryCount != 3 || len(c.Origin.URLs) != 0 {
		t.Errorf("defaults: %+v, want ZLMediaKit's (15 s, 3 retries, no origin)", c.Origin)
	}
	ini := "[cluster]\norigin_url= rtsp://10.0.0.1:554/%s/%s ; ;rtmp://10.0.0.2/$app/$stream\ntimeout_sec=7.5\nretry_count=-1\n"
	if err := c.Parse(strings.NewReader(ini), "t.ini"); err != nil {
		t.Fatal(err)
	}
	want := []string{"rtsp://10.0.0.1:554/%s/%s", "rtmp://10.0.0.2/$app/$stream"}
	if o := c.Origin; len(o.URLs) != 2 || o.URLs[0] != want[0] || o.URLs[1] != want[1] || o.TimeoutSec != 7.5 || o.RetryCount != -1 {
		t.Errorf("parsed: %+v, want URLs %q, 7.5 s, -1", o, want)
	}
	if got := c.Values()["cluster.origin_url"]; got != strings.Join(want, ";") {
		t.Errorf("origin_url prints as %q", got)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	for ini, says := range map[string]string{
		"[cluster]\norigin_url=10.0.0.1/$app/$stream\n": "is not a URL",
		"[cluster]\ntimeout_sec=0\n":                    "out of range",
		"[cluster]\nretry_count=-2\n":                   "out of range",
	} {
		if err := Default().Parse(strings.NewReader(ini), "t.ini"); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%q: %v, want an error saying %q", ini, err, says)
		}
	}
}
