package ports

import (
	"strings"
	"testing"
)

// TestBannerNamesTLSListeners: the TLS listeners get their schemes and
// the same copy-paste commands as the plain ones.
func TestBannerNamesTLSListeners(t *testing.T) {
	for _, c := range []struct {
		name string
		want []string
	}{
		{"https", []string{"https/tcp      https://127.0.0.1:8443/", "play: ffplay https://127.0.0.1:8443/live/stream.live.flv", "page: https://127.0.0.1:8443/"}},
		{"rtsps", []string{"rtsps://127.0.0.1:8443/", "push: ffmpeg -re -i input.mp4 -c copy -f rtsp -rtsp_transport tcp rtsps://127.0.0.1:8443/live/stream"}},
		{"rtmps", []string{"rtmps://127.0.0.1:8443/", "push: ffmpeg -re -i input.mp4 -c copy -f flv rtmps://127.0.0.1:8443/live/stream", "play: ffplay rtmps://127.0.0.1:8443/live/stream"}},
	} {
		b := &Bound{Specs: []Spec{{Name: c.name, Network: "tcp", Host: "127.0.0.1", Port: 8443}}}
		var sb strings.Builder
		Banner(&sb, b, nil)
		for _, w := range c.want {
			if !strings.Contains(sb.String(), w) {
				t.Errorf("%s banner lacks %q:\n%s", c.name, w, sb.String())
			}
		}
		if !identifiable(b.Specs[0]) {
			t.Errorf("%s is not self-probed", c.name)
		}
	}
}
