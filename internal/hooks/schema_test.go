package hooks

import "testing"

func TestSchemaOf(t *testing.T) {
	for proto, want := range map[string][2]string{
		"rtsp": {"rtsp", "rtsp"}, "rtmp": {"rtmp", "rtmp"},
		"http-flv": {"rtmp", "http-flv"}, "ws-flv": {"rtmp", "ws-flv"},
		"http-fmp4": {"fmp4", "http-fmp4"}, "ws-fmp4": {"fmp4", "ws-fmp4"},
		"http-ts": {"ts", "http-ts"}, "ws-ts": {"ts", "ws-ts"},
		"hls": {"hls", "hls"}, "hls.fmp4": {"hls.fmp4", "hls.fmp4"}, "": {"", ""},
	} {
		if s, p := schemaOf(proto); s != want[0] || p != want[1] {
			t.Errorf("schemaOf(%q) = %q, %q; want %q, %q", proto, s, p, want[0], want[1])
		}
	}
}
