package ports

import (
	"strings"
	"testing"
)

// TestChangePortNamesTheRightKnob: the fix names the key and flag that set
// the port, or the API call's own argument for a port an API call opened.
func TestChangePortNamesTheRightKnob(t *testing.T) {
	cases := []struct {
		spec Spec
		free int
		want string
	}{
		{Spec{Name: "rtsp", Section: "rtsp", Flag: "--rtsp-port"}, 8555, "set [rtsp] port=8555 in config.ini or run with --rtsp-port 8555"},
		{Spec{Name: "pprof", Section: "general", Key: "pprof_port", Flag: "--pprof-port"}, 6061, "set [general] pprof_port=6061 in config.ini or run with --pprof-port 6061"},
		{Spec{Name: "rtp_proxy"}, 30002, "ask for another port (30002 is free), or port=0 to let Berth pick one"},
		{Spec{Name: "rtp_proxy"}, 0, "ask for another port, or port=0 to let Berth pick a free one"},
	}
	for _, c := range cases {
		f := &Finding{Spec: c.spec, FreePort: c.free}
		if got := f.changePort(); !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.spec.Name, got, c.want)
		}
	}
}
