package config

import (
	"strings"
	"testing"
)

func TestClusterKeys(t *testing.T) {
	for _, c := range []struct {
		ini  string
		want string // "" = accepted
	}{
		{"[cluster]\nredis=redis://10.0.0.2:6379\nnode_id=edge-1.a_b\nttl=2.5\n", ""},
		{"[cluster]\nredis=rediss://user:pw@redis.example:6380/2\n", ""},
		{"[cluster]\nredis=unix:///run/redis.sock\n", ""},
		{"[cluster]\nadvertise=10.0.0.5\n", ""},
		{"[cluster]\nadvertise=rtsp://10.0.0.5:8554, rtmp://10.0.0.5:1935\n", ""},
		{"[cluster]\nredis=10.0.0.2:6379\n", "want redis://host:6379"},
		{"[cluster]\nredis=http://10.0.0.2\n", `scheme "http" is not redis`},
		{"[cluster]\nnode_id=edge 1\n", "letters, digits"},
		{"[cluster]\nadvertise=rtsp://10.0.0.5\n", "names no port"},
		{"[cluster]\nadvertise=srt://10.0.0.5:9000\n", "not rtsp, rtmp or http"},
		{"[cluster]\nttl=0\n", "out of range"},
	} {
		c2 := Default()
		err := c2.Parse(strings.NewReader(c.ini), "t.ini")
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%q: %v, want %q", c.ini, err, c.want)
		}
	}
	d := Default()
	if d.Cluster.TTL != 10 || d.Cluster.Redis != "" {
		t.Errorf("defaults: %+v", d.Cluster)
	}
}
